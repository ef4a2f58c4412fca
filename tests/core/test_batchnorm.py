"""Precise BatchNorm: moving statistics recomputed from training images before validation."""

import keras
import numpy as np

from workbench.core.engine import batchnorm


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
