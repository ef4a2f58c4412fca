"""Run a tuning study: trials drawn by Optuna, each an ordinary run (or k, one per fold) through `train.run`.

`run_study` is what the GUI's child process and `workbench tune` call. It never raises for a
bad trial: a trial that fails is recorded as failed and the study goes on. A storage that
cannot be opened, or a study created for another config, ends it before any training as a
RunFailed(kind="invalid").

The budget (`trials`) counts the study's complete, pruned, running and queued trials over every
process that joins it, so two processes on one storage run `trials` trials between them: each
checks before starting a trial, and a trial asked for after another process spent the last one
is marked failed at once (user attribute "over_budget") and left out of every listing. Failed
trials do not count: a trial whose process was killed is failed by the heartbeat and queued
again with the same parameters, and a trial ended by Stop is recorded as failed (error
"stopped") and queued again, so a resumed study runs it first.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from workbench.core.base.events import EpochEnd, Message, RunFailed, RunFinished, RunStarted
from workbench.core.config.tune import (
    DIRECTION,
    INTEGER_PARAMS,
    METRIC,
    TuneConfig,
    fold_config,
    trial_config,
    validate_tune,
)
from workbench.core.runs.studies import (
    BEST_CONFIG_FILE,
    NO_TRIAL_CAN_TRAIN,
    StudyFinished,
    StudyProgress,
    StudyStarted,
    TrialEnded,
    TrialRunEvent,
    TrialStarted,
    default_storage,
    mask_storage,
    study_dir_for,
    write_study,
)
from workbench.core.tune import records
from workbench.core.tune.pruning import PruningCallback
from workbench.core.tune.storage import StudyUnavailable, open_storage, open_study

Emit = Callable[[Any], None]


TrainFunction = Callable[..., RunFinished | RunFailed]


MEDIAN_STARTUP_TRIALS = 3  # the median pruner prunes nothing until this many trials have completed
MEDIAN_WARMUP_STEPS = 1  # ... nor in a trial's first epoch


class TrialFailed(Exception):
    """A trial's run failed, diverged or was stopped; Optuna records the trial as failed."""


class OverBudget(Exception):
    """Another process spent the study's last trial while this one was asking for a trial."""


def run_study(
    tune: TuneConfig,
    emit: Emit,
    stop_event: threading.Event | None = None,
    runs_dir: str | Path | None = None,
    *,
    pause_event: threading.Event | None = None,
    train: TrainFunction | None = None,
) -> StudyFinished | RunFailed:
    """Run trials until the budget (trials, time) is spent, the grid is done, or Stop; report every step."""
    from workbench.core.runs.store import RunStore

    stop_event = stop_event or threading.Event()
    if train is None:
        from workbench.core.train.run import run as train

    def refuse(error: str, details: str = "") -> RunFailed:
        failed = RunFailed(error=error, details=details, kind="invalid")
        emit(failed)
        return failed

    problems = validate_tune(tune)
    if problems:
        return refuse("The study cannot start", "\n".join(str(p) for p in problems))
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # the study's own events say it all
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    root = RunStore(runs_dir).root
    name = tune.study_name or time.strftime("%Y%m%d-%H%M%S")
    study_dir = study_dir_for(root, name)
    try:
        if not tune.storage.strip():
            study_dir.mkdir(parents=True, exist_ok=True)  # the SQLite file lives in it
        url = tune.storage.strip() or default_storage(study_dir)
        storage = open_storage(url, tune.heartbeat_s)
        study, existed = open_study(tune, name, storage, make_sampler(tune), make_pruner(tune))
        study_dir.mkdir(parents=True, exist_ok=True)
    except StudyUnavailable as exc:
        return refuse(str(exc))
    except OSError as exc:
        return refuse(f"Cannot create the study folder {study_dir}: {exc}")

    runner = _StudyRunner(tune, study, str(study_dir), url, emit, stop_event, pause_event, train, root)
    try:
        return runner.run(existed)
    except Exception as exc:  # noqa: BLE001 - the database went away mid-study, a disk filled up
        first = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        failed = RunFailed(error=f"The study ended with an error: {first}", details=f"{type(exc).__name__}: {exc}")
        emit(failed)
        return failed


