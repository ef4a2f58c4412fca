"""Tuning studies in this process, on real (tiny) runs and a real SQLite storage: trials as ordinary run
folders, the study folder, resuming and joining, the dropout preset as a grid with k folds, Stop,
a study created for another config, an unreachable database, and the pruning callback."""

import json
import threading
from pathlib import Path

import keras
import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from test_dropout_lab import small_image_tree, vgg_config
from test_sweep import drop_models

from workbench.core.base.events import BatchEnd, Message, RunFailed, RunStarted
from workbench.core.config.run import RunConfig, load_config
from workbench.core.config.tune import SearchRange, TuneConfig, dropout_preset, trial_config
from workbench.core.runs.listing import list_runs
from workbench.core.runs.studies import (
    StudyFinished,
    StudyProgress,
    StudyStarted,
    TrialEnded,
    TrialRunEvent,
    TrialStarted,
    default_storage,
    read_study,
)
from workbench.core.tune.pruning import PruningCallback
from workbench.core.tune.records import masked_tune
from workbench.core.tune.storage import open_storage, open_study
from workbench.core.tune.study import make_pruner, make_sampler, run_study

SEARCH = {"learning_rate": SearchRange(1e-4, 1e-2, log=True), "dropout_rate": SearchRange(0.0, 0.5)}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("tune")
    data = small_image_tree(root / "data", per_class=8)
    yield root, data
    drop_models(root)


@pytest.fixture(scope="module")
def studied(lab):
    """A TPE study of 3 trials (VGG16 at 32 px, frozen: about a second a trial), then resumed to 4."""
    root, data = lab
    tune = TuneConfig(vgg_config(data, **{"training.epochs": 2}), dict(SEARCH), trials=3, study_name="lab",
                      pruner="none")  # pruning has its own test
    events = []
    first = run_study(tune, events.append, runs_dir=root / "runs")
    more = []
    tune.trials = 4
    second = run_study(tune, more.append, runs_dir=root / "runs")
    return tune, first, events, second, more, root / "runs"


def of(events, kind):
    return [e for e in events if isinstance(e, kind)]


def test_each_trial_is_an_ordinary_run_and_the_study_folder_records_them(studied):
    tune, first, events, second, more, runs = studied
    assert isinstance(first, StudyFinished) and not first.stopped and first.reason == "trials"
    assert first.counts["complete"] == 3 and sum(first.counts.values()) == 3
    started, = of(events, StudyStarted)
    assert (started.study_name, started.metric, started.direction, started.resumed_trials) == (
        "lab", "val_accuracy", "maximize", 0)
    ended = of(events, TrialEnded)
    assert [e.number for e in ended] == [0, 1, 2] and all(e.state == "complete" for e in ended)
    assert [e.number for e in of(events, TrialStarted)] == [0, 1, 2]
    assert len(of(events, StudyProgress)) == 3 and of(events, StudyProgress)[-1].best_value == first.best_value
    # every run event arrives wrapped with its trial and fold
    wrapped = of(events, TrialRunEvent)
    assert {(w.number, w.fold) for w in wrapped if isinstance(w.event, RunStarted)} == {(0, 0), (1, 0), (2, 0)}
    assert any(isinstance(w.event, BatchEnd) for w in wrapped)

    listed = {str(r.path): r for r in list_runs(runs)}  # the Runs list: trials only, not the study folder
    for e in ended:
        (run_dir,) = e.run_dirs
        assert run_dir in listed and listed[run_dir].summary["status"] == "finished"
        config = load_config(Path(run_dir) / "config.json")
        assert config == trial_config(tune.base, e.params).replace(name=f"study lab trial {e.number}")
        best = max(row["val_accuracy"] for row in _metrics(run_dir))
        assert e.value == pytest.approx(best)
    assert first.best_value == max(e.value for e in ended)

    folder = Path(first.study_dir)
    assert folder == runs / "study-lab" and (folder / "study.db").is_file()
    best_config = RunConfig.from_json(Path(first.best_config_path).read_text())
    assert best_config == trial_config(tune.base, first.best_params).replace(name=best_config.name)


