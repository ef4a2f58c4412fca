"""The backbone registry checked against the real keras.applications models (weights=None)."""

import keras
import numpy as np
import pytest

from workbench.core.config.backbone_catalogue import BACKBONES
from workbench.core.engine import backbones
from workbench.core.engine.backbones import block_of_layers, block_problems, build_backbone
from workbench.core.engine.layers import PREPROCESS_MODES


@pytest.mark.parametrize("name", list(BACKBONES))
def test_entry_is_consistent_data(name):
    spec = BACKBONES[name]
    assert spec.preprocess in PREPROCESS_MODES
    assert spec.min_size <= spec.default_size
    assert 1.0 in spec.widths and spec.blocks
    assert hasattr(keras.applications, spec.application)
    assert not spec.imagenet or spec.imagenet_file.endswith(".h5")


@pytest.mark.parametrize("name", list(BACKBONES))
def test_blocks_cover_every_layer_with_weights_in_order(name):
    """At the smallest size (each builds in under ~2 s on 2 CPU cores)."""
    spec = BACKBONES[name]
    model = build_backbone(name, spec.min_size, 1.0)

    assert block_problems(model, spec) == []
    blocks = block_of_layers(model, spec)
    assert len(blocks) == len(model.layers)
    assert blocks == sorted(blocks), "blocks must follow the layer order"
    assert set(blocks) == set(range(len(spec.blocks)))
    assert model.count_params() == spec.params


def test_blocks_do_not_depend_on_automatic_layer_names():
    """Keras numbers unnamed layers per process ("activation_17"): a second build must split the same."""
    spec = BACKBONES["MobileNetV3Small"]
    first = build_backbone(spec.name, 32, 0.75)
    second = build_backbone(spec.name, 32, 0.75)
    assert [layer.name for layer in first.layers] != [layer.name for layer in second.layers]
    assert block_of_layers(first, spec) == block_of_layers(second, spec)
    assert block_problems(second, spec) == []


def test_mobilenet_blocks_are_the_inverted_residual_blocks():
    spec = BACKBONES["MobileNetV2"]
    model = build_backbone(spec.name, 32, 0.35)
    by_block = {}
    for layer, block in zip(model.layers, block_of_layers(model, spec), strict=True):
        if layer.weights:
            by_block.setdefault(spec.blocks[block][0], []).append(layer.name)
    assert by_block["stem"] == ["Conv1", "bn_Conv1"]
    assert by_block["top"] == ["Conv_1", "Conv_1_bn"]
    assert all(n.startswith("block_16_") for n in by_block["block 16"])
    assert len(spec.blocks) == 19


def test_width_goes_to_the_mobilenets_only():
    small = build_backbone("MobileNetV2", 32, 0.35)
    assert small.count_params() < BACKBONES["MobileNetV2"].params / 4
    assert small.count_params() == BACKBONES["MobileNetV2"].params_at(0.35)  # what the panel shows at ×0.35
    assert BACKBONES["MobileNetV3Small"].params_at(0.75) == build_backbone("MobileNetV3Small", 32, 0.75).count_params()
    with pytest.raises(ValueError, match="supports width"):
        build_backbone("VGG16", 32, 0.5)
    with pytest.raises(ValueError, match="at least 32 px"):
        build_backbone("MobileNetV2", 16, 1.0)
    with pytest.raises(KeyError, match="unknown backbone"):
        build_backbone("AlexNet", 32, 1.0)


def test_efficientnet_imagenet_rescaling_is_folded_into_the_normalization():
    """Keras adds Rescaling(1/sqrt(std)) after Normalization only for ImageNet weights; the fold
    gives the weights=None architecture the same function, so one architecture fits every source."""
    model = build_backbone("EfficientNetB0", 32, 1.0)
    norm = next(layer for layer in model.layers if isinstance(layer, keras.layers.Normalization))
    mean = np.array([0.485, 0.456, 0.406], "float32")
    variance = np.array([0.229, 0.224, 0.225], "float32")  # as in the ImageNet file
    norm.set_weights([mean, variance, norm.get_weights()[2]])
    backbones.refresh_statistics(model)
    x = np.random.default_rng(0).uniform(0, 1, (2, 4, 4, 3)).astype("float32")
    with_keras_rescaling = keras.ops.convert_to_numpy(norm(x)) / np.sqrt(variance)

    backbones._fold_imagenet_rescaling(model)
    backbones.refresh_statistics(model)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(norm(x)), with_keras_rescaling, rtol=1e-5)
