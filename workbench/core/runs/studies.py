"""What a tuning study reports and leaves on disk: its events and its folder, runs/study-<name>/.

The folder holds study.json (the tune config, the storage URL with any password masked, every
trial with its parameters, state, value and run folders), trials.csv (the same trials as a
table), best_config.json (the best trial's run config, ready to train) and, unless the study
lives in a database elsewhere, study.db (Optuna's SQLite storage). Each trial's folds are
ordinary run folders beside it. No Optuna here: the window reads these files.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.base.files import atomic_write_text

STUDY_FILE = "study.json"


TRIALS_FILE = "trials.csv"


BEST_CONFIG_FILE = "best_config.json"


STORAGE_FILE = "study.db"


STUDY_PREFIX = "study-"


NO_TRIAL_CAN_TRAIN = "no trial can train"  # StudyFinished.reason when a trial's run was refused (kind "invalid")


TRIAL_STATES = ("complete", "pruned", "failed", "running", "waiting")


@dataclass(frozen=True)
class StudyStarted:
    study_dir: str
    study_name: str
    storage: str  # password masked
    metric: str
    direction: str
    trials_planned: int
    params: list[str]
    resumed_trials: int = 0  # trials the study already had when this process joined it


@dataclass(frozen=True)
class TrialStarted:
    number: int
    params: dict
    folds: int


@dataclass(frozen=True)
class TrialRunEvent:
    """An event of one fold's run (RunStarted, BatchEnd, EpochEnd, Message, ...), with its trial and fold."""

    number: int
    fold: int
    event: object


@dataclass(frozen=True)
class TrialEnded:
    number: int
    state: str  # "complete" | "pruned" | "failed" (a trial stopped by Stop is "failed", error "stopped")
    value: float | None
    params: dict
    run_dirs: list[str]
    seconds: float
    error: str = ""


@dataclass(frozen=True)
class StudyProgress:
    best_number: int | None
    best_value: float | None
    best_params: dict
    importances: dict[str, float]  # Optuna's fANOVA evaluator; empty while too few trials completed


@dataclass(frozen=True)
class StudyFinished:
    study_dir: str
    stopped: bool
    best_number: int | None
    best_value: float | None
    best_params: dict
    best_config_path: str
    counts: dict[str, int]  # trials by state, over the whole study (every process)
    reason: str = ""  # why it ended: "trials", "time", "grid done", "stopped", "no trial can train"


STUDY_EVENTS = (StudyStarted, TrialStarted, TrialRunEvent, TrialEnded, StudyProgress, StudyFinished)


@dataclass
class StudyTrial:
    number: int
    state: str
    value: float | None = None
    params: dict = field(default_factory=dict)
    run_dirs: list[str] = field(default_factory=list)
    fold_values: list[float] = field(default_factory=list)
    value_std: float | None = None  # over the folds
    seconds: float = 0.0
    error: str = ""


@dataclass
class StudyRecord:
    """A study as its folder records it."""

    name: str
    study_dir: str
    storage: str = ""  # password masked
    metric: str = "val_accuracy"
    direction: str = "maximize"
    status: str = ""  # running | finished | stopped
    fingerprint: str = ""
    tune: dict = field(default_factory=dict)  # TuneConfig.to_dict()
    trials: list[StudyTrial] = field(default_factory=list)
    best_number: int | None = None
    best_value: float | None = None
    best_params: dict = field(default_factory=dict)
    importances: dict = field(default_factory=dict)
    problem: str = ""  # the folder could not be read

    def counts(self) -> dict[str, int]:
        found = {state: 0 for state in TRIAL_STATES}
        for t in self.trials:
            found[t.state] = found.get(t.state, 0) + 1
        return found

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("problem")
        return data


def study_dir_for(root: str | os.PathLike, name: str) -> Path:
    return Path(root) / f"{STUDY_PREFIX}{name}"


def default_storage(study_dir: str | os.PathLike) -> str:
    """The study's own SQLite file, as an Optuna storage URL."""
    return f"sqlite:///{Path(study_dir).resolve() / STORAGE_FILE}"


def mask_storage(url: str) -> str:
    """The URL with its password (user:password@) replaced by ***, for files and screens."""
    return re.sub(r"(://[^/:@]*:)[^@/]*@", r"\1***@", url)


def is_study_dir(path: str | os.PathLike) -> bool:
    return (Path(path) / STUDY_FILE).is_file()


def write_study(record: StudyRecord, best_config_json: str = "") -> None:
    """study.json, trials.csv and (when there is a best trial) best_config.json, each atomically.

    Raises OSError when one cannot be written."""
    folder = Path(record.study_dir)
    atomic_write_text(folder / STUDY_FILE, json.dumps(record.to_dict(), indent=2) + "\n")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    params = list(dict.fromkeys(name for t in record.trials for name in t.params))
    writer.writerow(["number", "state", "value", "value_std", *params, "seconds", "run_dirs", "error"])
    for t in record.trials:
        writer.writerow([t.number, t.state, "" if t.value is None else repr(t.value),
                         "" if t.value_std is None else repr(t.value_std),
                         *(t.params.get(p, "") for p in params), f"{t.seconds:.2f}", ";".join(t.run_dirs), t.error])
    atomic_write_text(folder / TRIALS_FILE, buffer.getvalue())
    if best_config_json:
        atomic_write_text(folder / BEST_CONFIG_FILE, best_config_json)


def read_study(study_dir: str | os.PathLike) -> StudyRecord:
    """A study folder as written by run_study; never raises (an unreadable one has a `problem`)."""
    folder = Path(study_dir)
    try:
        data = json.loads((folder / STUDY_FILE).read_text(encoding="utf-8"))
        trials = [StudyTrial(**t) for t in data.pop("trials", [])]
        data.pop("study_dir", None)
        known = {f for f in StudyRecord.__dataclass_fields__}
        return StudyRecord(study_dir=str(folder), trials=trials, **{k: v for k, v in data.items() if k in known})
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        return StudyRecord(folder.name.removeprefix(STUDY_PREFIX), str(folder),
                           problem=f"cannot be read: {type(exc).__name__}: {exc}")


def list_studies(root: str | os.PathLike) -> list[StudyRecord]:
    """Every study folder under root, newest first."""
    try:
        folders = [p for p in Path(root).iterdir() if p.is_dir() and p.name.startswith(STUDY_PREFIX) and is_study_dir(p)]
    except OSError:
        return []
    folders.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    return [read_study(p) for p in folders]


def format_trial(ended: TrialEnded, folds: int = 1) -> str:
    """One line per trial, for a terminal."""
    value = "-" if ended.value is None else f"{ended.value:.4f}"
    params = ", ".join(f"{k}={_short(v)}" for k, v in ended.params.items())
    error = f"  ({ended.error})" if ended.error else ""
    return f"trial {ended.number:>3}  {ended.state:<8}  {value:>7}  {ended.seconds:6.1f} s  {params}{error}"


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
