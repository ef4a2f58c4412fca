"""training.run end to end on a tiny dataset with a real (tiny) Keras model."""

import math
import threading
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from core_helpers import tiny_config

from workbench.core.base.events import (
    BatchEnd,
    EpochEnd,
    Message,
    RunFailed,
    RunFinished,
    RunStarted,
)
from workbench.core.config.run import RunConfig
from workbench.core.engine import saving
from workbench.core.runs.store import load_run
from workbench.core.train import run as training


class Recorder:
    def __init__(self):
        self.events = []

    def __call__(self, event):
        self.events.append(event)

    def of(self, kind):
        return [e for e in self.events if isinstance(e, kind)]


def test_a_short_run_lowers_the_loss_and_writes_a_complete_run_folder(image_tree, tmp_path):
    config = tiny_config(image_tree, **{"training.epochs": 4})
    rec = Recorder()
    result = training.run(config, rec, threading.Event(), runs_dir=tmp_path)

    assert isinstance(result, RunFinished), result
    assert not result.stopped and result.epochs_done == 4
    assert isinstance(rec.events[0], Message) and isinstance(rec.events[-1], RunFinished)
    started = rec.of(RunStarted)[0]
    assert started.class_names == ("blue", "green", "red")
    assert started.params_trainable > 0 and started.layers_trainable == started.layers_total
    epochs = rec.of(EpochEnd)
    assert [e.epoch for e in epochs] == [0, 1, 2, 3]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"} <= set(epochs[0].logs)
    assert min(e.logs["loss"] for e in epochs[2:]) < epochs[0].logs["loss"]
    assert len(rec.of(BatchEnd)) == 4 * started.steps_per_epoch

    record = load_run(result.run_dir)
    assert record.config == config
    assert [m["epoch"] for m in record.metrics] == [1, 2, 3, 4]
    assert record.summary["status"] == "finished"
    assert record.has_model
    events = (record.path / "events.jsonl").read_text().splitlines()
    assert '"RunStarted"' in events[1] or any('"RunStarted"' in e for e in events)
    assert '"RunFinished"' in events[-1]

    model = keras.saving.load_model(record.path / "model.keras", safe_mode=True)
    assert model.output_shape == (None, 3)
    probs = model.predict(np.zeros((2, 32, 32, 3), "float32"), verbose=0)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)


def test_stop_takes_effect_within_one_batch(image_tree, tmp_path):
    stop = threading.Event()
    rec = Recorder()

    def emit(event):
        rec(event)
        if isinstance(event, BatchEnd) and event.batch == 1:
            stop.set()

    config = tiny_config(image_tree, **{"training.epochs": 5, "training.batch_size": 4, "freeze.policy": "all"})
    result = training.run(config, emit, stop, runs_dir=tmp_path)
    assert isinstance(result, RunFinished) and result.stopped
    assert result.reason == "stopped"
    batches = rec.of(BatchEnd)
    assert [(b.epoch, b.batch) for b in batches] == [(0, 0), (0, 1)]
    assert rec.of(EpochEnd) == []  # half an epoch is not reported as an epoch
    assert load_run(result.run_dir).has_model  # a stopped run still leaves a loadable model


def test_pause_holds_training_until_resumed(image_tree, tmp_path):
    pause = threading.Event()
    times = []

    def emit(event):
        if isinstance(event, BatchEnd):
            times.append(time.perf_counter())
            if event.epoch == 0 and event.batch == 0:
                pause.set()
                threading.Timer(0.6, pause.clear).start()

    config = tiny_config(image_tree, **{"training.epochs": 1, "freeze.policy": "all"})
    result = training.run(config, emit, threading.Event(), pause_event=pause, runs_dir=tmp_path)
    assert isinstance(result, RunFinished) and not result.stopped
    assert times[1] - times[0] >= 0.5


def test_divergence_guard_stops_a_run_with_a_huge_learning_rate(image_tree, tmp_path):
    config = tiny_config(image_tree, **{
        "training.epochs": 5, "training.learning_rate": 10.0, "training.optimizer": "sgd",
        "training.momentum": 0.99,
    })
    rec = Recorder()
    result = training.run(config, rec, threading.Event(), runs_dir=tmp_path)
    assert isinstance(result, RunFailed), result
    assert result.kind == "diverged"
    assert "diverged" in result.error and "learning rate" in result.details
    assert len(rec.of(EpochEnd)) < 5
    assert load_run(result.run_dir).summary["status"] == "diverged"


