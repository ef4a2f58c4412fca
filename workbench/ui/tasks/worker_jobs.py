"""The bodies of the window's model jobs, run inside the model worker process, never in the window.

model_jobs.py, transfer_jobs.py and background.py send each job here by name
(processes.run_in_worker); the worker (core/process/model_worker.py) imports this module and
calls the function. The last loaded run model stays here between jobs, so a second prediction
on the same run skips loading it. Every result is a plain picklable value whose class the
window can import without TensorFlow. Qt-free: the worker imports it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from workbench.core.config.run import RunConfig
from workbench.ui.tasks.data_jobs import UNCERTAIN_SHOWN, RankingResult, ReviewResult
from workbench.ui.tasks.model_jobs import (
    GALLERY_THUMB,
    MAX_TABLE_THUMBS,
    PREVIEW_SIZE,
    TABLE_THUMB,
    EvaluationResult,
    GradCamResult,
    PredictionResult,
    mistake_thumbnails,
    thumbnail,
)
from workbench.ui.tasks.transfer_jobs import FreezeMap, map_key

_cached: dict[str, tuple[int, Any]] = {}  # run folder -> (model file mtime, RunModel): one model at a time


def run_model(run_dir: str | os.PathLike) -> Any:
    """The run's RunModel, loaded once and reused while its model file stays the same.

    A deleted or retrained run changes the file's stamp, so it is loaded again (or refused).
    """
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
    _cached.clear()  # the old model goes before the new one loads: one in memory at a time
    run = load_run_model(run_dir)  # raises RunError with a readable reason
    _cached[key] = (stamp, run)
    return run


# ---- analysis of a trained run ------------------------------------------------------------------

def evaluate(run_dir: str, top_k: int, **options: Any) -> EvaluationResult:
    """evaluate_run on the run's validation split (saves evaluation.json), or with on="test" its test set
    or test_folder (evaluation-test.json), then the mistakes' thumbnails."""
    from workbench.core.analysis.evaluation import evaluate_run

    evaluation = evaluate_run(run_model(run_dir), top_k=top_k, **options)
    return EvaluationResult(evaluation, mistake_thumbnails(evaluation))


def predict(run_dir: str, paths: Sequence[str], top_k: int, mc_passes: int) -> PredictionResult:
    from workbench.core.analysis.predict import predict_images

    started = time.perf_counter()
    predictions = predict_images(run_model(run_dir), list(paths), top_k=top_k, mc_passes=mc_passes)
    seconds = time.perf_counter() - started
    thumbs = [
        thumbnail(p.path, TABLE_THUMB) if p.ok and i < MAX_TABLE_THUMBS else None
        for i, p in enumerate(predictions)
    ]
    return PredictionResult(run_dir, predictions, thumbs, top_k, mc_passes, seconds)


def grad_cam(run_dir: str, path: str, class_name: str) -> GradCamResult:
    """Grad-CAM for `class_name` on one image, computed at the model's input size and upsampled
    smoothly (bilinear) to the preview size it is shown at, with its colour scale and a coarse-map note."""
    from workbench.core.analysis import gradcam
    from workbench.core.analysis.predict import read_image
    from workbench.core.data.decode import load_image

    run = run_model(run_dir)
    model_image, problem = read_image(path, run.image_size)  # exactly what the model saw when predicting
    if model_image is None:
        raise OSError(problem)
    index = run.class_names.index(class_name)
    preview = load_image(path, max(PREVIEW_SIZE, run.image_size))
    cam = gradcam.grad_cam_map(run.model, model_image, index, size=preview.shape[:2])
    return GradCamResult(path, class_name, preview, gradcam.overlay(preview, cam.heatmap),
                         cam.feature_size, cam.note, gradcam.colour_scale())


def export(run_dir: str, fmt: str, int8_io: str, out_dir: str | None) -> Any:
    """export_run (with its reload-and-compare check) on the cached model: an ExportResult."""
    from workbench.core.analysis.export import export_run

    return export_run(run_model(run_dir), fmt, out_dir, int8_io=int8_io)


