"""The Keras callbacks of a run: events and Stop/Pause, the divergence guard, saving, early stopping.

Plain module-level classes (Keras 3 style). Importing this module imports Keras, so only the
training code imports it, never the window or the CLI's start-up.
"""

from __future__ import annotations

import math
import time

import keras

from workbench.core.base.events import BatchEnd, EpochEnd, Message
from workbench.core.engine import checkpoint
from workbench.core.engine.checkpoint import copy_atomically
from workbench.core.engine.compile import monitor_mode

# Share of training time that checkpoints may take (the throughput benchmark's target leaves
# 5 % for all of Workbench's work). The last epoch and a stop always write one; a new best
# epoch waits in memory for the next save.
CHECKPOINT_BUDGET = 0.02


class DataUnavailable(Exception):
    """The images could not be read any more during training (moved, deleted, unmounted)."""


def floats(logs: dict | None) -> dict[str, float]:
    return {k: float(v) for k, v in (logs or {}).items()}


class ProgressCallback(keras.callbacks.Callback):
    """Turns Keras callbacks into events, writes metrics, and obeys Stop and Pause."""

    def __init__(self, emit, folder, steps, stop_event, pause_event, skipped, initial_epoch=0, agree=None):
        super().__init__()
        # agree(flag) -> whether any worker of a cluster has it set (a collective: every worker calls it
        # at every batch end). With it, Stop acts at batch ends only, where all workers see it.
        self.agree = agree
        self.skipped, self._skipped_reported = skipped, 0
        self.emit, self.folder, self.steps = emit, folder, steps
        self.stop_event, self.pause_event = stop_event, pause_event
        self.epochs_done = initial_epoch
        self.last_logs: dict[str, float] = {}
        self._epoch = initial_epoch
        self._epoch_started = 0.0
        self._stopped_in_epoch = False
        self._validation_cut = False  # Stop came during the end-of-epoch validation
        self._batches = 0

    @property
    def stopped_in_epoch(self) -> bool:
        return self._stopped_in_epoch

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._epoch_started = time.perf_counter()
        self._stopped_in_epoch = False
        self._validation_cut = False
        self._batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self._batches += 1
        self.emit(BatchEnd(epoch=self._epoch, batch=batch, steps=self.steps, logs=floats(logs)))
        self._obey()

    def on_test_batch_end(self, batch, logs=None):
        if self.agree is None and self.stop_event.is_set():
            self.model.stop_evaluating = True
            self.model.stop_training = True
            self._validation_cut = True

    def on_epoch_end(self, epoch, logs=None):
        if self._validation_cut and logs is not None:
            # Stop came during the end-of-epoch validation: the training part is whole, but a
            # validation over part of the images is not the epoch's validation. The callbacks
            # after this one (keep-best, early stopping) see the same logs, without it.
            for key in [k for k in logs if k.startswith("val_")]:
                del logs[key]
        values = floats(logs)
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
        missing = "training" if self._batches == 0 else (
            "validation" if "val_loss" not in values and not self._validation_cut else "")
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
        stop = self.stop_event.is_set()
        if self.agree is not None and self.agree(stop) and not stop:
            self.stop_event.set()  # another worker stopped (SIGTERM, Ctrl-C): this one stops with it
            stop = True
        if stop:
            self.model.stop_training = True
            self._stopped_in_epoch = True

