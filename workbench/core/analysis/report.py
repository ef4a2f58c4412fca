"""A run's report: one self-contained HTML file to send to someone who has no Workbench.

Everything is inside the file (images as base64 PNG, the style inline): the config, the
training curves (drawn with matplotlib's Agg canvas, never pyplot, so no GUI backend is
touched), the confusion matrix and per-class scores on the run's validation images, test
figures when the summary has them, a sample of the most confident mistakes with their
Grad-CAM, and the environment the report was made in (versions and devices).
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.analysis.predict import RunModel, load_run_model
from workbench.core.runs.store import RunError, RunRecord, load_run

REPORT_FILE = "report.html"
MISTAKES = 6  # mistakes shown with their Grad-CAM
THUMB = 160  # pixels: each mistake's picture


@dataclass(frozen=True)
class ReportResult:
    path: str
    size_bytes: int
    sections: tuple[str, ...]  # the headings the report has
    notes: tuple[str, ...] = field(default_factory=tuple)  # what could not be included, and why


def write_report(run_dir: str | os.PathLike, out: str | os.PathLike | None = None, *,
                 run: RunModel | None = None, mistakes: int = MISTAKES) -> ReportResult:
    """Write the report of the run in `run_dir` to `out` (default: run_dir/report.html).

    `run` is the run's loaded model when the caller has it. A run without a model (failed
    before its first epoch) still gets its config, curves and environment; what is missing is
    said in the report and in `notes`. Raises RunError when run_dir is not a run folder.
    """
    folder = Path(run_dir)
    if not folder.is_dir():
        raise RunError(f"run folder not found: {folder}")
    record = load_run(folder)
    if record.config is None:
        raise RunError(f"{folder.name} is not a readable run folder: {record.problem or 'no config.json'}")
    notes: list[str] = []
    sections: list[tuple[str, str]] = [("Summary", _summary(record)), ("Configuration", _config(record))]
    curves = _curves(record)
    sections.append(("Training curves", curves or "<p class='note'>No epoch was recorded.</p>"))

    evaluation = None
    if run is None and record.has_model:
        try:
            run = load_run_model(folder)
        except RunError as exc:
            notes.append(f"the model could not be loaded: {exc}")
    if run is not None:
        evaluation = _evaluate(run, notes)
    elif not record.has_model:
        notes.append("the run has no trained model, so there is no evaluation")
    if evaluation is not None:
        sections.append(("Confusion matrix", _confusion(evaluation)))
        sections.append(("Per-class scores", _per_class(evaluation)))
    test = held_out_figures(record.summary)
    if test:
        sections.append(("Test figures", test))
    if evaluation is not None and run is not None:
        sections.append(("Most confident mistakes", _mistakes(run, evaluation, mistakes, notes)))
    sections.append(("Environment", _environment()))
    if notes:
        sections.append(("Notes", "<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>"))

    target = Path(out) if out is not None else folder / REPORT_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    from workbench.core.base.files import atomic_write_text

    atomic_write_text(target, _page(record, sections))
    return ReportResult(str(target), target.stat().st_size, tuple(t for t, _ in sections), tuple(notes))


# ---- sections -------------------------------------------------------------------------------

def _summary(record: RunRecord) -> str:
    from workbench.core.runs.listing import best_val_accuracy, format_duration, run_status

    s = record.summary
    status, _, why = run_status(record)
    rows = [("Run", record.id), ("Status", status + (f" ({why})" if why and why != status else ""))]
    best = best_val_accuracy(record)
    if best is not None:
        rows.append(("Best validation accuracy", f"{best:.1%}"))
    test = s.get("test") if isinstance(s.get("test"), dict) else {}
    if isinstance(test.get("accuracy"), float):
        rows.append(("Test accuracy", f"{test['accuracy']:.1%} on {test.get('images', '?')} held-out images"))
    for key, label in (("epochs_done", "Epochs"), ("train_images", "Training images"),
                       ("val_images", "Validation images"), ("test_images", "Held-out test images"),
                       ("trainable", "Trainable")):
        if s.get(key) not in (None, "") and not (key == "test_images" and not s[key]):
            rows.append((label, str(s[key])))
    if isinstance(s.get("seconds"), (int, float)):
        rows.append(("Training time", format_duration(float(s["seconds"]))))
    if s.get("class_names"):
        rows.append(("Classes", ", ".join(map(str, s["class_names"]))))
    return _table(["", ""], rows, header=False)


def _config(record: RunRecord) -> str:
    text = json.dumps(record.config.to_dict(), indent=2)
    return f"<pre>{html.escape(text)}</pre>"


def _curves(record: RunRecord) -> str:
    rows = record.metrics
    if not rows:
        return ""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    epochs = [int(r.get("epoch", i + 1)) for i, r in enumerate(rows)]  # metrics.csv counts from 1
    figure = Figure(figsize=(10, 3.6), dpi=100)
    FigureCanvasAgg(figure)
    for position, metric in ((1, "loss"), (2, "accuracy")):
        axes = figure.add_subplot(1, 2, position)
        for key, colour, label in ((metric, "#2563eb", "training"), (f"val_{metric}", "#dc2626", "validation")):
            points = [(e, r[key]) for e, r in zip(epochs, rows, strict=True) if key in r and np.isfinite(r[key])]
            if points:
                axes.plot(*zip(*points, strict=True), marker="o", markersize=3, color=colour, label=label)
        axes.set_title(metric)
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return _img(buffer.getvalue(), "training and validation loss and accuracy per epoch")


def _evaluate(run: RunModel, notes: list[str]) -> Any:
    from workbench.core.analysis.evaluation import evaluate_run, load_evaluation

    try:
        evaluation = evaluate_run(run, save=False)
    except RunError as exc:
        evaluation = load_evaluation(run.run_dir) if run.run_dir is not None else None
        notes.append(f"the validation images could not be used ({exc})"
                     + ("; the last saved evaluation is shown" if evaluation is not None else ""))
        return evaluation
    notes.extend(evaluation.notes)
    return evaluation


def _confusion(ev: Any) -> str:
    peak = max(int(ev.confusion.max()), 1)
    head = "<tr><th>true \\ predicted</th>" + "".join(f"<th>{html.escape(n)}</th>" for n in ev.class_names) + "</tr>"
    body = []
    for i, (name, row) in enumerate(zip(ev.class_names, ev.confusion, strict=True)):
        cells = []
        for j, value in enumerate(row):
            share = value / peak
            hue = "37,99,235" if i == j else "220,38,38"
            ink = "#fff" if share > 0.55 else "#111"
            cells.append(f"<td style='background:rgba({hue},{0.08 + 0.85 * share:.2f});color:{ink}'>{int(value)}</td>")
        body.append(f"<tr><th>{html.escape(name)}</th>{''.join(cells)}</tr>")
    return (f"<p>Accuracy <b>{ev.accuracy:.1%}</b>, balanced accuracy {ev.balanced_accuracy:.1%}, "
            f"macro-F1 {ev.macro_f1:.3f}, top-{ev.top_k} accuracy {ev.top_k_accuracy:.1%}, "
            f"on {ev.count} validation images (rows: true class; columns: predicted class).</p>"
            f"<table class='matrix'>{head}{''.join(body)}</table>")


def _per_class(ev: Any) -> str:
    rows = [(s.name, f"{s.precision:.3f}", f"{s.recall:.3f}", f"{s.f1:.3f}", str(s.support)) for s in ev.per_class]
    return _table(["class", "precision", "recall", "F1", "images"], rows)


TEST_FIGURES = (("accuracy", "Accuracy"), ("balanced_accuracy", "Balanced accuracy"), ("macro_f1", "Macro-F1"),
                ("top_k_accuracy", "Top-k accuracy"), ("images", "Images"), ("source", "Images from"))


def held_out_figures(summary: dict[str, Any]) -> str:
    """Figures on the held-out test set, when the run was evaluated on one (summary "test"), kept
    apart from the validation figures."""
    figures = summary.get("test") if isinstance(summary.get("test"), dict) else {}
    rows = [(label, f"{figures[key]:.1%}" if isinstance(figures[key], float) else str(figures[key]))
            for key, label in TEST_FIGURES if key in figures]
    return _table(["figure", "value"], rows) if rows else ""


def _mistakes(run: RunModel, ev: Any, count: int, notes: list[str]) -> str:
    if not ev.mistakes:
        return "<p>No mistakes on the validation images.</p>"
    from workbench.core.analysis import gradcam
    from workbench.core.analysis.predict import read_image
    from workbench.core.data.decode import load_image

    cards = []
    for m in ev.mistakes[:count]:
        caption = (f"<b>{html.escape(m.true_label)}</b> taken for <b>{html.escape(m.predicted_label)}</b> "
                   f"({m.confidence:.0%})<br><span class='path'>{html.escape(Path(m.path).name)}</span>")
        try:
            preview = load_image(m.path, THUMB)
            pictures = _img(_png(preview), f"{m.true_label} image")
            try:
                model_image, problem = read_image(m.path, run.image_size)  # as the model saw it
                if model_image is None:
                    raise OSError(problem)
                heat = gradcam.grad_cam(run.model, model_image, run.class_names.index(m.predicted_label))
                heat = np.asarray(_resize(heat, THUMB))
                pictures += _img(_png(gradcam.overlay(preview, heat)), f"Grad-CAM for {m.predicted_label}")
            except ValueError as exc:
                notes.append(f"Grad-CAM could not be computed: {exc}")
        except Exception as exc:  # noqa: BLE001 - one unreadable image must not cost the report
            pictures = f"<p class='note'>{html.escape(f'{type(exc).__name__}: {exc}')}</p>"
        cards.append(f"<figure>{pictures}<figcaption>{caption}</figcaption></figure>")
    more = len(ev.mistakes) - min(count, len(ev.mistakes))
    tail = f"<p class='note'>{more} more mistake(s) not shown.</p>" if more > 0 else ""
    return ("<p>Each image beside its Grad-CAM for the wrong answer: the warm areas drove it.</p>"
            f"<div class='gallery'>{''.join(cards)}</div>{tail}")


def environment() -> list[tuple[str, str]]:
    """Versions and devices, as (what, value) rows."""
    import importlib.metadata as metadata

    rows = [("Report made", time.strftime("%Y-%m-%d %H:%M:%S")),
            ("Python", sys.version.split()[0]), ("Platform", platform.platform())]
    for dist in ("workbench", "tensorflow", "keras", "numpy", "pillow", "matplotlib", "onnxruntime", "tf2onnx"):
        try:
            rows.append((dist, metadata.version(dist)))
        except metadata.PackageNotFoundError:
            continue
    try:
        import tensorflow as tf

        from workbench.core.engine.devices import describe_devices, list_gpus

        rows.append(("Devices", ", ".join(d.name for d in tf.config.list_physical_devices())))
        rows.append(("Accelerators", describe_devices(list_gpus())))
    except Exception as exc:  # noqa: BLE001 - the report goes on without it
        rows.append(("Devices", f"unknown ({type(exc).__name__})"))
    rows.append(("CPU cores", str(os.cpu_count() or "?")))
    return rows


def _environment() -> str:
    return _table(["", ""], environment(), header=False)


# ---- HTML and pictures --------------------------------------------------------------------------

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;background:#f4f6fa;color:#111}
header{background:#1e3a8a;color:#fff;padding:22px 32px}header h1{margin:0 0 4px;font-size:24px}
main{padding:8px 32px 32px;max-width:1100px}section{background:#fff;border-radius:8px;padding:14px 20px;
margin:16px 0;box-shadow:0 1px 3px rgba(0,0,0,.12)}h2{font-size:17px;margin:4px 0 10px;color:#1e3a8a}
table{border-collapse:collapse}td,th{border:1px solid #d6dbe4;padding:4px 10px;text-align:left}
th{background:#eef2f8}table.matrix td{text-align:center;min-width:44px;font-weight:600}
pre{background:#0f172a;color:#e2e8f0;padding:12px;border-radius:6px;overflow:auto;max-height:420px;font-size:12px}
.gallery{display:flex;flex-wrap:wrap;gap:14px}figure{margin:0;background:#f8fafc;padding:8px;border-radius:6px}
figure img{margin-right:4px}figcaption{font-size:12px;margin-top:4px}.path{color:#64748b}.note{color:#b45309}
nav a{color:#c7d2fe;margin-right:12px;font-size:13px}
"""


