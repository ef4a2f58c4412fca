"""The classifier, its layers, dropout, freezing and weights, with real Keras models (no mocks).

Models are tiny: 32x32 inputs, MobileNetV2 at width 0.35 unless a test needs
something else. The only stub is the network (Keras's download function), to
show what an offline machine sees.
"""

import subprocess
import sys
import urllib.error

import keras
import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from workbench.core.base.freeze import FreezeSummary
from workbench.core.config import backbone_catalogue
from workbench.core.config.run import RunConfig
from workbench.core.engine import backbones, weights
from workbench.core.engine.dropout import make_dropout, mc_predict
from workbench.core.engine.layers import (
    CAFFE_MEAN_BGR,
    TORCH_MEAN_RGB,
    TORCH_STD_RGB,
    DropBlock2D,
    Preprocess,
    has_params,
)
from workbench.core.engine.model import (
    apply_freeze,
    build_model,
    model_summary_counts,
)
from workbench.core.engine.saving import load_model
from workbench.core.engine.weights import WeightsMismatch, WeightsUnavailable, save_backbone_weights

SPEC = backbone_catalogue.get_backbone("MobileNetV2")


def tiny_config(**changes) -> RunConfig:
    config = RunConfig()
    config.data.image_size = 32
    config.backbone.name = "MobileNetV2"
    config.backbone.width = 0.35
    config.backbone.weights = "none"
    return config.replace(**changes)


def images(n=4, size=32, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype("float32")


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def infer(model, x):
    """model(x) in inference mode, eagerly: quicker than predict(), which traces the whole model."""
    return numpy(model(x, training=False))


def trainable_names(layers):
    return {layer.name for layer in layers if layer.trainable_weights}


def batchnorm_state(model):
    bb = model.get_layer("backbone")
    return [w.copy() for layer in bb.layers if isinstance(layer, keras.layers.BatchNormalization) for w in layer.get_weights()]


# ---- Preprocess ----------------------------------------------------------------------

def test_preprocess_modes_give_the_numbers_each_backbone_expects():
    x = np.array([[[[10.0, 20.0, 30.0], [0.0, 127.5, 255.0]]]], "float32")  # (1, 1, 2, 3) RGB

    np.testing.assert_allclose(numpy(Preprocess("tf")(x))[0, 0, 1], [-1.0, 0.0, 1.0], atol=1e-6)
    caffe = numpy(Preprocess("caffe")(x))[0, 0, 0]
    np.testing.assert_allclose(caffe, np.array([30.0, 20.0, 10.0]) - CAFFE_MEAN_BGR, rtol=1e-6)
    torch = numpy(Preprocess("torch")(x))[0, 0, 0]
    expected = (np.array([10.0, 20.0, 30.0]) / 255 - TORCH_MEAN_RGB) / TORCH_STD_RGB
    np.testing.assert_allclose(torch, expected, rtol=1e-5)
    np.testing.assert_array_equal(numpy(Preprocess("raw")(x)), x)
    with pytest.raises(ValueError, match="unknown preprocess mode"):
        Preprocess("bgr")
    assert Preprocess.from_config(Preprocess("caffe").get_config()).mode == "caffe"


# ---- DropBlock and the dropout kinds -------------------------------------------------------

def fully_dropped_cover(dropped, block):
    """Units that lie in some block x block square that is wholly dropped (per image and channel)."""
    n, h, w, c = dropped.shape
    windows = sliding_window_view(dropped, (block, block), axis=(1, 2)).all(axis=(-2, -1))
    cover = np.zeros_like(dropped)
    for i in range(block):
        for j in range(block):
            cover[:, i : i + h - block + 1, j : j + w - block + 1, :] |= windows
    return cover


def test_dropblock_drops_contiguous_blocks_at_about_the_rate_and_rescales():
    layer = DropBlock2D(rate=0.2, block_size=5, seed=1)
    x = np.ones((8, 32, 32, 16), "float32")
    y = numpy(layer(x, training=True))

    dropped = y == 0
    assert 0.14 < dropped.mean() < 0.23
    np.testing.assert_array_equal(fully_dropped_cover(dropped, 5), dropped)  # only whole 5x5 squares
    assert np.isclose(y.mean(), 1.0, rtol=1e-4)  # kept units rescaled: the expected sum is unchanged
    assert not np.array_equal(dropped[0, ..., 0], dropped[0, ..., 1])  # each channel has its own blocks
    np.testing.assert_array_equal(numpy(layer(x, training=False)), x)
    np.testing.assert_array_equal(numpy(layer(x)), x)


def test_dropblock_is_seedable_and_its_rate_can_be_ramped():
    x = np.ones((2, 12, 12, 4), "float32")
    a = numpy(DropBlock2D(0.3, 3, seed=7)(x, training=True))
    b = numpy(DropBlock2D(0.3, 3, seed=7)(x, training=True))
    c = numpy(DropBlock2D(0.3, 3, seed=8)(x, training=True))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)

    layer = DropBlock2D(0.3, 3, seed=1)
    layer.rate.assign(0.0)  # what a ramp callback does at its start
    np.testing.assert_array_equal(numpy(layer(x, training=True)), x)
    assert layer.rate not in layer.trainable_weights
    assert layer.get_config()["rate"] == 0.0


