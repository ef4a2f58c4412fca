"""Jobs that use a run's trained model: evaluate, predict, Grad-CAM, export, report, FID.

The panels submit them to a QThreadPool through `BackgroundJobs`, never on the GUI thread.
Each one sends its work to the model worker (processes.run_in_worker: a child process that
keeps the last loaded run model; the bodies are in worker_jobs.py) and waits for the answer,
so TensorFlow never loads in the window and a job runs while a training run trains. Setting
`cancel` (on quit) ends the wait at once. Results are plain values (core results plus small
RGB thumbnails as numpy arrays); the GUI turns them into pixmaps.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workbench.ui.tasks.processes import run_in_worker

GALLERY_THUMB = 96
TABLE_THUMB = 40
PREVIEW_SIZE = 256
MAX_GALLERY = 60
MAX_TABLE_THUMBS = 300


# ---- thumbnails (plain RGB arrays; made in the worker, or on a pool thread for saved results) ------

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


def mistake_thumbnails(evaluation: Any, limit: int = MAX_GALLERY) -> list[np.ndarray | None]:
    return [thumbnail(m.path, GALLERY_THUMB) for m in evaluation.mistakes[:limit]]


# ---- evaluate ---------------------------------------------------------------------------------

@dataclass
class EvaluationResult:
    evaluation: Any  # core.evaluation.Evaluation
    thumbnails: list[np.ndarray | None] = field(default_factory=list)  # one per shown mistake
    saved: bool = False  # read back from evaluation.json rather than computed now
    saved_at: float = 0.0


def evaluate(run_dir: str, top_k: int, cancel: threading.Event | None = None, **options: Any) -> EvaluationResult:
    """evaluate_run on the run's validation split (saves evaluation.json), then the mistakes' thumbnails.

    `options` go to evaluate_run as they are (on="test", test_folder=...).
    """
    return run_in_worker("evaluate", run_dir, top_k, cancel=cancel, **options)


def load_saved_evaluation(run_dir: str, on: str = "validation") -> EvaluationResult | None:
    """The run's last saved evaluation on validation or test (no model needed, so read here), or None."""
    from workbench.core.analysis.evaluation import (
        EVALUATION_FILE,
        TEST_EVALUATION_FILE,
        load_evaluation,
    )

    evaluation = load_evaluation(run_dir, on)
    if evaluation is None:
        return None
    try:
        saved_at = (Path(run_dir) / (TEST_EVALUATION_FILE if on == "test" else EVALUATION_FILE)).stat().st_mtime
    except OSError:
        saved_at = 0.0
    return EvaluationResult(evaluation, mistake_thumbnails(evaluation), saved=True, saved_at=saved_at)


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
    return run_in_worker("predict", run_dir, list(paths), top_k, mc_passes, cancel=cancel)


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
    """Grad-CAM for `class_name` on one image, at preview size, with its colour scale."""
    return run_in_worker("grad_cam", run_dir, path, class_name, cancel=cancel)


# ---- export, report, FID -----------------------------------------------------------------------

def export(run_dir: str, fmt: str, cancel: threading.Event | None = None, int8_io: str = "int8",
           out_dir: str | None = None) -> Any:
    """export_run (with its reload-and-compare check) into `out_dir` (default: the run's): an ExportResult."""
    return run_in_worker("export", run_dir, fmt, int8_io, out_dir, cancel=cancel)


def report(run_dir: str, out: str | None = None, cancel: threading.Event | None = None) -> Any:
    """The run's self-contained HTML report (core.analysis.report.write_report): a ReportResult."""
    return run_in_worker("report", run_dir, out, cancel=cancel)


def compute_run_fid(run_dir: str, evaluation, cancel: threading.Event):
    """FID of a GAN run's generator (core.fid.evaluate_run): a FidResult."""
    return run_in_worker("run_fid", run_dir, evaluation, cancel=cancel)
