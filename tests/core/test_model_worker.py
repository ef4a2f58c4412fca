"""The model worker (core/process/model_worker.py): one long-lived child process that runs jobs by name,
streams their events, keeps its state between jobs, and survives errors, crashes and cancelling."""

from __future__ import annotations

import threading
import time

import pytest

from workbench.core.process.model_worker import (
    Cancelled,
    JobFailed,
    ModelWorker,
    WorkerBusy,
    WorkerDied,
)


@pytest.fixture
def worker():
    made = ModelWorker("workbench-test-worker")
    yield made
    made.close()
    assert made.pid is None


def test_jobs_share_one_process_stream_events_and_take_the_callers_environment(worker, monkeypatch):
    events = []
    assert worker.call("worker_targets:count_to", 3, on_event=events.append) == 3
    assert events == [0, 1, 2]
    pid = worker.pid
    assert pid is not None
    assert [worker.call("worker_targets:calls_so_far") for _ in range(2)] == [1, 2]  # state kept between jobs
    monkeypatch.setenv("WORKBENCH_TEST_WORKER", "seen")
    assert worker.call("os:getenv", "WORKBENCH_TEST_WORKER") == "seen"  # each job runs with the caller's environment
    assert worker.pid == pid


def test_errors_crashes_and_cancelling_end_the_job_never_the_caller(worker):
    with pytest.raises(JobFailed) as failed:
        worker.call("math:sqrt", -1)
    assert str(failed.value) == "ValueError: math domain error" and "Traceback" in failed.value.details
    pid = worker.pid
    assert pid is not None  # an error in a job leaves the worker running

    with pytest.raises(WorkerDied, match="SIGABRT.*next job starts a new process"):
        worker.call("os:abort")  # a native crash
    assert worker.pid is None
    assert worker.call("worker_targets:count_to", 0) == 0 and worker.pid not in (None, pid)  # a fresh one

    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(Cancelled):
        worker.call("time:sleep", 60, cancel=cancel)
    assert time.monotonic() - started < 10 and worker.pid is None  # cancelling ended the worker at once

    busy = threading.Thread(target=worker.call, args=("time:sleep", 3))
    busy.start()
    time.sleep(0.5)  # the other caller holds the worker now
    with pytest.raises(WorkerBusy):
        worker.call("worker_targets:count_to", 0, wait_s=0.2)
    with pytest.raises(Cancelled):  # a caller waiting its turn stops waiting when cancelled
        worker.call("worker_targets:count_to", 0, cancel=cancel)
    busy.join()
    assert worker.call("worker_targets:count_to", 2) == 2