def test_a_run_that_diverges_after_a_good_epoch_keeps_that_epochs_model(image_tree, tmp_path, monkeypatch):
    """The divergence message and the run folder agree: the last good epoch's model is kept."""

    class DivergesInEpochTwo(training.DivergenceGuard):
        def on_train_batch_end(self, batch, logs=None):
            super().on_train_batch_end(batch, logs)
            if self.epoch == 1 and not self.reason:
                self.reason = "Training diverged: injected by the test"
                self.model.stop_training = True

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

    monkeypatch.setattr(training, "DivergenceGuard", DivergesInEpochTwo)
    rec = Recorder()
    result = training.run(tiny_config(image_tree, **{"training.epochs": 3}), rec, runs_dir=tmp_path)
    assert isinstance(result, RunFailed) and result.kind == "diverged", result
    assert "last good epoch is kept" in result.details
    record = load_run(result.run_dir)
    assert record.summary["status"] == "diverged" and record.summary["model"] == "model.keras"
    assert (Path(result.run_dir) / "model.keras").is_file()
    # The reason is reported once (by the failure), not also as a separate log line.
    assert not [e for e in rec.of(Message) if "injected" in e.text]


def test_stop_during_validation_does_not_record_a_partial_validation(image_tree, tmp_path, monkeypatch):
    """The epoch's training counts; its cut-short validation is neither recorded nor used by keep-best."""

    class StopsInSecondValidation(training.ProgressCallback):
        def on_test_batch_begin(self, batch, logs=None):
            if self._epoch == 1:
                self.stop_event.set()

    monkeypatch.setattr(training, "ProgressCallback", StopsInSecondValidation)
    stop = threading.Event()
    rec = Recorder()
    config = tiny_config(image_tree, **{"training.epochs": 4, "training.keep_best": True,
                                        "training.monitor": "val_loss"})
    result = training.run(config, rec, stop, runs_dir=tmp_path)
    assert isinstance(result, RunFinished) and result.stopped and result.epochs_done == 2, result
    rows = load_run(result.run_dir).metrics
    assert len(rows) == 2 and "val_loss" in rows[0] and "val_loss" not in rows[1], rows
    assert "loss" in rows[1]
    ends = rec.of(EpochEnd)
    assert len(ends) == 2 and "val_loss" not in ends[1].logs
    summary = load_run(result.run_dir).summary
    assert summary["best"]["epoch"] == 1.0 and summary["status"] == "stopped"


def test_invalid_config_is_refused_before_training(tmp_path):
    config = RunConfig()
    config.data.folder = str(tmp_path / "missing")
    rec = Recorder()
    result = training.run(config, rec, runs_dir=tmp_path / "runs")
    assert isinstance(result, RunFailed) and result.kind == "invalid"
    assert "folder not found" in result.details
    assert rec.events == [result]
    assert not (tmp_path / "runs").exists()


def test_a_dataset_with_one_class_is_refused_with_a_clear_message(image_tree, tmp_path):
    single = tmp_path / "single"
    (single / "only").mkdir(parents=True)
    for f in (image_tree / "red").iterdir():
        (single / "only" / f.name).write_bytes(f.read_bytes())
    result = training.run(tiny_config(single), Recorder(), runs_dir=tmp_path / "runs")
    assert isinstance(result, RunFailed) and result.kind == "invalid"
    assert "two classes" in result.details
    assert load_run(result.run_dir).config is not None  # the folder keeps the config


def test_a_missing_weights_file_is_refused_before_training_and_when_it_vanishes_after_the_check(image_tree, tmp_path):
    missing = tmp_path / "nowhere.weights.h5"
    config = tiny_config(image_tree, **{"backbone.weights": "file", "backbone.weights_file": str(missing)})
    rec = Recorder()
    result = training.run(config, rec, runs_dir=tmp_path / "runs")
    assert isinstance(result, RunFailed) and result.kind == "invalid"
    assert f"weights file not found: {missing}" in result.details and "Traceback" not in result.error
    assert rec.events == [result] and not (tmp_path / "runs").exists()

    # A file that is there when the run is checked and gone when the backbone is built.
    kept = tmp_path / "kept.weights.h5"
    kept.write_bytes(b"whatever: it is gone before it is read")

    def delete_it(event):
        if isinstance(event, RunStarted) or (isinstance(event, Message) and event.text.startswith("Scanning")):
            kept.unlink(missing_ok=True)

    config = config.replace(**{"backbone.weights_file": str(kept)})
    result = training.run(config, delete_it, runs_dir=tmp_path / "runs")
    assert not kept.exists()
    assert isinstance(result, RunFailed) and result.kind == "invalid", result
    assert result.error == f"weights file not found: {kept}"
    assert load_run(result.run_dir).summary["status"] == "failed"


def test_a_garbage_weights_file_becomes_a_failed_run_not_an_exception(image_tree, tmp_path):
    bad = tmp_path / "garbage.weights.h5"
    bad.write_bytes(b"not weights at all")
    config = tiny_config(image_tree, **{"backbone.weights": "file", "backbone.weights_file": str(bad)})
    result = training.run(config, Recorder(), runs_dir=tmp_path / "runs")
    assert isinstance(result, RunFailed) and result.kind == "invalid", result
    assert "garbage.weights.h5" in result.error and "not a readable HDF5 weights file" in result.error
    assert "Traceback" not in result.error
    record = load_run(result.run_dir)
    assert record.config == config and record.summary["status"] == "failed" and not record.has_model