def make_sampler(tune: TuneConfig) -> optuna.samplers.BaseSampler:
    if tune.sampler == "grid":
        space = {n: r.grid_values(n in INTEGER_PARAMS) for n, r in tune.search.items()}
        return optuna.samplers.GridSampler(space, seed=tune.seed)
    # A shared storage: each process draws its own trials (the same seed would draw the same ones).
    seed = tune.seed if not tune.storage.strip() else (tune.seed * 1_000_003 + _process_token()) % 2**31
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


def _process_token() -> int:
    return hash((socket.gethostname(), os.getpid())) & 0x7FFFFFFF


def make_pruner(tune: TuneConfig) -> optuna.pruners.BasePruner:
    if tune.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=MEDIAN_STARTUP_TRIALS, n_warmup_steps=MEDIAN_WARMUP_STEPS)
    return optuna.pruners.NopPruner()


def suggest(trial: optuna.Trial, tune: TuneConfig) -> dict[str, Any]:
    """The trial's parameters, drawn from each range by the study's sampler."""
    params = {}
    for name, r in tune.search.items():
        if r.choices is not None:
            params[name] = trial.suggest_categorical(name, list(dict.fromkeys(r.choices)))
        elif name in INTEGER_PARAMS:
            params[name] = trial.suggest_int(name, int(r.low), int(r.high), step=int(r.step or 1), log=r.log)
        else:
            params[name] = trial.suggest_float(name, float(r.low), float(r.high), step=r.step, log=r.log)
    return params