class DivergenceGuard(keras.callbacks.Callback):
    """Stops a run whose loss is NaN/inf, or whose smoothed loss stays far above its reference.

    The reference is the lowest smoothed loss so far, but never below the loss of guessing
    (ln of the class count): a run that starts low (a good pretrained backbone) and wobbles is
    not diverging, nor is one spike, while a loss that stays above `factor` times that
    reference for `PATIENCE` batches in a row is.
    """

    SMOOTHING = 0.8  # weight of the previous smoothed value
    PATIENCE = 10  # consecutive batches above the limit

    def __init__(self, factor, first=None, num_classes=2):
        super().__init__()
        self.factor = factor
        self.chance_loss = math.log(max(int(num_classes), 2))
        # `first`: the reference kept across a resume (the checkpoint's "divergence_first").
        self.first: float | None = float(first) if first is not None else None
        self.smoothed: float | None = None
        self.above = 0
        self.reason = ""

    @property
    def limit(self) -> float:
        return self.factor * max(self.first if self.first is not None else self.chance_loss, self.chance_loss)

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        loss = float(loss)
        if not math.isfinite(loss):
            self.reason = f"Training diverged: the loss became {loss} at batch {batch + 1}"
            self.model.stop_training = True
            return
        s = loss if self.smoothed is None else self.SMOOTHING * self.smoothed + (1 - self.SMOOTHING) * loss
        self.smoothed = s
        self.first = s if self.first is None else min(self.first, s)
        self.above = self.above + 1 if loss > self.limit else 0
        if self.above >= self.PATIENCE:
            self.reason = (
                f"Training diverged: the loss stayed above {self.limit:.4g} for {self.above} batches "
                f"(now {loss:.4g}; the lowest so far {self.first:.4g}, guessing scores {self.chance_loss:.4g})"
            )
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

    def __init__(self, folder, monitor, progress, guard, state=None, class_names=(), every_epoch=False):
        super().__init__()
        self.every_epoch = every_epoch  # workers of a cluster save at the same epochs, not by their own clocks
        self.folder, self.monitor = folder, monitor
        self.progress, self.guard = progress, guard
        self.early_stopping = None
        self.plateau = None  # the run's ResumablePlateau, when its schedule is "plateau"
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

    def carry_time(self) -> None:
        """Bank the training time so far: the next fit() (phase 2) restarts the clock."""
        self._previous_seconds += time.perf_counter() - self._started
        self._started = time.perf_counter()

    def _checkpoint_due(self) -> bool:
        """Whether checkpointing now keeps its share of the training time within the budget.

        With epochs much longer than a save (a thousand images on a CPU) that is every
        epoch; with very short epochs (a tiny dataset, cached features, a fast GPU) every
        few epochs, and a resume then repeats at most that many epochs.
        """
        if self._last_save is None or self.every_epoch:
            return True
        ended, took = self._last_save
        return took <= CHECKPOINT_BUDGET * (time.perf_counter() - ended)

    def on_epoch_end(self, epoch, logs=None):
        if self.guard.reason:
            return  # diverged: the last good checkpoint stays
        values = floats(logs)
        if not all(math.isfinite(v) for v in values.values()):
            return
        better = not self.monitor  # keep-best needs the monitored value (absent after a cut validation)
        if self.monitor and self.monitor in values:
            value = values[self.monitor]
            better = (
                self.best_value is None
                or (value > self.best_value if monitor_mode(self.monitor) == "max" else value < self.best_value)
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
        from workbench.core.engine.checkpoint import copy_atomically

        if better:
            copy_atomically(self.folder.checkpoint_path, self.folder.model_path)
        elif self._unsaved_best is not None:
            self._write_best(self._target)

    def _write_best(self, model):
        """Write the kept best weights to model.keras, then put the current ones back."""

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
            "plateau": None if self.plateau is None else self.plateau.counters(),
            "seconds": round(self._previous_seconds + time.perf_counter() - self._started, 3),
        }

    def save_checkpoint(self, epochs_done):

        state = self._state(epochs_done, self.progress.stopped_in_epoch)
        took = checkpoint.save(self._target, self.folder.checkpoint_path, state, mirror=self.folder.state_path)
        self.checkpoint_seconds += took
        self.checkpoints += 1
        self._last_save = (time.perf_counter(), took)

    def keep_last_good(self) -> bool:
        """After a divergence: model.keras holds the best (or last) epoch that finished, if one did."""
        if self._unsaved_best is not None:
            self._write_best(self._target)
        if not self.folder.model_path.is_file() and self.folder.checkpoint_path.is_file():
            copy_atomically(self.folder.checkpoint_path, self.folder.model_path)
        return self.folder.model_path.is_file()

    def finish(self, model):
        """At the end, a model file must exist even if no epoch finished (stopped early)."""
        if self._unsaved_best is not None:
            self._write_best(model)  # the full model: a head trained on cached features has finished
        if self.folder.model_path.is_file():
            return
        if self.folder.checkpoint_path.is_file():
            copy_atomically(self.folder.checkpoint_path, self.folder.model_path)
        else:
            from workbench.core.base.files import atomic_replace_with

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
