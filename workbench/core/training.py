"""Turn a RunConfig into a trained model and a stream of events.

`run` is the one entry point the GUI worker and the CLI share. It never raises
for a failed run: the failure becomes a RunFailed event (and return value), so
the caller's thread always ends cleanly and the run folder keeps what it had.
"""

from __future__ import annotations

import math
import os
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.core.config import ConfigError, RunConfig, load_config, validate
from workbench.core.events import (
    BatchEnd,
    EpochEnd,
    Event,
    Message,
    RunFailed,
    RunFinished,
    RunStarted,
)
from workbench.core.runs import CHECKPOINT_FILE, CONFIG_FILE, RunFolder, RunStore, load_run

Emit = Callable[[Event], None]


class Diverged(Exception):
    """Training blew up (NaN/inf or exploding loss)."""


class DataUnavailable(Exception):
    """The images could not be read any more during training (moved, deleted, unmounted)."""


def run(
    config: RunConfig | None,
    emit: Emit,
    stop_event: threading.Event | None = None,
    *,
    pause_event: threading.Event | None = None,
    runs_dir: str | Path | None = None,
    resume_from: str | Path | None = None,
) -> RunFinished | RunFailed:
    """Train `config` to the end, a stop request, or a failure; report everything through `emit`.

    With `resume_from` (a run folder) the run continues in that folder from its last
    checkpoint, with the folder's own config.json (`config` may then be None; if given
    it must equal it) and `runs_dir` is not used.
    """
    stop_event = stop_event or threading.Event()
    if resume_from is not None:
        opened = _open_for_resume(config, Path(resume_from), emit)
        if isinstance(opened, RunFailed):
            return opened
        config, folder = opened
    else:
        if config is None:
            raise TypeError("run() needs a config, or resume_from")
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
        from workbench.core import perf

        # clear_session, seed, precision policy, and the distribution strategy's scope for the whole run
        with perf.run_environment(config.training, record, Message):
            return _train(config, folder, record, stop_event, pause_event, resume=resume_from is not None)
    except Exception as exc:  # noqa: BLE001 - every failure becomes an event
        return _fail(record, folder, *_describe(exc))


def resume(
    run_dir: str | Path,
    emit: Emit,
    stop_event: threading.Event | None = None,
    *,
    pause_event: threading.Event | None = None,
) -> RunFinished | RunFailed:
    """Continue a stopped, failed or killed run in its own folder, from its last checkpoint."""
    return run(None, emit, stop_event, pause_event=pause_event, resume_from=run_dir)


