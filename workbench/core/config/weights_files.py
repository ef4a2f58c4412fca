"""Where Keras keeps downloaded weights (~/.keras/models) and the file each backbone needs: plain paths, no TensorFlow."""

from __future__ import annotations

import os
from pathlib import Path

from workbench.core.config.backbone_catalogue import BackboneSpec


class WeightsUnavailable(RuntimeError):
    """The chosen weights cannot be had here (offline, file missing); the message says what to do."""


def keras_cache_dir() -> Path:
    """The folder keras.utils.get_file keeps downloaded weights in, by Keras's own rule.

    $KERAS_HOME, else ~/.keras (/tmp/.keras when home is not writable), then
    "models". Computed without importing Keras.
    """
    base = os.environ.get("KERAS_HOME")
    if not base:
        home = os.path.expanduser("~")
        base = os.path.join(home if os.access(home, os.W_OK) else "/tmp", ".keras")
    base = os.path.expanduser(base)
    if os.path.isdir(base) and not os.access(base, os.W_OK):
        base = os.path.join("/tmp", ".keras")
    return Path(base) / "models"


def imagenet_file_name(spec: BackboneSpec, image_size: int, width: float = 1.0) -> str:
    """The file name keras.applications looks for (include_top=False)."""
    if not spec.imagenet or not spec.imagenet_file:
        raise WeightsUnavailable(f"{spec.name} has no ImageNet weights; choose 'none' or a file")
    sizes = spec.imagenet_sizes
    rows = image_size if image_size in sizes else (sizes[-1] if sizes else image_size)
    return spec.imagenet_file.format(alpha=float(width), rows=rows)


def imagenet_weights_cached(spec: BackboneSpec, image_size: int, width: float = 1.0) -> Path | None:
    """The cached ImageNet file if it is already here (no download needed), else None."""
    if not spec.imagenet or not spec.imagenet_file:
        return None
    path = keras_cache_dir() / imagenet_file_name(spec, image_size, width)
    return path if path.is_file() else None
