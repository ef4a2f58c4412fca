"""ONNX checked in onnxruntime, and full-int8 TFLite checked by its accuracy, on a real trained run.

The run is tiny (MobileNetV2 x0.35 at 32 px, a few epochs on three coloured classes),
but real: the files are run by their own runtimes (onnxruntime, the TFLite interpreter).
"""

from pathlib import Path

import keras
import numpy as np
import onnxruntime
import pytest
from core_helpers import tiny_config
from fixture_images import write_image_tree

from workbench import cli
from workbench.core.analysis.export import export_run
from workbench.core.analysis.export_runtimes import (
    ExportUnavailable,
    convert_tflite,
    tflite_interpreter,
)
from workbench.core.analysis.predict import load_run_model
from workbench.core.base.events import RunFinished
from workbench.core.train import run as training


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("export-runtimes")
    # A learning rate that makes it learn in a few epochs: the int8 check compares accuracies.
    config = tiny_config(write_image_tree(root / "data"), epochs=6,
                         **{"training.learning_rate": 1e-2, "dropout.rate": 0.0})
    result = training.run(config, lambda event: None, runs_dir=root / "runs")
    assert isinstance(result, RunFinished), result
    return Path(result.run_dir)


@pytest.fixture(scope="module")
def loaded(trained):
    return load_run_model(trained)


def test_onnx_runs_in_onnxruntime_and_agrees_with_keras(loaded, trained):
    result = export_run(loaded, "onnx")
    assert result.ok, result.error
    path = Path(result.path)
    assert path == trained / "export" / "onnx" / "model.onnx" and result.size_bytes > 100_000
    assert result.max_abs_diff <= 1e-4 and result.top1_agreement == 1.0
    assert result.checked_on == "9 validation images"
    # The file stands alone: onnxruntime, any batch size, raw pixels in, probabilities out.
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    pixels = np.random.default_rng(1).uniform(0, 255, (5, 32, 32, 3)).astype(np.float32)
    probs = session.run(None, {session.get_inputs()[0].name: pixels})[0]
    assert probs.shape == (5, 3) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    expected = keras.ops.convert_to_numpy(loaded.model(pixels, training=False))
    assert np.max(np.abs(probs - expected)) < 1e-4
    print(f"ONNX: largest difference {result.max_abs_diff:.2g}, top-1 agreement {result.top1_agreement:.0%}, "
          f"{result.size_text}")


@pytest.mark.parametrize("io", ["int8", "uint8"])
def test_full_int8_tflite_is_integer_throughout_and_keeps_its_accuracy(loaded, trained, tmp_path, io):
    result = export_run(loaded, "tflite-int8", tmp_path / io, int8_io=io)
    assert result.ok, result.error
    assert result.int8_io == io and result.checked_on == "9 validation images"
    assert 0 <= result.accuracy <= 1 and 0 <= result.reference_accuracy <= 1
    assert result.reference_accuracy - result.accuracy <= max(result.tolerance, 1 / 9) + 1e-9
    # A quarter of float TFLite's size, give or take the int32 biases and the graph.
    assert 0 < result.size_bytes < result.reference_size_bytes / 2.5
    interpreter = tflite_interpreter(Path(result.path))
    types = {np.dtype(d["dtype"]).name for d in interpreter.get_input_details() + interpreter.get_output_details()}
    assert types == {io}
    tensor_types = {np.dtype(t["dtype"]).name for t in interpreter.get_tensor_details()}
    assert "float32" not in tensor_types, tensor_types  # integer kernels only: it runs on an int8 NPU
    print(f"int8 ({io}): accuracy {result.accuracy:.1%} vs float {result.reference_accuracy:.1%}; "
          f"{result.size_text} vs float TFLite {result.reference_size_text}; "
          f"top-1 agreement {result.top1_agreement:.0%}, largest difference {result.max_abs_diff:.3f}")


def test_a_model_that_cannot_be_quantised_gets_a_clear_message():
    inputs = keras.Input((8,))
    x = keras.layers.Lambda(lambda t: keras.ops.cumsum(t, axis=-1))(inputs)  # no int8 kernel in TFLite
    outputs = keras.layers.Dense(2, activation="softmax")(x)
    model = keras.Model(inputs, outputs)

    def representative():
        for row in np.random.default_rng(0).normal(size=(8, 1, 8)).astype(np.float32):
            yield [row]

    with pytest.raises(ExportUnavailable, match="cannot be fully quantised to int8.*CUMSUM.*tflite-dynamic"):
        convert_tflite(model, int8_io="int8", representative=representative)


def test_int8_without_its_training_images_says_so(loaded, trained, tmp_path):
    moved = load_run_model(trained)
    moved.config = moved.config.replace(**{"data.folder": str(tmp_path / "gone")})
    result = export_run(moved, "tflite-int8", tmp_path / "out")
    assert not result.ok and not result.path and "gone" in result.error


def test_cli_exports_onnx_and_int8_with_their_figures(trained, tmp_path, capsys):
    assert cli.main(["export", str(trained), "--format", "onnx", "--out", str(tmp_path / "onnx")]) == 0
    out = capsys.readouterr().out
    assert "model.onnx" in out and "top-1 agreement 100%" in out and "OK" in out
    assert cli.main(["export", str(trained), "--format", "tflite-int8", "--int8-io", "uint8",
                     "--out", str(tmp_path / "int8")]) == 0
    out = capsys.readouterr().out
    assert "uint8" in out and "accuracy" in out and "float TFLite" in out and "OK" in out
