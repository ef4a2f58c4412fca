"""The config the app opens with: ready to train on the bundled demo images, offline.

Qt-free, so the choice of weights and the words that explain it can be tested
without a window.
"""

from __future__ import annotations

from workbench.core.config.backbone_catalogue import BACKBONES
from workbench.core.config.run import RunConfig
from workbench.core.config.weights_files import imagenet_file_name, keras_cache_dir
from workbench.core.runs.saved_backbones import bundled_demo_backbone, is_bundled_backbone
from workbench.resources import resource_path
from workbench.ui.weights_cache import imagenet_cached

# Only the head trains on the frozen backbone's cached features: a larger step than end-to-end
# training's 1e-3 reaches the plateau in the first epoch (the bundled backbone on the demo:
# 0.79 validation accuracy after epoch 1 at 3e-3, 0.56 at 1e-3; resources/backbones/README.md).
HEAD_LEARNING_RATE = 3e-3


def first_launch_config() -> RunConfig:
    """MobileNetV2 (width 0.35) on resources/demo at 64 px for 5 epochs, the backbone frozen.

    Weights: ImageNet when Keras has them cached already; otherwise the backbone
    bundled in resources/backbones (pretrained on Fashion-MNIST classes that are not
    in the demo), so pressing Train shows real transfer offline. With the backbone
    frozen and no augmentation its features are cached and the head trains in seconds.
    Only when the bundled file is missing too does the re-initialised network train
    end to end.
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
    bundled = bundled_demo_backbone()
    if imagenet_cached(config):
        config.backbone.weights = "imagenet"
        config.freeze.policy = "all"
        config.training.learning_rate = HEAD_LEARNING_RATE
    elif bundled is not None:
        config.backbone.weights = "file"
        config.backbone.weights_file = str(bundled)
        config.freeze.policy = "all"
        config.training.learning_rate = HEAD_LEARNING_RATE
    else:
        config.backbone.weights = "none"
        config.freeze.policy = "none"
    return config


def imagenet_how_to(config: RunConfig) -> str:
    """How to get the ImageNet file by hand for this backbone and size: the exact name and folder."""
    spec = BACKBONES.get(config.backbone.name)
    try:
        name = imagenet_file_name(spec, config.data.image_size, config.backbone.width) if spec else ""
    except Exception:  # noqa: BLE001 - no ImageNet weights for this backbone: nothing to fetch
        name = ""
    if not name:
        return ""
    return (f"For ImageNet weights: choose ImageNet when online (downloaded once), or put "
            f"'{name}' into {keras_cache_dir()}.")


def weights_note(config: RunConfig, cached: bool | None = None) -> str:
    """Which weights the backbone starts from and why, in words for the Backbone panel.

    `cached`: whether the ImageNet file is on disk (weights_cache.imagenet_cached), None when unknown.
    """
    b = config.backbone
    if b.weights == "imagenet":
        if cached is True:
            return (f"Weights: ImageNet, found in the Keras cache ({keras_cache_dir()}): "
                    "no download needed.")
        if cached is False:
            return ("Weights: ImageNet, not downloaded yet: Keras downloads them once when training "
                    f"starts (internet needed), then keeps them in {keras_cache_dir()}.")
        return "Weights: ImageNet, from the Keras cache (~/.keras/models), downloaded once."
    if b.weights == "file" and b.weights_file and is_bundled_backbone(b.weights_file):
        text = ("Weights: the backbone bundled with Workbench (pretrained on Fashion-MNIST classes "
                "that are not in the demo)")
        if cached is False:
            return (f"{text}, because ImageNet weights are not cached here: no internet needed. "
                    f"{imagenet_how_to(config)}").strip()
        return f"{text}: no internet needed."
    if b.weights == "file":
        return "Weights: from a file; it must hold weights of this backbone, at this width."
    if cached is False:
        return ("Weights: none, re-initialised (random weights, trained from scratch): the ImageNet "
                f"file is not cached. {imagenet_how_to(config)}").strip()
    return "Weights: none, re-initialised: the same architecture with random weights, the from-scratch baseline."
