"""Export a run's model for use outside Workbench: .keras, SavedModel, TFLite, ONNX.

Every export is checked: the exported file is loaded back the way its users will
load it, and its predictions on a few validation images are compared with the
original model's. An export that disagrees is reported as failed, not shipped
silently. Exported models take raw RGB pixels (float32, 0..255, [N, S, S, 3]) and
return class probabilities in the order of labels.txt. ONNX is checked in onnxruntime
(largest difference and top-1 agreement on up to 64 validation images); full-int8 TFLite
(int8 or uint8 pixels in, probabilities out in the same type) is checked by its accuracy on
the validation images next to the original model's, and by its size next to float TFLite's.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.analysis.export_runtimes import (
    ExportUnavailable,
    convert_tflite,
    representative_images,
    run_onnx,
    run_tflite,
    save_onnx,
)
from workbench.core.analysis.predict import RunModel, load_run_model, read_images
from workbench.core.config.export import FILE_NAMES, FORMATS, INT8_IO, LABELS_FILE, TOLERANCE
from workbench.core.runs.store import RunError

CHECK_IMAGES = 8
ONNX_CHECK_IMAGES = 64  # onnxruntime is quick: a wider check, with top-1 agreement
INT8_CHECK_IMAGES = 500  # accuracy of the int8 model: up to this many validation images
REPRESENTATIVE_IMAGES = 100  # training images the int8 converter calibrates on


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
    top1_agreement: float = math.nan  # share of check images whose top class matches the original's
    accuracy: float = math.nan  # tflite-int8: the exported model's accuracy on the validation images
    reference_accuracy: float = math.nan  # tflite-int8: the original (float) model's, same images
    reference_size_bytes: int = 0  # tflite-int8: the float TFLite file's size
    int8_io: str = ""  # tflite-int8: the input and output type, int8 or uint8

    @property
    def size_text(self) -> str:
        return format_size(self.size_bytes)

    @property
    def reference_size_text(self) -> str:
        return format_size(self.reference_size_bytes) if self.reference_size_bytes else ""


def format_size(n: int) -> str:
    for unit in ("bytes", "KB", "MB"):
        if n < 1024 or unit == "MB":
            return f"{n} bytes" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return ""  # pragma: no cover


def export_run(
    run_dir: str | os.PathLike | RunModel, fmt: str, out_dir: str | os.PathLike | None = None,
    *, int8_io: str = "int8",
) -> ExportResult:
    """Export a run's model as `fmt` into out_dir (default: run_dir/export/<fmt>/) and check it.

    `run_dir` may also be a loaded RunModel (load once, export several formats). `int8_io`
    (int8 or uint8) is the input and output type of a tflite-int8 export.
    Raises RunError for an unusable run and ValueError for an unknown format; a failed
    conversion or check comes back as a result with ok=False and an error.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format '{fmt}'; choose one of: {', '.join(FORMATS)}")
    if fmt == "tflite-int8" and int8_io not in INT8_IO:
        raise ValueError(f"int8 inputs and outputs are one of {', '.join(INT8_IO)}, not '{int8_io}'")
    run = run_dir if isinstance(run_dir, RunModel) else load_run_model(run_dir)
    if out_dir is None and run.run_dir is None:
        raise ValueError("a model without a run folder needs an out_dir to export into")
    out = Path(out_dir) if out_dir is not None else run.run_dir / "export" / fmt
    out.mkdir(parents=True, exist_ok=True)
    target = out / FILE_NAMES[fmt]
    if fmt == "tflite-int8":
        return _export_int8(run, target, int8_io)
    images, checked_on = _check_images(run, ONNX_CHECK_IMAGES if fmt == "onnx" else CHECK_IMAGES)
    expected = _predict(run.model, images)
    select_ops = False
    try:
        if fmt == "onnx":
            save_onnx(run.model, target)
            actual = run_onnx(target, images)
        elif fmt == "keras":
            _save_keras(run.model, target)
            # Keras is imported here, not at the top: the window unpickles ExportResults without TensorFlow.
            from workbench.core.engine.saving import load_model_file

            actual = _predict(load_model_file(target), images)
        elif fmt == "savedmodel":
            _save_saved_model(run.model, target)
            actual = _run_saved_model(target, images)
        else:
            data, select_ops = convert_tflite(run.model, dynamic=fmt == "tflite-dynamic")
            from workbench.core.base.files import atomic_write_bytes

            atomic_write_bytes(target, data)
            actual = run_tflite(target, images)
    except (RunError, ExportUnavailable) as exc:
        return _failed(fmt, str(exc))
    except Exception as exc:  # noqa: BLE001 - converters raise many kinds; report, never crash
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return _failed(fmt, f"the {fmt} export failed: {type(exc).__name__}: {first[:300]}")

    labels = _write_labels(run, out)
    diff, agreement = _compare(actual, expected)
    tolerance = TOLERANCE[fmt]
    ok = bool(np.isfinite(diff) and diff <= tolerance)
    error = "" if ok else (
        f"the exported model disagrees with the original: largest difference {diff:.3g} "
        f"(allowed {tolerance:g})"
    )
    return ExportResult(fmt, str(target), _size(target), diff, tolerance, ok, str(labels), checked_on,
                        select_ops, error, top1_agreement=agreement)


