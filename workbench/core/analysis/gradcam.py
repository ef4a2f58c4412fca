"""Grad-CAM (Selvaraju et al., 2017): which parts of an image drove the model's answer.

The gradient of the class score with respect to the backbone's last feature map,
averaged over space, weighs each channel; the weighted sum of channels, with
negative evidence cut off, is the heat map. The score is taken before the softmax,
since a confident softmax has almost no gradient left.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

COARSE_CELLS = 4  # a last feature map this small (or smaller) says where, roughly, not what


@dataclass(frozen=True)
class CamMap:
    """A Grad-CAM heat map in [0, 1] at the size asked for, and the feature map it came from."""

    heatmap: np.ndarray  # (H, W) float32, smooth (bilinear from the feature map's cells)
    feature_size: tuple[int, int]  # the last feature map's cells (rows, columns)
    class_index: int

    @property
    def note(self) -> str:
        return coarse_note(self.feature_size)


def coarse_note(feature_size: tuple[int, int]) -> str:
    """A caption for maps made from a very coarse feature map ("" when it is fine enough)."""
    rows, columns = feature_size
    if max(rows, columns) > COARSE_CELLS:
        return ""
    return (f"The model's last feature map is only {rows}×{columns} cells: the map shows where, "
            "roughly, not what.")


def upsample(cells: Any, size: tuple[int, int]) -> np.ndarray:
    """A small map to (H, W) by bilinear interpolation between the cells' centres, kept in [0, 1]:
    smooth, no block edges, and each cell's value stays at its centre (bicubic would overshoot)."""
    from PIL import Image

    cells = np.asarray(cells, dtype=np.float32)
    height, width = int(size[0]), int(size[1])
    if cells.shape == (height, width):
        return np.clip(cells, 0.0, 1.0)
    resized = Image.fromarray(cells, "F").resize((width, height), Image.Resampling.BILINEAR)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def grad_cam(model: Any, image: Any, class_index: int | None = None) -> np.ndarray:
    """A heat map in [0, 1] with the image's (H, W); class_index defaults to the predicted class.

    `image` is raw RGB (0..255), as `dataset.load_image` gives it; it is resized to the
    model's input size if needed. The model must be a chain of layers with a feature map
    (a nested "backbone" model, or else the last layer with a 4-D output), as build_model
    makes. All zeros means no part of the image spoke for the class.
    """
    image = np.asarray(image)
    return grad_cam_map(model, image, class_index, size=image.shape[:2]).heatmap


def grad_cam_map(model: Any, image: Any, class_index: int | None = None,
                 size: tuple[int, int] | None = None) -> CamMap:
    """Grad-CAM of one image as a CamMap whose heat map has `size` (default: the image's (H, W)).

    The map is computed on the last feature map's cells and upsampled bilinearly straight to
    the size it will be shown at, so a 2x2 feature map gives a smooth gradient, not four blocks.
    """
    import tensorflow as tf

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected one RGB image (H, W, 3), got shape {image.shape}")
    height, width = image.shape[:2]
    out_size = (int(size[0]), int(size[1])) if size is not None else (height, width)
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
    cam = tf.nn.relu(tf.reduce_sum(features * weights[:, None, None, :], axis=-1))[0].numpy()
    feature_size = (int(cam.shape[0]), int(cam.shape[1]))
    peak = float(cam.max())
    if peak <= 0:
        return CamMap(np.zeros(out_size, np.float32), feature_size, class_index)
    return CamMap(upsample(cam / peak, out_size), feature_size, class_index)


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
        heat = upsample(heat, image.shape[:2])
    colours = colourise(heat).astype(np.float64)
    blended = (1 - alpha) * image + alpha * colours
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def colour_scale(length: int = 128) -> np.ndarray:
    """The colour map as a (1, length, 3) RGB strip, low on the left: the legend beside a heat map."""
    return colourise(np.linspace(0.0, 1.0, length)[None, :])
