"""Feeds a trial's per-epoch validation accuracy to Optuna's pruner, and ends the run when told to.

A plain module-level Keras callback, added to a trial's run through `run(callbacks=...)`.
"""

from __future__ import annotations

import math

import keras

from workbench.core.config.tune import METRIC


class PruningCallback(keras.callbacks.Callback):
    """Reports `val_accuracy` at each epoch's end as step `offset + epoch`; stops training when the pruner says so.

    With k folds a fold's epochs report at steps fold * epochs + epoch, so the median pruner
    compares a trial's fold-2 epoch-3 value with other trials' fold-2 epoch-3 values.
    """

    def __init__(self, trial, offset: int = 0, on_prune=None):
        super().__init__()
        self.trial = trial
        self.offset = offset
        self.on_prune = on_prune  # called with the epoch (0-based) at which the trial was pruned
        self.pruned_at: int | None = None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(METRIC)
        if value is None or not math.isfinite(float(value)):
            return
        self.trial.report(float(value), self.offset + epoch)
        if self.trial.should_prune():
            self.pruned_at = epoch
            self.model.stop_training = True
            if self.on_prune is not None:
                self.on_prune(epoch)
