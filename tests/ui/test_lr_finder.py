"""The learning-rate finder from the Training panel: Find…, the live plot, the suggestion and Use."""

from __future__ import annotations

from pathlib import Path

from ui_helpers import tiny_config

from workbench.core.train.lr_find import find_lr
from workbench.ui import lr_finder
from workbench.ui.lr_finder import LrFinderDialog
from workbench.ui.panels.training import TrainingPanel

BUNDLED = Path(__file__).resolve().parents[2] / "resources" / "backbones" / "mobilenetv2-0.35-64px-fashion6.weights.h5"


def test_find_runs_the_test_in_a_child_process_and_use_writes_the_rate(qtbot, tmp_path, monkeypatch):
    from ui_helpers import write_image_folder

    config = tiny_config(write_image_folder(tmp_path / "data"))
    config.backbone.weights, config.backbone.weights_file = "file", str(BUNDLED)
    config.training.batch_size = 4
    panel = TrainingPanel(config)
    qtbot.addWidget(panel)
    edited = []
    panel.edited.connect(edited.append)
    monkeypatch.setattr(lr_finder, "STEPS", 12)

    qtbot.mouseClick(panel.find_lr_button, lr_finder.Qt.MouseButton.LeftButton)
    dialog = panel.lr_finder
    assert dialog is not None and dialog.isVisible() and dialog.runner.running
    assert not dialog.use_button.isEnabled()
    qtbot.waitUntil(lambda: dialog.result is not None, timeout=240_000)

    result = dialog.result
    assert not hasattr(result, "error"), getattr(result, "details", result)
    assert len(dialog.rates) == len(result.losses) >= 3 and dialog.rates == sorted(dialog.rates)
    x, _ = dialog.smooth_curve.getData()
    assert len(x) == len(dialog.rates)
    assert dialog.suggestion > 0 and dialog.marker.isVisible() and "Suggested learning rate" in dialog.status.text()
    assert dialog.use_button.isEnabled() and not dialog.runner.running

    dialog.use_button.click()
    rate = float(f"{dialog.suggestion:.3g}")
    assert config.training.learning_rate == rate and panel.learning_rate.value() == rate
    assert "training.learning_rate" in edited and not dialog.isVisible()


def test_a_config_that_cannot_run_shows_why_and_offers_nothing_to_use(qtbot, tmp_path):
    config = tiny_config(tmp_path / "missing")
    dialog = LrFinderDialog(config, fn=find_lr)  # the real function, on the runner's thread: it refuses at once
    qtbot.addWidget(dialog)
    assert dialog.start()
    qtbot.waitUntil(lambda: dialog.result is not None, timeout=30_000)
    assert "configuration has problems" in dialog.status.text() and "folder not found" in dialog.status.text()
    assert not dialog.use_button.isEnabled() and dialog.start_button.isEnabled()
    assert dialog.start_button.text() == "Run again"
