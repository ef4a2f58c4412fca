"""Background jobs that use a run's trained model: evaluate, predict, Grad-CAM, export.

They run on a QThreadPool thread through `BackgroundJobs`, never on the GUI thread,
and each holds the Keras lock of jobs.py while Keras works, so they never run beside
a training run or a layer count. The lock is waited for in short steps, so quitting
(which sets `cancel`) never hangs behind another model job. Results are plain values
(core results plus small RGB thumbnails as numpy arrays); the GUI turns them into
pixmaps. TensorFlow is imported only inside these functions.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workbench.ui.tasks.keras_lock import holding_keras

GALLERY_THUMB = 96
TABLE_THUMB = 40
PREVIEW_SIZE = 256
MAX_GALLERY = 60
MAX_TABLE_THUMBS = 300


# ---- the loaded model, kept for the next job on the same run ---------------------------------

_cached: dict[str, tuple[int, Any]] = {}  # run folder -> (model file mtime, RunModel); used under keras_lock


def run_model(run_dir: str | os.PathLike) -> Any:
    """The run's RunModel, loaded once and reused while its model file stays the same (call under the lock)."""
    from workbench.core.analysis.predict import load_run_model
    from workbench.core.runs.store import MODEL_FILE

    key = os.path.abspath(run_dir)
    try:
        stamp = (Path(key) / MODEL_FILE).stat().st_mtime_ns
    except OSError:
        stamp = -1
    hit = _cached.get(key)
    if hit is not None and hit[0] == stamp and stamp != -1:
        return hit[1]
    run = load_run_model(run_dir)  # raises RunError with a readable reason
    _cached.clear()  # one model in memory at a time
    _cached[key] = (stamp, run)
    return run


def forget(run_dir: str | os.PathLike) -> None:
    """Drop a cached model (its run was deleted)."""
    _cached.pop(os.path.abspath(run_dir), None)


# ---- thumbnails (plain RGB arrays; safe off the GUI thread) -------------------------------------

def thumbnail(path: str, size: int) -> np.ndarray | None:
    """An RGB uint8 thumbnail that fits size x size, or None when the file cannot be read."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as img:
            if img.format in ("JPEG", "MPO"):
                img.draft("RGB", (size, size))
            img.load()
            img = ImageOps.exif_transpose(img)
            img = img.convert("RGB")
            img.thumbnail((size, size), Image.Resampling.BILINEAR)
            return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))
    except Exception:  # noqa: BLE001 - a thumbnail is never worth an error
        return None


# ---- evaluate ---------------------------------------------------------------------------------

@dataclass
class EvaluationResult:
    evaluation: Any  # core.evaluation.Evaluation
    thumbnails: list[np.ndarray | None] = field(default_factory=list)  # one per shown mistake
    saved: bool = False  # read back from evaluation.json rather than computed now
    saved_at: float = 0.0


def _mistake_thumbnails(evaluation: Any, limit: int = MAX_GALLERY) -> list[np.ndarray | None]:
    return [thumbnail(m.path, GALLERY_THUMB) for m in evaluation.mistakes[:limit]]


def evaluate(run_dir: str, top_k: int, cancel: threading.Event | None = None) -> EvaluationResult:
    """evaluate_run on the run's validation split (saves evaluation.json), then the mistakes' thumbnails."""
    from workbench.core.analysis.evaluation import evaluate_run

    with holding_keras(cancel):
        evaluation = evaluate_run(run_dir, top_k=top_k)
    return EvaluationResult(evaluation, _mistake_thumbnails(evaluation))


def load_saved_evaluation(run_dir: str) -> EvaluationResult | None:
    """The run's last saved evaluation (no model needed), or None."""
    from workbench.core.analysis.evaluation import EVALUATION_FILE, load_evaluation

    evaluation = load_evaluation(run_dir)
    if evaluation is None:
        return None
    try:
        saved_at = (Path(run_dir) / EVALUATION_FILE).stat().st_mtime
    except OSError:
        saved_at = 0.0
    return EvaluationResult(evaluation, _mistake_thumbnails(evaluation), saved=True, saved_at=saved_at)


