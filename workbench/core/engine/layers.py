"""Workbench's own Keras layers.

They replace Lambda layers so that saved models load with `safe_mode=True`, and
they are registered under the "workbench" package so `keras.saving.load_model`
finds them once this module is imported. This is the one core module that
imports Keras at the top: other modules import it inside functions only, so the
application starts without TensorFlow.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

# ImageNet statistics used by the "caffe" and "torch" conventions of keras.applications.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
TORCH_MEAN_RGB = (0.485, 0.456, 0.406)
TORCH_STD_RGB = (0.229, 0.224, 0.225)

PREPROCESS_MODES = ("tf", "caffe", "torch", "raw")


@keras.saving.register_keras_serializable(package="workbench")
class Preprocess(keras.layers.Layer):
    """Raw RGB pixels (0..255) to what a backbone was trained on.

    Inside the model, so a saved model takes raw pixels and nobody has to
    remember which backbone wanted which scaling.
    - "tf": x / 127.5 - 1 (MobileNetV2)
    - "caffe": RGB to BGR, minus the ImageNet mean per channel (ResNet50, VGG16)
    - "torch": x / 255, minus the ImageNet mean, divided by the std (DenseNet)
    - "raw": unchanged (the backbone rescales by itself)
    """

    def __init__(self, mode: str = "raw", **kwargs):
        super().__init__(**kwargs)
        if mode not in PREPROCESS_MODES:
            raise ValueError(f"unknown preprocess mode {mode!r}; one of {PREPROCESS_MODES}")
        self.mode = mode

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        if self.mode == "tf":
            return x / 127.5 - 1.0
        if self.mode == "caffe":
            return ops.flip(x, axis=-1) - ops.convert_to_tensor(CAFFE_MEAN_BGR, self.compute_dtype)
        if self.mode == "torch":
            mean = ops.convert_to_tensor(TORCH_MEAN_RGB, self.compute_dtype)
            std = ops.convert_to_tensor(TORCH_STD_RGB, self.compute_dtype)
            return (x / 255.0 - mean) / std
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="workbench")
class DropBlock2D(keras.layers.Layer):
    """DropBlock (Ghiasi et al., 2018): drops contiguous squares of a feature map.

    Neighbouring units of a convolutional feature map are correlated, so plain
    dropout barely regularises them; dropping whole block_size x block_size
    squares does. In training about `rate` of the units are dropped (each
    channel gets its own blocks) and the kept ones are rescaled so the expected
    sum is unchanged; in inference the layer is the identity.

    `rate` is a non-trainable variable, so a callback can ramp it during
    training (`layer.rate.assign(r)`); the paper ramps it up from 0. Blocks lie
    wholly inside the map, and `block_size` is clipped to the map's size.
    """

    def __init__(self, rate: float = 0.1, block_size: int = 3, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"DropBlock2D rate must be in [0, 1), got {rate}")
        if int(block_size) < 1:
            raise ValueError(f"DropBlock2D block_size must be at least 1, got {block_size}")
        self.block_size = int(block_size)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.rate = self.add_weight(
            name="rate",
            shape=(),
            initializer=keras.initializers.Constant(float(rate)),
            trainable=False,
            dtype="float32",
        )
        self.supports_masking = True

    def call(self, inputs, training=None):
        if not training:
            return inputs
        h, w = inputs.shape[1], inputs.shape[2]
        if h is None or w is None:  # unknown spatial size: cannot clip a static pool size
            block = self.block_size
            h, w = ops.shape(inputs)[1], ops.shape(inputs)[2]
        else:
            block = min(self.block_size, h, w)
        dtype = self.compute_dtype

        # Seed probability so that about `rate` of the units end up in a block
        # (the paper's gamma; only centres whose block fits inside are drawn).
        hf, wf = ops.cast(h, "float32"), ops.cast(w, "float32")
        valid_area = ops.maximum((hf - block + 1.0) * (wf - block + 1.0), 1.0)
        gamma = ops.convert_to_tensor(self.rate) / float(block * block) * hf * wf / valid_area

        rows, cols = ops.arange(h), ops.arange(w)
        valid_rows = ops.logical_and(rows >= block // 2, rows < h - (block - 1) // 2)
        valid_cols = ops.logical_and(cols >= block // 2, cols < w - (block - 1) // 2)
        valid = ops.logical_and(valid_rows[:, None], valid_cols[None, :])[None, :, :, None]

        noise = keras.random.uniform(ops.shape(inputs), seed=self.seed_generator, dtype="float32")
        seeds = ops.cast(ops.logical_and(noise < gamma, valid), "float32")
        if block > 1:
            seeds = ops.max_pool(seeds, pool_size=block, strides=1, padding="same")
        keep = 1.0 - seeds
        scale = ops.cast(ops.size(keep), "float32") / ops.maximum(ops.sum(keep), 1.0)
        return inputs * ops.cast(keep * scale, dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        rate = float(ops.convert_to_numpy(self.rate))
        return {**super().get_config(), "rate": rate, "block_size": self.block_size, "seed": self.seed}


def walk_layers(model: Any) -> list[Any]:
    """Every layer inside `model`, descending into nested models (ConvNeXt's blocks)."""
    result = []
    for layer in model.layers:
        result.append(layer)
        if hasattr(layer, "layers"):
            result.extend(walk_layers(layer))
    return result


def has_params(layer: Any) -> bool:
    """Whether a layer has something to train. Normalization (fixed input statistics)
    and DropBlock2D (its rate) hold weights that no optimizer touches."""
    return bool(layer.weights) and not isinstance(layer, (keras.layers.Normalization, DropBlock2D))
