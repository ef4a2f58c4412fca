"""Every export format is written, reloaded the way its users load it, and agrees with the original.

The model has both custom layers (Preprocess, DropBlock2D on the feature map), so the
test also shows they convert to TFLite builtins. It is built, not trained: conversion
does not care about the weights, and the suite saves a training run.
"""

from pathlib import Path

import keras
import pytest
from fixture_images import write_image_tree

from workbench import cli
from workbench.core.analysis.export import FORMATS, export_run
from workbench.core.analysis.predict import load_run_model
from workbench.core.config.run import RunConfig
from workbench.core.engine.model import build_model
from workbench.core.runs.store import RunError, RunStore


@pytest.fixture(scope="module")
def dropblock_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("export")
    config = RunConfig(name="export")
    config.data.folder = str(write_image_tree(root / "data"))
    config.data.image_size = 32
    config.data.validation_split = 0.25
    config.backbone.width = 0.35
    config.backbone.weights = "none"
    config.dropout.kind = "dropblock"
    config.dropout.placement = ["feature_map", "before_classifier"]
    keras.utils.set_random_seed(0)
    folder = RunStore(root / "runs").create(config)
    model = build_model(config, 3)
    assert {"preprocess", "dropout_feature_map"} <= {layer.name for layer in model.layers}
    model.save(folder.model_path)
    folder.write_summary({"status": "finished", "class_names": ["blue", "green", "red"], "val_images": 9})
    return folder.path


@pytest.fixture(scope="module")
def loaded(dropblock_run):
    return load_run_model(dropblock_run)


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f not in ("onnx", "tflite-int8")])  # those two: test_export_runtimes.py
def test_every_format_reloads_and_agrees_with_the_original(loaded, dropblock_run, fmt):
    result = export_run(loaded, fmt)
    assert result.ok, result.error
    assert result.error == "" and not result.needs_select_tf_ops
    assert Path(result.path).exists() and Path(result.path).parent == dropblock_run / "export" / fmt
    assert result.size_bytes > 10_000
    assert result.max_abs_diff <= result.tolerance == (0.05 if fmt == "tflite-dynamic" else 1e-4)
    assert result.checked_on == "8 validation images"
    if fmt == "tflite-dynamic":  # 8-bit weights: well under half the float32 size
        assert result.size_bytes < loaded.model.count_params() * 4 / 2
    labels = Path(result.labels_path)
    assert labels.parent == Path(result.path).parent
    assert labels.read_text().splitlines() == ["blue", "green", "red"]


def test_bad_requests_raise_readable_errors(dropblock_run, tmp_path):
    with pytest.raises(ValueError, match="unknown export format"):
        export_run(dropblock_run, "pdf")
    with pytest.raises(ValueError, match="int8 inputs and outputs"):
        export_run(dropblock_run, "tflite-int8", int8_io="float16")
    with pytest.raises(RunError, match="run folder not found"):
        export_run(tmp_path / "nope", "keras")


def test_cli_export_prints_path_size_and_check(dropblock_run, tmp_path, capsys):
    out_dir = tmp_path / "out"
    assert cli.main(["export", str(dropblock_run), "--format", "keras", "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert str(out_dir / "model.keras") in out and "MB" in out and "largest difference" in out and "OK" in out
    assert (out_dir / "labels.txt").is_file()


def test_cli_export_of_a_missing_run_exits_2(tmp_path, capsys):
    assert cli.main(["export", "nope", "--format", "tflite", "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "Traceback" not in err
