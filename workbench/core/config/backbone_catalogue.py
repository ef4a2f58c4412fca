"""The backbones Workbench offers, as plain data.

Importing this module must stay cheap (no TensorFlow): the UI lists backbones
and `config.validate` checks sizes before anything heavy is loaded. Building one
is core/engine/backbones.py's job.

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

from dataclasses import dataclass


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
    # parameters without the top at each width other than 1.0 (measured with keras count_params)
    width_params: tuple[tuple[float, int], ...] = ()

    def params_at(self, width: float) -> int:
        """Parameters without the top at `width` (the count of the model a run builds)."""
        return dict(self.width_params).get(width, self.params)

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
            width_params=((0.35, 410_208), (0.5, 706_224), (0.75, 1_382_064), (1.3, 3_766_048),
                          (1.4, 4_363_712)),
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
            width_params=((0.75, 583_160),),
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
            width_params=((0.75, 1_808_736),),
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
