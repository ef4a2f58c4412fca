"""Dropout sweeps: train one base config at several dropout rates (and kinds), with k-fold cross-validation.

A sweep is a plain value (`SweepConfig`); `run_sweep` trains its trials one after
another through `training.run`, so each trial leaves an ordinary run folder, and
reports every event of every trial wrapped in a `SweepTrialEvent` that says which
trial it belongs to. The sweep's own folder, runs/sweep-<id>/, holds sweep.json (the
plan, each trial's result and run folder) and results.csv (the table).

The table has one row per (kind, rate): the best validation loss and accuracy of each
finished trial (lowest loss, highest accuracy over its epochs), as mean and standard
deviation over the folds. The standard deviation is the population one (numpy's
default, as scikit-learn's cross-validation reports). Trials that were stopped, failed
or diverged do not count; the row's `folds` says how many did.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.base.events import Event, Message, RunFailed, RunFinished
from workbench.core.base.files import atomic_write_text
from workbench.core.base.problems import Problem
from workbench.core.config.run import DROPOUT_KINDS, RunConfig
from workbench.core.config.validate import validate

SWEEP_FILE = "sweep.json"
RESULTS_FILE = "results.csv"
MAX_FOLDS = 100

Emit = Callable[[Any], None]
TrainFunction = Callable[..., RunFinished | RunFailed]


# ---- the plan ----------------------------------------------------------------------

@dataclass
class SweepConfig:
    base: RunConfig
    rates: list[float]
    kinds: list[str] = field(default_factory=list)  # empty: just the base config's kind
    folds: int = 1  # 2 or more: k-fold cross-validation; 0 or 1: the base config's own split

    def kind_list(self) -> list[str]:
        return list(dict.fromkeys(self.kinds)) or [self.base.dropout.kind]

    def rate_list(self) -> list[float]:
        return list(dict.fromkeys(float(r) for r in self.rates))

    def fold_list(self) -> list[int]:
        return list(range(self.folds)) if self.folds >= 2 else [0]

    def trials(self) -> list[Trial]:
        """Every (kind, rate, fold), kinds outermost and folds innermost: a rate's folds run together.

        Rate 0 builds no dropout layer whatever the kind, so it runs for the first kind only.
        """
        kinds = self.kind_list()
        plan = [(k, r, f) for k in kinds for r in self.rate_list() for f in self.fold_list()
                if r > 0 or k == kinds[0]]
        return [Trial(i, k, r, f) for i, (k, r, f) in enumerate(plan)]

    def to_dict(self) -> dict[str, Any]:
        return {"rates": self.rate_list(), "kinds": self.kind_list(), "folds": self.folds,
                "base": self.base.to_dict()}


@dataclass(frozen=True)
class Trial:
    index: int
    kind: str
    rate: float
    fold: int  # 0-based; 0 when the sweep does not cross-validate


def parse_rates(text: str) -> list[float]:
    """"0, 0.2, 0.4" (commas, semicolons or spaces) -> [0.0, 0.2, 0.4]; ValueError worded for a person."""
    parts = [p for p in text.replace(";", ",").replace(" ", ",").split(",") if p.strip()]
    if not parts:
        raise ValueError("enter one or more dropout rates separated by commas, e.g. 0, 0.2, 0.4")
    rates = []
    for part in parts:
        try:
            value = float(part.strip())
        except ValueError:
            raise ValueError(f"'{part.strip()}' is not a number: enter rates like 0, 0.2, 0.4") from None
        if not (math.isfinite(value) and 0.0 <= value < 1.0):
            raise ValueError(f"a rate must be at least 0 and below 1, not {part.strip()}")
        rates.append(value)
    return list(dict.fromkeys(rates))


def parse_kinds(text: str) -> list[str]:
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in DROPOUT_KINDS]
    if unknown:
        raise ValueError(f"unknown dropout kind(s) {', '.join(unknown)}; choose from {', '.join(DROPOUT_KINDS)}")
    return kinds


def trial_name(sweep_id: str, trial: Trial, several_kinds: bool, folds: int) -> str:
    """'sweep 153012 rate 0.3 fold 2' (fold 1-based, as people count); names the trial's run folder."""
    kind = f" {trial.kind}" if several_kinds else ""
    fold = f" fold {trial.fold + 1}" if folds >= 2 else ""
    return f"sweep {sweep_id[-6:]}{kind} rate {trial.rate:g}{fold}"


