"""Building a catalogue backbone with keras.applications, and finding its blocks among its layers.

The catalogue itself (names, sizes, block patterns) is plain data in
core/config/backbone_catalogue.py; this module is where Keras builds it.
"""

from __future__ import annotations

import re
from typing import Any

from workbench.core.config.backbone_catalogue import BackboneSpec, get_backbone


def build_backbone(spec_name: str, image_size: int, width: float = 1.0, weights: str | None = None) -> Any:
    """The keras.applications model without its top, for (image_size, image_size, 3) inputs.

    `weights` goes to the constructor: None (random), "imagenet" (Keras downloads
    it, see workbench.core.engine.weights for the offline case) or a file path.
    Whatever the weights, the architecture is the same (see _fold_imagenet_rescaling),
    so weights saved from one build load into another.
    """
    import keras

    spec = get_backbone(spec_name)
    check_build_args(spec, image_size, width)
    constructor = getattr(keras.applications, spec.application)
    kwargs: dict[str, Any] = dict(spec.kwargs)
    if spec.has_width:
        kwargs["alpha"] = float(width)

    def build(w: str | None) -> Any:
        return constructor(include_top=False, weights=w, input_shape=(image_size, image_size, 3), **kwargs)

    if weights == "imagenet" and spec.application.startswith("EfficientNetB"):
        model = build(None)
        model.set_weights(build("imagenet").get_weights())
        _fold_imagenet_rescaling(model)
        refresh_statistics(model)
        return model
    return build(weights)


def check_build_args(spec: BackboneSpec, image_size: int, width: float) -> None:
    """Raise ValueError, worded for a person, for a size or width the backbone cannot take."""
    if image_size < spec.min_size:
        raise ValueError(f"{spec.name} needs images of at least {spec.min_size} px (got {image_size})")
    if width not in spec.widths:
        raise ValueError(f"{spec.name} supports width {', '.join(str(w) for w in spec.widths)} (got {width})")


# ImageNet std per RGB channel, as keras.applications.efficientnet uses it.
_EFFICIENTNET_STDDEV_RGB = (0.229, 0.224, 0.225)


def _fold_imagenet_rescaling(model: Any) -> None:
    """Make an EfficientNet (V1) built without weights compute what the ImageNet build does.

    With weights="imagenet" Keras inserts an extra Rescaling(1/sqrt(std)) after
    the Normalization layer, so the two builds differ in architecture and a file
    saved from one would load into the other with the wrong input scaling.
    Folding that factor into the Normalization variance (var * std) keeps one
    architecture: (x - m) / sqrt(var) / sqrt(std) == (x - m) / sqrt(var * std).
    """
    import keras
    import numpy as np

    norm = next(layer for layer in model.layers if isinstance(layer, keras.layers.Normalization))
    mean, variance, count = norm.get_weights()
    std = np.asarray(_EFFICIENTNET_STDDEV_RGB, dtype=variance.dtype).reshape(variance.shape)
    norm.set_weights([mean, variance * std, count])
    norm.finalize_state()


def refresh_statistics(model: Any) -> None:
    """Make layers that precompute from their weights (Normalization) use new ones.

    `set_weights` only assigns the variables; Normalization keeps the mean and
    variance it computed before until `finalize_state` runs (Keras's own
    `load_weights` calls it, `set_weights` does not).
    """
    for layer in model.layers:
        if hasattr(layer, "finalize_state"):
            layer.finalize_state()


def block_of_layers(model: Any, spec: BackboneSpec) -> list[int]:
    """For each layer of `model.layers`, the index of its block in `spec.blocks`.

    A layer takes the first block whose regex matches its name; a layer that
    matches none belongs to the block before it (block 0 at the start).
    """
    patterns = [re.compile(regex) for _, regex in spec.blocks]
    result: list[int] = []
    current = 0
    for layer in model.layers:
        for index, pattern in enumerate(patterns):
            if pattern.search(layer.name):
                current = index
                break
        result.append(current)
    return result


def block_problems(model: Any, spec: BackboneSpec) -> list[str]:
    """What is wrong with `spec.blocks` for this model; empty when every layer with
    weights matches a block, the blocks come in order, and none is empty."""
    patterns = [re.compile(regex) for _, regex in spec.blocks]
    problems: list[str] = []
    seen: list[int] = []
    for layer in model.layers:
        if not layer.weights:
            continue
        matches = [i for i, p in enumerate(patterns) if p.search(layer.name)]
        if not matches:
            problems.append(f"layer {layer.name!r} matches no block")
            continue
        if seen and matches[0] < seen[-1]:
            problems.append(
                f"layer {layer.name!r} falls in {spec.blocks[matches[0]][0]!r} "
                f"after a layer of {spec.blocks[seen[-1]][0]!r}"
            )
        seen.append(matches[0])
    for index, (label, _) in enumerate(spec.blocks):
        if index not in seen:
            problems.append(f"block {label!r} holds no layer with weights")
    return problems
