"""Turn a RunConfig into a trained model and a stream of events.

`run` is the one entry point the GUI worker and the CLI share. It never raises
for a failed run: the failure becomes a RunFailed event (and return value), so
the caller's thread always ends cleanly and the run folder keeps what it had.
"""

from __future__ import annotations

import math
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.core.config import RunConfig, validate
from workbench.core.events import (
    BatchEnd,
    EpochEnd,
    Event,
    Message,
    RunFailed,
    RunFinished,
    RunStarted,
)
from workbench.core.runs import RunFolder, RunStore

Emit = Callable[[Event], None]


class Diverged(Exception):
    """Training blew up (NaN/inf or exploding loss)."""


def run(
    config: RunConfig,
    emit: Emit,
    stop_event: threading.Event | None = None,
    *,
    pause_event: threading.Event | None = None,
    runs_dir: str | Path | None = None,
) -> RunFinished | RunFailed:
    """Train `config` to the end, a stop request, or a failure; report everything through `emit`."""
    stop_event = stop_event or threading.Event()
    problems = validate(config)
    if problems:
        return _fail(emit, None, "The configuration has problems", "\n".join(str(p) for p in problems), "invalid")
    try:
        folder = RunStore(runs_dir).create(config)
    except OSError as exc:
        return _fail(emit, None, "Cannot create the run folder", str(exc))

    def record(event: Event) -> None:
        try:
            folder.append_event(event)
        except OSError:  # a full disk must not kill the run's reporting
            pass
        emit(event)

    try:
        return _train(config, folder, record, stop_event, pause_event)
    except Exception as exc:  # noqa: BLE001 - every failure becomes an event
        return _fail(record, folder, *_describe(exc))


def _fail(
    emit: Emit,
    folder: RunFolder | None,
    error: str,
    details: str,
    kind: str = "error",
    summary: dict[str, Any] | None = None,
) -> RunFailed:
    event = RunFailed(error=error, details=details, run_dir=str(folder.path) if folder else "", kind=kind)
    if folder is not None:
        status = "diverged" if kind == "diverged" else "failed"
        try:
            folder.write_summary({**(summary or {}), "status": status, "error": error, "details": details})
        except OSError:
            pass
    emit(event)
    return event


def _describe(exc: BaseException) -> tuple[str, str, str]:
    """A one-line title for a dialog and the details behind it."""
    from workbench.core import weights

    details = "".join(traceback.format_exception(exc))
    if isinstance(exc, (weights.WeightsUnavailable, weights.WeightsMismatch)):
        return str(exc), details, "invalid"
    name = type(exc).__name__
    if name == "ResourceExhaustedError" or isinstance(exc, MemoryError):
        return (
            "Out of memory: try a smaller batch size or image size, or a smaller backbone",
            details,
            "out_of_memory",
        )
    return f"Training failed: {name}: {exc}".splitlines()[0][:300], details, "error"


