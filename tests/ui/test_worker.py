"""The bridge: events cross to the GUI thread, batches are coalesced, threads end cleanly."""

from __future__ import annotations

import threading
import time

import pytest
from PySide6.QtCore import QObject, Slot
from ui_helpers import fake_run

from workbench.core.base.events import BatchEnd, RunFailed, RunFinished
from workbench.core.config.run import RunConfig
from workbench.ui.tasks.runner import TaskRunner


class Recorder(QObject):
    def __init__(self):
        super().__init__()
        self.events = []
        self.results = []
        self.threads = set()

    @Slot(object)
    def on_event(self, event):
        self.events.append(event)
        self.threads.add(threading.get_ident())

    @Slot(object)
    def on_finished(self, result):
        self.results.append(result)
        self.threads.add(threading.get_ident())


@pytest.fixture
def runner_and_recorder(qapp):
    runner = TaskRunner(fn=fake_run())
    recorder = Recorder()
    runner.event.connect(recorder.on_event)
    runner.finished.connect(recorder.on_finished)
    yield runner, recorder
    runner.shutdown()


def test_events_arrive_on_the_gui_thread_and_batches_are_coalesced(runner_and_recorder, qtbot):
    runner, recorder = runner_and_recorder
    started = time.monotonic()
    runner.start(RunConfig())
    qtbot.waitUntil(lambda: bool(recorder.results), timeout=30000)
    seconds = time.monotonic() - started
    assert recorder.threads == {threading.get_ident()}
    assert not runner.running

    batches = [e for e in recorder.events if isinstance(e, BatchEnd)]
    assert len(batches) < 1200  # 3 x 400 were emitted
    assert len(batches) <= 20 * seconds + 3 + 3  # ~18 a second, plus each epoch's last batch
    last_of_epochs = [(e.epoch, e.batch) for e in batches if e.batch == e.steps - 1]
    assert last_of_epochs == [(0, 399), (1, 399), (2, 399)]
    kinds = [type(e).__name__ for e in recorder.events if not isinstance(e, BatchEnd)]
    assert kinds == ["RunStarted", "EpochEnd", "EpochEnd", "EpochEnd", "Message"]
    assert isinstance(recorder.results[0], RunFinished) and not recorder.results[0].stopped


def test_stop_ends_the_run_and_another_can_start(runner_and_recorder, qtbot):
    runner, recorder = runner_and_recorder
    runner.start(RunConfig())
    qtbot.waitUntil(lambda: any(isinstance(e, BatchEnd) for e in recorder.events), timeout=10000)
    runner.stop()
    qtbot.waitUntil(lambda: bool(recorder.results), timeout=10000)
    assert recorder.results[0].stopped
    assert not runner.running

    runner.start(RunConfig())  # the thread of the first run is gone; a second one starts
    qtbot.waitUntil(lambda: len(recorder.results) == 2, timeout=30000)
    assert not recorder.results[1].stopped


def test_pause_holds_the_run_until_resume(runner_and_recorder, qtbot):
    runner, recorder = runner_and_recorder
    runner.start(RunConfig())
    qtbot.waitUntil(lambda: any(isinstance(e, BatchEnd) for e in recorder.events), timeout=10000)
    runner.pause()
    qtbot.wait(300)
    count = len(recorder.events)
    qtbot.wait(300)
    assert len(recorder.events) <= count + 1  # at most the batch that was pending
    runner.resume()
    qtbot.waitUntil(lambda: bool(recorder.results), timeout=30000)
    assert not recorder.results[0].stopped


def test_a_crash_in_the_core_becomes_run_failed(qapp, qtbot):
    def broken(config, emit, stop_event, **kwargs):
        raise ImportError("no module named workbench.core.model")

    runner = TaskRunner(fn=broken)
    recorder = Recorder()
    runner.finished.connect(recorder.on_finished)
    runner.start(RunConfig())
    qtbot.waitUntil(lambda: bool(recorder.results), timeout=10000)
    result = recorder.results[0]
    assert isinstance(result, RunFailed)
    assert "ImportError" in result.error and "Traceback" in result.details
    assert not runner.running


def test_shutdown_waits_for_the_thread(qapp, qtbot):
    runner = TaskRunner(fn=fake_run(epochs=100))
    runner.start(RunConfig())
    qtbot.wait(50)
    runner.shutdown()
    assert not runner.running
