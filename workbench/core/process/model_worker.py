"""A long-lived child process that runs the window's model jobs, so the window never imports TensorFlow.

The worker is forked from the same fork server as training runs (child_process.context()), so
TensorFlow is already imported in it. It takes one job at a time ("package.module:function" and
its arguments) through a pipe, streams the job's events back and stays alive between jobs: what
the job functions keep at module level (the last loaded run model) serves the next job at once.
Cancelling a running job ends the process; a process that died (killed, out of memory, a native
crash) is reported as `WorkerDied`, and the next job starts a fresh one.
"""

from __future__ import annotations

import importlib
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from workbench.core.process import child_process

POLL_S = 0.05  # how often a waiting caller looks at its cancel event
CLOSE_WAIT_S = 2.0  # a worker sent SIGTERM gets this long to end before SIGKILL


class Cancelled(Exception):
    """The job was cancelled (the window is closing): it gave up waiting, or its worker was ended."""


class WorkerBusy(TimeoutError):
    """Another job kept the worker busy longer than the caller wanted to wait."""


class JobFailed(Exception):
    """The job raised in the worker. `kind` is its exception's type name, `details` the traceback there.

    Only names and text cross back: an exception class of TensorFlow would import it here.
    """

    def __init__(self, kind: str, message: str, details: str = ""):
        super().__init__(kind, message, details)
        self.kind, self.message, self.details = kind, message, details

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


class WorkerDied(Exception):
    """The worker process ended in the middle of a job; the message says how, for a person."""


class ModelWorker:
    """The parent's handle on one worker process: `call` runs a job there and waits for its result.

    Thread-safe: callers on several threads take turns (one job at a time); each waits in short
    steps, so a set `cancel` event frees it within POLL_S.
    """

    def __init__(self, name: str = "workbench-model-worker"):
        self.name = name
        self._lock = threading.Lock()  # one job at a time: guards the process and its pipe
        self._process: Any = None
        self._conn: Any = None

    @property
    def pid(self) -> int | None:
        """The running worker's process id (None when none runs)."""
        process = self._process
        return process.pid if process is not None and process.is_alive() else None

    def call(self, target: str, *args: Any, cancel: threading.Event | None = None,
             on_event: Callable[[Any], None] | None = None, wait_s: float | None = None, **kwargs: Any) -> Any:
        """`target(*args, **kwargs)` in the worker (with `emit=` when `on_event` takes its events).

        Waits for the worker (at most `wait_s`, then WorkerBusy) and for the job. Raises Cancelled
        when `cancel` is set (a running job's worker is killed), JobFailed when the job raised,
        WorkerDied when the process ended.
        """
        deadline = None if wait_s is None else time.monotonic() + wait_s
        while not self._lock.acquire(timeout=POLL_S):
            if cancel is not None and cancel.is_set():
                raise Cancelled("cancelled")
            if deadline is not None and time.monotonic() > deadline:
                raise WorkerBusy("the model process is busy with another job")
        try:
            if cancel is not None and cancel.is_set():
                raise Cancelled("cancelled")
            return self._run(target, args, kwargs, cancel, on_event)
        finally:
            self._lock.release()

    def close(self) -> None:
        """End the worker (on quit; a later job starts a new one). Never hangs.

        An idle worker holds nothing unsaved (run folders are written atomically), so it is
        simply terminated; a busy one too, and its job's call reports WorkerDied.
        """
        if self._lock.acquire(blocking=False):
            try:
                self._end(CLOSE_WAIT_S)
            finally:
                self._lock.release()
        else:
            process = self._process
            if process is not None:
                process.kill()  # the running job's call sees the pipe close and reports it

    # ---- under the lock -------------------------------------------------------------------------
    def _run(self, target: str, args: tuple, kwargs: dict, cancel: threading.Event | None,
             on_event: Callable[[Any], None] | None) -> Any:
        job = (target, args, kwargs, dict(os.environ), on_event is not None)
        if self._process is not None and not self._process.is_alive():
            self._end(0)  # it ended while idle (killed, out of memory)
        if self._process is None:
            self._start()
        try:
            self._conn.send(job)
        except (OSError, ValueError):  # it ended just now: a fresh one
            self._end(0)
            self._start()
            self._conn.send(job)
        try:
            return self._outcome(cancel, on_event)
        except (JobFailed, Cancelled, WorkerDied):
            raise
        except BaseException:  # the caller's on_event, or a result that cannot be read here
            self._end(0)  # the rest of this job's messages must not reach the next job
            raise

    def _outcome(self, cancel: threading.Event | None, on_event: Callable[[Any], None] | None) -> Any:
        while True:
            if cancel is not None and cancel.is_set():
                self._end(0)
                raise Cancelled("cancelled")
            try:
                if not self._conn.poll(POLL_S):
                    continue
                kind, payload = self._conn.recv()
            except (EOFError, OSError):
                raise WorkerDied(self._died()) from None
            if kind == "event":
                if on_event is not None:
                    on_event(payload)
            elif kind == "returned":
                return payload
            else:
                raise JobFailed(*payload)

    def _start(self) -> None:
        ctx = child_process.context()
        ours, theirs = ctx.Pipe()
        process = ctx.Process(target=worker_main, args=(theirs,), name=self.name, daemon=True)
        process.start()
        theirs.close()  # the worker holds the only other end: its exit reads as end-of-file here
        self._process, self._conn = process, ours

    def _end(self, wait_s: float) -> None:
        """End the process (SIGTERM, then SIGKILL after `wait_s`) and forget it."""
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if process is not None:
            if process.is_alive():
                process.terminate()
            process.join(wait_s)
            if process.is_alive():
                process.kill()
                process.join()
        if conn is not None:
            conn.close()

    def _died(self) -> str:
        process = self._process
        self._end(1.0)
        how = child_process.how_it_ended(process.exitcode if process is not None else None)
        return (f"The process that loads models {how} during this job. The window is fine; "
                "the next job starts a new process.")


def worker_main(conn: Any) -> None:
    """The worker's whole life: take a job, run it with the app's environment, send the outcome."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in a terminal is the app's to handle
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):  # the app went away
            return
        target, args, kwargs, environ, streams = job
        os.environ.clear()
        os.environ.update(environ)
        if streams:
            kwargs = {**kwargs, "emit": lambda event: conn.send(("event", event))}
        try:
            module_name, _, function_name = target.partition(":")
            function = getattr(importlib.import_module(module_name), function_name)
            outcome = ("returned", function(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - reported to the caller, which decides
            outcome = ("raised", (type(exc).__name__, str(exc), "".join(traceback.format_exception(exc))))
        try:
            conn.send(outcome)
        except (OSError, EOFError):
            return
        except Exception as exc:  # noqa: BLE001 - the result could not be pickled
            conn.send(("raised", (type(exc).__name__, f"the job's result could not be sent back: {exc}",
                                  traceback.format_exc())))
