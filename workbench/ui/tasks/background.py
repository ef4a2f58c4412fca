"""Short background jobs (scan a folder, count trainable layers) that report back on the GUI thread.

A job is a plain function run on a QThreadPool thread; its result arrives through a
queued signal. Only the newest job of a kind matters: callers compare the id the
result carries with `latest` and drop stale answers.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThreadPool, Signal

from workbench.ui.tasks.keras_lock import keras_lock, pin_thread_state


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
        pin_thread_state()  # jobs may load TensorFlow: one Python thread state per pool thread
        kwargs = {"progress": functools.partial(self.progress.emit, job_id)} if report_progress else {}
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - reported to the GUI as text
            self.failed.emit(job_id, f"{type(exc).__name__}: {exc}")
            return
        self.done.emit(job_id, result)


def scan_dataset(folder: str, progress: Callable[[int, int], None] | None = None):
    """The dataset scan, run off the GUI thread (it opens every image)."""
    from workbench.core.data import scan

    return scan.scan_folder(folder, progress=progress)


def count_trainable(config, num_classes: int):
    """Build the model (structure only, no weights) and apply the freeze policy: a FreezeSummary.

    Returns None without waiting when a run holds the Keras lock: the run reports
    its own counts when it starts.
    """
    if not keras_lock.acquire(blocking=False):
        return None
    try:
        from workbench.core.config.derived import structure_only
        from workbench.core.engine import model as model_lib

        return model_lib.freeze_for(model_lib.build_model(structure_only(config), num_classes), config)
    finally:
        keras_lock.release()


def probe_devices() -> str:
    """"GPU: NVIDIA ... 80 GB" or "CPU only": imports TensorFlow, so only on a pool thread."""
    from workbench.core.engine import devices

    return devices.describe_devices(devices.list_gpus())
