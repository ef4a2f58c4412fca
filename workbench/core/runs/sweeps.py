"""What a dropout sweep reports and leaves on disk: its events, its results table, sweep.json and results.csv."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.base.events import Event
from workbench.core.base.problems import Problem
from workbench.core.config.run import RunConfig
from workbench.core.config.sweep import SweepConfig

SWEEP_FILE = "sweep.json"


RESULTS_FILE = "results.csv"


@dataclass(frozen=True)
class SweepStarted:
    sweep_id: str
    sweep_dir: str
    trials: tuple[tuple[str, float, int], ...]  # (kind, rate, fold) by trial index
    epochs: int
    folds: int


@dataclass(frozen=True)
class SweepTrialEvent:
    """An event of one trial's run (RunStarted, BatchEnd, EpochEnd, ...), with the trial it belongs to."""

    trial_index: int
    kind: str
    rate: float
    fold: int
    event: Event


@dataclass(frozen=True)
class TrialResult:
    index: int
    kind: str
    rate: float
    fold: int
    status: str = ""  # finished | stopped | diverged | failed
    run_dir: str = ""
    val_loss: float | None = None  # best (lowest) over the run's epochs
    val_accuracy: float | None = None  # best (highest) over the run's epochs
    epochs_done: int = 0
    error: str = ""

    @property
    def counts(self) -> bool:
        """Whether it enters the table: it ran to its end (early stopping included) and validated."""
        return self.status == "finished" and self.val_loss is not None


@dataclass(frozen=True)
class SweepTrialDone:
    trial: TrialResult


@dataclass(frozen=True)
class SweepFinished:
    sweep_dir: str
    stopped: bool
    trials_done: int
    trials_total: int
    error: str = ""  # sweep.json or results.csv could not be written


SWEEP_EVENTS = (SweepStarted, SweepTrialEvent, SweepTrialDone, SweepFinished)


@dataclass(frozen=True)
class SweepRow:
    kind: str
    rate: float
    folds: int  # trials that count (finished, with validation numbers)
    val_loss_mean: float | None
    val_loss_std: float | None
    val_accuracy_mean: float | None
    val_accuracy_std: float | None
    trials: int = 0  # trials of this (kind, rate) that ran, counted or not


@dataclass
class SweepResult:
    sweep_id: str = ""
    sweep_dir: str = ""
    trials: list[TrialResult] = field(default_factory=list)
    planned: int = 0
    folds: int = 1
    stopped: bool = False
    problems: tuple[Problem, ...] = ()  # the sweep could not start
    save_error: str = ""  # the last write of sweep.json / results.csv failed: the table on disk is missing or old

    def table(self) -> list[SweepRow]:
        """One row per (kind, rate), in the order the trials ran."""
        groups: dict[tuple[str, float], list[TrialResult]] = {}
        for t in self.trials:
            groups.setdefault((t.kind, float(t.rate)), []).append(t)
        rows = []
        for (kind, rate), trials in groups.items():
            counted = [t for t in trials if t.counts]
            losses = [t.val_loss for t in counted if t.val_loss is not None]
            accuracies = [t.val_accuracy for t in counted if t.val_accuracy is not None]
            rows.append(SweepRow(kind, rate, len(counted), *_mean_std(losses), *_mean_std(accuracies), len(trials)))
        return rows

    def best(self) -> SweepRow | None:
        """The (kind, rate) with the lowest mean validation loss (the first such on a tie); None if none finished."""
        rows = [r for r in self.table() if r.folds > 0 and r.val_loss_mean is not None]
        return min(rows, key=lambda r: r.val_loss_mean) if rows else None

    def to_dict(self) -> dict[str, Any]:
        best = self.best()
        return {
            "id": self.sweep_id,
            "planned": self.planned,
            "folds": self.folds,
            "stopped": self.stopped,
            "trials": [asdict(t) for t in self.trials],
            "table": [asdict(r) for r in self.table()],
            "best": asdict(best) if best else None,
        }


def _mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def apply_best(config: RunConfig, result: SweepResult) -> RunConfig:
    """A copy of `config` with the winning dropout kind and rate. ValueError when no trial finished."""
    best = result.best()
    if best is None:
        raise ValueError("no trial of the sweep finished, so there is no best rate to apply")
    return config.replace(**{"dropout.kind": best.kind, "dropout.rate": best.rate})


def format_table(result: SweepResult) -> str:
    """The table as text for a terminal; the best row is marked with *."""
    rows = result.table()
    best = result.best()

    def pm(mean: float | None, std: float | None) -> str:
        return "-" if mean is None else f"{mean:.4f} ± {std:.4f}"

    lines = [f"  {'kind':<10} {'rate':>6} {'folds':>5}  {'val_loss (mean ± std)':<22} val_accuracy (mean ± std)"]
    for r in rows:
        mark = "*" if r == best else " "
        lines.append(f"{mark} {r.kind:<10} {r.rate:>6g} {r.folds:>5}  {pm(r.val_loss_mean, r.val_loss_std):<22} "
                     f"{pm(r.val_accuracy_mean, r.val_accuracy_std)}")
    return "\n".join(lines)


def load_sweep(path: str | os.PathLike) -> tuple[SweepConfig, SweepResult]:
    """A sweep folder's plan and results, as written by run_sweep."""
    folder = Path(path)
    data = json.loads((folder / SWEEP_FILE).read_text(encoding="utf-8"))
    sweep = SweepConfig(RunConfig.from_dict(data["base"]), list(data["rates"]), list(data["kinds"]), data["folds"])
    result = SweepResult(
        sweep_id=data.get("id", ""),
        sweep_dir=str(folder),
        trials=[TrialResult(**t) for t in data.get("trials", [])],
        planned=data.get("planned", 0),
        folds=data.get("folds", 1),
        stopped=data.get("stopped", False),
    )
    return sweep, result
