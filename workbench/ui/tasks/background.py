"""Short background jobs (scan a folder, count trainable layers) that report back on the GUI thread.

A job is a plain function run on a QThreadPool thread; its result arrives through a
queued signal. Only the newest job of a kind matters: callers compare the id the
result carries with `latest` and drop stale answers. Jobs that need Keras send their
work to the model worker (processes.run_in_worker) and wait for it on the pool thread.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThreadPool, Signal

from workbench.core.process.model_worker import JobFailed, WorkerBusy, WorkerDied
from workbench.ui.tasks.processes import run_in_worker

# The layer count gives up when the model worker stays busy this long (an evaluation, an
# export): the readout asks again shortly, so it never queues behind a long job.
COUNT_WAIT_S = 0.5


class BackgroundJobs(QObject):
    """Runs functions on `pool`; `done(job_id, result)` or `failed(job_id, message)` come back queued."""

    done = Signal(int, object)
    failed = Signal(int, str)
    progress = Signal(int, int, int)  # job id, done, total: for functions that take `progress=`

    def __init__(self, pool: QThreadPool, parent: QObject | None = None):
        super().__init__(parent)
        self._pool = pool
        self.latest = 0

    def submit(self, fn: Callable[..., Any], *args: Any, report_progress: bool = False) -> int:
        """Run fn(*args) (with progress=callback when report_progress) on the pool; the job's id."""
        self.latest += 1
        self._pool.start(functools.partial(self._run, self.latest, fn, args, report_progress))
        return self.latest

    def _run(self, job_id: int, fn: Callable[..., Any], args: tuple, report_progress: bool) -> None:
        """On a pool thread: no widget is touched here, only signals are emitted."""
        kwargs = {"progress": functools.partial(self.progress.emit, job_id)} if report_progress else {}
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - reported to the GUI as text
            self.failed.emit(job_id, describe(exc))
            return
        self.done.emit(job_id, result)


def describe(exc: BaseException) -> str:
    """A failed job for a person: "RunError: why" (the job's own exception, also from the worker)."""
    if isinstance(exc, (JobFailed, WorkerDied)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def scan_dataset(folder: str, progress: Callable[[int, int], None] | None = None):
    """The dataset scan, run off the GUI thread (it opens every image)."""
    from workbench.core.data import scan

    return scan.scan_folder(folder, progress=progress)


def count_trainable(config, num_classes: int, cancel: threading.Event | None = None):
    """Build the model (structure only, no weights) in the model worker and apply the freeze
    policy: a FreezeSummary. None when the worker stayed busy (the readout asks again)."""
    try:
        return run_in_worker("count_trainable", config, num_classes, cancel=cancel, wait_s=COUNT_WAIT_S)
    except WorkerBusy:
        return None


def probe_devices(cancel: threading.Event | None = None) -> str:
    """"GPU: NVIDIA ... 80 GB" or "CPU only", as TensorFlow sees them in the model worker."""
    return run_in_worker("describe_devices", cancel=cancel)