def test_dropblock_clips_the_block_to_small_feature_maps():
    layer = DropBlock2D(rate=0.3, block_size=7, seed=3)
    y = numpy(layer(np.ones((256, 3, 3, 2), "float32"), training=True))
    per_map = (y == 0).reshape(256, 9, 2)
    assert set(per_map.all(axis=1).ravel()) == {True, False}  # a whole 3x3 map dropped, or none of it
    assert (per_map.all(axis=1) == per_map.any(axis=1)).all()
    assert 0.2 < per_map.all(axis=1).mean() < 0.4
    one = numpy(DropBlock2D(0.5, 3, seed=1)(np.ones((4, 1, 1, 8), "float32"), training=True))
    assert one.shape == (4, 1, 1, 8)


@pytest.mark.parametrize("kind", ["dropout", "spatial", "gaussian", "alpha", "dropblock"])
def test_each_dropout_kind_changes_outputs_in_training_only(kind):
    layer = make_dropout(kind, rate=0.5, block_size=3, seed=1, name=f"my_{kind}")
    x = np.random.default_rng(0).uniform(0.5, 1.5, (4, 8, 8, 6)).astype("float32")
    assert layer.name == f"my_{kind}"
    assert not np.allclose(numpy(layer(x, training=True)), x)
    np.testing.assert_array_equal(numpy(layer(x, training=False)), x)
    if kind == "spatial":  # whole channels: each (image, channel) map is all kept or all dropped
        y = numpy(layer(x, training=True))
        zero = (y == 0).reshape(4, 64, 6)
        assert (zero.all(axis=1) == zero.any(axis=1)).all() and zero.any()


def test_unknown_dropout_kind_is_refused():
    with pytest.raises(ValueError, match="unknown dropout kind"):
        make_dropout("cutout", 0.2)


# ---- build_model -------------------------------------------------------------------------

