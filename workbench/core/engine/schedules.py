"""Learning-rate schedules as callbacks: cosine decay with warm-up, and reduce on plateau.

The cosine schedule works out the rate from the epoch and the batch alone, not from the
optimizer's step count: so a resumed run carries on exactly where it was (the epoch is what
the checkpoint records), the cached-feature path and the streamed one agree (Keras counts an
extra optimizer step per epoch when a dataset's length is unknown: docs/measured.md), and
two-phase fine-tuning gets its own warm-up and decay at its own, smaller rate. Reduce on
plateau keeps its counters in the checkpoint's state (ModelSaver.plateau).
"""

from __future__ import annotations

import math

import keras

from workbench.core.base.events import Message
from workbench.core.config.run import TrainingConfig
from workbench.core.engine.compile import monitor_mode


def cosine_rate(rate: float, position: float, length: float, warmup: float) -> float:
    """The rate `position` epochs into a phase of `length` epochs with `warmup` epochs of warm-up."""
    position = min(max(position, 0.0), length)
    if warmup > 0 and position <= warmup:
        return rate * position / warmup
    return rate * 0.5 * (1.0 + math.cos(math.pi * (position - warmup) / max(length - warmup, 1e-9)))


def phase_of(training: TrainingConfig, epoch: int) -> tuple[float, int, int]:
    """(base rate, first epoch, epochs) of the phase that `epoch` (0-based) belongs to."""
    t = training
    if t.two_phase and epoch >= t.phase1_epochs:
        return t.learning_rate * t.finetune_lr_factor, t.phase1_epochs, t.epochs - t.phase1_epochs
    return t.learning_rate, 0, t.phase1_epochs if t.two_phase else t.epochs


def rate_at(training: TrainingConfig, epoch: int, fraction: float) -> float:
    """The rate `fraction` (0..1) through epoch `epoch` of a run with the cosine schedule."""
    base, first, length = phase_of(training, epoch)
    return cosine_rate(base, epoch - first + fraction, length, training.warmup_epochs)


class CosineSchedule(keras.callbacks.Callback):
    """Sets the optimizer's rate before each batch: batch b of an epoch of n trains at the rate
    (b + 1) / n of the way through it, so the warm-up's last batch trains at the full rate."""

    def __init__(self, training: TrainingConfig, steps_per_epoch: int):
        super().__init__()
        self.training, self.steps = training, max(int(steps_per_epoch), 1)
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        self.model.optimizer.learning_rate = rate_at(self.training, self._epoch, min((batch + 1) / self.steps, 1.0))


class ResumablePlateau(keras.callbacks.ReduceLROnPlateau):
    """Reduce-on-plateau whose counters survive a resume (the reduced rate itself is in the
    optimizer's state, which the checkpoint keeps), and that says when it lowers the rate."""

    def __init__(self, emit, *args, restore=None, **kwargs):
        super().__init__(*args, verbose=0, **kwargs)
        self.emit = emit
        self._restore = restore or {}

    @classmethod
    def for_config(cls, emit, training, restore=None):
        """The plateau schedule of a run's training config (its monitor, factor and patience)."""
        return cls(emit, monitor=training.monitor, factor=training.plateau_factor,
                   patience=training.plateau_patience, mode=monitor_mode(training.monitor), restore=restore)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.wait = int(self._restore.get("wait", 0))
        self.cooldown_counter = int(self._restore.get("cooldown", 0))
        if self._restore.get("best") is not None:
            self.best = float(self._restore["best"])
        self._restore = {}  # phase 2's fit starts counting afresh, at its new rate

    def on_epoch_end(self, epoch, logs=None):
        before = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        super().on_epoch_end(epoch, logs)
        after = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        if after < before:
            self.emit(Message("info", f"{self.monitor} has not improved for {self.patience} epoch(s): "
                                      f"learning rate {before:.3g} -> {after:.3g}"))

    def counters(self) -> dict:
        """What a resume needs to carry on counting (kept in the checkpoint's state)."""
        return {"wait": int(self.wait), "cooldown": int(self.cooldown_counter), "best": float(self.best)}


def add_schedule(callbacks: list, saver, emit, training: TrainingConfig, steps_per_epoch: int,
                 state: dict) -> None:
    """Add the config's schedule to a run's callbacks (a constant rate needs none)."""
    if training.lr_schedule == "plateau":  # before the saver: the checkpoint holds the lowered rate and the counters
        saver.plateau = ResumablePlateau.for_config(emit, training, state.get("plateau"))
        callbacks.insert(callbacks.index(saver), saver.plateau)
    elif training.lr_schedule == "cosine":
        callbacks.append(CosineSchedule(training, steps_per_epoch))
