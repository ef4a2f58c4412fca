"""The one way long work runs: a core function in a child process, relayed by a QThread.

Runs, tuning studies, GAN runs and GAN sweeps all go through `TaskRunner`. Its `TaskWorker`
lives on the thread and calls the task's function, by default a `ChildCall` that runs the core
in a child process and streams its events back (core/process/child_process.py); every event
crosses to the GUI thread through a queued `Signal(object)`. Batch events, also those a sweep
wraps, are coalesced (at most ~18 a second, the last batch of each epoch always) so the GUI
thread stays light. `TaskRunner` lives on the GUI thread, owns the thread and the worker, and
tears both down when the task ends.
"""

from __future__ import annotations

import copy
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal, Slot

from workbench.core.base.events import BatchEnd, Event, RunFailed, RunFinished
from workbench.core.process.child_process import ChildCall, ChildFailed

TaskFunction = Callable[..., object]  # fn(payload, emit, stop_event, runs_dir=..., [pause_event=...])

BATCH_INTERVAL_S = 1 / 18


# The core's work runs in a child process (core/process/child_process.py): TensorFlow's C++ calls
# hold the GIL, and on a thread of this process they would freeze the window. The worker's thread
# only relays the child's events. Tests pass their own function, which runs on the thread itself.
RUN = ChildCall("workbench.core.train.run:run")
GAN_RUN = ChildCall("workbench.core.gan.training:run")
GAN_SWEEP = ChildCall("workbench.core.gan.sweep:run_gan_sweep")
LR_FIND = ChildCall("workbench.core.train.lr_find:find_lr")  # the learning-rate range test (ui/lr_finder.py)
TUNE = ChildCall("workbench.core.tune.study:run_study")


def crash_report(title: str, exc: BaseException) -> RunFailed:
    """A run function that raised (here, or in its child process) as a RunFailed for the dialog."""
    if isinstance(exc, ChildFailed):  # the message is the child's exception and its traceback
        text = str(exc)
        return RunFailed(error=f"{title}: {text}".splitlines()[0], details=text)
    return RunFailed(error=f"{title}: {type(exc).__name__}: {exc}".splitlines()[0],
                     details="".join(traceback.format_exception(exc)))