def trial_config(sweep: SweepConfig, trial: Trial, sweep_id: str = "") -> RunConfig:
    """The base config with the trial's dropout kind and rate (and its fold)."""
    changes: dict[str, Any] = {"dropout.kind": trial.kind, "dropout.rate": trial.rate}
    if sweep.folds >= 2:
        changes.update({"data.folds": sweep.folds, "data.fold": trial.fold})
    if sweep_id:
        changes["name"] = trial_name(sweep_id, trial, len(sweep.kind_list()) > 1, sweep.folds)
    return sweep.base.replace(**changes)


def validate_sweep(sweep: SweepConfig, check_paths: bool = True) -> list[Problem]:
    """Every problem of the sweep and of each trial's config, worded for a person; empty when it can run."""
    problems: list[Problem] = []
    if not sweep.rates:
        problems.append(Problem("sweep.rates", "choose at least one dropout rate"))
    for rate in sweep.rates:
        if not (isinstance(rate, (int, float)) and math.isfinite(rate) and 0.0 <= rate < 1.0):
            problems.append(Problem("sweep.rates", f"a rate must be at least 0 and below 1, not {rate}"))
    for kind in sweep.kinds:
        if kind not in DROPOUT_KINDS:
            problems.append(Problem("sweep.kinds", f"unknown dropout kind '{kind}'; choose from {', '.join(DROPOUT_KINDS)}"))
    if not 0 <= sweep.folds <= MAX_FOLDS:
        problems.append(Problem("sweep.folds", f"must be between 2 and {MAX_FOLDS} (or 1 for no cross-validation)"))
    if problems:
        return problems

    # A fold's index never changes whether a config is valid: check fold 0 of each (kind, rate).
    firsts = [t for t in sweep.trials() if t.fold == 0]
    per_trial = [(t, validate(trial_config(sweep, t), check_paths)) for t in firsts]
    shared = set.intersection(*(set(found) for _, found in per_trial)) if per_trial else set()
    seen: set[Problem] = set()
    for trial, found in per_trial:
        for problem in found:
            if problem in shared:
                if problem not in seen:
                    seen.add(problem)
                    problems.append(problem)
            else:
                problems.append(Problem(problem.field, f"with {trial.kind} at rate {trial.rate:g}: {problem.message}"))
    return problems


# ---- events -------------------------------------------------------------------------

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


SWEEP_EVENTS = (SweepStarted, SweepTrialEvent, SweepTrialDone, SweepFinished)


# ---- results ------------------------------------------------------------------------

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


# ---- running ----------------------------------------------------------------------

