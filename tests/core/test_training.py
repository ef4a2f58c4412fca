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


def test_missing_weights_file_becomes_a_failed_run_not_an_exception(image_tree, tmp_path):
    bad = tmp_path / "garbage.weights.h5"
    bad.write_bytes(b"not weights at all")
    config = tiny_config(image_tree, **{"backbone.weights": "file", "backbone.weights_file": str(bad)})
    result = training.run(config, Recorder(), runs_dir=tmp_path / "runs")
    assert isinstance(result, RunFailed)
    assert result.error and "Traceback" not in result.error


def test_the_same_seed_repeats_a_run(image_tree, tmp_path):
    config = tiny_config(image_tree, **{"training.epochs": 1, "freeze.policy": "top_blocks",
                                        "freeze.blocks": 1})
    losses = []
    for _ in range(2):
        rec = Recorder()
        training.run(config, rec, runs_dir=tmp_path)
        losses.append(rec.of(EpochEnd)[0].logs["loss"])
    assert math.isclose(losses[0], losses[1], rel_tol=1e-5)


@pytest.mark.parametrize("optimizer", ["sgd", "rmsprop"])
def test_other_optimizers_train(image_tree, tmp_path, optimizer):
    config = tiny_config(image_tree, **{"training.epochs": 1, "training.optimizer": optimizer,
                                        "freeze.policy": "all", "training.label_smoothing": 0.1})
    result = training.run(config, Recorder(), runs_dir=tmp_path)
    assert isinstance(result, RunFinished)


def test_tensorboard_toggle_writes_event_files_into_the_run_folder(image_tree, tmp_path):
    config = tiny_config(image_tree, **{"training.epochs": 1, "freeze.policy": "all",
                                        "training.tensorboard": True})
    rec = Recorder()
    result = training.run(config, rec, runs_dir=tmp_path)
    assert isinstance(result, RunFinished)
    logs = list((load_run(result.run_dir).path / "tensorboard").rglob("events.out.tfevents.*"))
    assert logs, "no TensorBoard event file written"
    assert any("tensorboard --logdir" in m.text for m in rec.of(Message))