def _metrics(run_dir):
    from workbench.core.runs.store import read_metrics

    return read_metrics(run_dir)


def test_running_it_again_with_a_larger_budget_resumes_the_same_study(studied):
    tune, first, _, second, more, runs = studied
    assert of(more, StudyStarted)[0].resumed_trials == 3
    assert [e.number for e in of(more, TrialEnded)] == [3]
    assert second.counts["complete"] == 4
    record = read_study(second.study_dir)
    assert record.status == "finished" and [t.number for t in record.trials] == [0, 1, 2, 3]
    assert all(t.state == "complete" and len(t.run_dirs) == 1 for t in record.trials)
    assert record.tune == tune.to_dict() and record.best_value == max(t.value for t in record.trials)
    assert len(list_runs(runs)) == 4
    again = []  # the budget is spent: nothing to train
    assert run_study(tune, again.append, runs_dir=runs).counts["complete"] == 4 and not of(again, TrialStarted)


def test_a_study_created_for_another_config_is_refused_and_left_alone(studied):
    tune, first, _, _, _, runs = studied
    before = (Path(first.study_dir) / "study.json").read_text()
    other = TuneConfig(tune.base.replace(**{"training.epochs": 3}), dict(SEARCH), trials=5, study_name="lab")
    events = []
    outcome = run_study(other, events.append, runs_dir=runs)
    assert isinstance(outcome, RunFailed) and outcome.kind == "invalid"
    assert "created for another config" in outcome.error and "another study name" in outcome.error
    assert (Path(first.study_dir) / "study.json").read_text() == before
    assert len(list_runs(runs)) == 4


def test_an_unreachable_database_or_a_bad_range_is_refused_before_anything_is_written(lab, tmp_path):
    _, data = lab
    base = vgg_config(data)
    for storage in ("sqlite:////no/such/folder/study.db", "postgresql://ann:s3cret@127.0.0.1:1/studies",
                    "nosuchdb://x/y"):
        outcome = run_study(TuneConfig(base, dict(SEARCH), storage=storage), lambda e: None, runs_dir=tmp_path)
        assert isinstance(outcome, RunFailed) and outcome.kind == "invalid", storage
        assert "Cannot open the study's database" in outcome.error and "s3cret" not in outcome.error
    secret = masked_tune(TuneConfig(base, dict(SEARCH), storage="postgresql://ann:s3cret@db/studies"))
    assert secret["tune"]["storage"] == "postgresql://ann:***@db/studies"  # what study.json and the database keep
    empty = TuneConfig(base, {"dropout_rate": SearchRange(0.6, 0.2)})
    outcome = run_study(empty, lambda e: None, runs_dir=tmp_path)
    assert outcome.kind == "invalid" and "the range is empty" in outcome.details
    assert list(tmp_path.iterdir()) == []


def test_the_dropout_preset_runs_as_a_grid_with_k_folds(lab):
    root, data = lab
    preset = dropout_preset(vgg_config(data), [0.0, 0.5], [], folds=2)
    preset.study_name = "preset"
    events = []
    finished = run_study(preset, events.append, runs_dir=root / "preset-runs")
    assert finished.reason == "grid done" and finished.counts["complete"] == 2
    record = read_study(finished.study_dir)
    assert sorted(t.params["dropout_rate"] for t in record.trials) == [0.0, 0.5]
    for t in record.trials:
        assert len(t.run_dirs) == 2 and len(t.fold_values) == 2
        assert t.value == pytest.approx(sum(t.fold_values) / 2) and t.value_std is not None
        folds = [load_config(Path(d) / "config.json").data for d in t.run_dirs]
        assert [(f.folds, f.fold) for f in folds] == [(2, 0), (2, 1)]
    assert {(w.number, w.fold) for w in of(events, TrialRunEvent) if isinstance(w.event, RunStarted)} == {
        (0, 0), (0, 1), (1, 0), (1, 1)}


