"""Training in a child process (core/child_process.py): events, result, stop, pause, crashes, environment."""

import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from core_helpers import tiny_config

from workbench.core.base.events import BatchEnd, EpochEnd, RunFailed, RunFinished, RunStarted
from workbench.core.process.child_process import (
    NICE_ENV,
    NICENESS,
    ChildCall,
    ChildFailed,
    call_in_child,
    warm_up,
)
from workbench.core.runs.store import read_metrics

train_in_child = ChildCall("workbench.core.train.run:run")


class Seen:
    """Records events with the thread they arrived on; can act on one of them."""

    def __init__(self, on_batch=None):
        self.events, self.threads = [], set()
        self.on_batch = on_batch

    def __call__(self, event):
        self.events.append(event)
        self.threads.add(threading.get_ident())
        if self.on_batch is not None and isinstance(event, BatchEnd):
            self.on_batch(event)

    def of(self, kind):
        return [e for e in self.events if isinstance(e, kind)]


def test_a_run_in_a_child_streams_its_events_in_order_and_returns_its_result(image_tree, tmp_path, monkeypatch):
    warm_up()  # the fork server starts with the environment of now ...
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(tmp_path / "from-env"))  # ... and the child sees this one
    seen = Seen()
    result = train_in_child(tiny_config(image_tree), seen, threading.Event())
    assert isinstance(result, RunFinished) and not result.stopped, result
    assert seen.events.index(seen.of(RunStarted)[0]) < seen.events.index(seen.of(BatchEnd)[0])
    assert [e.epoch for e in seen.of(EpochEnd)] == [0, 1]
    assert seen.threads == {threading.get_ident()}  # delivered on the caller's thread
    assert seen.of(RunStarted)[0].run_dir == result.run_dir
    assert Path(result.run_dir).parent == tmp_path / "from-env"
    assert len(read_metrics(result.run_dir)) == 2
    assert multiprocessing.active_children() == []  # the child is gone


def test_stop_and_pause_reach_the_child(image_tree, tmp_path):
    stop, pause = threading.Event(), threading.Event()
    paused_at = {}

    def on_batch(event):
        if event.epoch == 0 and event.batch == 0:
            pause.set()
            paused_at["time"] = time.monotonic()
            threading.Timer(1.0, stop.set).start()  # stopping a paused run ends it

    seen = Seen(on_batch)
    result = train_in_child(tiny_config(image_tree, epochs=50), seen, stop, pause_event=pause, runs_dir=tmp_path)
    assert isinstance(result, RunFinished) and result.stopped, result
    batches = seen.of(BatchEnd)
    assert len(batches) <= 3, "batches went on while paused"
    assert time.monotonic() - paused_at["time"] >= 0.9
    assert result.epochs_done < 50


def test_a_child_killed_mid_run_gives_a_clear_failure_and_keeps_what_it_saved(image_tree, tmp_path, monkeypatch):
    monkeypatch.delenv(NICE_ENV, raising=False)  # the app's default (conftest sets 0 for the suite)
    killed, niceness = [], []

    def kill_child(event):
        if event.epoch == 1 and not killed:
            for child in multiprocessing.active_children():
                niceness.append(os.getpriority(os.PRIO_PROCESS, child.pid))
                os.kill(child.pid, signal.SIGKILL)
                killed.append(child.pid)

    seen = Seen(kill_child)
    result = train_in_child(tiny_config(image_tree, epochs=50), seen, threading.Event(), runs_dir=tmp_path)
    assert killed
    assert niceness == [max(NICENESS, os.getpriority(os.PRIO_PROCESS, 0))]  # it yields the CPU to the window
    assert isinstance(result, RunFailed)
    assert "killed by SIGKILL" in result.error and "memory" in result.error
    assert result.kind == "out_of_memory"
    assert result.run_dir == seen.of(RunStarted)[0].run_dir
    assert len(read_metrics(result.run_dir)) >= 1  # the first epoch's metrics were written before


def test_an_exception_in_the_child_is_raised_here_with_its_traceback():
    with pytest.raises(ChildFailed) as caught:
        call_in_child("workbench.core.config.run:RunConfig.from_dict", None, Seen())
    assert "AttributeError" in str(caught.value)
    with pytest.raises(ChildFailed) as caught:
        call_in_child("json:loads", "{not json", Seen())  # loads(text, emit): a real error raised there
    text = str(caught.value)
    assert text.startswith("TypeError") and "In the training process" in text and "Traceback" in text
