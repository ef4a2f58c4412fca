"""The processes long work runs in, so that the window never imports TensorFlow.

The fork server (core/process/child_process.py) imports TensorFlow once, in its own process;
training runs fork from it, and so does the one model worker (core/process/model_worker.py)
that runs the window's model jobs (evaluate, predict, Grad-CAM, export, report, FID, save
backbone, the layer count and freeze map, the device probe; their bodies are in worker_jobs.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from workbench.core.process import child_process
from workbench.core.process.model_worker import ModelWorker

WORKER_JOBS = "workbench.ui.tasks.worker_jobs"

_worker = ModelWorker()


def warm_up() -> None:
    """Start the fork server now, on a thread (the window stays live): it imports TensorFlow in its
    own process, so the first run or model job finds it ready."""
    threading.Thread(target=child_process.warm_up, name="fork-server-start", daemon=True).start()


def run_in_worker(job: str, *args: Any, cancel: threading.Event | None = None,
                  on_event: Callable[[Any], None] | None = None, wait_s: float | None = None,
                  **kwargs: Any) -> Any:
    """worker_jobs.<job>(*args, **kwargs) in the model worker; blocks the calling (pool) thread.

    Raises what ModelWorker.call raises: Cancelled, WorkerBusy (after `wait_s`), JobFailed, WorkerDied.
    """
    return _worker.call(f"{WORKER_JOBS}:{job}", *args, cancel=cancel, on_event=on_event, wait_s=wait_s,
                        **kwargs)


def model_worker_pid() -> int | None:
    """The model worker's process id while it runs (tests and benchmarks look at it)."""
    return _worker.pid


def close_model_worker() -> None:
    """End the model worker (on quit; a later job starts a new one). Never hangs."""
    _worker.close()
