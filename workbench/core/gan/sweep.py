"""A sweep over the discriminator's dropout rate: one GAN run per rate, FID per rate, in a table.

The GAN's twin of core/sweep.py: each trial is an ordinary GAN run (its own run folder,
FID computed at its end with the base config's feature network); every event of a trial
reaches `emit` wrapped in a `GanTrialEvent`. The sweep's folder, <runs>/gan/sweep-<id>/,
holds sweep.json (the plan and each trial's result) and results.csv (the table).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.base.events import Event, Message, RunFailed, RunFinished
from workbench.core.base.files import atomic_write_text
from workbench.core.base.problems import Problem
from workbench.core.config.gan import GanConfig, validate_gan
from workbench.core.train.sweep import parse_rates  # noqa: F401 - the same rate syntax as the dropout lab

SWEEP_FILE = "sweep.json"
RESULTS_FILE = "results.csv"
RESULT_COLUMNS = ("rate", "status", "fid", "inception_score", "steps_done", "network", "run_dir", "error")

Emit = Callable[[Any], None]


@dataclass
class GanSweepConfig:
    base: GanConfig
    rates: list[float]

    def rate_list(self) -> list[float]:
        return list(dict.fromkeys(float(r) for r in self.rates))


def trial_config(sweep: GanSweepConfig, rate: float, sweep_id: str = "") -> GanConfig:
    """The base config at one discriminator dropout rate, with FID computed at its end."""
    changes: dict[str, Any] = {"dropout.rate": float(rate), "evaluation.fid_at_end": True}
    if rate > 0 and not sweep.base.dropout.placement:
        changes["dropout.placement"] = ["after_conv"]
    if sweep_id:
        changes["name"] = f"gan sweep {sweep_id[-6:]} rate {rate:g}"
    return sweep.base.replace(**changes)


def validate_gan_sweep(sweep: GanSweepConfig, check_paths: bool = True) -> list[Problem]:
    problems: list[Problem] = []
    if not sweep.rates:
        problems.append(Problem("sweep.rates", "choose at least one dropout rate"))
    for rate in sweep.rates:
        if not (isinstance(rate, (int, float)) and math.isfinite(rate) and 0.0 <= rate < 1.0):
            problems.append(Problem("sweep.rates", f"a rate must be at least 0 and below 1, not {rate}"))
    if problems:
        return problems
    seen: set[Problem] = set()
    for rate in sweep.rate_list():
        for problem in validate_gan(trial_config(sweep, rate), check_paths):
            if problem not in seen:
                seen.add(problem)
                problems.append(problem)
    return problems


# ---- events -----------------------------------------------------------------------------

@dataclass(frozen=True)
class GanSweepStarted:
    sweep_id: str
    sweep_dir: str
    rates: tuple[float, ...]
    steps: int


@dataclass(frozen=True)
class GanTrialEvent:
    """An event of one trial's run, with the trial it belongs to."""

    trial_index: int
    rate: float
    event: Event


@dataclass(frozen=True)
class GanTrialResult:
    index: int
    rate: float
    status: str = ""  # finished | stopped | diverged | failed
    run_dir: str = ""
    fid: float | None = None
    inception_score: float | None = None
    network: str = ""
    steps_done: int = 0
    error: str = ""


@dataclass(frozen=True)
class GanTrialDone:
    trial: GanTrialResult


@dataclass(frozen=True)
class GanSweepFinished:
    sweep_dir: str
    stopped: bool
    trials_done: int
    trials_total: int


@dataclass
class GanSweepResult:
    sweep_id: str = ""
    sweep_dir: str = ""
    trials: list[GanTrialResult] = field(default_factory=list)
    planned: int = 0
    stopped: bool = False
    problems: tuple[Problem, ...] = ()

    def best(self) -> GanTrialResult | None:
        """The finished trial with the lowest FID; None when none has one."""
        scored = [t for t in self.trials if t.status == "finished" and t.fid is not None]
        return min(scored, key=lambda t: t.fid) if scored else None

    def to_dict(self) -> dict[str, Any]:
        best = self.best()
        return {"id": self.sweep_id, "planned": self.planned, "stopped": self.stopped,
                "trials": [asdict(t) for t in self.trials], "best": asdict(best) if best else None}