def _open_for_resume(config: RunConfig | None, path: Path, emit: Emit) -> tuple[RunConfig, RunFolder] | RunFailed:
    """The run folder's config and folder, or a RunFailed ("invalid") that leaves the folder untouched."""
    from workbench.core import checkpoint

    def refuse(error: str, details: str = "") -> RunFailed:
        event = RunFailed(error=error, details=details, run_dir=str(path), kind="invalid")
        emit(event)
        return event

    if not (path / CONFIG_FILE).is_file():
        return refuse(f"Cannot resume: {path} is not a run folder (it has no {CONFIG_FILE})")
    try:
        saved = load_config(path / CONFIG_FILE)
    except ConfigError as exc:
        return refuse(f"Cannot resume: the run's {CONFIG_FILE} cannot be used", str(exc))
    if config is not None and config != saved:
        return refuse(f"Cannot resume: the settings differ from the run's {CONFIG_FILE}",
                      "A resumed run keeps its own settings; start a new run to change them.")
    problems = validate(saved)
    if problems:
        return refuse("Cannot resume: the run's configuration has problems", "\n".join(str(p) for p in problems))
    epochs = saved.training.epochs
    state = checkpoint.read_state(path / CHECKPOINT_FILE)
    if state is None and (path / CHECKPOINT_FILE).exists():
        return refuse(f"Cannot resume: the checkpoint of run {path.name} is damaged",
                      f"{path / CHECKPOINT_FILE} cannot be read. Workbench writes checkpoints atomically, so "
                      "something else changed it. Delete it to train the run again from the first epoch.")
    summary = load_run(path).summary
    if summary.get("status") == "finished" or (state and state["epochs_done"] >= epochs):
        done = summary.get("epochs_done", state["epochs_done"] if state else epochs)
        why = f" ({summary['reason']})" if summary.get("reason") else ""
        return refuse(f"Nothing to resume: run {path.name} has finished{why} after {done} of {epochs} epochs")
    return saved, RunFolder(path)


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
    if isinstance(exc, DataUnavailable):
        return str(exc).splitlines()[0], str(exc), "error"
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
    resume: bool = False,
) -> RunFinished | RunFailed:
    import keras

    from workbench.core import backbones, checkpoint, dataset
    from workbench.core import model as model_lib

    # keras.backend.clear_session(), the seed and the precision policy: in perf.run_environment (run()),
    # before the strategy scope opens (clear_session would drop it).
    t = config.training

    emit(Message("info", f"Scanning {config.data.folder}"))
    skipped, reads = dataset.SkipCounter(), dataset.ReadCounter()
    data = dataset.prepare_data(config.data, t.batch_size, t.seed, skip_counter=skipped, read_counter=reads)
    for problem in data.warnings:
        emit(Message("warning", str(problem)))
    if data.problems:
        return _fail(emit, folder, "The dataset cannot be used for training",
                     "\n".join(str(p) for p in data.problems), "invalid")
    left_out = _left_out_files(data.report, data.val_report)
    if left_out:
        emit(Message("warning", f"Skipping {left_out} unusable file(s) found by the scan (listed above); "
                                f"training on the other {data.train_count + data.val_count} images"))

    spec = backbones.get_backbone(config.backbone.name)
    state: dict[str, Any] = {}
    if resume:
        state = checkpoint.read_state(folder.checkpoint_path) or {}
    if state:
        emit(Message("info", f"Loading the checkpoint of run {folder.id} (after epoch {state['epochs_done']})"))
        try:
            model, state = checkpoint.load(folder.checkpoint_path)
        except checkpoint.CheckpointError as exc:
            return _fail(emit, folder, f"Cannot resume: {exc}", "", "invalid")
        saved_classes = tuple(state.get("class_names") or ())
        if saved_classes and saved_classes != tuple(data.class_names):
            return _fail(emit, folder, "Cannot resume: the dataset's classes have changed since the run started",
                         f"The run trained on {', '.join(saved_classes)}; the folder now has "
                         f"{', '.join(data.class_names)}.", "invalid")
        freeze = model_lib.model_summary_counts(model)
    else:
        if resume:
            emit(Message("warning", f"Run {folder.id} has no checkpoint yet: it starts again from the first epoch"))
        emit(Message("info", f"Building {spec.name} with {_weights_text(config)}"))
        model = model_lib.build_model(config, len(data.class_names))
        freeze = _apply_freeze(model, config, spec, phase=1 if t.two_phase else 0)
        model.compile(
            optimizer=make_optimizer(config),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=t.label_smoothing),
            metrics=["accuracy"],
            jit_compile=_jit(config),
        )
    initial_epoch = int(state.get("epochs_done", 0))
    if resume:
        folder.load_existing_metrics(through_epoch=initial_epoch)
        if initial_epoch:
            emit(Message("info", f"Resuming after epoch {initial_epoch} of {t.epochs}"))

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
            initial_epoch=initial_epoch,
        )
    )
    emit(Message("info", freeze.text))

    ProgressCallback, DivergenceGuard, ModelSaver, ResumableEarlyStopping = _make_callbacks()
    progress = ProgressCallback(emit, folder, data.steps_per_epoch, stop_event, pause_event, skipped,
                                initial_epoch=initial_epoch)
    guard = DivergenceGuard(t.divergence_factor, first=state.get("divergence_first"))
    saver = ModelSaver(folder, t.monitor if t.keep_best else "", progress, guard, state,
                       class_names=tuple(data.class_names))
    callbacks: list[Any] = [progress, guard, saver]
    from workbench.core.perf import make_input_wait_monitor

    # Warns when the input pipeline starves the model.
    callbacks.append(make_input_wait_monitor(emit, Message, reads=reads, batch_size=t.batch_size,
                                             images_per_epoch=data.train_count))
    dr = config.dropout
    if dr.kind == "dropblock" and dr.ramp_epochs > 0 and dr.rate > 0:
        from workbench.core.dropout import make_ramp_callback

        # First in the list: it restores the full rate at each epoch's end, before the model is saved.
        callbacks.insert(0, make_ramp_callback(model, dr.rate, dr.ramp_epochs, data.steps_per_epoch))
        emit(Message("info", f"DropBlock's rate ramps up from 0 to {dr.rate:g} over {dr.ramp_epochs} epoch(s)"))
    if t.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(folder.path / "tensorboard"), update_freq="epoch"))
        emit(Message("info", f"TensorBoard logs: {folder.path / 'tensorboard'} "
                             f"(open them with: {tensorboard_command(folder.path.parent)})"))
    if not freeze_bn_only(model):
        callbacks.append(_batchnorm_recalibration(model, data.train, data.train_count, emit))
    if t.early_stopping:
        # Before the saver, so that the checkpoint holds this epoch's early-stopping counters.
        saver.early_stopping = ResumableEarlyStopping(
            monitor=t.monitor, patience=t.patience, mode=_mode(t.monitor), restore=state.get("early_stopping"))
        callbacks.insert(callbacks.index(saver), saver.early_stopping)

    started = time.perf_counter()
    with warnings.catch_warnings():
        # Files that became unreadable are filtered out, so the dataset's length is unknown
        # and Keras warns that the input "ran out of data" at each epoch's end: it did not.
        warnings.filterwarnings("ignore", message=".*ran out of data.*")
        fit = dict(validation_data=data.val, callbacks=callbacks, verbose=0,
                   shuffle=False)  # the training dataset shuffles itself, with the run's seed
        switch = t.phase1_epochs if t.two_phase else 0
        if switch > initial_epoch:  # two-phase: the head alone first, then fine-tuning
            _fit(model, config, data, emit, saver, True, epochs=switch, initial_epoch=initial_epoch, **fit)
            if (progress.epochs_done >= switch and not progress.model.stop_training
                    and not guard.reason and not stop_event.is_set()):
                freeze = _start_phase2(model, config, spec, emit, switch, callbacks, data)
                saver._previous_seconds += time.perf_counter() - saver._started
                model.fit(data.train, epochs=t.epochs, initial_epoch=switch, **fit)
        else:
            frozen = not state and _backbone_frozen(config)
            _fit(model, config, data, emit, saver, frozen, epochs=t.epochs, initial_epoch=initial_epoch, **fit)
    seconds = time.perf_counter() - started + float(state.get("seconds", 0.0))

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
        "checkpoint": folder.checkpoint_path.name if folder.checkpoint_path.is_file() else "",
        "skipped_files": left_out + skipped.count,
        "checkpoint_seconds": round(saver.checkpoint_seconds, 2),
        "checkpoints": saver.checkpoints,
        "checkpoints_skipped": saver.checkpoints_skipped,  # epochs left out to keep within CHECKPOINT_BUDGET
    }
    if initial_epoch:
        summary["resumed_after_epoch"] = initial_epoch
    if skipped.count:
        emit(Message("warning", f"Skipped {left_out + skipped.count} file(s) in all: {left_out} found unusable "
                                f"by the scan, {skipped.count} unreadable during training"))
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