class _StudyRunner:
    """One process's part of a study: its trials, the study folder after each, its events."""

    def __init__(self, tune, study, study_dir, url, emit, stop_event, pause_event, train, root):
        self.tune, self.study, self.study_dir, self.url = tune, study, study_dir, url
        self.emit, self.stop_event, self.pause_event, self.train, self.root = emit, stop_event, pause_event, train, root
        self.reason = ""
        self.importances: dict[str, float] = {}

    def run(self, existed: bool) -> StudyFinished:
        tune, study = self.tune, self.study
        optuna.storages.fail_stale_trials(study)  # a killed process's trials: failed and queued again
        before = [t for t in study.get_trials(deepcopy=False)  # queued ones are yet to run
                  if t.state != TrialState.WAITING and not t.user_attrs.get(records.OVER_BUDGET_ATTR)]
        self.save("running")
        self.emit(StudyStarted(self.study_dir, study.study_name, mask_storage(self.url), METRIC, DIRECTION,
                               tune.trials, list(tune.search), resumed_trials=len(before)))
        if existed and before:
            self.emit(Message("info", f"Joining study {study.study_name}: {len(before)} trial(s) so far"))
        if self.budget_left():
            study.optimize(self.objective, timeout=tune.timeout_s or None, callbacks=[self.after_trial],
                           catch=(TrialFailed, OverBudget), gc_after_trial=False)
            if not self.reason:  # optimize returned: the grid's sampler stopped it, or the time is up
                self.reason = "grid done" if self.grid_done() else "time" if tune.timeout_s else "trials"
        stopped = self.stop_event.is_set()
        if stopped:
            self.reason = "stopped"
        return self.finish(stopped)

    def used(self) -> int:
        return sum(1 for t in self.study.get_trials(deepcopy=False) if records.counts_toward_budget(t)
                   and t.state != TrialState.WAITING)

    def budget_left(self) -> bool:
        if self.stop_event.is_set():
            return False
        if self.used() >= self.tune.trials:
            self.reason = self.reason or ("grid done" if self.grid_done() else "trials")
            return False
        return True

    def grid_done(self) -> bool:
        sampler = self.study.sampler
        return isinstance(sampler, optuna.samplers.GridSampler) and sampler.is_exhausted(self.study)

    def objective(self, trial: optuna.Trial) -> float:
        earlier = [t for t in self.study.get_trials(deepcopy=False)
                   if t.number < trial.number and records.counts_toward_budget(t)]
        if len(earlier) >= self.tune.trials or self.stop_event.is_set():
            trial.set_user_attr(records.OVER_BUDGET_ATTR, True)
            raise OverBudget()
        params = suggest(trial, self.tune)
        folds = self.tune.folds if self.tune.folds >= 2 else 1
        self.emit(TrialStarted(trial.number, params, folds))
        run_dirs: list[str] = []
        values: list[float] = []
        epochs = self.tune.base.training.epochs
        for fold in range(folds):
            value = self.run_fold(trial, params, fold, folds, epochs, run_dirs)
            values.append(value)
            trial.set_user_attr("fold_values", values)
        mean = sum(values) / len(values)
        if len(values) > 1:
            trial.set_user_attr("value_std", (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5)
        return mean

    def run_fold(self, trial: optuna.Trial, params: dict, fold: int, folds: int, epochs: int,
                 run_dirs: list[str]) -> float:
        """The fold's best validation accuracy; TrialFailed or TrialPruned when there is none to give."""
        best: list[float] = []

        def forward(event: Any) -> None:
            if isinstance(event, RunStarted):
                run_dirs.append(event.run_dir)
                trial.set_user_attr("run_dirs", list(run_dirs))  # known even if this process is killed
            elif isinstance(event, EpochEnd) and METRIC in event.logs:
                best.append(float(event.logs[METRIC]))
            self.emit(TrialRunEvent(trial.number, fold, event))

        def pruned(epoch: int) -> None:
            forward(Message("info", f"Trial {trial.number} pruned after epoch {epoch + 1}: its validation "
                                    "accuracy is below the median of earlier trials at that epoch"))

        name = f"study {self.study.study_name} trial {trial.number}" + (f" fold {fold + 1}" if folds > 1 else "")
        config = fold_config(trial_config(self.tune.base, params), folds, fold).replace(name=name)
        pruning = PruningCallback(trial, offset=fold * epochs, on_prune=pruned)
        outcome = self.train(config, forward, self.stop_event, pause_event=self.pause_event, runs_dir=self.root,
                             callbacks=[pruning] if self.tune.pruner != "none" else [])
        if outcome.run_dir and outcome.run_dir not in run_dirs:
            run_dirs.append(outcome.run_dir)
            trial.set_user_attr("run_dirs", list(run_dirs))
        if isinstance(outcome, RunFailed):
            if outcome.kind == "invalid":
                self.reason = NO_TRIAL_CAN_TRAIN
                self.study.stop()
            self.fail(trial, outcome.error)
        if pruning.pruned_at is not None:  # before Stop: a trial the pruner rejected is not run again
            raise optuna.TrialPruned()
        if outcome.stopped:
            self.study.enqueue_trial(params, skip_if_exists=False)  # a resumed study runs it first
            self.fail(trial, "stopped")
        if not best:
            self.fail(trial, "the run reported no validation accuracy")
        return max(best)

    @staticmethod
    def fail(trial: optuna.Trial, error: str) -> None:
        trial.set_user_attr("error", error)
        raise TrialFailed(error)

    def after_trial(self, study: optuna.Study, frozen: optuna.trial.FrozenTrial) -> None:
        """Optuna calls it after each of this process's trials: record, report, and check the budget."""
        if self.stop_event.is_set():
            study.stop()
        if frozen.user_attrs.get(records.OVER_BUDGET_ATTR):
            study.stop()
            return
        ended = records.trial_record(frozen)
        self.emit(TrialEnded(ended.number, ended.state, ended.value, ended.params, ended.run_dirs,
                             ended.seconds, ended.error))
        self.importances = records.importances(study)
        best = records.best_trial(study)
        self.emit(StudyProgress(best.number if best else None, best.value if best else None,
                                dict(best.params) if best else {}, self.importances))
        self.save("running")
        if not self.budget_left():
            study.stop()

    def save(self, status: str) -> str:
        """Write the study folder; a failed write is a warning, never the end of the study. The best config's path."""
        record = records.study_record(self.study, self.tune, self.study_dir, self.url, status, self.importances)
        best_json = records.best_config_json(self.study, self.tune)
        try:
            write_study(record, best_json)
        except OSError as exc:
            self.emit(Message("warning", f"The study folder {self.study_dir} could not be written: {exc}"))
        return str(Path(self.study_dir) / BEST_CONFIG_FILE) if best_json else ""

    def finish(self, stopped: bool) -> StudyFinished:
        best_path = self.save("stopped" if stopped else "finished")
        best = records.best_trial(self.study)
        counts = records.study_record(self.study, self.tune, self.study_dir, self.url, "").counts()
        finished = StudyFinished(self.study_dir, stopped, best.number if best else None,
                                 best.value if best else None, dict(best.params) if best else {},
                                 best_path, counts, self.reason)
        self.emit(finished)
        return finished
