"""The runs folder as a list: every run with its status and settings, for the Runs panel and
`workbench runs` alike.

A folder that cannot be read is listed with its problem, never raised. Only folders whose
files changed are read again when the caller keeps a cache between calls.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from workbench.core.runs.saved_backbones import SAVED_BACKBONES_DIR
from workbench.core.runs.store import CONFIG_FILE, GAN_RUNS_DIR, RunRecord, load_run
from workbench.core.runs.studies import STUDY_PREFIX
from workbench.core.runs.sweeps import SWEEP_FILE


def run_label(record: RunRecord) -> str:
    """The run's name, or its folder's id when it has none."""
    name = record.config.name if record.config is not None and record.config.name else ""
    return name or record.id


def overlay_label(record: RunRecord) -> str:
    """A run in a legend beside others: "name · id", so two runs both named "demo" differ."""
    label = run_label(record)
    return label if label == record.id else f"{label} · {record.id}"


def best_val_accuracy(record: RunRecord) -> float | None:
    values = [row["val_accuracy"] for row in record.metrics if "val_accuracy" in row]
    return max(values) if values else None


def held_out_accuracy(record: RunRecord) -> float | None:
    """Accuracy on the held-out test set, once the run was evaluated on it (summary.json's "test")."""
    test = record.summary.get("test")
    value = test.get("accuracy") if isinstance(test, dict) else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


RunCache = dict[str, tuple[tuple, RunRecord]]  # folder -> (its files' signature, the record read)


def _signature(path: Path) -> tuple:
    """Changes whenever the run's config, metrics or summary file is written (atomically: a new inode)."""
    found = []
    for name in (CONFIG_FILE, "metrics.csv", "summary.json"):
        try:
            st = (path / name).stat()
            found.append((st.st_mtime_ns, st.st_size, st.st_ino))
        except OSError:
            found.append(None)
    return tuple(found)


def list_runs(root: str | os.PathLike, cache: RunCache | None = None) -> list[RunRecord]:
    """Every run folder under root, newest first; unreadable ones come back with a `problem`, never raise.

    With a `cache` (kept by the caller between calls), only folders whose files changed are
    read again: the list refreshes on the GUI thread at each run's start and end, and reading
    200 runs takes a quarter of a second.
    """
    root = Path(root)
    try:  # not runs: weights/ (backbones saved from runs), gan/ (the GAN lab's runs), sweep-<id>/ (a sweep's table)
        entries = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
                   and p.name not in (SAVED_BACKBONES_DIR, GAN_RUNS_DIR) and not (p / SWEEP_FILE).is_file()
                   and not p.name.startswith(STUDY_PREFIX)]  # study-<name>/: a tuning study's folder
    except OSError:
        return []
    records = []
    for path in entries:
        signature = _signature(path)
        known = cache.get(str(path)) if cache is not None else None
        if known is not None and known[0] == signature:
            records.append(known[1])
            continue
        record = _read_run(path)
        if cache is not None:
            cache[str(path)] = (signature, record)
        records.append(record)
    if cache is not None:
        for gone in set(cache) - {str(p) for p in entries}:
            del cache[gone]
    return sorted(records, key=lambda r: r.id, reverse=True)


def _read_run(path: Path) -> RunRecord:
    if not (path / CONFIG_FILE).is_file():
        return RunRecord(path, None, problem=f"no {CONFIG_FILE}: not a run folder, or a damaged one")
    try:
        return load_run(path)
    except Exception as exc:  # noqa: BLE001 - one bad folder must not hide the others
        return RunRecord(path, None, problem=f"cannot be read: {type(exc).__name__}: {exc}")


def run_time(record: RunRecord) -> float:
    """When the run started: from its folder name (YYYYMMDD-HHMMSS-...), else the folder's time."""
    try:
        return time.mktime(time.strptime(record.id[:15], "%Y%m%d-%H%M%S"))
    except ValueError:
        try:
            return record.path.stat().st_mtime
        except OSError:
            return 0.0


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def run_status(record: RunRecord, active: bool = False) -> tuple[str, str, str]:
    """(text, level, tooltip) of a run's state."""
    if record.problem:
        return "broken", "error", record.problem
    if active:
        return "running", "busy", "Training now"
    summary = record.summary
    status = str(summary.get("status") or "")
    resumable = bool(getattr(record, "has_checkpoint", False))
    if not status:
        return ("incomplete (resumable)" if resumable else "incomplete", "warning",
                "No summary.json: the run crashed, was killed, or is still running in another program"
                + ("; its checkpoint lets it resume (File menu)" if resumable else ""))
    reason = str(summary.get("reason") or "")
    error = str(summary.get("error") or "")
    text, level = status, "ok"
    if status in ("failed", "diverged"):
        level = "error"
    elif status == "stopped":
        level = "warning"
    elif reason == "early stopping":
        text = "finished (early stop)"
    if not record.has_model and status != "failed":
        text += " (no model)"
    tooltip = error or reason or status
    return text, level, tooltip


def describe(record: RunRecord) -> list[tuple[str, object, str]]:
    """The cells of a run's row after Date and before Status: (text, sort key, tooltip)."""
    config = record.config
    if config is None:
        cells = [(run_label(record), run_label(record).lower(), str(record.path))]
        return cells + [("", "", "")] * 4 + [("—", -1.0, ""), ("—", -1.0, ""), ("", -1, ""), ("", -1.0, "")]
    b, d, f = config.backbone, config.dropout, config.freeze
    backbone = b.name + (f" ×{b.width:g}" if b.width != 1.0 and "MobileNet" in b.name else "")
    weights = {"imagenet": "ImageNet", "none": "re-initialised"}.get(b.weights) or (
        f"file {Path(b.weights_file).name}" if b.weights_file else b.weights)
    dropout = "none" if d.rate <= 0 or not d.placement else f"{d.kind} {d.rate:g}"
    freeze = {
        "all": "backbone frozen",
        "none": "all trainable",
        "top_layers": f"top {f.layers} layers",
        "top_blocks": f"top {f.blocks} blocks",
        "custom": f"{len(f.trainable_layers)} chosen layers",
    }.get(f.policy, f.policy)
    best = best_val_accuracy(record)
    done = record.summary.get("epochs_done")
    if not isinstance(done, int):
        done = len(record.metrics)
    seconds = record.summary.get("seconds")
    if not isinstance(seconds, (int, float)):
        seconds = sum(row.get("seconds", 0.0) for row in record.metrics)
    return [
        (run_label(record), run_label(record).lower(), str(record.path)),
        (backbone, backbone, ""),
        (weights, weights, b.weights_file),
        (dropout, dropout, ", ".join(d.placement)),
        (freeze, freeze, "BatchNorm frozen" if f.freeze_batchnorm else "BatchNorm trainable"),
        ("—" if best is None else f"{best:.3f}", -1.0 if best is None else best, ""),
        _test_cell(record),
        (f"{done}/{config.training.epochs}", done, ""),
        (format_duration(seconds) if seconds else "", float(seconds or 0.0), ""),
    ]


def _test_cell(record: RunRecord) -> tuple[str, object, str]:
    accuracy = held_out_accuracy(record)
    if accuracy is None:
        return "—", -1.0, "Not evaluated on a test set (Evaluate: on test)"
    test = record.summary["test"]
    return f"{accuracy:.3f}", accuracy, f"on {test.get('images', '?')} test images from {test.get('source', '?')}"