def _write_labels(run: RunModel, out: Path) -> Path:
    from workbench.core.base.files import atomic_write_text

    labels = out / LABELS_FILE
    atomic_write_text(labels, "\n".join(run.class_names) + "\n")
    return labels


def _compare(actual: Any, expected: Any) -> tuple[float, float]:
    """(largest probability difference, share of images whose top class agrees)."""
    a, e = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if a.shape != e.shape or not len(e):
        return math.inf, 0.0
    return float(np.max(np.abs(a - e))), float(np.mean(a.argmax(axis=1) == e.argmax(axis=1)))


def _export_int8(run: RunModel, target: Path, io: str) -> ExportResult:
    """Full-int8 TFLite, calibrated on training images; checked by its validation accuracy."""
    fmt, tolerance = "tflite-int8", TOLERANCE["tflite-int8"]
    try:
        items = _validation(run)
        images, labels = _read_labelled(items, run.image_size, INT8_CHECK_IMAGES)
        representative = representative_images(_training_paths(run), run.image_size, REPRESENTATIVE_IMAGES)
        floats: list[bytes] = []
        data, _ = convert_tflite(run.model, int8_io=io, representative=representative, keep_float=floats)
        from workbench.core.base.files import atomic_write_bytes

        atomic_write_bytes(target, data)
        actual = run_tflite(target, images)
    except (RunError, ExportUnavailable) as exc:
        return _failed(fmt, str(exc))
    except Exception as exc:  # noqa: BLE001 - converters raise many kinds; report, never crash
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return _failed(fmt, f"the {fmt} export failed: {type(exc).__name__}: {first[:300]}")
    expected = _predict(run.model, images)
    labels_path = _write_labels(run, target.parent)
    diff, agreement = _compare(actual, expected)
    accuracy = float(np.mean(actual.argmax(axis=1) == labels))
    reference = float(np.mean(expected.argmax(axis=1) == labels))
    allowed = max(tolerance, 1.0 / len(labels))  # on a few images, one image more may go wrong
    ok = bool(np.isfinite(accuracy) and reference - accuracy <= allowed + 1e-9)
    error = "" if ok else (
        f"the int8 model is much less accurate than the original: {accuracy:.1%} against "
        f"{reference:.1%} on {len(labels)} validation images (allowed drop {allowed:.1%})")
    return ExportResult(fmt, str(target), _size(target), diff, tolerance, ok, str(labels_path),
                        f"{len(labels)} validation images", False, error, top1_agreement=agreement,
                        accuracy=accuracy, reference_accuracy=reference,
                        reference_size_bytes=len(floats[0]) if floats else 0, int8_io=io)


def _validation(run: RunModel) -> list[tuple[str, int]]:
    from workbench.core.analysis.evaluation import validation_items

    if run.config is None:
        raise RunError("the run's config cannot be read, so its images are unknown; full-int8 "
                       "quantisation needs its training and validation images")
    items, _ = validation_items(run.config, run.class_names, run.summary)
    return items


def _read_labelled(items: list[tuple[str, int]], size: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
    step = max(1, len(items) // limit)  # spread over the classes (items are grouped by class)
    chosen = items[::step][:limit]
    images, errors = read_images([p for p, _ in chosen], size)
    labels = np.asarray([label for (_, label), e in zip(chosen, errors, strict=True) if not e], np.int64)
    if not len(labels):
        raise RunError("none of the run's validation images could be read")
    return images, labels


def _training_paths(run: RunModel) -> list[str]:
    """The run's training images (its split of the data folder), for the int8 calibration."""
    from workbench.core.data.scan import scan_folder
    from workbench.core.data.splits import hold_out_test, split_for

    d = run.config.data
    if not Path(d.folder).is_dir():
        raise ExportUnavailable(f"the run's training images are gone ({d.folder}), and full-int8 "
                                "quantisation needs them as representative data")
    items, seed = scan_folder(d.folder).items, run.config.training.seed
    # What training saw: never the held-out test share, which a separate validation folder still leaves out.
    items, _ = hold_out_test(items, d, seed) if d.validation_folder.strip() else split_for(d, items, seed)
    if not items:
        raise ExportUnavailable("the run has no training images to calibrate the int8 model on")
    return [path for path, _ in items]


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


def _check_images(run: RunModel, count: int = CHECK_IMAGES) -> tuple[np.ndarray, str]:
    """Up to `count` of the run's validation images; random pixels when the data is no longer there."""
    try:
        images, _ = _read_labelled(_validation(run), run.image_size, count)
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
