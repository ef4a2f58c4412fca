"""The config the app opens with: ready to train on the bundled demo images, offline."""

from __future__ import annotations

from workbench.core.config.run import RunConfig
from workbench.resources import resource_path
from workbench.ui.weights_cache import imagenet_cached


def first_launch_config() -> RunConfig:
    """MobileNetV2 (width 0.35) on resources/demo at 64 px for 5 epochs.

    ImageNet weights only when Keras has them cached already; otherwise the
    re-initialised network trains end to end, so pressing Train works offline.
    """
    config = RunConfig(name="demo")
    try:
        config.data.folder = str(resource_path("demo"))
    except FileNotFoundError:
        config.data.folder = ""  # the Data panel then asks for a folder
    config.data.image_size = 64
    config.backbone.name = "MobileNetV2"
    config.backbone.width = 0.35
    config.training.epochs = 5
    config.training.batch_size = 16
    config.training.learning_rate = 1e-3
    if imagenet_cached(config):
        config.backbone.weights = "imagenet"
        config.freeze.policy = "all"
    else:
        config.backbone.weights = "none"
        config.freeze.policy = "none"
    return config
