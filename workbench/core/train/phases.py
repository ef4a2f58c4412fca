"""Which layers learn when: the head alone, then fine-tuning; BatchNorm statistics kept honest.

A two-phase run trains the head on a frozen backbone for `phase1_epochs`, then unfreezes per the
freeze policy and recompiles at `learning_rate * finetune_lr_factor`. A resumed run picks up in the
phase its epoch belongs to: a checkpoint written at the switch still holds phase 1's freezing, so
phase 2 starts from it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from workbench.core.base.events import Event, Message
from workbench.core.config import derived
from workbench.core.config.run import RunConfig
from workbench.core.engine import batchnorm, features
from workbench.core.engine import model as model_lib
from workbench.core.engine.compile import compile_classifier, make_optimizer

Emit = Callable[[Event], None]


def freeze_bn_only(model) -> bool:
    """True when no BatchNorm layer learns, so there are no statistics to repair."""
    return not batchnorm.trainable_batchnorm_layers(model)


def batchnorm_recalibration(model, train_dataset, train_images: int, emit: Emit):
    count = min(train_images, batchnorm.sample_size(train_images))
    emit(Message("info", "BatchNorm layers are learning: their statistics are recomputed on "
                         f"{count} training images before each validation"))
    return batchnorm.make_callback(model, train_dataset, count)


def fit_once(model, config: RunConfig, data, emit: Emit, saver, frozen: bool, **fit) -> None:
    """model.fit, or with the whole backbone frozen and no augmentation, the head on cached features."""
    if frozen and features.usable(config):
        features.fit_head(model, config, data, emit, saver, **fit)
    else:
        model.fit(data.train, **fit)


def start_phase2(model, config: RunConfig, emit: Emit, epoch: int, callbacks: list, data):
    """Unfreeze per the freeze policy and recompile at the fine-tuning rate; the history runs on.

    Emits a Message with kind "phase" and the switch epoch, which the plots mark with a line.
    """
    t = config.training
    freeze = model_lib.freeze_for(model, config, phase=2)
    rate = t.learning_rate * t.finetune_lr_factor
    compile_classifier(model, config, make_optimizer(config, learning_rate=rate))
    emit(Message("info", f"Phase 2 from epoch {epoch + 1}: fine-tuning at learning rate {rate:.3g}; "
                         f"{freeze.text}", kind="phase", epoch=epoch))
    if not freeze_bn_only(model) and not any(type(c).__name__ == "RecalibrateBatchNorm" for c in callbacks):
        callbacks.append(batchnorm_recalibration(model, data.train, data.train_count, emit))
    return freeze


def fit_phases(model, config: RunConfig, data, emit: Emit, *, saver, progress, guard, stop_event,
               callbacks: list, initial_epoch: int, resumed: bool, freeze: Any, fit: dict) -> Any:
    """Train from `initial_epoch` to the last epoch, through both phases of a two-phase run.

    Returns the freeze counts in force at the end (phase 2's once it started).
    """
    t = config.training
    switch = t.phase1_epochs if t.two_phase else 0
    if switch > initial_epoch:  # two-phase: the head alone first, then fine-tuning
        fit_once(model, config, data, emit, saver, True, epochs=switch, initial_epoch=initial_epoch, **fit)
        if (progress.epochs_done >= switch and not progress.model.stop_training
                and not guard.reason and not stop_event.is_set()):
            freeze = start_phase2(model, config, emit, switch, callbacks, data)
            saver.carry_time()
            model.fit(data.train, epochs=t.epochs, initial_epoch=switch, **fit)
    elif t.two_phase and resumed and initial_epoch == switch and switch < t.epochs:
        # Stopped right at the switch: the checkpoint was written in phase 1, so phase 2 starts now.
        freeze = start_phase2(model, config, emit, switch, callbacks, data)
        model.fit(data.train, epochs=t.epochs, initial_epoch=switch, **fit)
    else:
        frozen = not resumed and derived.backbone_frozen(config)
        fit_once(model, config, data, emit, saver, frozen, epochs=t.epochs, initial_epoch=initial_epoch, **fit)
    return freeze