def _train(
    config: RunConfig,
    folder: RunFolder,
    emit: Emit,
    stop_event: threading.Event,
    pause_event: threading.Event | None,
) -> RunFinished | RunFailed:
    import keras

    from workbench.core import backbones, dataset
    from workbench.core import model as model_lib

    keras.backend.clear_session()
    keras.utils.set_random_seed(config.training.seed)
    t = config.training

    emit(Message("info", f"Scanning {config.data.folder}"))
    skipped = dataset.SkipCounter()
    data = dataset.prepare_data(config.data, t.batch_size, t.seed, skip_counter=skipped)
    for problem in data.warnings:
        emit(Message("warning", str(problem)))
    if data.problems:
        return _fail(emit, folder, "The dataset cannot be used for training",
                     "\n".join(str(p) for p in data.problems), "invalid")

    spec = backbones.get_backbone(config.backbone.name)
    emit(Message("info", f"Building {spec.name} ({config.backbone.weights} weights)"))
    model = model_lib.build_model(config, len(data.class_names))
    freeze = model_lib.apply_freeze(model, config.freeze, spec, pretrained=config.backbone.weights != "none")
    model.compile(
        optimizer=_optimizer(config),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=t.label_smoothing),
        metrics=["accuracy"],
    )

    emit(
        RunStarted(
            run_id=folder.id,
            run_dir=str(folder.path),
            epochs=t.epochs,
            steps_per_epoch=data.steps_per_epoch,
            class_names=tuple(data.class_names),
            train_images=data.train_count,
            val_images=data.val_count,
            layers_total=freeze.layers_total,
            layers_trainable=freeze.layers_trainable,
            params_trainable=freeze.params_trainable,
            params_frozen=freeze.params_frozen,
        )
    )
    emit(Message("info", freeze.text))

    ProgressCallback, DivergenceGuard, ModelSaver = _make_callbacks()
    progress = ProgressCallback(emit, folder, data.steps_per_epoch, stop_event, pause_event, skipped)
    guard = DivergenceGuard(t.divergence_factor)
    saver = ModelSaver(folder, t.monitor if t.keep_best else "")
    callbacks: list[Any] = [progress, guard, saver]
    if not freeze_bn_only(model):
        callbacks.append(_batchnorm_recalibration(model, data.train, emit))
    if t.early_stopping:
        callbacks.append(
            keras.callbacks.EarlyStopping(monitor=t.monitor, patience=t.patience, mode=_mode(t.monitor))
        )

    started = time.perf_counter()
    with warnings.catch_warnings():
        # Files that became unreadable are filtered out, so the dataset's length is unknown
        # and Keras warns that the input "ran out of data" at each epoch's end: it did not.
        warnings.filterwarnings("ignore", message=".*ran out of data.*")
        model.fit(
            data.train,
            validation_data=data.val,
            epochs=t.epochs,
            callbacks=callbacks,
            shuffle=False,  # the training dataset shuffles itself, with the run's seed
            verbose=0,
        )
    seconds = time.perf_counter() - started

    epochs_done = progress.epochs_done
    if not guard.reason:
        saver.finish(model)
    if guard.reason:
        reason = guard.reason
    elif stop_event.is_set():
        reason = "stopped"
    elif epochs_done < t.epochs:
        reason = "early stopping"
    else:
        reason = ""
    summary = {
        "status": "diverged" if guard.reason else ("stopped" if stop_event.is_set() else "finished"),
        "reason": reason,
        "epochs_done": epochs_done,
        "seconds": round(seconds, 2),
        "best": saver.best_logs,
        "last": progress.last_logs,
        "class_names": list(data.class_names),
        "train_images": data.train_count,
        "val_images": data.val_count,
        "trainable": freeze.text,
        "model": folder.model_path.name if folder.model_path.is_file() else "",
    }
    if guard.reason:
        emit(Message("error", guard.reason))
        return _fail(emit, folder, guard.reason, _DIVERGENCE_HELP, "diverged", summary)
    folder.write_summary(summary)
    if reason == "early stopping":
        emit(Message("info", f"Early stopping after {epochs_done} epochs: {t.monitor} stopped improving"))
    finished = RunFinished(
        run_dir=str(folder.path),
        stopped=stop_event.is_set(),
        epochs_done=epochs_done,
        best=saver.best_logs,
        reason=reason,
    )
    emit(finished)
    return finished


def freeze_bn_only(model) -> bool:
    """True when no BatchNorm layer learns, so there are no statistics to repair."""
    from workbench.core import batchnorm

    return not batchnorm.trainable_batchnorm_layers(model)


def _batchnorm_recalibration(model, train_dataset, emit: Emit):
    from workbench.core import batchnorm

    images = batchnorm.sample_images(train_dataset, 256)
    emit(Message("info", "BatchNorm layers are learning: their statistics are recomputed on "
                         f"{0 if images is None else len(images)} training images before each validation"))
    return batchnorm.make_callback(model, images)


_DIVERGENCE_HELP = (
    "The loss became too large or not a number, so the run was stopped to save your time.\n"
    "Usual fixes: lower the learning rate (divide it by 10), use Adam instead of SGD, "
    "or check the images and labels. The model from the last good epoch is kept in the run folder."
)


def _mode(monitor: str) -> str:
    return "max" if "accuracy" in monitor else "min"


def _optimizer(config: RunConfig):
    import keras

    t = config.training
    if t.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=t.learning_rate, momentum=t.momentum)
    if t.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=t.learning_rate)
    return keras.optimizers.Adam(learning_rate=t.learning_rate)


def _floats(logs: dict | None) -> dict[str, float]:
    return {k: float(v) for k, v in (logs or {}).items()}


