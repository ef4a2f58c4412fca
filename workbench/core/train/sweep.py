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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.core.base.events import Event, Message, RunFailed, RunFinished
from workbench.core.base.files import atomic_write_text
from workbench.core.config.sweep import SweepConfig, Trial, trial_config, trial_name, validate_sweep
from workbench.core.runs.sweeps import (
    RESULTS_FILE,
    SWEEP_FILE,
    SweepFinished,
    SweepResult,
    SweepStarted,
    SweepTrialDone,
    SweepTrialEvent,
    TrialResult,
)

Emit = Callable[[Any], None]


TrainFunction = Callable[..., RunFinished | RunFailed]


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

    def save(status: str) -> None:
        """A failed write is reported (once per distinct failure) and kept in the result, not raised:
        a full disk must not end the sweep, but it must not end as if its table were saved either."""
        try:
            save_sweep(sweep, result, sweep_dir, status)
        except OSError as exc:
            error = f"The sweep's results could not be written to {sweep_dir}: {exc}"
            if error != result.save_error:
                emit(Message("warning", error))
            result.save_error = error
        else:
            result.save_error = ""

    save("running")
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
        save("running")
        emit(SweepTrialDone(done))
        if done.status == "stopped" or stop_event.is_set():
            result.stopped = True
            break
        if isinstance(outcome, RunFailed) and outcome.kind == "invalid":
            emit(Message("error", "The sweep stopped: its trials cannot train (see the error above)"))
            break

    save("stopped" if result.stopped else "finished")
    if result.save_error:
        emit(Message("error", f"The sweep ran, but its results table was not saved. {result.save_error}"))
    emit(SweepFinished(str(sweep_dir), result.stopped, len(result.trials), len(plan), error=result.save_error))
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


def save_sweep(sweep: SweepConfig, result: SweepResult, folder: Path, status: str) -> None:
    """sweep.json (plan and results) and results.csv (the table). Raises OSError when either cannot be
    written (run_sweep reports it and carries on)."""
    data = {"status": status, **result.to_dict(), **sweep.to_dict()}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["kind", "rate", "folds", "val_loss_mean", "val_loss_std",
                     "val_accuracy_mean", "val_accuracy_std", "trials"])
    for r in result.table():
        writer.writerow([r.kind, repr(r.rate), r.folds, *("" if v is None else repr(v) for v in (
            r.val_loss_mean, r.val_loss_std, r.val_accuracy_mean, r.val_accuracy_std)), r.trials])
    atomic_write_text(folder / SWEEP_FILE, json.dumps(data, indent=2) + "\n")
    atomic_write_text(folder / RESULTS_FILE, buffer.getvalue())
