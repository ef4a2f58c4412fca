"""Compiling a classifier: the optimizer, loss and XLA choice a config asks for, in one place."""

from __future__ import annotations

from typing import Any

import keras

from workbench.core.config.run import RunConfig
from workbench.core.engine.perf import jit_compile_argument


def make_optimizer(config: RunConfig, learning_rate: float | None = None) -> Any:
    """The config's optimizer, at `learning_rate` when given (fine-tuning's lower rate)."""
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


def monitor_mode(monitor: str) -> str:
    """Whether a monitored metric improves upwards ("max", accuracies) or downwards ("min", losses)."""
    return "max" if "accuracy" in monitor else "min"
