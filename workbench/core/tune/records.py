"""Optuna's trials as the plain records of a study folder (core/runs/studies.py), and the best so far."""

from __future__ import annotations

import warnings

import optuna
from optuna.trial import TrialState

from workbench.core.config.tune import DIRECTION, METRIC, TuneConfig, fingerprint, trial_config
from workbench.core.runs.studies import StudyRecord, StudyTrial, mask_storage

OVER_BUDGET_ATTR = "over_budget"  # a trial asked for after the budget was spent by another process: never ran


STATES = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed",
          TrialState.RUNNING: "running", TrialState.WAITING: "waiting"}


def counts_toward_budget(trial: optuna.trial.FrozenTrial) -> bool:
    """Complete, pruned, running and queued trials use the budget; failed ones do not (they are retried)."""
    return trial.state != TrialState.FAIL


def trial_record(trial: optuna.trial.FrozenTrial) -> StudyTrial | None:
    """The trial as a study folder lists it; None for a trial that never ran (over budget)."""
    attrs = trial.user_attrs
    if attrs.get(OVER_BUDGET_ATTR):
        return None
    seconds = trial.duration.total_seconds() if trial.duration is not None else 0.0
    return StudyTrial(
        number=trial.number,
        state=STATES.get(trial.state, trial.state.name.lower()),
        value=trial.value if trial.state == TrialState.COMPLETE else None,
        params=dict(trial.params),
        run_dirs=list(attrs.get("run_dirs", [])),
        fold_values=list(attrs.get("fold_values", [])),
        value_std=attrs.get("value_std"),
        seconds=seconds,
        error=str(attrs.get("error", "")),
    )


def trial_records(study: optuna.Study) -> list[StudyTrial]:
    records = (trial_record(t) for t in study.get_trials(deepcopy=False))
    return [r for r in records if r is not None]


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    try:
        return study.best_trial
    except ValueError:  # no complete trial yet
        return None


def importances(study: optuna.Study) -> dict[str, float]:
    """Optuna's own evaluator (PED-ANOVA); empty while too few trials have completed to say."""
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    if len(complete) < 3:
        return {}
    try:
        with warnings.catch_warnings():  # "quantiles select the same set of trials": equal importances, fine
            warnings.simplefilter("ignore", UserWarning)
            found = optuna.importance.get_param_importances(study)
    except (ValueError, RuntimeError, ZeroDivisionError):
        return {}
    return {name: float(value) for name, value in found.items()}


def study_record(study: optuna.Study, tune: TuneConfig, study_dir: str, storage: str, status: str,
                 with_importances: dict[str, float] | None = None) -> StudyRecord:
    best = best_trial(study)
    return StudyRecord(
        name=study.study_name,
        study_dir=study_dir,
        storage=mask_storage(storage),
        metric=METRIC,
        direction=DIRECTION,
        status=status,
        fingerprint=fingerprint(tune),
        tune=masked_tune(tune),
        trials=trial_records(study),
        best_number=best.number if best else None,
        best_value=best.value if best else None,
        best_params=dict(best.params) if best else {},
        importances=with_importances or {},
    )


def masked_tune(tune: TuneConfig) -> dict:
    """The tune config as JSON data, its storage URL's password masked (for files and the database)."""
    data = tune.to_dict()
    data["tune"]["storage"] = mask_storage(tune.storage)
    return data


def best_config_json(study: optuna.Study, tune: TuneConfig) -> str:
    """The best trial's run config (the base with its parameters), named after the study; "" when none."""
    best = best_trial(study)
    if best is None:
        return ""
    config = trial_config(tune.base, best.params).replace(name=f"{study.study_name} best (trial {best.number})")
    return config.to_json() + "\n"