def report(run_dir: str, out: str | None) -> Any:
    """The run's self-contained HTML report: a ReportResult (a run without a model still gets one)."""
    from workbench.core.analysis.report import write_report
    from workbench.core.runs.store import MODEL_FILE

    run = run_model(run_dir) if (Path(run_dir) / MODEL_FILE).is_file() else None
    return write_report(run_dir, out, run=run)


def run_fid(run_dir: str, evaluation: Any) -> Any:
    """FID of a GAN run's generator (core.gan.fid.evaluate_run): a FidResult."""
    from workbench.core.gan import fid

    return fid.evaluate_run(run_dir, evaluation)


def save_backbone(run_dir: str, name: str, runs_dir: str) -> str:
    """core.weights.save_run_backbone: the path of the saved weights file."""
    from workbench.core.engine.weights import save_run_backbone

    return str(save_run_backbone(run_dir, name, runs_dir))


# ---- the data loop (data_jobs.py) ---------------------------------------------------------------

def review(run_dir: str, split: str, mc_passes: int) -> ReviewResult:
    """Fix data: review_images on the cached model, with thumbnails of the gallery's images."""
    from workbench.core.analysis.review import review_images

    result = review_images(run_model(run_dir), split=split, mc_passes=mc_passes)
    return ReviewResult(result, {r.path: thumbnail(r.path, GALLERY_THUMB) for r in result.gallery(UNCERTAIN_SHOWN)})


def rank(run_dir: str, folder: str, mc: int, top: int, by: str) -> RankingResult:
    """Label: rank_unlabelled on the cached model, with thumbnails of the top images."""
    from workbench.core.analysis.uncertainty import rank_unlabelled

    result = rank_unlabelled(run_model(run_dir), folder, mc=mc, top=top, by=by)
    return RankingResult(result, [thumbnail(r.path, GALLERY_THUMB) for r in result.images])


# ---- a config's structure (no weights loaded) ----------------------------------------------------

def count_trainable(config: RunConfig, num_classes: int) -> Any:
    """Build the model (structure only, no weights) and apply the freeze policy: a FreezeSummary."""
    from workbench.core.config.derived import structure_only
    from workbench.core.engine import model as model_lib

    return model_lib.freeze_for(model_lib.build_model(structure_only(config), num_classes), config)


def freeze_map(config: RunConfig) -> FreezeMap:
    """Build the classifier's structure (no weights loaded), apply the freeze policy, list the layers."""
    from workbench.core.config import backbone_catalogue, derived
    from workbench.core.config.run import FreezeConfig
    from workbench.core.engine import model as model_lib

    spec = backbone_catalogue.get_backbone(config.backbone.name)
    built = model_lib.build_model(derived.structure_only(config), 2)
    pretrained = derived.is_pretrained(config.backbone)
    partial = derived.partial_transfer(config) is not None
    f = config.freeze
    # Which layers could train at all: everything, less what the BatchNorm rule keeps frozen.
    model_lib.apply_freeze(built, FreezeConfig(policy="none", freeze_batchnorm=f.freeze_batchnorm), spec,
                           pretrained=pretrained)
    locked = frozenset(r.name for r in model_lib.freeze_map(built, spec) if not r.trainable)
    shown, unknown = config, ()
    if f.policy == "custom" and not partial:
        names = {layer.name for layer in built.get_layer("backbone").layers}
        unknown = tuple(n for n in f.trainable_layers if n not in names)
        if unknown:  # listed for another backbone: show what the known names would train
            shown = config.replace(**{"freeze.trainable_layers": [n for n in f.trainable_layers if n in names]})
    summary = model_lib.freeze_for(built, shown)
    return FreezeMap(
        key=map_key(config),
        backbone=spec.name,
        blocks=tuple(label for label, _ in spec.blocks),
        rows=tuple(model_lib.freeze_map(built, spec)),
        locked=locked,
        editable=not partial,
        unknown=unknown,
        summary=summary,
    )


def describe_devices() -> str:
    """"GPU: NVIDIA ... 80 GB" or "CPU only", as TensorFlow sees them."""
    from workbench.core.engine import devices

    return devices.describe_devices(devices.list_gpus())