def tensorboard_command(runs_dir: str | Path) -> str:
    """The command that shows every run's TensorBoard logs (TensorBoard is installed separately)."""
    return f'tensorboard --logdir "{runs_dir}"'


def freeze_bn_only(model) -> bool:
    """True when no BatchNorm layer learns, so there are no statistics to repair."""
    from workbench.core import batchnorm

    return not batchnorm.trainable_batchnorm_layers(model)


def _batchnorm_recalibration(model, train_dataset, train_images: int, emit: Emit):
    from workbench.core import batchnorm

    images = batchnorm.sample_images(train_dataset, batchnorm.sample_size(train_images))
    emit(Message("info", "BatchNorm layers are learning: their statistics are recomputed on "
                         f"{0 if images is None else len(images)} training images before each validation"))
    return batchnorm.make_callback(model, images)


_DIVERGENCE_HELP = (
    "The loss became too large or not a number, so the run was stopped to save your time.\n"
    "Usual fixes: lower the learning rate (divide it by 10), use Adam instead of SGD, "
    "or check the images and labels. The model from the last good epoch is kept in the run folder."
)


# Share of training time that checkpoints may take (the throughput benchmark's target leaves
# 5 % for all of Workbench's work). The last epoch and a stop always write one; a new best
# epoch waits in memory for the next save.
CHECKPOINT_BUDGET = 0.02