def _page(record: RunRecord, sections: list[tuple[str, str]]) -> str:
    from workbench.core.runs.listing import run_label

    title = html.escape(f"Workbench run {run_label(record)}")
    nav = "".join(f"<a href='#s{i}'>{html.escape(t)}</a>" for i, (t, _) in enumerate(sections))
    body = "".join(f"<section id='s{i}'><h2>{html.escape(t)}</h2>{content}</section>"
                   for i, (t, content) in enumerate(sections))
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
            f"<meta name='viewport' content='width=device-width,initial-scale=1'><style>{STYLE}</style></head>"
            f"<body><header><h1>{title}</h1><div>{html.escape(record.id)}</div><nav>{nav}</nav></header>"
            f"<main>{body}</main></body></html>\n")


def _table(head: list[str], rows: list[tuple[str, ...]], header: bool = True) -> str:
    top = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>" if header else ""
    cells = "".join("<tr>" + "".join(
        f"<{'th' if not header and i == 0 else 'td'}>{html.escape(str(v))}</{'th' if not header and i == 0 else 'td'}>"
        for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table>{top}{cells}</table>"


def _png(rgb: Any) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(rgb, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _resize(heat: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    image = Image.fromarray(np.asarray(heat, np.float32)).resize((size, size), Image.Resampling.BILINEAR)
    return np.clip(np.asarray(image), 0.0, 1.0)


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{data}'>"