def test_the_classifier_takes_raw_pixels_through_a_nested_backbone():
    config = tiny_config(**{"head.dense_units": [16, 8], "dropout.placement": ["before_classifier", "after_dense"]})
    model = build_model(config, 5)

    names = [layer.name for layer in model.layers]
    assert names == ["image", "preprocess", "backbone", "pool", "dropout_before_classifier",
                     "dense_1", "dropout_after_dense_1", "dense_2", "dropout_after_dense_2", "predictions"]
    assert model.get_layer("preprocess").mode == SPEC.preprocess
    assert isinstance(model.get_layer("backbone"), keras.Model)
    predictions = model.get_layer("predictions")
    assert predictions.dtype_policy.compute_dtype == "float32" and predictions.activation.__name__ == "softmax"
    probs = infer(model, images())
    assert probs.shape == (4, 5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    seeds = [model.get_layer(n).seed for n in names if n.startswith("dropout")]
    assert len(set(seeds)) == 3 and all(s is not None for s in seeds)


def test_spatial_kinds_act_on_the_feature_map_and_become_plain_dropout_on_vectors():
    config = tiny_config(**{
        "dropout.kind": "dropblock", "dropout.block_size": 2,
        "dropout.placement": ["feature_map", "before_classifier"], "head.pooling": "max",
    })
    model = build_model(config, 3)
    assert isinstance(model.get_layer("dropout_feature_map"), DropBlock2D)
    assert type(model.get_layer("dropout_before_classifier")) is keras.layers.Dropout
    assert isinstance(model.get_layer("pool"), keras.layers.GlobalMaxPooling2D)

    spatial = build_model(tiny_config(**{"dropout.kind": "spatial", "dropout.placement": ["feature_map"],
                                         "head.pooling": "flatten"}), 3)
    assert isinstance(spatial.get_layer("dropout_feature_map"), keras.layers.SpatialDropout2D)
    assert isinstance(spatial.get_layer("pool"), keras.layers.Flatten)

    none = build_model(tiny_config(**{"dropout.rate": 0.0}), 3)
    assert not [layer for layer in none.layers if "dropout" in layer.name]


def test_reinitialised_backbones_get_fast_batchnorm_momentum_and_pretrained_keep_theirs(tmp_path):
    fresh = build_model(tiny_config(), 3)
    bns = [layer for layer in fresh.get_layer("backbone").layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert bns and {bn.momentum for bn in bns} == {0.9}

    path = save_backbone_weights(fresh, tmp_path / "bb.weights.h5")
    pretrained = build_model(tiny_config(**{"backbone.weights": "file", "backbone.weights_file": str(path)}), 3)
    bns = [layer for layer in pretrained.get_layer("backbone").layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert {bn.momentum for bn in bns} == {0.999}  # MobileNetV2's own


def test_the_full_model_saves_and_loads_with_safe_mode(tmp_path):
    config = tiny_config(**{"dropout.kind": "dropblock", "dropout.placement": ["feature_map", "before_classifier"],
                            "dropout.rate": 0.25, "head.dense_units": [8]})
    model = build_model(config, 3)
    path = tmp_path / "model.keras"
    model.save(path)

    loaded = keras.saving.load_model(path, safe_mode=True)  # Workbench layers are registered
    x = images()
    np.testing.assert_allclose(infer(loaded, x), infer(model, x), rtol=1e-6)
    assert float(numpy(loaded.get_layer("dropout_feature_map").rate)) == pytest.approx(0.25)
    assert load_model(path).get_layer("preprocess").mode == "tf"
    assert not any(type(layer).__name__ == "Lambda" for layer in loaded.layers)


# ---- freezing ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def classifier():
    return build_model(tiny_config(**{"head.dense_units": [8]}), 3)


def backbone_weighted(model):
    return [layer for layer in model.get_layer("backbone").layers if layer.weights]


def freeze(model, pretrained=True, **fields):
    config = tiny_config(**{f"freeze.{k}": v for k, v in fields.items()})
    return apply_freeze(model, config.freeze, SPEC, pretrained=pretrained)


def test_policy_all_trains_only_the_head(classifier):
    summary = freeze(classifier, policy="all")
    assert trainable_names(classifier.layers) == {"dense_1", "predictions"}
    assert summary.layers_trainable == 2
    assert summary.layers_total == len(backbone_weighted(classifier)) + 2
    head = sum(w.numpy().size for n in ("dense_1", "predictions") for w in classifier.get_layer(n).weights)
    assert summary.params_trainable == head
    assert summary.params_trainable + summary.params_frozen == classifier.count_params()


def test_policy_top_layers_trains_the_top_n_layers_with_weights(classifier):
    top = [layer.name for layer in backbone_weighted(classifier)[-5:]]
    freeze(classifier, policy="top_layers", layers=5, freeze_batchnorm=False)
    assert trainable_names(classifier.get_layer("backbone").layers) == set(top)

    summary = freeze(classifier, policy="top_layers", layers=5, freeze_batchnorm=True)
    bn = {n for n in top if isinstance(classifier.get_layer("backbone").get_layer(n), keras.layers.BatchNormalization)}
    assert bn and trainable_names(classifier.get_layer("backbone").layers) == set(top) - bn
    assert summary.layers_trainable == len(top) - len(bn) + 2


def test_policy_top_blocks_trains_the_top_k_blocks_of_the_registry(classifier):
    freeze(classifier, policy="top_blocks", blocks=2, freeze_batchnorm=False)
    expected = {layer.name for layer in backbone_weighted(classifier)
                if layer.name.startswith("block_16_") or layer.name in ("Conv_1", "Conv_1_bn")}
    assert len(expected) == 8
    assert trainable_names(classifier.get_layer("backbone").layers) == expected


def test_policy_none_trains_everything_except_pretrained_batchnorm(classifier):
    backbone = classifier.get_layer("backbone")
    everything = {layer.name for layer in backbone_weighted(classifier)}
    bn = {layer.name for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization)}

    summary = freeze(classifier, policy="none", freeze_batchnorm=False)
    assert trainable_names(backbone.layers) == everything
    assert summary.layers_trainable == summary.layers_total and summary.params_trainable > 0
    freeze(classifier, policy="none", freeze_batchnorm=True, pretrained=True)
    assert trainable_names(backbone.layers) == everything - bn
    freeze(classifier, policy="none", freeze_batchnorm=True, pretrained=False)  # random BN must learn
    assert trainable_names(backbone.layers) == everything
    assert trainable_names(classifier.layers) >= {"dense_1", "predictions", "backbone"}


def test_a_freeze_summary_reads_like_a_sentence():
    summary = FreezeSummary(layers_total=154, layers_trainable=41, params_trainable=1_234_567,
                            params_frozen=2_265_433)
    assert summary.text == "41 of 154 layers trainable, 1.2 M of 3.5 M parameters"
    assert FreezeSummary(3, 1, 999, 12_000).text == "1 of 3 layers trainable, 999 of 13.0 k parameters"


@pytest.mark.parametrize("freeze_batchnorm", [True, False])
def test_frozen_batchnorm_keeps_its_statistics_while_the_rest_fine_tunes(freeze_batchnorm):
    """Keras 3's fit calls the model with training=True; only trainable=False keeps BN in inference mode."""
    model = build_model(tiny_config(), 3)
    config = tiny_config(**{"freeze.policy": "none", "freeze.freeze_batchnorm": freeze_batchnorm})
    apply_freeze(model, config.freeze, SPEC, pretrained=True)
    conv = model.get_layer("backbone").get_layer("block_16_project")
    assert any(w is conv.kernel for w in model.trainable_weights)
    before_bn = batchnorm_state(model)
    before_head = model.get_layer("predictions").get_weights()[1].copy()  # bias: moves whatever the features

    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="categorical_crossentropy", run_eagerly=True)
    labels = keras.utils.to_categorical([0, 1, 2, 0], 3)
    model.fit(images(), labels, batch_size=4, epochs=1, verbose=0)

    unchanged = [np.array_equal(a, b) for a, b in zip(before_bn, batchnorm_state(model), strict=True)]
    if freeze_batchnorm:
        assert all(unchanged)
    else:  # the contrast: trainable BN normalises with batch statistics and moves its moving ones
        assert not all(unchanged)
    assert not np.array_equal(before_head, model.get_layer("predictions").get_weights()[1])


@pytest.mark.slow
def test_a_reinitialised_backbone_scores_in_inference_what_it_learned():
    """docs/measured.md's trap: with Keras's BN momentum 0.999 this scores at chance (0.33) in
    inference after the same 30 epochs at training accuracy 1.0; with 0.9 it scores 1.0. ~35 s."""
    from fixture_images import class_image

    rng = np.random.default_rng(0)
    x = np.stack([class_image(k, name, rng) for k, name in enumerate(("red", "green", "blue"))
                  for _ in range(30)]).astype("float32")
    y = keras.utils.to_categorical(np.repeat(np.arange(3), 30), 3)
    keras.utils.set_random_seed(1)
    config = tiny_config(**{"freeze.policy": "none"})
    model = build_model(config, 3)
    apply_freeze(model, config.freeze, SPEC, pretrained=False)
    model.compile(keras.optimizers.Adam(3e-3), "categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=16, epochs=30, verbose=0)

    assert history.history["accuracy"][-1] > 0.9
    assert model.evaluate(x, y, verbose=0)[1] > 0.9


def test_has_params_skips_statistics_only_layers():
    assert not has_params(DropBlock2D(0.1))
    norm = keras.layers.Normalization(mean=0.0, variance=1.0)
    assert not has_params(norm)
    dense = keras.layers.Dense(2)
    dense.build((None, 3))
    assert has_params(dense)


# ---- Monte-Carlo dropout ---------------------------------------------------------------

@pytest.fixture(scope="module")
def resnet_classifier():
    """ResNet50 with random weights still gives features of order 1 (MobileNets give ~1e-11),
    so dropout visibly moves the probabilities. Builds in about a second at 32 px."""
    config = tiny_config(**{"backbone.name": "ResNet50", "backbone.width": 1.0, "dropout.rate": 0.5,
                            "dropout.placement": ["feature_map", "before_classifier"]})
    return build_model(config, 4)


def test_mc_predict_spreads_with_dropout_and_leaves_batchnorm_alone(resnet_classifier):
    model = resnet_classifier
    x = images(6)
    plain = model.predict(x, verbose=0)
    before = batchnorm_state(model)

    mean, std, entropy = mc_predict(model, x, passes=8, batch_size=4)

    assert mean.shape == std.shape == (6, 4) and entropy.shape == (6,)
    np.testing.assert_allclose(mean.sum(axis=1), 1.0, rtol=1e-5)
    assert std.max() > 1e-3
    assert (entropy > 0).all() and (entropy <= np.log(4) + 1e-6).all()
    for a, b in zip(before, batchnorm_state(model), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(model.predict(x, verbose=0), plain)


def test_mc_predict_without_dropout_has_no_spread(resnet_classifier):
    config = tiny_config(**{"backbone.name": "ResNet50", "backbone.width": 1.0, "dropout.rate": 0.0})
    model = build_model(config, 4)
    mean, std, _ = mc_predict(model, images(3), passes=5)
    assert not std.any()
    np.testing.assert_allclose(mean, model.predict(images(3), verbose=0), rtol=1e-6)


# ---- weights --------------------------------------------------------------------------------

def features(model, x):
    return infer(model.get_layer("backbone"), model.get_layer("preprocess")(x))


def test_backbone_weights_saved_to_a_file_load_back_identically(tmp_path):
    source = build_model(tiny_config(), 3)
    path = save_backbone_weights(source, tmp_path / "mine.weights.h5")
    assert path.is_file() and not list(tmp_path.glob(".*partial*"))

    loaded = build_model(tiny_config(**{"backbone.weights": "file", "backbone.weights_file": str(path)}), 7)
    for a, b in zip(source.get_layer("backbone").get_weights(), loaded.get_layer("backbone").get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(features(source, images()), features(loaded, images()))
    # Keras's own format: plain Keras reads it too.
    plain = backbones.build_backbone("MobileNetV2", 32, 0.35)
    plain.load_weights(str(path))
    np.testing.assert_array_equal(plain.get_weights()[0], source.get_layer("backbone").get_weights()[0])


def test_a_keras_model_file_and_a_legacy_h5_file_give_their_backbone_weights(tmp_path):
    source = build_model(tiny_config(), 3)
    source.save(tmp_path / "trained.keras")
    source.get_layer("backbone").save(tmp_path / "legacy.h5")  # Keras 2 style HDF5, weights by layer name

    for name in ("trained.keras", "legacy.h5"):
        config = tiny_config(**{"backbone.weights": "file", "backbone.weights_file": str(tmp_path / name)})
        loaded = build_model(config, 2)
        for a, b in zip(source.get_layer("backbone").get_weights(), loaded.get_layer("backbone").get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)


def test_a_file_for_another_width_or_backbone_is_a_readable_mismatch(tmp_path):
    source = build_model(tiny_config(), 3)
    path = save_backbone_weights(source, tmp_path / "w035.weights.h5")
    source.save(tmp_path / "w035.keras")

    for file in (path, tmp_path / "w035.keras"):
        config = tiny_config(**{"backbone.weights": "file", "backbone.weights_file": str(file),
                                "backbone.width": 0.5})
        with pytest.raises(WeightsMismatch) as err:
            build_model(config, 3)
        message = str(err.value)
        assert file.name in message and "layer '" in message and "another backbone or width" in message
        assert "(3, 3, 3, 16)" in message or "(1, 1, " in message  # the differing shapes are named

    other = tiny_config(**{"backbone.name": "MobileNetV3Small", "backbone.width": 0.75,
                           "backbone.weights": "file", "backbone.weights_file": str(path)})
    with pytest.raises(WeightsMismatch, match="layer 'conv'"):
        build_model(other, 3)


def test_a_missing_or_broken_weights_file_says_so(tmp_path):
    missing = tiny_config(**{"backbone.weights": "file", "backbone.weights_file": str(tmp_path / "nope.h5")})
    with pytest.raises(WeightsUnavailable, match="not found"):
        build_model(missing, 3)
    junk = tmp_path / "junk.weights.h5"
    junk.write_bytes(b"not weights")
    with pytest.raises(WeightsMismatch, match="junk.weights.h5"):
        build_model(tiny_config(**{"backbone.weights": "file", "backbone.weights_file": str(junk)}), 3)


def test_imagenet_offline_names_the_file_and_the_cache_folder(monkeypatch):
    spec = backbone_catalogue.get_backbone("MobileNetV2")
    if weights.imagenet_weights_cached(spec, 96, 0.35) is not None:
        pytest.skip("the ImageNet file is cached on this machine, so nothing is downloaded")

    def offline(url, *args, **kwargs):  # stands for the network
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr("keras.src.utils.file_utils.urlretrieve", offline)
    config = tiny_config(**{"backbone.weights": "imagenet", "data.image_size": 96})
    with pytest.raises(WeightsUnavailable) as err:
        build_model(config, 3)
    message = str(err.value)
    assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5" in message
    assert str(weights.keras_cache_dir()) in message and "name resolution" in message


def test_imagenet_file_names_follow_keras(tmp_path):
    name = weights.imagenet_file_name
    get = backbone_catalogue.get_backbone
    assert name(get("MobileNetV2"), 160, 1.0) == "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_160_no_top.h5"
    assert name(get("MobileNetV2"), 100, 0.5) == "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_224_no_top.h5"
    assert name(get("MobileNetV3Small"), 32, 0.75) == "weights_mobilenet_v3_small_224_0.75_float_no_top_v2.h5"
    assert name(get("EfficientNetV2B0"), 224, 1.0) == "efficientnetv2-b0_notop.h5"
    assert name(get("ConvNeXtTiny"), 224, 1.0) == "convnext_tiny_notop.h5"


def test_the_cache_check_finds_the_file_without_importing_tensorflow(tmp_path):
    code = (
        "import sys\n"
        "from workbench.core.config import backbone_catalogue, weights_files\n"
        "spec = backbone_catalogue.get_backbone('ResNet50')\n"
        "print(weights_files.imagenet_weights_cached(spec, 224, 1.0))\n"
        "print('tensorflow' in sys.modules or 'keras' in sys.modules)\n"
    )
    env = {"KERAS_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    run = lambda: subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)  # noqa: E731
    assert run().stdout.split() == ["None", "False"]
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5").write_bytes(b"x")
    found, imported = run().stdout.split()
    assert found.endswith("resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5") and imported == "False"


def test_model_summary_counts_matches_keras(classifier):
    freeze(classifier, policy="top_blocks", blocks=3)
    summary = model_summary_counts(classifier)
    assert summary.params_trainable == sum(int(np.prod(w.shape)) for w in classifier.trainable_weights)
    assert summary.params_trainable + summary.params_frozen == classifier.count_params()


def test_freeze_map_trainable_parameters_add_up_to_the_whole_model():
    """The backbone's trainable count never exceeds the whole model's: a trainable BatchNorm layer's
    moving statistics do not train, so the freeze map does not count them as trainable."""
    from workbench.core.engine.model import freeze_for, freeze_map

    config = tiny_config(**{"freeze.policy": "none"})
    model = build_model(config, 3)
    freeze_for(model, config)
    rows = freeze_map(model, backbone_catalogue.get_backbone(config.backbone.name))
    backbone_trainable = sum(r.trainable_params for r in rows if r.trainable)
    whole = model_summary_counts(model)
    head = sum(int(np.prod(v.shape)) for layer in model.layers if layer.name != "backbone"
               for v in layer.trainable_weights)
    assert backbone_trainable + head == whole.params_trainable
    assert any(r.trainable_params < r.params for r in rows if r.type == "BatchNormalization")