def _left_out_files(*reports) -> int:
    """How many image files the scans left out (empty, damaged, not images, unsupported)."""
    from workbench.core.dataset import IMAGE_EXTENSIONS

    count = 0
    for report in reports:
        for problem in getattr(report, "warnings", ()):
            # A file's problem reads "<path inside the folder>: <reason>"; the others do not
            # start with an image file's name (class counts, ignored non-images, stray files).
            text, at = problem.message, problem.message.find(": ")
            while at != -1:
                if os.path.splitext(text[:at])[1].lower() in IMAGE_EXTENSIONS:
                    count += 1
                    break
                at = text.find(": ", at + 1)
    return count


def _backbone_frozen(config: RunConfig) -> bool:
    from workbench.core import weights

    return config.freeze.policy == "all" and weights.effective_transfer(config.backbone) != "partial"


def _fit(model, config: RunConfig, data, emit: Emit, saver, frozen: bool, **fit) -> None:
    """model.fit, or with the whole backbone frozen and no augmentation, the head on cached features."""
    from workbench.core import features

    if frozen and features.usable(config):
        features.fit_head(model, config, data, emit, saver, **fit)
    else:
        model.fit(data.train, **fit)


def _weights_text(config: RunConfig) -> str:
    """Where the backbone's weights come from, for the log."""
    from workbench.core import weights

    b = config.backbone
    kind = weights.effective_transfer(b)
    if kind == "zero":
        return "re-initialised weights (zero transfer: same architecture, random weights)"
    text = {"imagenet": "ImageNet weights", "file": f"weights from {b.weights_file}"}[b.weights]
    if kind == "partial":
        rest = "re-initialised" if b.rest == "reinit" else "fine-tuned"
        text += f", transferring its first {b.keep_blocks} block(s) (frozen); the rest {rest}"
    return text


def _apply_freeze(model, config: RunConfig, spec, phase: int = 0):
    """The freeze policy; in phase 1 of two-phase fine-tuning the whole backbone is frozen."""
    from workbench.core import model as model_lib
    from workbench.core import weights
    from workbench.core.config import FreezeConfig

    pretrained = weights.is_pretrained(config.backbone)
    if phase == 1:
        frozen = FreezeConfig(policy="all", freeze_batchnorm=config.freeze.freeze_batchnorm)
        return model_lib.apply_freeze(model, frozen, spec, pretrained=pretrained)
    transfer = config.backbone if weights.effective_transfer(config.backbone) == "partial" else None
    return model_lib.apply_freeze(model, config.freeze, spec, pretrained=pretrained, transfer=transfer)


def _start_phase2(model, config: RunConfig, spec, emit: Emit, epoch: int, callbacks: list, data):
    """Unfreeze per the freeze policy and recompile at the fine-tuning rate; the history runs on.

    Emits a Message with kind "phase" and the switch epoch, which the plots mark with a line.
    """
    import keras

    t = config.training
    freeze = _apply_freeze(model, config, spec, phase=2)
    rate = t.learning_rate * t.finetune_lr_factor
    model.compile(
        optimizer=make_optimizer(config.replace(**{"training.learning_rate": rate})),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=t.label_smoothing),
        metrics=["accuracy"],
        jit_compile=_jit(config),
    )
    emit(Message("info", f"Phase 2 from epoch {epoch + 1}: fine-tuning at learning rate {rate:.3g}; "
                         f"{freeze.text}", kind="phase", epoch=epoch))
    if not freeze_bn_only(model) and not any(type(c).__name__ == "RecalibrateBatchNorm" for c in callbacks):
        callbacks.append(_batchnorm_recalibration(model, data.train, data.train_count, emit))
    return freeze


def _jit(config: RunConfig) -> bool | str:
    """model.compile's jit_compile (XLA) for the config: "auto", True or False."""
    from workbench.core.perf import jit_compile_argument

    return jit_compile_argument(config.training.jit_compile)


def _mode(monitor: str) -> str:
    return "max" if "accuracy" in monitor else "min"


