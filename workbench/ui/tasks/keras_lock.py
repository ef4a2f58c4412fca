"""The Keras lock: one model job at a time in the window's process.

Training runs in child processes; the jobs that load a model here (evaluate, predict,
Grad-CAM, export, the layer counter, the freeze map) take this lock first. The lock is
waited for in short steps, so quitting (which sets `cancel`) never hangs behind a job.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

LOCK_POLL_S = 0.1
LOCK_WAIT_S = 600.0

# Held while Keras builds or trains a model in this process: one model job at a time.
# The training relay takes it for the whole run; the layer counter only tries it.
keras_lock = threading.Lock()


class Cancelled(Exception):
    """The window is closing: the job gave up waiting."""


_pinned = threading.local()  # CPython keeps it in the thread state: it lasts as long as the state does


def pin_thread_state() -> None:
    """Keep this pool thread's Python thread state alive between jobs (call first thing in a job).

    PySide gives a QThreadPool thread a new Python thread state for every job
    (PyGILState_Ensure/Release around each). pybind11, which TensorFlow uses, remembers
    the thread state of the thread that first loaded it; when that thread runs a later
    job under a new state, pybind11 waits for the GIL its own thread holds (a hang) or
    uses the freed state (a crash), e.g. on an error raised inside an eager op. One
    extra PyGILState_Ensure that is never released keeps the first state for the
    thread's life, so every job on the thread runs under the same state.
    """
    if getattr(_pinned, "done", False):
        return
    import ctypes

    ensure = ctypes.pythonapi.PyGILState_Ensure
    ensure.restype = ctypes.c_int
    ensure()
    _pinned.done = True


@contextlib.contextmanager
def holding_keras(cancel: threading.Event | None, wait_s: float = LOCK_WAIT_S) -> Iterator[None]:
    """Hold the Keras lock; give up when `cancel` is set or after `wait_s`."""
    pin_thread_state()
    deadline = time.monotonic() + wait_s
    while not keras_lock.acquire(timeout=LOCK_POLL_S):
        if cancel is not None and cancel.is_set():
            raise Cancelled("cancelled")
        if time.monotonic() > deadline:
            raise TimeoutError("another model job (a training run?) kept Keras busy; try again when it has ended")
    try:
        yield
    finally:
        keras_lock.release()
