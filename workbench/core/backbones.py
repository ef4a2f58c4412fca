"""The backbones Workbench offers, as plain data.

Importing this module must stay cheap (no TensorFlow): the UI lists backbones
and `config.validate` checks sizes before anything heavy is loaded. The
`build_backbone` and `block_of_layers` functions import Keras when called.

`blocks` splits a backbone's layers into the units a person freezes or trains
together. Each block is a (label, regex) pair; a layer belongs to the first
block whose regex matches its name (`re.search`), and a layer that matches none
(padding, activations, the input) belongs to the block before it. The regexes
name only layers that keras.applications names explicitly, never Keras's
automatic names ("activation_17"), which change with every model built in a
process. tests/core/test_backbones.py checks them against the real models:
every layer with weights falls in a block, and blocks come in order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    application: str  # attribute of keras.applications
    preprocess: str  # "tf" ([-1, 1]), "caffe" (BGR, mean-subtracted), "torch" (ImageNet mean/std), "raw" (model does it)
    default_size: int
    min_size: int
    params: int  # parameters without the top, at width 1.0 (keras count_params), for display
    description: str
    blocks: tuple[tuple[str, str], ...]
    widths: tuple[float, ...] = (1.0,)
    imagenet: bool = True
    # The file keras.applications downloads into its cache for include_top=False;
    # "{alpha}" is the width as Keras prints it, "{rows}" the image size.
    imagenet_file: str = ""
    # Image sizes with their own ImageNet file; other sizes use the last one (MobileNetV2 only).
    imagenet_sizes: tuple[int, ...] = ()
    # extra keyword arguments for the keras.applications constructor
    kwargs: tuple[tuple[str, object], ...] = ()

    @property
    def has_width(self) -> bool:
        """Whether the constructor takes a width multiplier (`alpha`)."""
        return len(self.widths) > 1


def _stages(prefix_fmt: str, labels: list[str]) -> tuple[tuple[str, str], ...]:
    return tuple((label, prefix_fmt.format(label)) for label in labels)


def _mobilenet_v3_blocks(count: int) -> tuple[tuple[str, str], ...]:
    return (
        (("stem", r"^(conv|conv_bn)$"), ("block 0", r"^expanded_conv_(?!\d)"))
        + tuple((f"block {i}", rf"^expanded_conv_{i}_") for i in range(1, count + 1))
        + (("top", r"^(conv_1|conv_1_bn)$"),)
    )


BACKBONES: dict[str, BackboneSpec] = {
    spec.name: spec
    for spec in [
        BackboneSpec(
            name="MobileNetV2",
            application="MobileNetV2",
            preprocess="tf",
            default_size=160,
            min_size=32,
            params=2_257_984,
            description="Small and fast (2.3 M parameters); a good first choice on a laptop.",
            blocks=(("stem", r"^(Conv1|bn_Conv1)$"), ("block 0", r"^expanded_conv_"))
            + tuple((f"block {i}", rf"^block_{i}_") for i in range(1, 17))
            + (("top", r"^(Conv_1|Conv_1_bn)$"),),
            widths=(0.35, 0.5, 0.75, 1.0, 1.3, 1.4),
            imagenet_file="mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha}_{rows}_no_top.h5",
            imagenet_sizes=(96, 128, 160, 192, 224),
        ),
        BackboneSpec(
            name="MobileNetV3Small",
            application="MobileNetV3Small",
            preprocess="raw",
            default_size=224,
            min_size=32,
            params=939_120,
            description="The smallest (0.9 M parameters); for very small machines and quick trials.",
            blocks=_mobilenet_v3_blocks(10),
            widths=(0.75, 1.0),
            imagenet_file="weights_mobilenet_v3_small_224_{alpha}_float_no_top_v2.h5",
            kwargs=(("include_preprocessing", True),),
        ),
        BackboneSpec(
            name="MobileNetV3Large",
            application="MobileNetV3Large",
            preprocess="raw",
            default_size=224,
            min_size=32,
            params=2_996_352,
            description="MobileNetV3 at full size (3.0 M parameters): more accurate than V2 at similar speed.",
            blocks=_mobilenet_v3_blocks(14),
            widths=(0.75, 1.0),
            imagenet_file="weights_mobilenet_v3_large_224_{alpha}_float_no_top_v2.h5",
            kwargs=(("include_preprocessing", True),),
        ),
        BackboneSpec(
            name="EfficientNetB0",
            application="EfficientNetB0",
            preprocess="raw",
            default_size=224,
            min_size=32,
            params=4_049_571,
            description="Accurate for its size (4.0 M parameters); slower than the MobileNets on a CPU.",
            blocks=(("stem", r"^(stem_|normalization)"),)
            + _stages(r"^block{}[a-z]_", [str(i) for i in range(1, 8)])
            + (("top", r"^top_"),),
            imagenet_file="efficientnetb0_notop.h5",
        ),
        BackboneSpec(
            name="EfficientNetV2B0",
            application="EfficientNetV2B0",
            preprocess="raw",
            default_size=224,
            min_size=32,
            params=5_919_312,
            description="EfficientNetV2 (5.9 M parameters): trains faster than V1 on a GPU.",
            blocks=(("stem", r"^stem_"),)
            + _stages(r"^block{}[a-z]_", [str(i) for i in range(1, 7)])
            + (("top", r"^top_"),),
            imagenet_file="efficientnetv2-b0_notop.h5",
            kwargs=(("include_preprocessing", True),),
        ),
        BackboneSpec(
            name="ResNet50",
            application="ResNet50",
            preprocess="caffe",
            default_size=224,
            min_size=32,
            params=23_587_712,
            description="The classic residual network (23.6 M parameters); strong but heavy on a CPU.",
            blocks=(("stem", r"^(conv1_|pool1_)"),)
            + _stages(r"^{}_", ["conv2", "conv3", "conv4", "conv5"]),
            imagenet_file="resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        ),
        BackboneSpec(
            name="VGG16",
            application="VGG16",
            preprocess="caffe",
            default_size=224,
            min_size=32,
            params=14_714_688,
            description="Plain stacked convolutions (14.7 M parameters); simple to reason about, slow.",
            blocks=_stages(r"^{}_", [f"block{i}" for i in range(1, 6)]),
            imagenet_file="vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        ),
        BackboneSpec(
            name="DenseNet121",
            application="DenseNet121",
            preprocess="torch",
            default_size=224,
            min_size=32,
            params=7_037_504,
            description="Densely connected (7.0 M parameters); accurate on small datasets.",
            # Dense block n is Keras's conv{n+1}_*, followed by its transition pool{n+1}_*;
            # the last block ends with the final "bn".
            blocks=(
                ("stem", r"^(conv1_|pool1$)"),
                ("block 1", r"^(conv2_|pool2_)"),
                ("block 2", r"^(conv3_|pool3_)"),
                ("block 3", r"^(conv4_|pool4_)"),
                ("block 4", r"^(conv5_|bn$|relu$)"),
            ),
            imagenet_file="densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5",
        ),
        BackboneSpec(
            name="ConvNeXtTiny",
            application="ConvNeXtTiny",
            preprocess="raw",
            default_size=224,
            min_size=32,
            params=27_820_128,
            description="A modern all-convolutional design (27.8 M parameters); best accuracy, heaviest.",
            # Stage n starts with the downsampling block that leads into it (none for stage 0).
            blocks=(("stem", r"_stem$"), ("stage 0", r"_stage_0_"))
            + tuple((f"stage {i}", rf"_(stage_{i}_|downsampling_block_{i - 1}$)") for i in range(1, 4))
            + (("top", r"^layer_normalization(_\d+)?$"),),
            imagenet_file="convnext_tiny_notop.h5",
            kwargs=(("include_preprocessing", True),),
        ),
    ]
}


def get_backbone(name: str) -> BackboneSpec:
    try:
        return BACKBONES[name]
    except KeyError:
        raise KeyError(f"unknown backbone '{name}'; choose one of: {', '.join(BACKBONES)}") from None


def build_backbone(spec_name: str, image_size: int, width: float = 1.0, weights: str | None = None) -> Any:
    """The keras.applications model without its top, for (image_size, image_size, 3) inputs.

    `weights` goes to the constructor: None (random), "imagenet" (Keras downloads
    it, see workbench.core.weights for the offline case) or a file path.
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