def make_optimizer(config: RunConfig):
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

        def __init__(self, emit, folder, steps, stop_event, pause_event, skipped, initial_epoch=0):
            super().__init__()
            self.skipped, self._skipped_reported = skipped, 0
            self.emit, self.folder, self.steps = emit, folder, steps
            self.stop_event, self.pause_event = stop_event, pause_event
            self.epochs_done = initial_epoch
            self.last_logs: dict[str, float] = {}
            self._epoch = initial_epoch
            self._epoch_started = 0.0
            self._stopped_in_epoch = False
            self._batches = 0

        @property
        def stopped_in_epoch(self) -> bool:
            return self._stopped_in_epoch

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch = epoch
            self._epoch_started = time.perf_counter()
            self._stopped_in_epoch = False
            self._batches = 0

        def on_train_batch_end(self, batch, logs=None):
            self._batches += 1
            self.emit(BatchEnd(epoch=self._epoch, batch=batch, steps=self.steps, logs=_floats(logs)))
            self._obey()

        def on_test_batch_end(self, batch, logs=None):
            if self.stop_event.is_set():
                self.model.stop_evaluating = True

        def on_epoch_end(self, epoch, logs=None):
            values = _floats(logs)
            # convert_to_numpy: under MirroredStrategy the rate is a MirroredVariable, which float() refuses
            values["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            seconds = time.perf_counter() - self._epoch_started
            if self._stopped_in_epoch:
                return  # a stopped epoch's numbers cover only part of the data: not an epoch
            self._check_data(epoch, values)
            self.epochs_done = epoch + 1
            self.last_logs = values
            self.folder.append_metrics(epoch + 1, {**values, "seconds": round(seconds, 3)})
            self.emit(EpochEnd(epoch=epoch, logs=values, seconds=seconds))
            if self.skipped.count > self._skipped_reported:
                new = self.skipped.paths[self._skipped_reported:]
                self._skipped_reported = self.skipped.count
                self.emit(Message("warning", f"Skipped {len(new)} unreadable file(s) (changed since the scan): "
                                  + ", ".join(new[:5]) + (" ..." if len(new) > 5 else "")))

        def _check_data(self, epoch, values):
            """An epoch without a single readable image is not an epoch: the data has gone."""
            missing = "training" if self._batches == 0 else ("validation" if "val_loss" not in values else "")
            if not missing:
                return
            paths = self.skipped.paths
            example = f" (for example {paths[0]})" if paths else ""
            raise DataUnavailable(
                f"No {missing} image could be read in epoch {epoch + 1}: the dataset folder was moved, "
                f"deleted or unmounted during training{example}.\n{len(paths)} file(s) could not be read. "
                "Put the images back and resume the run: it continues from its last completed epoch."
            )

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

        def __init__(self, factor, first=None):
            super().__init__()
            self.factor = factor
            self.first: float | None = float(first) if first is not None else None  # kept across a resume
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
        """Keeps checkpoint.keras (the last state, for resume) and model.keras (best or last) on disk,
        within a time budget.

        Writing a checkpoint costs ~0.3 s (MobileNetV2), a real share of a short epoch, so
        saves keep to CHECKPOINT_BUDGET of the training time, improving epochs included:
        a new best is kept in memory (a copy of the weights, a few milliseconds) and written
        with the next checkpoint. The last epoch and a stop always save. model.keras is a hard
        link to (or copy of) the checkpoint when the best epoch is the one being saved.
        """

        def __init__(self, folder, monitor, progress, guard, state=None, class_names=()):
            super().__init__()
            self.folder, self.monitor = folder, monitor
            self.progress, self.guard = progress, guard
            self.early_stopping = None
            self.class_names = list(class_names)
            state = state or {}
            best = state.get("best_value")
            self.best_value: float | None = float(best) if best is not None else None
            self.best_logs: dict[str, float] = dict(state.get("best_logs") or {})
            self._previous_seconds = float(state.get("seconds", 0.0))
            self._started = time.perf_counter()
            self.checkpoint_seconds = 0.0  # time spent writing checkpoints in this session
            self.checkpoints = 0
            self.checkpoints_skipped = 0
            self._last_save: tuple[float, float] | None = None  # (when it ended, seconds it took)
            self._unsaved_best: tuple[int, list] | None = None  # (epochs done, weights) not yet in model.keras
            self.full_model = None  # set while the head alone trains on cached features: save this instead

        @property
        def _target(self):
            return self.full_model or self.model

        def on_train_begin(self, logs=None):
            self._started = time.perf_counter()

        def _checkpoint_due(self) -> bool:
            """Whether checkpointing now keeps its share of the training time within the budget.

            With epochs much longer than a save (a thousand images on a CPU) that is every
            epoch; with very short epochs (a tiny dataset, cached features, a fast GPU) every
            few epochs, and a resume then repeats at most that many epochs.
            """
            if self._last_save is None:
                return True
            ended, took = self._last_save
            return took <= CHECKPOINT_BUDGET * (time.perf_counter() - ended)

        def on_epoch_end(self, epoch, logs=None):
            if self.guard.reason:
                return  # diverged: the last good checkpoint stays
            values = _floats(logs)
            if not all(math.isfinite(v) for v in values.values()):
                return
            better = True
            if self.monitor and self.monitor in values:
                value = values[self.monitor]
                better = (
                    self.best_value is None
                    or (value > self.best_value if _mode(self.monitor) == "max" else value < self.best_value)
                )
                if better:
                    self.best_value = value
            stopping = self.progress.stopped_in_epoch or self.model.stop_training
            last = epoch + 1 >= self.params.get("epochs", 0)
            due = stopping or last or self._checkpoint_due()
            # A stopped epoch is not done: its checkpoint (the weights so far) resumes at its start.
            done = epoch if self.progress.stopped_in_epoch else epoch + 1
            if better:
                self.best_logs = {"epoch": float(epoch + 1), **values}
                # Kept in memory until the next save (copying the weights is cheap; writing them is not).
                self._unsaved_best = None if due else (done, self._target.get_weights())
            if not due:
                self.checkpoints_skipped += 1
                return
            self.save_checkpoint(done)
            from workbench.core.checkpoint import copy_atomically

            if better:
                copy_atomically(self.folder.checkpoint_path, self.folder.model_path)
            elif self._unsaved_best is not None:
                self._write_best(self._target)

        def _write_best(self, model):
            """Write the kept best weights to model.keras, then put the current ones back."""
            from workbench.core import checkpoint

            epochs_done, weights = self._unsaved_best
            current = model.get_weights()
            model.set_weights(weights)
            try:
                took = checkpoint.save(model, self.folder.model_path, self._state(epochs_done, partial=False))
            finally:
                model.set_weights(current)
            self.checkpoint_seconds += took
            self._unsaved_best = None

        def _state(self, epochs_done, partial):
            es = self.early_stopping
            return {
                "epochs_done": int(epochs_done),
                "partial_epoch": bool(partial),
                "class_names": self.class_names,
                "best_value": self.best_value,
                "best_logs": self.best_logs,
                "divergence_first": self.guard.first,
                "early_stopping": None if es is None else {"wait": int(es.wait), "best": es.best},
                "seconds": round(self._previous_seconds + time.perf_counter() - self._started, 3),
            }

        def save_checkpoint(self, epochs_done):
            from workbench.core import checkpoint

            state = self._state(epochs_done, self.progress.stopped_in_epoch)
            took = checkpoint.save(self._target, self.folder.checkpoint_path, state, mirror=self.folder.state_path)
            self.checkpoint_seconds += took
            self.checkpoints += 1
            self._last_save = (time.perf_counter(), took)

        def finish(self, model):
            """At the end, a model file must exist even if no epoch finished (stopped early)."""
            if self._unsaved_best is not None:
                self._write_best(model)  # the full model: a head trained on cached features has finished
            if self.folder.model_path.is_file():
                return
            if self.folder.checkpoint_path.is_file():
                from workbench.core.checkpoint import copy_atomically

                copy_atomically(self.folder.checkpoint_path, self.folder.model_path)
            else:
                from workbench.core.files import atomic_replace_with

                atomic_replace_with(self.folder.model_path, model.save)

    class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
        """EarlyStopping whose patience counter and best value survive a resume."""

        def __init__(self, *args, restore=None, **kwargs):
            super().__init__(*args, **kwargs)
            self._restore = restore or {}

        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)
            self.wait = int(self._restore.get("wait", 0))
            if self._restore.get("best") is not None:
                self.best = float(self._restore["best"])

    return ProgressCallback, DivergenceGuard, ModelSaver, ResumableEarlyStopping