def test_stop_ends_the_running_trial_within_a_batch_and_the_study_resumes_it(lab):
    root, data = lab
    runs = root / "stop-runs"
    tune = TuneConfig(vgg_config(data, **{"training.epochs": 3}), dict(SEARCH), trials=2, study_name="stop")
    stop = threading.Event()
    events = []

    def emit(event):
        events.append(event)
        if isinstance(event, TrialRunEvent) and isinstance(event.event, BatchEnd) and event.number == 1:
            stop.set()  # Stop pressed during the second trial's first batch

    finished = run_study(tune, emit, stop, runs_dir=runs)
    assert finished.stopped and finished.reason == "stopped"
    last = of(events, TrialEnded)[-1]
    assert (last.number, last.state, last.error) == (1, "failed", "stopped")
    batches = [w.event for w in of(events, TrialRunEvent) if w.number == 1 and isinstance(w.event, BatchEnd)]
    assert len(batches) == 1  # within a batch
    record = read_study(finished.study_dir)
    assert record.status == "stopped" and finished.counts == {"complete": 1, "pruned": 0, "failed": 1,
                                                               "running": 0, "waiting": 1}
    stopped_run = json.loads((Path(last.run_dirs[0]) / "summary.json").read_text())
    assert stopped_run["status"] == "stopped"

    resumed = []
    done = run_study(tune, resumed.append, runs_dir=runs)
    (again,) = of(resumed, TrialEnded)
    assert again.state == "complete" and again.params == last.params  # the stopped trial, run first
    assert done.counts["complete"] == 2 and not done.stopped


def test_a_trial_below_the_median_is_pruned_and_its_run_ends_early(lab):
    """Three earlier trials at 100 % validation accuracy in every epoch; a learning rate of 1e-6 stays near
    chance, so the median pruner stops it after its second epoch (the first is a warm-up)."""
    root, data = lab
    runs = root / "prune-runs"
    tune = TuneConfig(vgg_config(data, **{"training.epochs": 4}), {"learning_rate": SearchRange(choices=[1e-6])},
                      trials=4, study_name="prune")
    study_dir = runs / "study-prune"
    study_dir.mkdir(parents=True)
    study, _ = open_study(tune, "prune", open_storage(default_storage(study_dir), 10), make_sampler(tune),
                          make_pruner(tune))
    for _ in range(3):
        study.add_trial(optuna.trial.create_trial(
            params={"learning_rate": 1e-6}, distributions={"learning_rate": CategoricalDistribution([1e-6])},
            value=1.0, intermediate_values={step: 1.0 for step in range(4)}))
    events = []
    finished = run_study(tune, events.append, runs_dir=runs)
    (ended,) = of(events, TrialEnded)
    assert (ended.number, ended.state, ended.value) == (3, "pruned", None)
    assert finished.counts["pruned"] == 1 and finished.reason == "trials"
    (run_dir,) = ended.run_dirs
    assert len(_metrics(run_dir)) == 2  # stopped after its second epoch of four
    said = [w.event.text for w in of(events, TrialRunEvent) if isinstance(w.event, Message)]
    assert any("pruned after epoch 2" in text for text in said)
    assert read_study(study_dir).trials[-1].state == "pruned"


def test_the_pruning_callback_reports_each_epoch_and_stops_a_trial_below_the_median():
    study = optuna.create_study(direction="maximize",
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0))
    good = study.ask()
    for step, value in enumerate((0.8, 0.9)):
        good.report(value, step)
    study.tell(good, 0.9)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.stop_training = False  # as fit() sets it
    pruned = []
    trial = study.ask()
    callback = PruningCallback(trial, offset=0, on_prune=pruned.append)
    callback.set_model(model)
    callback.on_epoch_end(0, {"val_accuracy": 0.85})  # above the median: goes on
    assert callback.pruned_at is None and not model.stop_training
    callback.on_epoch_end(1, {"val_accuracy": 0.2, "val_loss": 3.0})
    assert callback.pruned_at == 1 and model.stop_training and pruned == [1]
    assert study.trials[1].intermediate_values == {0: 0.85, 1: 0.2}
    later = PruningCallback(study.ask(), offset=4)  # a second fold reports after the first fold's epochs
    later.set_model(model)
    later.on_epoch_end(0, {"val_accuracy": 0.5})
    assert study.trials[2].intermediate_values == {4: 0.5}