def run_sweep(
    sweep: SweepConfig,
    emit: Emit,
    stop_event: threading.Event | None = None,
    runs_dir: str | os.PathLike | None = None,
    *,
    pause_event: threading.Event | None = None,
    train: TrainFunction | None = None,
) -> SweepResult:
    """Train every trial one after another; never raises for a failed trial (it becomes a row that does not count).

    Stop (`stop_event`) ends the running trial within one batch (its run folder keeps what
    it has) and starts no other. `train` stands in for `training.run` in tests.
    """
    from workbench.core.runs.store import RunStore

    stop_event = stop_event or threading.Event()
    if train is None:
        from workbench.core.train.run import run as train

    problems = validate_sweep(sweep)
    if problems:
        emit(Message("error", "The sweep cannot start:\n" + "\n".join(str(p) for p in problems)))
        return SweepResult(folds=sweep.folds, problems=tuple(problems))

    root = RunStore(runs_dir).root
    sweep_id, sweep_dir = create_sweep_dir(root)
    plan = sweep.trials()
    result = SweepResult(sweep_id, str(sweep_dir), [], len(plan), sweep.folds)
    _save(sweep, result, sweep_dir, "running")
    emit(SweepStarted(sweep_id, str(sweep_dir), tuple((t.kind, t.rate, t.fold) for t in plan),
                      sweep.base.training.epochs, sweep.folds))

    several_kinds = len(sweep.kind_list()) > 1
    for trial in plan:
        if stop_event.is_set():
            result.stopped = True
            break

        def forward(event: Event, trial: Trial = trial) -> None:
            emit(SweepTrialEvent(trial.index, trial.kind, trial.rate, trial.fold, event))

        label = trial_name(sweep_id, trial, several_kinds, sweep.folds).split(" ", 2)[2]
        forward(Message("info", f"Sweep trial {trial.index + 1} of {len(plan)}: {label}"))
        outcome = train(trial_config(sweep, trial, sweep_id), forward, stop_event,
                        pause_event=pause_event, runs_dir=root)
        done = _trial_result(trial, outcome)
        result.trials.append(done)
        _save(sweep, result, sweep_dir, "running")
        emit(SweepTrialDone(done))
        if done.status == "stopped" or stop_event.is_set():
            result.stopped = True
            break
        if isinstance(outcome, RunFailed) and outcome.kind == "invalid":
            emit(Message("error", "The sweep stopped: its trials cannot train (see the error above)"))
            break

    _save(sweep, result, sweep_dir, "stopped" if result.stopped else "finished")
    emit(SweepFinished(str(sweep_dir), result.stopped, len(result.trials), len(plan)))
    return result


def create_sweep_dir(root: Path) -> tuple[str, Path]:
    root.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        sweep_id = stamp if n == 0 else f"{stamp}-{n}"
        path = root / f"sweep-{sweep_id}"
        try:
            path.mkdir()
            return sweep_id, path
        except FileExistsError:
            continue
    raise RuntimeError(f"cannot create a sweep folder under {root}")  # pragma: no cover


def _trial_result(trial: Trial, outcome: RunFinished | RunFailed) -> TrialResult:
    from workbench.core.runs.store import read_metrics

    base = {"index": trial.index, "kind": trial.kind, "rate": trial.rate, "fold": trial.fold}
    if isinstance(outcome, RunFailed):
        status = "diverged" if outcome.kind == "diverged" else "failed"
        return TrialResult(**base, status=status, run_dir=outcome.run_dir, error=outcome.error)
    metrics = read_metrics(outcome.run_dir) if outcome.run_dir else []
    losses = [r["val_loss"] for r in metrics if math.isfinite(r.get("val_loss", math.nan))]
    accuracies = [r["val_accuracy"] for r in metrics if math.isfinite(r.get("val_accuracy", math.nan))]
    if not losses and "val_loss" in outcome.best:
        losses = [outcome.best["val_loss"]]
    if not accuracies and "val_accuracy" in outcome.best:
        accuracies = [outcome.best["val_accuracy"]]
    return TrialResult(
        **base,
        status="stopped" if outcome.stopped else "finished",
        run_dir=outcome.run_dir,
        val_loss=min(losses) if losses else None,
        val_accuracy=max(accuracies) if accuracies else None,
        epochs_done=outcome.epochs_done,
    )


def _save(sweep: SweepConfig, result: SweepResult, folder: Path, status: str) -> None:
    """sweep.json (plan and results) and results.csv (the table); a full disk must not end the sweep."""
    data = {"status": status, **result.to_dict(), **sweep.to_dict()}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["kind", "rate", "folds", "val_loss_mean", "val_loss_std",
                     "val_accuracy_mean", "val_accuracy_std", "trials"])
    for r in result.table():
        writer.writerow([r.kind, repr(r.rate), r.folds, *("" if v is None else repr(v) for v in (
            r.val_loss_mean, r.val_loss_std, r.val_accuracy_mean, r.val_accuracy_std)), r.trials])
    try:
        atomic_write_text(folder / SWEEP_FILE, json.dumps(data, indent=2) + "\n")
        atomic_write_text(folder / RESULTS_FILE, buffer.getvalue())
    except OSError:
        pass


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
