"""Export a run's model for use outside Workbench: .keras, SavedModel, TFLite.

Every export is checked: the exported file is loaded back the way its users will
load it, and its predictions on a few validation images are compared with the
original model's. An export that disagrees is reported as failed, not shipped
silently. Exported models take raw RGB pixels (float32, 0..255, [N, S, S, 3]) and
return class probabilities in the order of labels.txt.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.analysis.predict import RunModel, load_run_model, read_images
from workbench.core.config.export import FILE_NAMES, FORMATS, LABELS_FILE, TOLERANCE
from workbench.core.engine.saving import load_model_file
from workbench.core.runs.store import RunError

CHECK_IMAGES = 8


@dataclass(frozen=True)
class ExportResult:
    format: str
    path: str  # the model file (or SavedModel folder); empty when the export failed
    size_bytes: int
    max_abs_diff: float  # largest probability difference from the original model (nan when not checked)
    tolerance: float
    ok: bool  # exported, reloaded, and agreeing within the tolerance
    labels_path: str = ""
    checked_on: str = ""  # what the check compared on, e.g. "8 validation images"
    needs_select_tf_ops: bool = False  # TFLite only: needs the Flex delegate (TF ops) at run time
    error: str = ""  # why the export or its check failed, for a person

    @property
    def size_text(self) -> str:
        return format_size(self.size_bytes)


def format_size(n: int) -> str:
    for unit in ("bytes", "KB", "MB"):
        if n < 1024 or unit == "MB":
            return f"{n} bytes" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return ""  # pragma: no cover


def export_run(
    run_dir: str | os.PathLike | RunModel, fmt: str, out_dir: str | os.PathLike | None = None
) -> ExportResult:
    """Export a run's model as `fmt` into out_dir (default: run_dir/export/<fmt>/) and check it.

    `run_dir` may also be a loaded RunModel (load once, export several formats).
    Raises RunError for an unusable run and ValueError for an unknown format; a failed
    conversion or check comes back as a result with ok=False and an error.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format '{fmt}'; choose one of: {', '.join(FORMATS)}")
    run = run_dir if isinstance(run_dir, RunModel) else load_run_model(run_dir)
    if out_dir is None and run.run_dir is None:
        raise ValueError("a model without a run folder needs an out_dir to export into")
    out = Path(out_dir) if out_dir is not None else run.run_dir / "export" / fmt
    out.mkdir(parents=True, exist_ok=True)
    target = out / FILE_NAMES[fmt]
    images, checked_on = _check_images(run)
    expected = _predict(run.model, images)
    select_ops = False
    try:
        if fmt == "keras":
            _save_keras(run.model, target)
            actual = _predict(load_model_file(target), images)
        elif fmt == "savedmodel":
            _save_saved_model(run.model, target)
            actual = _run_saved_model(target, images)
        else:
            data, select_ops = _convert_tflite(run.model, dynamic=fmt == "tflite-dynamic")
            from workbench.core.base.files import atomic_write_bytes

            atomic_write_bytes(target, data)
            actual = _run_tflite(target, images)
    except RunError as exc:
        return _failed(fmt, str(exc))
    except Exception as exc:  # noqa: BLE001 - converters raise many kinds; report, never crash
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return _failed(fmt, f"the {fmt} export failed: {type(exc).__name__}: {first[:300]}")

    from workbench.core.base.files import atomic_write_text

    labels = out / LABELS_FILE
    atomic_write_text(labels, "\n".join(run.class_names) + "\n")
    diff = float(np.max(np.abs(np.asarray(actual, np.float64) - np.asarray(expected, np.float64))))
    tolerance = TOLERANCE[fmt]
    ok = bool(np.isfinite(diff) and diff <= tolerance)
    error = "" if ok else (
        f"the exported model disagrees with the original: largest difference {diff:.3g} "
        f"(allowed {tolerance:g})"
    )
    return ExportResult(fmt, str(target), _size(target), diff, tolerance, ok, str(labels), checked_on,
                        select_ops, error)