# ---- predict ----------------------------------------------------------------------------------

@dataclass
class PredictionResult:
    run_dir: str
    predictions: list[Any]  # core.predict.Prediction, one per image
    thumbnails: list[np.ndarray | None]
    top_k: int
    mc_passes: int
    seconds: float = 0.0


def predict(
    run_dir: str, paths: Sequence[str], top_k: int, mc_passes: int, cancel: threading.Event | None = None
) -> PredictionResult:
    from workbench.core.analysis.predict import predict_images

    started = time.perf_counter()
    with holding_keras(cancel):
        run = run_model(run_dir)
        predictions = predict_images(run, list(paths), top_k=top_k, mc_passes=mc_passes)
    seconds = time.perf_counter() - started
    thumbs = [
        thumbnail(p.path, TABLE_THUMB) if p.ok and i < MAX_TABLE_THUMBS else None
        for i, p in enumerate(predictions)
    ]
    return PredictionResult(run_dir, predictions, thumbs, top_k, mc_passes, seconds)


@dataclass
class GradCamResult:
    path: str
    class_name: str
    image: np.ndarray  # RGB uint8, as the model sees it but at preview size
    overlay: np.ndarray  # the image with the heat map over it
    feature_size: tuple[int, int] = (0, 0)  # the cells of the model's last feature map
    note: str = ""  # said when that feature map is too coarse to explain much
    legend: np.ndarray | None = None  # the colour scale, low to high, as a (1, N, 3) RGB strip


def grad_cam(run_dir: str, path: str, class_name: str, cancel: threading.Event | None = None) -> GradCamResult:
    """Grad-CAM for `class_name` on one image, computed at the model's input size and upsampled
    smoothly (bilinear) to the preview size it is shown at, with its colour scale and a coarse-map note."""
    from workbench.core.analysis import gradcam
    from workbench.core.analysis.predict import read_image
    from workbench.core.data.decode import load_image

    with holding_keras(cancel):
        run = run_model(run_dir)
        model_image, problem = read_image(path, run.image_size)  # exactly what the model saw when predicting
        if model_image is None:
            raise OSError(problem)
        index = run.class_names.index(class_name)
        preview = load_image(path, max(PREVIEW_SIZE, run.image_size))
        cam = gradcam.grad_cam_map(run.model, model_image, index, size=preview.shape[:2])
    return GradCamResult(path, class_name, preview, gradcam.overlay(preview, cam.heatmap),
                         cam.feature_size, cam.note, gradcam.colour_scale())


# ---- export -----------------------------------------------------------------------------------

def export(run_dir: str, fmt: str, cancel: threading.Event | None = None, int8_io: str = "int8",
           out_dir: str | None = None) -> Any:
    """export_run (with its reload-and-compare check) into `out_dir` (default: the run's): an ExportResult."""
    from workbench.core.analysis.export import export_run

    with holding_keras(cancel):  # the loaded model is reused: one load for several formats
        return export_run(run_model(run_dir), fmt, out_dir, int8_io=int8_io)


def report(run_dir: str, out: str | None = None, cancel: threading.Event | None = None) -> Any:
    """The run's self-contained HTML report (core.analysis.report.write_report): a ReportResult."""
    from workbench.core.analysis.report import write_report

    with holding_keras(cancel):
        return write_report(run_dir, out, run=run_model(run_dir))


def compute_run_fid(run_dir: str, evaluation, cancel: threading.Event):
    """On a model-pool thread, under the Keras lock: FID of a GAN run's generator (core.fid.evaluate_run)."""
    from workbench.core.gan import fid

    with holding_keras(cancel):
        return fid.evaluate_run(run_dir, evaluation)
