"""Recompute BatchNorm statistics before each validation ("precise BN").

BatchNorm layers that learn (a re-initialised backbone, or fine-tuning with
BatchNorm unfrozen) keep moving averages of their batch statistics. On a small
dataset the averages lag far behind the quickly changing weights, so the model
scores near chance in inference mode while its training accuracy climbs (see
docs/measured.md). Before each validation pass we set every trainable BatchNorm's
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


def recalibrate(model: Any, images: Any, layers: list[Any], forward: Any = None) -> None:
    """Set each layer's moving statistics to those of `images` under the current weights.

    `forward` is an optional compiled `model(x, training=True)`; it must have been
    traced (first called) while the momentum was 0, as `make_callback` does.
    """
    saved = [layer.momentum for layer in layers]
    try:
        for layer in layers:
            layer.momentum = 0.0  # moving = this batch's statistics
        (forward or (lambda x: model(x, training=True)))(images)
    finally:
        for layer, momentum in zip(layers, saved, strict=True):
            layer.momentum = momentum


def sample_size(train_images: int) -> int:
    """A sixteenth of the training set, between 32 and 128 images: its forward pass costs about 2 %
    of an epoch's training.

    The sample goes through the model in one call (momentum 0 keeps one call's statistics), and
    that call grows faster than the images: 64 cost 0.6 of a 32-image training step, 256 cost 5.9
    (docs/measured.md). Even 32 images give each channel thousands of values (every position counts).
    """
    return max(32, min(128, train_images // 16))


def sample_images(dataset: Any, count: int) -> Any:
    """Up to `count` training images."""
    import numpy as np

    batches, total = [], 0
    for images, _labels in dataset:
        batches.append(images.numpy())
        total += len(batches[-1])
        if total >= count:
            break
    return np.concatenate(batches)[:count] if batches else None


def make_callback(model: Any, dataset: Any, count: int) -> Any:
    """A Keras callback that recalibrates just before each validation pass.

    The sample of `count` training images is taken at the first validation, not before
    training: the first batch does not wait for it (benchmarks/bench_first_batch.py).
    """
    import keras
    import tensorflow as tf

    layers = trainable_batchnorm_layers(model)
    # Compiled once, while the momentum is 0 (the first call happens inside `recalibrate`).
    forward = tf.function(lambda x: model(x, training=True))

    class RecalibrateBatchNorm(keras.callbacks.Callback):
        images: Any = None

        def on_test_begin(self, logs=None):
            if not layers:
                return
            if self.images is None:
                self.images = sample_images(dataset, count)
            if self.images is not None:
                recalibrate(self.model, self.images, layers, forward)

    return RecalibrateBatchNorm()
