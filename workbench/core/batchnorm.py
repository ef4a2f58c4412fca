"""Recompute BatchNorm statistics before each validation ("precise BN").

BatchNorm layers that learn (a re-initialised backbone, or fine-tuning with
BatchNorm unfrozen) keep moving averages of their batch statistics. On a small
dataset the averages lag far behind the quickly changing weights, so the model
scores near chance in inference mode while its training accuracy climbs (see
MEASURED.md). Before each validation pass we set every trainable BatchNorm's
moving mean and variance to the exact statistics of a fixed sample of training
images under the current weights: one forward pass, no labels, no validation data.
"""

from __future__ import annotations

from typing import Any


def trainable_batchnorm_layers(model: Any) -> list[Any]:
    import keras

    found = []

    def walk(layer: Any) -> None:
        if isinstance(layer, keras.layers.BatchNormalization):
            if layer.trainable:
                found.append(layer)
        for sub in getattr(layer, "layers", []):
            walk(sub)

    walk(model)
    return found


def recalibrate(model: Any, images: Any, layers: list[Any]) -> None:
    """Set each layer's moving statistics to those of `images` under the current weights."""
    saved = [layer.momentum for layer in layers]
    try:
        for layer in layers:
            layer.momentum = 0.0  # moving = this batch's statistics
        model(images, training=True)
    finally:
        for layer, momentum in zip(layers, saved, strict=True):
            layer.momentum = momentum


def sample_images(dataset: Any, count: int) -> Any:
    """Up to `count` training images, taken once at the start of a run."""
    import numpy as np

    batches, total = [], 0
    for images, _labels in dataset:
        batches.append(images.numpy())
        total += len(batches[-1])
        if total >= count:
            break
    return np.concatenate(batches)[:count] if batches else None


def make_callback(model: Any, images: Any) -> Any:
    """A Keras callback that recalibrates just before each validation pass."""
    import keras

    layers = trainable_batchnorm_layers(model)

    class RecalibrateBatchNorm(keras.callbacks.Callback):
        def on_test_begin(self, logs=None):
            if layers and images is not None:
                recalibrate(self.model, images, layers)

    return RecalibrateBatchNorm()
