"""Grad-CAM (Selvaraju et al., 2017): which parts of an image drove the model's answer.

The gradient of the class score with respect to the backbone's last feature map,
averaged over space, weighs each channel; the weighted sum of channels, with
negative evidence cut off, is the heat map. The score is taken before the softmax,
since a confident softmax has almost no gradient left.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def grad_cam(model: Any, image: Any, class_index: int | None = None) -> np.ndarray:
    """A heat map in [0, 1] with the image's (H, W); class_index defaults to the predicted class.

    `image` is raw RGB (0..255), as `dataset.load_image` gives it; it is resized to the
    model's input size if needed. The model must be a chain of layers with a feature map
    (a nested "backbone" model, or else the last layer with a 4-D output), as build_model
    makes. All zeros means no part of the image spoke for the class.
    """
    import tensorflow as tf

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected one RGB image (H, W, 3), got shape {image.shape}")
    height, width = image.shape[:2]
    size = model.inputs[0].shape[1:3]
    x = tf.convert_to_tensor(image[None].astype("float32"))
    if tuple(size) != (height, width) and None not in size:
        x = tf.image.resize(x, tuple(size), method="bilinear")

    before, after = _split_at_feature_map(model)
    features = _run(before, x)
    with tf.GradientTape() as tape:
        tape.watch(features)
        scores = _run(after[:-1], features)
        scores = _logits(after[-1], scores)
        if class_index is None:
            class_index = int(tf.argmax(scores[0]))
        score = scores[:, class_index]
    grads = tape.gradient(score, features)
    if grads is None:
        raise ValueError("the class score does not depend on the feature map; Grad-CAM cannot explain it")
    weights = tf.reduce_mean(grads, axis=(1, 2))  # one weight per channel
    cam = tf.nn.relu(tf.reduce_sum(features * weights[:, None, None, :], axis=-1))[0]
    cam = tf.image.resize(cam[..., None], (height, width), method="bilinear")[..., 0].numpy()
    peak = float(cam.max())
    if peak <= 0:
        return np.zeros((height, width), np.float32)
    return np.clip(cam / peak, 0.0, 1.0).astype(np.float32)


def _split_at_feature_map(model: Any) -> tuple[list[Any], list[Any]]:
    """The model's layers up to and including the feature map's, and the ones after."""
    import keras

    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    names = [layer.name for layer in layers]
    if "backbone" in names:
        cut = names.index("backbone")
    else:
        four_d = [i for i, layer in enumerate(layers) if len(layer.output.shape) == 4]
        if not four_d:
            raise ValueError("the model has no 4-D feature map for Grad-CAM")
        cut = four_d[-1]
    if cut == len(layers) - 1:
        raise ValueError("the feature map is the model's output; Grad-CAM needs layers after it")
    return layers[: cut + 1], layers[cut + 1 :]


def _run(layers: list[Any], x: Any) -> Any:
    for layer in layers:
        x = layer(x, training=False)
    return x


def _logits(layer: Any, x: Any) -> Any:
    """The last layer's output before its softmax, when it is a softmax Dense layer."""
    import keras

    if isinstance(layer, keras.layers.Dense) and layer.activation is keras.activations.softmax:
        out = keras.ops.matmul(keras.ops.cast(x, layer.kernel.dtype), layer.kernel)
        return out + layer.bias if layer.use_bias else out
    return layer(x, training=False)


# A perceptually ordered colour map (close to matplotlib's "inferno"): dark, red, yellow.
_COLOUR_STOPS = np.array(
    [[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66], [245, 125, 21], [250, 193, 39], [252, 255, 164]],
    dtype=np.float64,
)


def colourise(heatmap: Any) -> np.ndarray:
    """A [0, 1] map to RGB uint8 by interpolating the colour stops."""
    h = np.clip(np.nan_to_num(np.asarray(heatmap, dtype=np.float64)), 0.0, 1.0)
    position = h * (len(_COLOUR_STOPS) - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, len(_COLOUR_STOPS) - 1)
    t = (position - low)[..., None]
    rgb = _COLOUR_STOPS[low] * (1 - t) + _COLOUR_STOPS[high] * t
    return np.rint(rgb).astype(np.uint8)


def overlay(image_uint8: Any, heatmap: Any, alpha: float = 0.45) -> np.ndarray:
    """The image with the coloured heat map blended over it (RGB uint8, the image's size)."""
    image = np.asarray(image_uint8)
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    image = image[..., :3].astype(np.float64)
    heat = np.asarray(heatmap, dtype=np.float32)
    if heat.shape != image.shape[:2]:
        from PIL import Image

        heat = np.asarray(Image.fromarray(heat, "F").resize((image.shape[1], image.shape[0]), Image.Resampling.BILINEAR))
    colours = colourise(heat).astype(np.float64)
    blended = (1 - alpha) * image + alpha * colours
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)
