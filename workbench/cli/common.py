"""What every command shares: exit codes, error printing, run folders from ids, Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
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


@contextlib.contextmanager
def ctrl_c_stops(saying: str) -> Iterator[threading.Event]:
    """A stop event that Ctrl-C sets (the run ends cleanly and keeps its work); twice aborts."""
    stop = threading.Event()

    def on_sigint(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        err(f"\n{saying} (press Ctrl-C again to abort)...")
        stop.set()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def print_problems(header: str, problems) -> int:
    """The problems under a header, on stderr; the bad-input exit code."""
    err(header)
    for problem in problems:
        err(f"  - {problem}")
    return EXIT_BAD_INPUT


def err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
