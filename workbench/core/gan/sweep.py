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
import os
import threading
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from workbench.core.base.events import Event, Message, RunFailed, RunFinished
from workbench.core.base.files import atomic_write_text
from workbench.core.config.gan_sweep import GanSweepConfig, trial_config, validate_gan_sweep
from workbench.core.config.sweep import parse_rates  # noqa: F401 - the same rate syntax as the dropout lab
from workbench.core.runs.gan_sweeps import (
    RESULT_COLUMNS,
    RESULTS_FILE,
    SWEEP_FILE,
    GanSweepFinished,
    GanSweepResult,
    GanSweepStarted,
    GanTrialDone,
    GanTrialEvent,
    GanTrialResult,
)

Emit = Callable[[Any], None]


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
    from workbench.core.runs.store import gan_runs_root
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

    def save(status: str) -> None:
        """A failed write is reported (once per distinct failure) and kept in the result, not raised."""
        try:
            save_sweep(sweep, result, sweep_dir, status)
        except OSError as exc:
            error = f"The GAN sweep's results could not be written to {sweep_dir}: {exc}"
            if error != result.save_error:
                emit(Message("warning", error))
            result.save_error = error
        else:
            result.save_error = ""

    save("running")
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
        save("running")
        emit(GanTrialDone(done))
        if done.status == "stopped" or stop_event.is_set():
            result.stopped = True
            break
        if isinstance(outcome, RunFailed) and outcome.kind == "invalid":
            emit(Message("error", "The sweep stopped: its trials cannot train (see the error above)"))
            break

    save("stopped" if result.stopped else "finished")
    if result.save_error:
        emit(Message("error", f"The sweep ran, but its FID table was not saved. {result.save_error}"))
    emit(GanSweepFinished(str(sweep_dir), result.stopped, len(result.trials), len(rates), error=result.save_error))
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


def save_sweep(sweep: GanSweepConfig, result: GanSweepResult, folder: Path, status: str) -> None:
    """sweep.json (plan and results) and results.csv (the table); raises OSError when either cannot be written."""
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
