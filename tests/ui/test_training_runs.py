"""Real (tiny) training runs driven through the window: Train, live curves, Stop, close, failure."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox
from ui_helpers import tiny_config

from workbench.core.base.events import RunFailed, RunFinished

RUN_TIMEOUT_MS = 180_000  # first run in a process imports TensorFlow and traces the model


def test_train_shows_curves_then_stop_keeps_the_run(make_window, qtbot, image_folder):
    window = make_window(tiny_config(image_folder, epochs=40))
    window.show()
    assert window.train_button.isEnabled()
    qtbot.mouseClick(window.train_button, Qt.MouseButton.LeftButton)
    assert window.runner.running
    assert not window.train_button.isEnabled() and window.stop_button.isEnabled()
    assert not window.training_panel.isEnabled()  # no config edits during a run

    qtbot.waitUntil(lambda: window.plots.epoch_points() >= 1, timeout=RUN_TIMEOUT_MS)
    assert window.plots.batch_points() >= 1
    assert "Epoch 1/40" in window.log.text()
    assert "of" in window.regularization_panel.readout.text()  # counts from RunStarted

    qtbot.mouseClick(window.stop_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(window.run_ended, timeout=60_000) as ended:
        pass
    result = ended.args[0]
    assert isinstance(result, RunFinished) and result.stopped, result
    assert result.epochs_done < 40
    assert not window.runner.running
    assert window.train_button.isEnabled() and window.training_panel.isEnabled()

    run_dir = Path(result.run_dir)
    assert run_dir.parent == Path(os.environ["WORKBENCH_RUNS_DIR"])
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["data"]["folder"] == str(image_folder)
    assert saved["training"]["epochs"] == 40


def test_closing_mid_run_asks_then_stops_and_ends_the_thread(make_window, qtbot, image_folder, monkeypatch):
    answers = [QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes]
    asked = []

    def answer(*args, **kwargs):
        asked.append(args)
        return answers[len(asked) - 1]

    monkeypatch.setattr(QMessageBox, "question", answer)
    window = make_window(tiny_config(image_folder, epochs=200))
    window.show()
    qtbot.mouseClick(window.train_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.plots.batch_points() >= 1, timeout=RUN_TIMEOUT_MS)

    window.close()  # answered No: nothing changes
    assert len(asked) == 1
    assert window.isVisible() and window.runner.running and not window.runner.stopping

    window.close()  # answered Yes: the run stops, then the window closes by itself
    assert len(asked) == 2
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=60_000)
    assert not window.runner.running
    assert isinstance(window.last_result, RunFinished) and window.last_result.stopped


@pytest.fixture
def garbage_weights(tmp_path) -> Path:
    path = tmp_path / "garbage.weights.h5"
    path.write_bytes(b"this is not an HDF5 file" * 100)
    return path


def test_a_failing_run_shows_the_error_and_the_app_stays_usable(make_window, qtbot, image_folder, garbage_weights):
    config = tiny_config(image_folder, epochs=2)
    config.backbone.weights = "file"
    config.backbone.weights_file = str(garbage_weights)
    window = make_window(config)
    window.show()
    assert window.train_button.isEnabled()
    with qtbot.waitSignal(window.run_ended, timeout=RUN_TIMEOUT_MS) as ended:
        qtbot.mouseClick(window.train_button, Qt.MouseButton.LeftButton)
    assert isinstance(ended.args[0], RunFailed)

    box = window.error_box
    assert box is not None and box.isVisible()
    assert box.icon() == QMessageBox.Icon.Critical
    assert "garbage.weights.h5" in box.text() + box.detailedText()
    box.button(QMessageBox.StandardButton.Ok).click()
    qtbot.waitUntil(lambda: not box.isVisible(), timeout=5000)

    # Still usable: the controls are back and a fixed config validates and can train again.
    assert not window.runner.running
    assert window.train_button.isEnabled() and window.backbone_panel.isEnabled()
    window.backbone_panel.weights.buttons["none"].setChecked(True)
    assert window.config.backbone.weights == "none"
    assert window.train_button.isEnabled()


def test_a_training_process_that_dies_mid_run_shows_why_and_the_app_trains_again(make_window, qtbot, image_folder):
    """Runs train in a child process: a crash or an out-of-memory kill there must not take the window."""
    window = make_window(tiny_config(image_folder, epochs=40))
    window.show()
    qtbot.mouseClick(window.train_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.plots.epoch_points() >= 1, timeout=RUN_TIMEOUT_MS)
    # The training child, not the model worker (which loads models for evaluation and the layer count).
    children = [c for c in multiprocessing.active_children() if c.name == "workbench-run"]
    assert len(children) == 1 and children[0].pid != os.getpid()
    with qtbot.waitSignal(window.run_ended, timeout=60_000) as ended:
        os.kill(children[0].pid, signal.SIGKILL)
    result = ended.args[0]
    assert isinstance(result, RunFailed) and "SIGKILL" in result.error, result

    box = window.error_box
    assert box is not None and box.isVisible() and "killed by SIGKILL" in box.text()
    assert Path(result.run_dir).is_dir() and (Path(result.run_dir) / "config.json").is_file()
    box.button(QMessageBox.StandardButton.Ok).click()
    assert not window.runner.running and window.train_button.isEnabled()

    with qtbot.waitSignal(window.run_ended, timeout=RUN_TIMEOUT_MS) as again:
        window.config.training.epochs = 1
        qtbot.mouseClick(window.train_button, Qt.MouseButton.LeftButton)
    assert isinstance(again.args[0], RunFinished) and not again.args[0].stopped
