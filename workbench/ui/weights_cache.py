"""Whether ImageNet weights are already on disk, asked of the core without importing Keras."""

from __future__ import annotations

from workbench.core.config.run import RunConfig


def imagenet_cached(config: RunConfig) -> bool | None:
    """True/False when the core can tell (`core.weights.imagenet_weights_cached`), None when unknown.

    Any failure there means "unknown": a display hint must never break the window.
    """
    try:
        from workbench.core.config import backbone_catalogue, weights_files

        check = weights_files.imagenet_weights_cached
    except (ImportError, AttributeError):
        return None
    spec = backbone_catalogue.BACKBONES.get(config.backbone.name)
    if spec is None or not spec.imagenet or not getattr(spec, "imagenet_file", ""):
        return None
    try:
        return check(spec, config.data.image_size, config.backbone.width) is not None
    except Exception:  # noqa: BLE001
        return None
