"""Mixed precision (bfloat16) and XLA (training.jit_compile "on"): real one-epoch runs finish, the output stays float32."""

from __future__ import annotations

import threading

import keras
import pytest
from core_helpers import tiny_config

from workbench.core.base.events import RunFinished
from workbench.core.train import run as training


def bfloat16_matmul_works() -> str:
    """"" when this CPU multiplies bfloat16 matrices; else why not (the skip reason)."""
    import tensorflow as tf

    try:
        product = tf.matmul(tf.ones((2, 2), tf.bfloat16), tf.ones((2, 2), tf.bfloat16))
    except Exception as exc:  # noqa: BLE001 - any failure means: not on this machine
        return f"this CPU's TensorFlow cannot multiply bfloat16 matrices: {exc}"
    return "" if float(product[0, 0]) == 2.0 else "bfloat16 matmul gives a wrong result on this CPU"


def every_layer(model):
    """The model's layers, those inside the nested backbone included."""
    for layer in model.layers:
        yield layer
        yield from every_layer(layer) if hasattr(layer, "layers") else ()


def trained_model(image_tree, tmp_path, **changes):
    """One epoch of the tiny model with `changes`; its saved model.keras, loaded."""
    config = tiny_config(image_tree, epochs=1, **{"training.batch_size": 12, **changes})
    result = training.run(config, lambda event: None, threading.Event(), runs_dir=tmp_path)
    assert isinstance(result, RunFinished) and result.epochs_done == 1, result
    return keras.models.load_model(f"{result.run_dir}/model.keras")


def test_a_bfloat16_run_finishes_and_its_output_layer_stays_float32(image_tree, tmp_path):
    reason = bfloat16_matmul_works()
    if reason:
        pytest.skip(reason)
    model = trained_model(image_tree, tmp_path, **{"training.mixed_precision": "bfloat16"})
    output = model.get_layer("predictions")
    assert output.dtype_policy.compute_dtype == "float32" and output.output.dtype == "float32"
    assert model.outputs[0].dtype == "float32"
    convolutions = [layer for layer in every_layer(model) if "Conv" in type(layer).__name__]
    assert convolutions and all(layer.compute_dtype == "bfloat16" for layer in convolutions)  # the backbone's
    assert all(w.dtype == "float32" for w in model.weights)  # weights stay float32
    assert keras.mixed_precision.global_policy().name == "float32"  # restored after the run


def test_a_run_with_xla_on_finishes_compiled_with_xla(image_tree, tmp_path):
    # The random backbone frozen (nothing to cache: its features are not fixed by weights) keeps the step that
    # XLA compiles to the backbone's forward pass and the head: compiling every layer's gradient too takes minutes.
    model = trained_model(image_tree, tmp_path, **{"training.jit_compile": "on", "freeze.policy": "all"})
    assert model.jit_compile is True  # Keras falls back to False, silently, for a model XLA cannot compile
    assert model.get_layer("predictions").dtype_policy.compute_dtype == "float32"
