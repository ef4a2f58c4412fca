"""Compiling a classifier: the optimizer, the loss, class weights and the XLA choice a config
asks for, in one place."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from workbench.core.config.run import RunConfig
from workbench.core.engine.perf import jit_compile_argument


def make_optimizer(config: RunConfig, learning_rate: float | None = None) -> Any:
    """The config's optimizer, at `learning_rate` when given (fine-tuning's lower rate).

    The rate is a plain number: the schedules (engine/schedules.py, callbacks.ResumablePlateau)
    set it as training goes."""
    t = config.training
    rate = t.learning_rate if learning_rate is None else learning_rate
    if t.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=rate, momentum=t.momentum)
    if t.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=rate)
    return keras.optimizers.Adam(learning_rate=rate)


def compile_classifier(model: Any, config: RunConfig, optimizer: Any = None, *, jit: bool = True) -> None:
    """model.compile with the config's loss (label smoothing), accuracy and XLA choice."""
    model.compile(
        optimizer=optimizer if optimizer is not None else make_optimizer(config),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.training.label_smoothing),
        metrics=["accuracy"],
        jit_compile=jit_compile_argument(config.training.jit_compile) if jit else False,
    )


def class_weights(config: RunConfig, class_names: Sequence[str], train_counts: Sequence[int]) -> dict[int, float] | None:
    """Keras's `class_weight` for fit (class index -> weight), or None when the config has them off.

    "balanced" gives each class images / (classes * its images), as scikit-learn does, so every
    class weighs the same in the loss in all; a class without training images weighs 1.
    "manual" takes the config's weights by class name; classes not named weigh 1.
    """
    t = config.training
    if t.class_weights == "balanced":
        total, k = sum(train_counts), len(class_names)
        return {i: (total / (k * n) if n else 1.0) for i, n in enumerate(train_counts)}
    if t.class_weights == "manual":
        return {i: float(t.manual_class_weights.get(name, 1.0)) for i, name in enumerate(class_names)}
    return None


def class_weights_text(weights: dict[int, float], class_names: Sequence[str]) -> str:
    return "Class weights: " + ", ".join(f"{name} {weights[i]:.3g}" for i, name in enumerate(class_names))


def monitor_mode(monitor: str) -> str:
    """Whether a monitored metric improves upwards ("max", accuracies) or downwards ("min", losses)."""
    return "max" if "accuracy" in monitor else "min"
