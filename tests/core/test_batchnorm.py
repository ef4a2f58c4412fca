"""Precise BatchNorm: moving statistics recomputed from training images before validation."""

import keras
import numpy as np
import pytest
from core_helpers import tiny_config

from workbench.core.base.events import EpochEnd, Message, RunFinished
from workbench.core.engine import batchnorm
from workbench.core.train import phases
from workbench.core.train import run as training


class Events(list):
    def __call__(self, event):
        self.append(event)

    def of(self, kind):
        return [e for e in self if isinstance(e, kind)]


def small_model():
    inputs = keras.Input((4,))
    x = keras.layers.Dense(3, name="dense")(inputs)
    x = keras.layers.BatchNormalization(momentum=0.999, name="bn")(x)
    frozen = keras.layers.BatchNormalization(name="frozen_bn")
    frozen.trainable = False
    return keras.Model(inputs, frozen(x))


def test_recalibrate_sets_the_exact_statistics_of_the_sample_and_restores_momentum():
    model = small_model()
    images = np.random.default_rng(0).normal(3.0, 2.0, (64, 4)).astype("float32")
    layers = batchnorm.trainable_batchnorm_layers(model)
    assert [layer.name for layer in layers] == ["bn"]  # frozen BatchNorm is left alone

    batchnorm.recalibrate(model, images, layers)

    dense_out = model.get_layer("dense")(images).numpy()
    bn = model.get_layer("bn")
    np.testing.assert_allclose(bn.moving_mean.numpy(), dense_out.mean(axis=0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(), dense_out.var(axis=0), rtol=1e-3, atol=1e-5)
    assert bn.momentum == 0.999
    frozen = model.get_layer("frozen_bn")
    np.testing.assert_array_equal(frozen.moving_mean.numpy(), np.zeros(3))


def test_inference_matches_training_mode_after_recalibration():
    model = small_model()
    images = np.random.default_rng(1).normal(5.0, 3.0, (128, 4)).astype("float32")
    before = np.abs(model(images, training=False) - model(images, training=True)).max()
    batchnorm.recalibrate(model, images, batchnorm.trainable_batchnorm_layers(model))
    after = np.abs(model(images, training=False) - model(images, training=True)).max()
    assert before > 0.5 and after < 1e-2


@pytest.mark.slow  # two real runs of 4 epochs
def test_batchnorm_recalibration_lifts_a_reinitialised_backbone_off_chance(make_image_tree, tmp_path, monkeypatch):
    """The same run (seed, data, re-initialised MobileNetV2) with and without recalibration: with it the
    validation accuracy is far above chance; without it the lagging BatchNorm statistics keep it at chance."""
    data = make_image_tree(per_class=24)  # 3 classes: chance is 1/3
    config = tiny_config(data, **{"training.epochs": 4, "training.learning_rate": 0.01, "training.seed": 42})

    def val_accuracy(events):
        return [e.logs["val_accuracy"] for e in events.of(EpochEnd)]

    with_it = Events()
    result = training.run(config, with_it, runs_dir=tmp_path / "with")
    assert isinstance(result, RunFinished), result
    assert any("statistics are recomputed" in m.text for m in with_it.of(Message))

    monkeypatch.setattr(phases, "freeze_bn_only", lambda model: True)  # the run's switch: "nothing to repair"
    without = Events()
    result = training.run(config, without, runs_dir=tmp_path / "without")
    assert isinstance(result, RunFinished), result
    assert not any("statistics are recomputed" in m.text for m in without.of(Message))

    chance = 1 / 3
    assert val_accuracy(with_it)[-1] >= 0.75, val_accuracy(with_it)
    assert max(val_accuracy(without)) <= chance + 0.1, val_accuracy(without)
    # both runs trained alike (their training accuracy is not what differs)
    assert with_it.of(EpochEnd)[-1].logs["accuracy"] > chance + 0.2
    assert without.of(EpochEnd)[-1].logs["accuracy"] > chance + 0.2
