"""What every command shares: exit codes, error printing, run folders from ids, Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
RUN_HELP = "a run folder, or a run id in the runs folder"
RUNS_HELP = "where to look for run ids (default: the GUI's runs folder)"


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def resolve_run(run: str, runs_dir: str | None) -> Path | None:
    """A run folder path as given, else a run id under the runs folder; None (with a message) if neither."""
    from workbench.core.runs.store import default_runs_dir

    path = Path(run).expanduser()
    if path.is_dir():
        return path
    root = Path(runs_dir).expanduser() if runs_dir else default_runs_dir()
    if path.name == run and (root / run).is_dir():
        return root / run
    err(f"error: no run folder {run} (nor a run with that id in {root})")
    return None


def ctrl_c_stops(saying: str) -> contextlib.AbstractContextManager[threading.Event]:
    """A stop event that Ctrl-C (SIGINT) or SIGTERM sets: the run ends cleanly, keeps its work and the
    command exits 130; a second signal aborts at once (core/process/signals.py)."""
    from workbench.core.process.signals import stop_on_signals

    return stop_on_signals(saying, announce=err)


def print_problems(header: str, problems) -> int:
    """The problems under a header, on stderr; the bad-input exit code."""
    err(header)
    for problem in problems:
        err(f"  - {problem}")
    return EXIT_BAD_INPUT


def err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