def _predict(model: Any, images: np.ndarray) -> np.ndarray:
    """A direct call: for a few images it saves tracing a predict function."""
    import keras

    return keras.ops.convert_to_numpy(model(images, training=False))


def _failed(fmt: str, error: str) -> ExportResult:
    return ExportResult(fmt, "", 0, float("nan"), TOLERANCE[fmt], False, error=error)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _check_images(run: RunModel) -> tuple[np.ndarray, str]:
    """A few of the run's validation images; random pixels when the data is no longer there."""
    from workbench.core.analysis.evaluation import validation_items

    try:
        if run.config is None:
            raise RunError("no config")
        items, _ = validation_items(run.config, run.class_names, run.summary)
        step = max(1, len(items) // CHECK_IMAGES)  # spread over the classes (items are grouped by class)
        paths = [p for p, _ in items[::step]][:CHECK_IMAGES]
        images, _ = read_images(paths, run.image_size)
        if len(images):
            return images, f"{len(images)} validation images"
    except RunError:
        pass
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (CHECK_IMAGES, run.image_size, run.image_size, 3)).astype(np.float32)
    return images, f"{CHECK_IMAGES} random images (the run's validation images are not available)"


# ---- formats --------------------------------------------------------------------

def _save_keras(model: Any, target: Path) -> None:
    from workbench.core.base.files import atomic_replace_with

    atomic_replace_with(target, model.save)


def _save_saved_model(model: Any, target: Path) -> None:
    """model.export into a temporary folder beside the target, then swap it in."""
    tmp = target.with_name(f".{target.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model.export(str(tmp), format="tf_saved_model", verbose=False)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run_saved_model(path: Path, images: np.ndarray) -> np.ndarray:
    """Call the serving signature, as TF Serving and other TensorFlow programs do."""
    import tensorflow as tf

    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    outputs = serve(tf.constant(images))
    return next(iter(outputs.values())).numpy()


def _convert_tflite(model: Any, dynamic: bool) -> tuple[bytes, bool]:
    """TFLite bytes from a temporary SavedModel; TFLite builtins first, TF ops (Flex) only if needed.

    Returns (model bytes, whether it needs SELECT_TF_OPS). Workbench's own layers
    convert to builtins: Preprocess is arithmetic, DropBlock2D is the identity in inference.
    """
    import tensorflow as tf

    with tempfile.TemporaryDirectory(prefix="workbench-export-") as tmp:
        saved = os.path.join(tmp, "saved_model")
        model.export(saved, format="tf_saved_model", verbose=False)

        def convert(select_ops: bool) -> bytes:
            converter = tf.lite.TFLiteConverter.from_saved_model(saved)
            if dynamic:
                converter.optimizations = [tf.lite.Optimize.DEFAULT]  # no data given: dynamic-range weights
            if select_ops:
                converter.target_spec.supported_ops = [
                    tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS,
                ]
            return converter.convert()

        try:
            return convert(select_ops=False), False
        except Exception as exc:  # noqa: BLE001 - ConverterError moves between TF versions
            if "not supported" not in str(exc) and "Select TF" not in str(exc) and "Flex" not in str(exc):
                raise
        return convert(select_ops=True), True


def _tflite_interpreter(path: Path) -> Any:
    """LiteRT's interpreter when installed; TensorFlow's own (deprecated, still shipped) otherwise."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter  # noqa: N806
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
        return Interpreter(model_path=str(path))


def _run_tflite(path: Path, images: np.ndarray) -> np.ndarray:
    """One image at a time: the converted model's batch size is 1."""
    interpreter = _tflite_interpreter(path)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    results = []
    for image in images:
        interpreter.set_tensor(inp["index"], image[None].astype(inp["dtype"]))
        interpreter.invoke()
        results.append(interpreter.get_tensor(out["index"])[0].copy())
    return np.stack(results)
