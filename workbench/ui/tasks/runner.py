"""The one bridge between the core and Qt: a training run on a QThread, its events as Qt signals.

`TrainingWorker` lives on the thread and calls `core.training.run` (which trains in a child
process and streams its events back, core/child_process.py); every event crosses to the GUI
thread through a queued `Signal(object)`. Batch events are
coalesced (at most ~18 a second, the last batch of each epoch always) so the GUI
thread stays light. `TrainingRunner` lives on the GUI thread, owns the thread and
the worker, and tears both down when the run ends.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal, Slot

from workbench.core.base.events import BatchEnd, Event, RunFailed, RunFinished
from workbench.core.config.run import RunConfig
from workbench.core.process.child_process import ChildCall, ChildFailed
from workbench.ui.tasks.keras_lock import keras_lock

RunFunction = Callable[..., RunFinished | RunFailed]

BATCH_INTERVAL_S = 1 / 18


# Real runs train in a child process (core/child_process.py): TensorFlow's C++ calls hold the
# GIL, and on a thread of this process they would freeze the window. The worker's thread only
# relays the child's events. Tests pass their own `run_fn`, which runs on the thread itself.
_core_run = ChildCall("workbench.core.train.run:run")
GAN_RUN = ChildCall("workbench.core.gan.training:run")  # the GAN lab's runs, the same way


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


class TrainingWorker(QObject):
    """Runs one training run on its thread; `event` carries core events, `done` the final result."""

    event = Signal(object)
    done = Signal(object)

    def __init__(
        self,
        config: RunConfig,
        stop_event: threading.Event,
        pause_event: threading.Event,
        runs_dir: str | Path | None = None,
        run_fn: RunFunction | None = None,
        batch_interval: float = BATCH_INTERVAL_S,
        resume_from: str | Path | None = None,
    ):
        super().__init__()
        self._config = config
        self._stop, self._pause = stop_event, pause_event
        self._runs_dir = runs_dir
        self._resume_from = resume_from
        self._run_fn = run_fn or _core_run
        self._throttle = BatchThrottle(self.event.emit, batch_interval)

    @Slot()
    def run(self) -> None:
        try:
            # Only a resumed run passes resume_from, so run functions without it keep working.
            extra = {"resume_from": self._resume_from} if self._resume_from is not None else {}
            with keras_lock:
                result = self._run_fn(
                    self._config, self._emit, self._stop, pause_event=self._pause, runs_dir=self._runs_dir,
                    **extra,
                )
        except BaseException as exc:  # noqa: BLE001 - a bug must not leave the GUI waiting forever
            result = crash_report("Training crashed", exc)
        self._throttle.flush()
        # Hand this object back to the GUI thread, so the runner can drop it there safely.
        self.moveToThread(QCoreApplication.instance().thread())
        self.done.emit(result)

    def _emit(self, event: Event) -> None:
        """Called by the core on this thread for every event."""
        if isinstance(event, (RunFinished, RunFailed)):
            return  # the final result travels through `done`, once
        self._throttle(event, event if isinstance(event, BatchEnd) else None)


class ThreadRunner(QObject):
    """Owns one worker on its own QThread at a time: re-emits its events on the GUI thread and
    tears the thread down when it is done. TrainingRunner and the sweeps' runner build on it."""

    event = Signal(object)
    finished = Signal(object)  # the worker's result, after the thread has ended

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._thread: QThread | None = None
        self._worker: QObject | None = None
        self._stop = threading.Event()

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
        self._stop.set()

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


class TrainingRunner(ThreadRunner):
    """Starts runs on a QThread and re-emits their events on the GUI thread; one run at a time."""

    def __init__(self, parent: QObject | None = None, run_fn: RunFunction | None = None):
        super().__init__(parent)
        self._run_fn = run_fn
        self._pause = threading.Event()

    @property
    def paused(self) -> bool:
        return self._pause.is_set()

    def start(
        self, config: RunConfig, runs_dir: str | Path | None = None, resume_from: str | Path | None = None
    ) -> None:
        """Start a run of `config`; with `resume_from` (a run folder) continue that run instead."""
        if self.running:
            raise RuntimeError("a run is already in progress")
        self._stop = threading.Event()
        self._pause = threading.Event()
        # Later edits must not reach the run. Any config type with to_dict/from_dict (RunConfig, the
        # GAN lab's GanConfig) runs here: the run function decides what it means.
        snapshot = type(config).from_dict(config.to_dict())
        self._launch(TrainingWorker(snapshot, self._stop, self._pause, runs_dir, self._run_fn,
                                    resume_from=resume_from), "workbench-training")

    def stop(self) -> None:
        """Ask the run to stop; it does within one batch and then reports RunFinished(stopped=True)."""
        self._stop.set()
        self._pause.clear()

    def pause(self) -> None:
        if self.running:
            self._pause.set()

    def resume(self) -> None:
        self._pause.clear()

