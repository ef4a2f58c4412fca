"""Grad-CAM on small inputs: a smooth map at the size it is shown, and a caption when the feature map is coarse."""

import keras
import numpy as np

from workbench.core.analysis import gradcam


def tiny_model(size: int = 32, cells: int = 2) -> keras.Model:
    """Conv -> a `cells` x `cells` feature map -> pooled -> softmax over 3 classes (random weights)."""
    keras.utils.set_random_seed(3)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D(size // cells)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def quadrant_image(size: int = 32) -> np.ndarray:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 60, (size, size, 3)).astype(np.uint8)
    image[: size // 2, : size // 2] = 230  # one bright quadrant: the cells differ
    return image


def test_a_2x2_map_is_upsampled_smoothly_to_the_size_asked_for():
    model = tiny_model()
    cam = gradcam.grad_cam_map(model, quadrant_image(), size=(160, 200))
    heat = cam.heatmap
    assert heat.shape == (160, 200) and heat.dtype == np.float32
    assert cam.feature_size == (2, 2)
    assert 0.0 <= heat.min() and heat.max() <= 1.0
    assert heat.max() - heat.min() > 0.2  # the cells differ, so the map is not flat
    # No block edges: neighbouring pixels differ little (a nearest-neighbour 2x2 map jumps by its whole range).
    steps = max(np.abs(np.diff(heat, axis=0)).max(), np.abs(np.diff(heat, axis=1)).max())
    assert steps < 0.05 * (heat.max() - heat.min()) * 2, steps
    assert "only 2×2 cells" in cam.note and "where, roughly, not what" in cam.note


def test_the_coarse_note_is_given_only_for_small_feature_maps():
    assert "4×4" in gradcam.coarse_note((4, 4))
    assert gradcam.coarse_note((7, 7)) == ""
    cam = gradcam.grad_cam_map(tiny_model(32, cells=8), quadrant_image())
    assert cam.feature_size == (8, 8) and cam.note == "" and cam.heatmap.shape == (32, 32)


def test_the_old_call_and_the_legend_still_work():
    heat = gradcam.grad_cam(tiny_model(), quadrant_image())
    assert heat.shape == (32, 32)
    scale = gradcam.colour_scale(64)
    assert scale.shape == (1, 64, 3) and scale.dtype == np.uint8
    assert scale[0, 0].astype(int).sum() < scale[0, -1].astype(int).sum()  # low is dark, high is bright