def _make_callbacks():
    """Define the Keras callbacks lazily: importing this module must not import Keras."""
    import keras

    class ProgressCallback(keras.callbacks.Callback):
        """Turns Keras callbacks into events, writes metrics, and obeys Stop and Pause."""

        def __init__(self, emit, folder, steps, stop_event, pause_event, skipped):
            super().__init__()
            self.skipped, self._skipped_reported = skipped, 0
            self.emit, self.folder, self.steps = emit, folder, steps
            self.stop_event, self.pause_event = stop_event, pause_event
            self.epochs_done = 0
            self.last_logs: dict[str, float] = {}
            self._epoch = 0
            self._epoch_started = 0.0
            self._stopped_in_epoch = False

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch = epoch
            self._epoch_started = time.perf_counter()
            self._stopped_in_epoch = False

        def on_train_batch_end(self, batch, logs=None):
            self.emit(BatchEnd(epoch=self._epoch, batch=batch, steps=self.steps, logs=_floats(logs)))
            self._obey()

        def on_test_batch_end(self, batch, logs=None):
            if self.stop_event.is_set():
                self.model.stop_evaluating = True

        def on_epoch_end(self, epoch, logs=None):
            values = _floats(logs)
            values["learning_rate"] = float(self.model.optimizer.learning_rate)
            seconds = time.perf_counter() - self._epoch_started
            if self._stopped_in_epoch:
                return  # a stopped epoch's numbers cover only part of the data: not an epoch
            self.epochs_done = epoch + 1
            self.last_logs = values
            self.folder.append_metrics(epoch + 1, {**values, "seconds": round(seconds, 3)})
            self.emit(EpochEnd(epoch=epoch, logs=values, seconds=seconds))
            if self.skipped.count > self._skipped_reported:
                new = self.skipped.paths[self._skipped_reported:]
                self._skipped_reported = self.skipped.count
                self.emit(Message("warning", f"Skipped {len(new)} unreadable file(s) (changed since the scan): "
                                  + ", ".join(new[:5]) + (" ..." if len(new) > 5 else "")))

        def _obey(self):
            if self.pause_event is not None and self.pause_event.is_set():
                self.emit(Message("info", "Paused"))
                while self.pause_event.is_set() and not self.stop_event.is_set():
                    time.sleep(0.05)
                if not self.stop_event.is_set():
                    self.emit(Message("info", "Resumed"))
            if self.stop_event.is_set():
                self.model.stop_training = True
                self._stopped_in_epoch = True

    class DivergenceGuard(keras.callbacks.Callback):
        """Stops a run whose loss is NaN/inf or grew past `factor` times its first value."""

        def __init__(self, factor):
            super().__init__()
            self.factor = factor
            self.first: float | None = None
            self.reason = ""

        def on_train_batch_end(self, batch, logs=None):
            loss = (logs or {}).get("loss")
            if loss is None:
                return
            loss = float(loss)
            if not math.isfinite(loss):
                self.reason = f"Training diverged: the loss became {loss} at batch {batch + 1}"
            elif self.first is None:
                self.first = loss
            elif loss > self.factor * max(self.first, 1e-8):
                self.reason = (
                    f"Training diverged: the loss grew to {loss:.4g}, more than "
                    f"{self.factor:g} times its first value ({self.first:.4g})"
                )
            if self.reason:
                self.model.stop_training = True

    class ModelSaver(keras.callbacks.Callback):
        """Keeps model.keras current: the best epoch (keep best) or the last one."""

        def __init__(self, folder, monitor):
            super().__init__()
            self.folder, self.monitor = folder, monitor
            self.best_value: float | None = None
            self.best_logs: dict[str, float] = {}

        def on_epoch_end(self, epoch, logs=None):
            values = _floats(logs)
            if not all(math.isfinite(v) for v in values.values()):
                return
            if self.monitor and self.monitor in values:
                value = values[self.monitor]
                better = (
                    self.best_value is None
                    or (value > self.best_value if _mode(self.monitor) == "max" else value < self.best_value)
                )
                if not better:
                    return
                self.best_value = value
            self.best_logs = {"epoch": float(epoch + 1), **values}
            self.save(self.model)

        def save(self, model):
            from workbench.core.files import atomic_replace_with

            atomic_replace_with(self.folder.model_path, model.save)

        def finish(self, model):
            """At the end, a model file must exist even if no epoch finished (stopped early)."""
            if not self.folder.model_path.is_file():
                self.save(model)

    return ProgressCallback, DivergenceGuard, ModelSaver


