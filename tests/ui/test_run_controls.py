"""Train, Pause/Resume and Stop in the window, with a stand-in for the core (fast, no TensorFlow)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from ui_helpers import fake_run

from workbench.core.base.events import RunFinished


def test_pause_resume_and_stop_buttons(make_window, qtbot):
    window = make_window(run_fn=fake_run(epochs=50, steps=200, delay=0.002))
    window.show()
    qtbot.mouseClick(window.train_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.plots.batch_points() >= 3, timeout=10_000)
    assert window.progress.batch_bar.value() >= 1
    assert "Elapsed" in window.progress.time_label.text()
    assert not window.open_config_action.isEnabled()

    qtbot.mouseClick(window.pause_button, Qt.MouseButton.LeftButton)
    assert window.runner.paused and window.pause_button.text() == "Resume"
    assert window.progress.time_label.text() == "Paused"
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
