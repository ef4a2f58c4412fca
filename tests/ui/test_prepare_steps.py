"""While a run prepares (scan, build, first traced step), the progress text says which step it is on."""

from __future__ import annotations

import threading

from PySide6.QtCore import Qt

from workbench.core.base.events import BatchEnd, Message, RunFinished, RunStarted


def test_the_progress_text_shows_the_latest_prepare_step_until_the_first_batch(make_window, qtbot):
    gate = threading.Event()

    def scripted(config, emit, stop_event, *, pause_event=None, runs_dir=None):
        emit(Message("info", "Scanning /data", kind="prepare"))
        emit(Message("info", "Building MobileNetV2 with ImageNet weights", kind="prepare"))
        emit(Message("info", "a plain log line"))  # not a step: the progress text keeps the last step
        gate.wait(10)
        emit(RunStarted("r", "/tmp/r", 1, 2, ("a", "b"), 10, 2, 10, 2, 100, 50))
        emit(BatchEnd(0, 0, 2, {"loss": 1.0, "accuracy": 0.5}))
        result = RunFinished("/tmp/r", False, 1)
        emit(result)
        return result

    window = make_window(run_fn=scripted)
    qtbot.mouseClick(window.train_button, Qt.MouseButton.LeftButton)
    label = window.progress.time_label
    qtbot.waitUntil(lambda: "a plain log line" in window.log.text(), timeout=10_000)
    assert label.text() == "Building MobileNetV2 with ImageNet weights…"
    assert window.log.text().index("Scanning /data") < window.log.text().index("Building MobileNetV2")
    with qtbot.waitSignal(window.run_ended, timeout=10_000):
        gate.set()
    assert "Building" not in label.text()  # the first batch replaced it with the time
