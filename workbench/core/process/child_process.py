"""Run a core job (a training run, a sweep, a GAN run) in a child process, its events streamed back.

Why a process and not a thread: TensorFlow's C++ calls (building a model, tracing the
first step, some kernels) hold the GIL for a few hundred milliseconds at a time, so a
run on a thread of the app's process freezes its window that long. In a child process
only the pipe's reads touch the app's GIL. A crash in native code or an out-of-memory
kill ends the child, not the app, and GPU memory goes back to the system when it exits.

The job keeps its usual signature, `job(subject, emit, *args, **kwargs)`: `emit` becomes
a sender on a pipe and each `threading.Event` argument (stop, pause) is mirrored into a
process-shared event, so callers cannot tell the difference except by the speed.

On Linux and macOS children fork from a server process that imported TensorFlow, Keras
and the core once (`warm_up` starts it early); each run's child then starts in
milliseconds instead of seconds. Elsewhere they are spawned and import on their own.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import signal
import threading
import traceback
from collections.abc import Callable
from typing import Any

PRELOAD = ["workbench.core.process.preload"]
POLL_S = 0.05  # how often stop and pause requests reach the child, at most
# Training takes every core it can get; one step lower in the scheduler's eyes than the app, the
# window gets the CPU at once when it needs a few milliseconds, and training loses only those.
# $WORKBENCH_TRAINING_NICE changes it (0: the same priority as the app).
NICENESS = 5
NICE_ENV = "WORKBENCH_TRAINING_NICE"

_context_lock = threading.Lock()
_context = None


class ChildFailed(Exception):
    """The job raised in the child; the message carries its traceback there."""


def context():
    """The multiprocessing context children start from (one per process, set up once)."""
    global _context
    with _context_lock:
        if _context is None:
            if "forkserver" in multiprocessing.get_all_start_methods():
                _context = multiprocessing.get_context("forkserver")
                _context.set_forkserver_preload(PRELOAD)
            else:
                _context = multiprocessing.get_context("spawn")
        return _context


def warm_up(after: threading.Thread | None = None) -> None:
    """Start the fork server, so it imports TensorFlow before the first run needs it.

    With `after` (the app's own TensorFlow load), wait for that thread first, on a thread of
    our own: two imports at once on a small machine make the window stall longer than one
    after the other.
    """
    if context().get_start_method() != "forkserver":
        return
    from multiprocessing import forkserver

    if after is None:
        forkserver.ensure_running()
        return

    def start_when_loaded() -> None:
        after.join()
        forkserver.ensure_running()

    threading.Thread(target=start_when_loaded, name="fork-server-start", daemon=True).start()


class ChildCall:
    """A stand-in for the core function named `target` ("package.module:function") that runs
    each call in a child process; picklable, and a drop-in for the runners' `run_fn`."""

    def __init__(self, target: str):
        self.target = target

    def __call__(self, subject: Any, emit: Callable[[Any], None], *args: Any, **kwargs: Any) -> Any:
        return call_in_child(self.target, subject, emit, *args, **kwargs)

    def __repr__(self) -> str:
        return f"ChildCall({self.target!r})"


def call_in_child(target: str, subject: Any, emit: Callable[[Any], None], *args: Any, **kwargs: Any) -> Any:
    """Call `target(subject, emit, *args, **kwargs)` in a child process; blocks until it ends.

    Events reach `emit` on the calling thread, in order. Returns what the job returned;
    raises ChildFailed when it raised. A child that dies (killed, out of memory, a crash
    in native code) gives a RunFailed that says how it ended.
    """
    ctx = context()
    mirrors: list[tuple[threading.Event, Any]] = []

    def shared(value: Any) -> Any:
        if isinstance(value, threading.Event):
            twin = ctx.Event()
            mirrors.append((value, twin))
            return twin
        return value

    args = tuple(shared(a) for a in args)
    kwargs = {key: shared(value) for key, value in kwargs.items()}
    _mirror(mirrors)
    receiver, sender = ctx.Pipe(duplex=False)
    process = ctx.Process(
        target=_child_main, args=(target, subject, sender, args, kwargs, dict(os.environ)),
        name=f"workbench-{target.rsplit(':', 1)[-1]}", daemon=True,
    )
    process.start()
    sender.close()  # the child holds the only writing end: its exit reads as end-of-file here
    outcome: tuple[str, Any] | None = None
    seen_run_dir = ""
    try:
        while True:
            _mirror(mirrors)
            if not receiver.poll(POLL_S):
                if not process.is_alive():
                    break
                continue
            try:
                kind, payload = receiver.recv()
            except (EOFError, OSError):
                break
            if kind == "event":
                seen_run_dir = getattr(payload, "run_dir", "") or seen_run_dir
                emit(payload)
            else:
                outcome = (kind, payload)
    finally:
        receiver.close()
        process.join()
    if outcome is None:
        return _died(process.exitcode, seen_run_dir)
    kind, payload = outcome
    if kind == "raised":
        raise ChildFailed(payload)
    return payload


def _mirror(mirrors: list[tuple[threading.Event, Any]]) -> None:
    for ours, twin in mirrors:
        if ours.is_set() != twin.is_set():
            twin.set() if ours.is_set() else twin.clear()


def how_it_ended(exitcode: int | None) -> str:
    """'was killed by SIGKILL (...)' or 'ended with exit code N': a child that died, for a person."""
    if exitcode is None or exitcode >= 0:
        return f"ended with exit code {exitcode}"
    try:
        name = signal.Signals(-exitcode).name
    except ValueError:
        name = f"signal {-exitcode}"
    how = f"was killed by {name}"
    if name == "SIGKILL":
        how += " (most often the system ending it when memory runs out)"
    elif name in ("SIGSEGV", "SIGABRT", "SIGBUS"):
        how += " (a crash inside TensorFlow's native code)"
    return how


def _died(exitcode: int | None, run_dir: str):
    from workbench.core.base.events import RunFailed

    how = how_it_ended(exitcode)
    if exitcode is None or exitcode >= 0:
        how += " before reporting a result"
    return RunFailed(
        error=f"The training process {how}.",
        details=("The window is fine; only the process that trained ended. What the run saved before "
                 "it ended is in its folder" + (f": {run_dir}" if run_dir else "") + "."),
        run_dir=run_dir,
        kind="out_of_memory" if "memory" in how else "error",
    )


def lower_priority() -> None:
    """Make this process yield the CPU to the app's window (never raises its priority back)."""
    try:
        wanted = int(os.environ.get(NICE_ENV, NICENESS))
    except ValueError:
        wanted = NICENESS
    if hasattr(os, "getpriority"):
        try:
            os.setpriority(os.PRIO_PROCESS, 0, max(wanted, os.getpriority(os.PRIO_PROCESS, 0)))
        except OSError:
            pass


def _child_main(target: str, subject: Any, sender, args: tuple, kwargs: dict, environ: dict) -> None:
    """The child's whole life: take the app's environment, run the job, send the outcome."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in a terminal is the app's to handle
    os.environ.clear()
    os.environ.update(environ)
    lower_priority()
    stop = next((v for v in (*args, *kwargs.values()) if hasattr(v, "is_set") and hasattr(v, "set")), None)
    orphaned = False

    def emit(event: Any) -> None:
        nonlocal orphaned
        if orphaned:
            return
        try:
            sender.send(("event", event))
        except OSError:  # the app went away: stop, and let the job save what it has
            orphaned = True
            if stop is not None:
                stop.set()

    try:
        module_name, _, function_name = target.partition(":")
        function = getattr(importlib.import_module(module_name), function_name)
        outcome = ("returned", function(subject, emit, *args, **kwargs))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which decides
        outcome = ("raised", f"{type(exc).__name__}: {exc}\n\nIn the training process:\n"
                             + "".join(traceback.format_exception(exc)))
    try:
        sender.send(outcome)
    except OSError:
        pass
    finally:
        sender.close()