class BatchThrottle:
    """Passes on at most one batch event per `interval` (and each epoch's last batch); the
    latest one held back goes out before any other event, so the order is kept."""

    def __init__(self, send: Callable[[object], None], interval: float = BATCH_INTERVAL_S):
        self._send, self._interval = send, interval
        self._last_sent = 0.0
        self._pending: object | None = None

    def __call__(self, event: object, batch: BatchEnd | None) -> None:
        """`batch` is the BatchEnd that `event` is or carries (a sweep's trial event), else None."""
        if batch is None:
            self.flush()
            self._send(event)
            return
        now = time.monotonic()
        if (batch.steps > 0 and batch.batch + 1 >= batch.steps) or now - self._last_sent >= self._interval:
            self._pending = None
            self._last_sent = now
            self._send(event)
        else:
            self._pending = event

    def flush(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self._last_sent = time.monotonic()
            self._send(pending)


class TaskWorker(QObject):
    """Runs one task on its thread; `event` carries its events, `done` its result (or a crash report)."""

    event = Signal(object)
    done = Signal(object)

    def __init__(self, fn: TaskFunction, payload: object, stop_event: threading.Event,
                 pause_event: threading.Event | None, crash_title: str, batch_interval: float = BATCH_INTERVAL_S,
                 **kwargs: object):
        super().__init__()
        self._fn, self._payload, self._kwargs = fn, payload, kwargs
        self._stop, self._pause = stop_event, pause_event
        self._crash_title = crash_title
        self._throttle = BatchThrottle(self.event.emit, batch_interval)

    @Slot()
    def run(self) -> None:
        try:
            pause = {"pause_event": self._pause} if self._pause is not None else {}
            result = self._fn(self._payload, self._emit, self._stop, **pause, **self._kwargs)
        except BaseException as exc:  # noqa: BLE001 - a bug must not leave the GUI waiting forever
            result = crash_report(self._crash_title, exc)
        self._throttle.flush()
        # Hand this object back to the GUI thread, so the runner can drop it there safely.
        self.moveToThread(QCoreApplication.instance().thread())
        self.done.emit(result)

    def _emit(self, event: Event) -> None:
        """Called by the core on this thread for every event."""
        if isinstance(event, (RunFinished, RunFailed)):
            return  # a run's final result travels through `done`, once
        inner = getattr(event, "event", None)  # a sweep's trial event wraps a run's event
        batch = event if isinstance(event, BatchEnd) else inner if isinstance(inner, BatchEnd) else None
        self._throttle(event, batch)


class TaskRunner(QObject):
    """Starts one task at a time on a QThread, re-emits its events on the GUI thread and tears the
    thread down when it is done. `pausable` tasks get a pause event (runs do; sweeps stop only)."""

    event = Signal(object)
    finished = Signal(object)  # the worker's result, after the thread has ended

    def __init__(self, parent: QObject | None = None, fn: TaskFunction = RUN, pausable: bool = True,
                 name: str = "workbench-task", crash_title: str = "Training crashed"):
        super().__init__(parent)
        self._fn, self._pausable, self._name, self._crash_title = fn, pausable, name, crash_title
        self._thread: QThread | None = None
        self._worker: QObject | None = None
        self._stop = threading.Event()
        self._pause = threading.Event()

    @property
    def paused(self) -> bool:
        return self._pause.is_set()

    def start(self, payload: object, runs_dir: str | Path | None = None, **kwargs: object) -> None:
        """Start the task on `payload` (a config, a sweep); `kwargs` go to the task's function
        (a run's `resume_from`). Later edits to `payload` do not reach the task."""
        if self.running:
            raise RuntimeError("a task is already in progress")
        self._stop = threading.Event()
        self._pause = threading.Event()
        kwargs = {key: value for key, value in kwargs.items() if value is not None}  # fakes need not take them
        worker = TaskWorker(self._fn, copy.deepcopy(payload), self._stop, self._pause if self._pausable else None,
                            self._crash_title, runs_dir=runs_dir, **kwargs)
        self._launch(worker, self._name)

    def pause(self) -> None:
        if self.running and self._pausable:
            self._pause.set()

    def resume(self) -> None:
        self._pause.clear()

    @property
    def running(self) -> bool:
        return self._thread is not None

    @property
    def stopping(self) -> bool:
        return self.running and self._stop.is_set()

    def _launch(self, worker: QObject, name: str) -> None:
        """Move `worker` (with `run`, `event` and `done`) to a new thread and start it."""
        self._worker = worker
        self._thread = QThread()
        self._thread.setObjectName(name)
        worker.moveToThread(self._thread)
        self._thread.started.connect(worker.run)
        worker.event.connect(self._on_event)
        worker.done.connect(self._on_done)
        self._thread.start()

    def stop(self) -> None:
        """Ask the task to stop: a run stops within one batch, a sweep starts no other trial."""
        self._stop.set()
        self._pause.clear()

    def shutdown(self) -> None:
        """Stop and wait for the thread (blocking): for quitting while work is still going."""
        if self._thread is None:
            return
        self.stop()
        self._thread.quit()
        self._thread.wait()
        self._release()

    @Slot(object)
    def _on_event(self, event: object) -> None:
        if self.sender() is self._worker:
            self.event.emit(event)

    @Slot(object)
    def _on_done(self, result: object) -> None:
        if self._thread is None or self.sender() is not self._worker:
            return  # shut down already
        self._thread.quit()
        self._thread.wait()
        self._release()
        self.finished.emit(result)

    def _release(self) -> None:
        self._worker = None
        self._thread = None