def format_table(result: GanSweepResult) -> str:
    best = result.best()
    lines = [f"  {'rate':>6}  {'status':<9} {'FID':>10}  {'IS':>7}  steps"]
    for t in result.trials:
        fid = "-" if t.fid is None else f"{t.fid:.3f}"
        score = "-" if t.inception_score is None else f"{t.inception_score:.3f}"
        lines.append(f"{'*' if t is best else ' '} {t.rate:>6g}  {t.status:<9} {fid:>10}  {score:>7}  {t.steps_done}")
    return "\n".join(lines)


# ---- running --------------------------------------------------------------------------------

def run_gan_sweep(
    sweep: GanSweepConfig,
    emit: Emit,
    stop_event: threading.Event | None = None,
    runs_dir: str | os.PathLike | None = None,
    *,
    pause_event: threading.Event | None = None,
    train: Callable[..., RunFinished | RunFailed] | None = None,
) -> GanSweepResult:
    """Train one GAN per rate, one after another; a failed trial becomes a row without FID. Never raises for one."""
    from workbench.core.gan.training import gan_runs_root
    from workbench.core.train.sweep import create_sweep_dir

    stop_event = stop_event or threading.Event()
    if train is None:
        from workbench.core.gan.training import run as train

    problems = validate_gan_sweep(sweep)
    if problems:
        emit(Message("error", "The sweep cannot start:\n" + "\n".join(str(p) for p in problems)))
        return GanSweepResult(problems=tuple(problems))
    root = Path(runs_dir) if runs_dir is not None else gan_runs_root()
    sweep_id, sweep_dir = create_sweep_dir(root)
    rates = sweep.rate_list()
    result = GanSweepResult(sweep_id, str(sweep_dir), [], len(rates))
    _save(sweep, result, sweep_dir, "running")
    steps = sweep.base.training.steps
    emit(GanSweepStarted(sweep_id, str(sweep_dir), tuple(rates), steps))

    for index, rate in enumerate(rates):
        if stop_event.is_set():
            result.stopped = True
            break

        def forward(event: Event, index: int = index, rate: float = rate) -> None:
            emit(GanTrialEvent(index, rate, event))

        forward(Message("info", f"Sweep trial {index + 1} of {len(rates)}: discriminator dropout {rate:g}"))
        outcome = train(trial_config(sweep, rate, sweep_id), forward, stop_event, pause_event=pause_event,
                        runs_dir=root)
        done = _trial_result(index, rate, outcome)
        result.trials.append(done)
        _save(sweep, result, sweep_dir, "running")
        emit(GanTrialDone(done))
        if done.status == "stopped" or stop_event.is_set():
            result.stopped = True
            break
        if isinstance(outcome, RunFailed) and outcome.kind == "invalid":
            emit(Message("error", "The sweep stopped: its trials cannot train (see the error above)"))
            break

    _save(sweep, result, sweep_dir, "stopped" if result.stopped else "finished")
    emit(GanSweepFinished(str(sweep_dir), result.stopped, len(result.trials), len(rates)))
    return result


def _trial_result(index: int, rate: float, outcome: RunFinished | RunFailed) -> GanTrialResult:
    summary: dict[str, Any] = {}
    run_dir = outcome.run_dir
    if run_dir:
        try:
            summary = json.loads((Path(run_dir) / "summary.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            summary = {}
    if isinstance(outcome, RunFailed):
        status = "diverged" if outcome.kind == "diverged" else "failed"
        return GanTrialResult(index, rate, status, run_dir, steps_done=int(summary.get("steps_done", 0)),
                              error=outcome.error)
    return GanTrialResult(
        index, rate, "stopped" if outcome.stopped else "finished", run_dir,
        fid=summary.get("fid"), inception_score=summary.get("inception_score"),
        network=str(summary.get("fid_network", "")), steps_done=outcome.epochs_done,
        error="" if summary.get("fid") is not None or outcome.stopped else "FID was not computed (see the log)")


def _save(sweep: GanSweepConfig, result: GanSweepResult, folder: Path, status: str) -> None:
    plan = {"kind": "gan", "status": status, "rates": sweep.rate_list(), "base": sweep.base.to_dict(),
            **result.to_dict()}
    atomic_write_text(folder / SWEEP_FILE, json.dumps(plan, indent=2) + "\n")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=RESULT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for t in result.trials:
        row = asdict(t)
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in RESULT_COLUMNS})
    atomic_write_text(folder / RESULTS_FILE, buffer.getvalue())
