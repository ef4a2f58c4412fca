"""Helpers shared by the core tests (imported by name: pytest puts this folder on sys.path)."""

from workbench.core.config.run import RunConfig


def tiny_config(folder, epochs: int = 2, **changes) -> RunConfig:
    """MobileNetV2 x0.35 at 32 px from random weights, every layer training: seconds per run.

    `changes` are dotted paths, e.g. tiny_config(folder, **{"training.batch_size": 4}).
    """
    config = RunConfig(name="tiny")
    config.data.folder = str(folder)
    config.data.image_size = 32
    config.data.validation_split = 0.25
    config.backbone.name = "MobileNetV2"
    config.backbone.width = 0.35
    config.backbone.weights = "none"
    config.freeze.policy = "none"
    config.training.epochs = epochs
    config.training.batch_size = 8
    return config.replace(**changes)