def test_the_same_seed_repeats_a_run(image_tree, tmp_path):
    config = tiny_config(image_tree, **{"training.epochs": 1, "freeze.policy": "top_blocks",
                                        "freeze.blocks": 1})
    losses = []
    for _ in range(2):
        rec = Recorder()
        training.run(config, rec, runs_dir=tmp_path)
        losses.append(rec.of(EpochEnd)[0].logs["loss"])
    assert math.isclose(losses[0], losses[1], rel_tol=1e-5)


@pytest.mark.parametrize(("optimizer", "kind"), [("sgd", keras.optimizers.SGD), ("rmsprop", keras.optimizers.RMSprop)])
def test_other_optimizers_and_label_smoothing_are_the_ones_training_used(image_tree, tmp_path, optimizer, kind):
    config = tiny_config(image_tree, **{"training.epochs": 1, "training.optimizer": optimizer,
                                        "training.learning_rate": 0.004, "training.momentum": 0.8,
                                        "freeze.policy": "all", "training.label_smoothing": 0.1})
    rec = Recorder()
    result = training.run(config, rec, runs_dir=tmp_path)
    assert isinstance(result, RunFinished) and not result.stopped
    steps = rec.of(RunStarted)[0].steps_per_epoch
    for name in ("model.keras", "checkpoint.keras"):  # the compiled state the run trained and saved with
        model = saving.load_model(Path(result.run_dir) / name)
        opt = model.optimizer
        assert type(opt) is kind, (name, type(opt))
        assert float(opt.learning_rate) == pytest.approx(0.004, rel=1e-6) and int(opt.iterations) >= steps  # it trained
        if optimizer == "sgd":
            assert opt.momentum == pytest.approx(0.8)
        assert isinstance(model.loss, keras.losses.CategoricalCrossentropy)
        assert model.loss.get_config()["label_smoothing"] == pytest.approx(0.1)
        # the loss function itself smooths: target (1 - 0.1) + 0.1 / 3 on the class, 0.1 / 3 elsewhere
        y_true = np.array([[0.0, 1.0, 0.0]], "float32")
        y_pred = np.array([[0.2, 0.7, 0.1]], "float32")
        smoothed = y_true * 0.9 + 0.1 / 3
        expected = -float(np.sum(smoothed * np.log(y_pred)))
        assert float(model.loss(y_true, y_pred)) == pytest.approx(expected, rel=1e-5)
        assert expected != pytest.approx(-np.log(0.7), rel=1e-3)


def test_tensorboard_toggle_writes_event_files_into_the_run_folder(image_tree, tmp_path):
    config = tiny_config(image_tree, **{"training.epochs": 1, "freeze.policy": "all",
                                        "training.tensorboard": True})
    rec = Recorder()
    result = training.run(config, rec, runs_dir=tmp_path)
    assert isinstance(result, RunFinished)
    logs = list((load_run(result.run_dir).path / "tensorboard").rglob("events.out.tfevents.*"))
    assert logs, "no TensorBoard event file written"
    assert any("tensorboard --logdir" in m.text for m in rec.of(Message))


@pytest.mark.slow  # up to 25 epochs of a tiny run (stopped early: about 8)
def test_early_stopping_ends_the_run_before_its_last_epoch_and_keeps_the_best_epochs_model(image_tree, tmp_path):
    epochs, patience = 25, 2
    config = tiny_config(image_tree, **{"training.epochs": epochs, "training.early_stopping": True,
                                        "training.patience": patience, "training.monitor": "val_loss",
                                        "training.keep_best": True, "training.learning_rate": 0.01})
    rec = Recorder()
    result = training.run(config, rec, runs_dir=tmp_path)
    assert isinstance(result, RunFinished) and not result.stopped, result
    done = result.epochs_done
    assert result.reason == "early stopping" and done < epochs
    record = load_run(result.run_dir)
    losses = [m["val_loss"] for m in record.metrics]
    assert len(losses) == done == len(rec.of(EpochEnd))
    best = int(np.argmin(losses)) + 1  # Keras counts strict improvements only: the first lowest
    assert done == best + patience  # it waited `patience` epochs without improvement, then stopped
    assert record.summary["status"] == "finished" and record.summary["reason"] == "early stopping"
    assert record.summary["best"]["epoch"] == best
    assert record.summary["best"]["val_loss"] == pytest.approx(losses[best - 1])
    assert any(f"Early stopping after {done} epochs" in m.text for m in rec.of(Message))

    # model.keras is the best epoch's model: on the validation images it scores that epoch's val_loss
    from workbench.core.data import pipeline

    data = pipeline.prepare_data(config.data, config.training.batch_size, config.training.seed)
    model = saving.load_model(record.path / "model.keras")
    loss = model.evaluate(data.val, verbose=0)[0]
    assert loss == pytest.approx(losses[best - 1], rel=1e-3, abs=1e-4), (loss, losses)
    assert loss != pytest.approx(losses[-1], rel=1e-3, abs=1e-4)  # not the last epoch's
