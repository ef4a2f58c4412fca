"""What a GAN dropout sweep reports and leaves on disk: events, the FID table, sweep.json, results.csv."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from workbench.core.base.events import Event
from workbench.core.base.problems import Problem
from workbench.core.config.sweep import parse_rates  # noqa: F401 - the same rate syntax as the dropout lab

SWEEP_FILE = "sweep.json"


RESULTS_FILE = "results.csv"


RESULT_COLUMNS = ("rate", "status", "fid", "inception_score", "steps_done", "network", "run_dir", "error")


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
    error: str = ""  # sweep.json or results.csv could not be written


@dataclass
class GanSweepResult:
    sweep_id: str = ""
    sweep_dir: str = ""
    trials: list[GanTrialResult] = field(default_factory=list)
    planned: int = 0
    stopped: bool = False
    problems: tuple[Problem, ...] = ()
    save_error: str = ""  # the last write of sweep.json / results.csv failed: the table on disk is missing or old

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
