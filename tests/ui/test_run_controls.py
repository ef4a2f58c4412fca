"""Train, Pause/Resume and Stop in the window, with a stand-in for the core (fast, no TensorFlow)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from ui_helpers import fake_run

from workbench.core.base.events import RunFinished


def test_pause_resume_and_stop_buttons(make_window, qtbot):
    window = make_window(run_fn=fake_run(epochs=50, steps=200, delay=0.002))
    window.show()
    qtbot.mouseClick(window.train_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.runner.running, timeout=10_000)
    qtbot.waitUntil(lambda: window.plots.batch_points() >= 3, timeout=30_000)
    assert window.progress.batch_bar.value() >= 1
    assert "Elapsed" in window.progress.time_label.text()
    assert not window.open_config_action.isEnabled()

    qtbot.mouseClick(window.pause_button, Qt.MouseButton.LeftButton)
    assert window.runner.paused and window.pause_button.text() == "Resume"
    assert window.progress.time_label.text() == "Pausing after this batch…"  # a batch may still run
    qtbot.waitUntil(lambda: window.progress.time_label.text() == "Paused", timeout=5000)
    qtbot.mouseClick(window.pause_button, Qt.MouseButton.LeftButton)
    assert not window.runner.paused and window.pause_button.text() == "Pause"

    with qtbot.waitSignal(window.run_ended, timeout=10_000) as ended:
        qtbot.mouseClick(window.stop_button, Qt.MouseButton.LeftButton)
        assert not window.stop_button.isEnabled()  # pressed once is enough
    assert isinstance(ended.args[0], RunFinished) and ended.args[0].stopped
    assert window.train_button.isEnabled() and window.open_config_action.isEnabled()
    assert "Stopped" in window.log.text()


def test_epoch_lines_and_curves_from_events(make_window, qtbot):
    window = make_window(run_fn=fake_run(epochs=2, steps=30, delay=0.001))
    with qtbot.waitSignal(window.run_ended, timeout=20_000):
        qtbot.mouseClick(window.train_button, Qt.MouseButton.LeftButton)
    window.plots.redraw_now()
    assert window.plots.epoch_points() == 2
    assert "Epoch 2/" in window.log.text() and "val_accuracy 0.5000" in window.log.text()
    assert window.progress.epoch_bar.value() == 2


def test_time_left_follows_recent_epochs_not_the_first_nor_pauses(qtbot, monkeypatch):
    """A slow first epoch (compiling, caching) and a pause do not inflate the estimate."""
    from workbench.ui import progress as progress_module
    from workbench.ui.progress import RunProgress

    clock = [0.0]
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: clock[0])
    progress = RunProgress()
    qtbot.addWidget(progress)
    progress.preparing(20)
    progress.started(20, 10)

    def epoch(index: int, seconds: float) -> None:
        for batch in range(10):
            clock[0] += seconds / 10
            progress.on_batch(index, batch, 10)
        progress.on_epoch(index, seconds)

    epoch(0, 600.0)  # the slow first epoch
    assert progress.remaining_seconds(clock[0], 1.0) is None  # no guess from the first epoch alone
    progress.set_paused(True)
    assert progress.time_label.text() == "Pausing after this batch…"
    progress.confirm_paused()
    assert progress.time_label.text() == "Paused"
    clock[0] += 300.0  # paused for five minutes
    progress.set_paused(False)
    epoch(1, 4.0)
    epoch(2, 4.0)
    left = progress.remaining_seconds(clock[0], 3.0)
    assert abs(left - 17 * 4.0) < 1e-6
    assert "about 1:08 left" in progress.time_label.text()
