"""A dropout sweep on a QThread, its events as Qt signals: the sweep's twin of worker.py.

`SweepWorker` lives on the thread and calls `core.sweep.run_sweep` (in a child process,
as worker.py explains); every event crosses to the GUI thread through a queued
`Signal(object)`. Batch events of the trials go through the same BatchThrottle as a run's
(about 18 a second, each epoch's last batch always). `SweepRunner` lives on the GUI thread, owns the thread and the worker, and
tears both down (stop, quit, wait) when the sweep ends or the window closes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, Signal, Slot

from workbench.core.base.events import BatchEnd
from workbench.core.process.child_process import ChildCall
from workbench.ui.tasks.keras_lock import keras_lock
from workbench.ui.tasks.runner import BATCH_INTERVAL_S, BatchThrottle, ThreadRunner, crash_report

SweepFunction = Callable[..., Any]


_core_sweep = ChildCall("workbench.core.train.sweep:run_sweep")  # in a child process, as runner.py explains
GAN_SWEEP = ChildCall("workbench.core.gan.sweep:run_gan_sweep")


class SweepWorker(QObject):
    """Runs one sweep on its thread; `event` carries sweep events, `done` the SweepResult (or a crash)."""

    event = Signal(object)
    done = Signal(object)

    def __init__(self, sweep, stop_event: threading.Event, runs_dir: str | Path | None = None,
                 sweep_fn: SweepFunction | None = None, batch_interval: float = BATCH_INTERVAL_S):
        super().__init__()
        self._sweep = sweep
        self._stop = stop_event
        self._runs_dir = runs_dir
        self._sweep_fn = sweep_fn or _core_sweep
        self._throttle = BatchThrottle(self.event.emit, batch_interval)

    @Slot()
    def run(self) -> None:
        try:
            with keras_lock:
                result = self._sweep_fn(self._sweep, self._emit, self._stop, self._runs_dir)
        except BaseException as exc:  # noqa: BLE001 - a bug must not leave the GUI waiting forever
            result = crash_report("The sweep crashed", exc)
        self._throttle.flush()
        self.moveToThread(QCoreApplication.instance().thread())
        self.done.emit(result)

    def _emit(self, event: Any) -> None:
        """Called by the core on this thread for every event."""
        inner = getattr(event, "event", None)
        self._throttle(event, inner if isinstance(inner, BatchEnd) else None)


class SweepRunner(ThreadRunner):
    """Starts sweeps on a QThread and re-emits their events on the GUI thread; one sweep at a time.

    `finished` carries the SweepResult, or RunFailed when the sweep crashed.
    """

    def __init__(self, parent: QObject | None = None, sweep_fn: SweepFunction | None = None):
        super().__init__(parent)
        self._sweep_fn = sweep_fn

    def start(self, sweep, runs_dir: str | Path | None = None) -> None:
        if self.running:
            raise RuntimeError("a sweep is already in progress")
        self._stop = threading.Event()
        self._launch(SweepWorker(sweep, self._stop, runs_dir, self._sweep_fn), "workbench-sweep")

    def stop(self) -> None:
        """Ask the sweep to stop: the running trial stops within one batch and no other starts."""
        self._stop.set()
