"""Every run leaves a folder: runs/<id>/ with config, metrics, events, model and summary.

The config is written first, so even a run that crashes in its first second can
be run again. Each file is replaced atomically, so a reader (the Runs panel, a
resumed run, a person with a text editor) never sees half a file.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.base.events import BatchEnd, Event, event_to_dict
from workbench.core.base.files import atomic_append_line, atomic_write_text
from workbench.core.base.problems import ConfigError
from workbench.core.config.run import RunConfig, load_config, save_config

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.csv"
EVENTS_FILE = "events.jsonl"
MODEL_FILE = "model.keras"
SUMMARY_FILE = "summary.json"
CHECKPOINT_FILE = "checkpoint.keras"  # model + optimizer + state after the last epoch: for resuming
STATE_FILE = "state.json"  # a readable copy of the checkpoint's state (epochs done, best so far)

# Columns that come first in metrics.csv, in this order; any others follow sorted.
_LEADING_COLUMNS = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds"]


def default_runs_dir() -> Path:
    """Where runs go unless told otherwise; the GUI and the CLI share it so they see each other's runs."""
    env = os.environ.get("WORKBENCH_RUNS_DIR")
    if env:
        return Path(env).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(data_home) / "workbench" / "runs"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:40] or "run"


class RunFolder:
    """One run's folder; every write is atomic."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._metrics: list[dict[str, float]] = []

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def checkpoint_path(self) -> Path:
        return self.path / CHECKPOINT_FILE

    @property
    def state_path(self) -> Path:
        return self.path / STATE_FILE

    def write_config(self, config: RunConfig) -> None:
        save_config(config, self.path / CONFIG_FILE)

    def append_metrics(self, epoch: int, logs: dict[str, float]) -> None:
        """Record one epoch; the CSV is rewritten whole (it is small) so its columns stay consistent."""
        row = {"epoch": epoch, **{k: float(v) for k, v in logs.items()}}
        self._metrics = [r for r in self._metrics if r["epoch"] != epoch] + [row]
        self._write_metrics()

    def _write_metrics(self) -> None:
        columns = [c for c in _LEADING_COLUMNS if any(c in r for r in self._metrics)]
        columns += sorted({k for r in self._metrics for k in r} - set(columns))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for r in self._metrics:
            writer.writerow({k: _format(r.get(k)) for k in columns})
        atomic_write_text(self.path / METRICS_FILE, buffer.getvalue())

    def load_existing_metrics(self, through_epoch: int | None = None) -> None:
        """Continue an existing metrics.csv (a resumed run) instead of starting it over.

        With `through_epoch`, rows of later epochs are dropped (and the file rewritten):
        those epochs are trained again from the checkpoint, so each epoch keeps one row.
        """
        rows = read_metrics(self.path)
        if through_epoch is not None:
            kept = [r for r in rows if r["epoch"] <= through_epoch]
            if len(kept) != len(rows):
                self._metrics = kept
                self._write_metrics()
            rows = kept
        self._metrics = rows

    def append_event(self, event: Event) -> None:
        """Log every event except per-batch ones (those are in metrics at epoch granularity)."""
        if isinstance(event, BatchEnd):
            return
        record = {"time": round(time.time(), 3), **event_to_dict(event)}
        atomic_append_line(self.path / EVENTS_FILE, json.dumps(record, default=str))

    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write_text(self.path / SUMMARY_FILE, json.dumps(summary, indent=2, default=str) + "\n")


def _format(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


class RunStore:
    """The folder that holds all runs."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else default_runs_dir()

    def create(self, config: RunConfig) -> RunFolder:
        """Make a new run folder and write its config before anything else happens."""
        self.root.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = f"{stamp}-{_slug(config.name or config.backbone.name)}"
        for n in range(1000):
            path = self.root / (base if n == 0 else f"{base}-{n}")
            try:
                path.mkdir()
                break
            except FileExistsError:
                continue
        else:  # pragma: no cover - a thousand runs in one second
            raise RuntimeError(f"cannot create a run folder under {self.root}")
        folder = RunFolder(path)
        folder.write_config(config)
        return folder

    def list(self) -> list[RunRecord]:
        """All readable runs, newest first; unreadable folders are skipped, not fatal."""
        if not self.root.is_dir():
            return []
        records = []
        for path in self.root.iterdir():
            if path.is_dir() and (path / CONFIG_FILE).is_file():
                records.append(load_run(path))
        return sorted(records, key=lambda r: r.id, reverse=True)


@dataclass
class RunRecord:
    path: Path
    config: RunConfig | None
    metrics: list[dict[str, float]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    problem: str = ""  # why the config could not be read, if it could not

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def has_model(self) -> bool:
        return (self.path / MODEL_FILE).is_file()

    @property
    def has_checkpoint(self) -> bool:
        return (self.path / CHECKPOINT_FILE).is_file()


def read_metrics(path: str | os.PathLike) -> list[dict[str, float]]:
    file = Path(path) / METRICS_FILE
    if not file.is_file():
        return []
    rows = []
    with open(file, newline="", encoding="utf-8") as fh:
        for raw in csv.DictReader(fh):
            try:
                row = {k: float(v) for k, v in raw.items() if v not in ("", None)}
            except ValueError:
                continue
            if "epoch" in row:
                row["epoch"] = int(row["epoch"])
                rows.append(row)
    return rows


def load_run(path: str | os.PathLike) -> RunRecord:
    path = Path(path)
    try:
        config, problem = load_config(path / CONFIG_FILE), ""
    except ConfigError as exc:
        config, problem = None, str(exc)
    summary: dict[str, Any] = {}
    summary_file = path / SUMMARY_FILE
    if summary_file.is_file():
        try:
            summary = json.loads(summary_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            summary = {}
    return RunRecord(path=path, config=config, metrics=read_metrics(path), summary=summary, problem=problem)


class RunError(Exception):
    """A run that cannot be used (missing, no model, unsafe model); the message says why, for a person."""


def tensorboard_command(runs_dir: str | Path) -> str:
    """The command that shows every run's TensorBoard logs (TensorBoard is installed separately)."""
    return f'tensorboard --logdir "{runs_dir}"'


GAN_RUNS_DIR = "gan"  # inside the runs folder


def gan_runs_root(runs_dir: str | os.PathLike | None = None) -> Path:
    """Where GAN runs go: a gan/ folder inside the runs folder, apart from the classifiers' runs."""
    from workbench.core.runs.store import default_runs_dir

    return (Path(runs_dir) if runs_dir else default_runs_dir()) / GAN_RUNS_DIR


def rename_run(run_dir: str | os.PathLike, name: str) -> None:
    """Write a new name into the run's config.json (atomically); the folder keeps its name.

    Raises ConfigError when the config cannot be read, OSError when it cannot be written.
    """
    path = Path(run_dir)
    config = load_config(path / CONFIG_FILE)
    config.name = name
    save_config(config, path / CONFIG_FILE)


def delete_run(run_dir: str | os.PathLike) -> None:
    """Delete a run folder: first moved to a hidden name (gone from every listing at once), then removed.

    Refuses (ValueError) a folder that is not a run folder, so a wrong path never removes a user's files.
    """
    import shutil

    path = Path(run_dir)
    if not (path / CONFIG_FILE).is_file() and not (path / METRICS_FILE).is_file():
        raise ValueError(f"{path} is not a run folder (it has no {CONFIG_FILE}): nothing was deleted")
    doomed = path.with_name(f".deleting-{path.name}-{os.getpid()}")
    os.replace(path, doomed)
    shutil.rmtree(doomed, ignore_errors=True)
