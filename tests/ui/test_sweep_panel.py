"""The Dropout lab tab: a real 2-rate sweep from the window, its curves and table, Apply best;
and the Regularization panel's explanation of each dropout kind and its DropBlock ramp."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from ui_helpers import tiny_config

from workbench.core.runs.sweeps import SweepResult
from workbench.ui.panels.regularization import DROPOUT_HELP

SWEEP_TIMEOUT_MS = 180_000  # the first run in a process imports TensorFlow


def vgg_config(folder):
    """VGG16 at 32 px from random weights: about 2 s a trial, and its features are not ~0 as MobileNets' are."""
    config = tiny_config(folder, epochs=1)
    config.backbone.name, config.backbone.width = "VGG16", 1.0
    config.dropout.kind, config.dropout.rate = "dropout", 0.25
    return config


def test_a_sweep_from_the_window_draws_curves_fills_the_table_and_applies_the_best(make_window, qtbot, image_folder):
    window = make_window(vgg_config(image_folder))
    window.show()
    lab = window.dropout_lab
    window.views.setCurrentWidget(lab)
    lab.rates_edit.setText("0.1, 0.5")
    assert [k for k, box in lab.kind_boxes.items() if box.isChecked()] == ["dropout"]  # the config's kind
    assert not lab.apply_button.isEnabled()

    with qtbot.waitSignal(lab.sweep_ended, timeout=SWEEP_TIMEOUT_MS) as ended:
        qtbot.mouseClick(lab.run_button, Qt.MouseButton.LeftButton)
        assert lab.running and not window.train_button.isEnabled() and lab.stop_button.isEnabled()
    result = ended.args[0]
    assert isinstance(result, SweepResult) and len(result.trials) == 2, result
    assert not lab.running and window.train_button.isEnabled()

    rows = lab.table_rows()
    assert [row[:3] for row in rows] == [["Standard", "0.1", "1"], ["Standard", "0.5", "1"]]  # as the control says
    ticks = lab.plot.getPlotItem().getAxis("bottom")._tickLevels[0]
    assert all(float(value).is_integer() for value, _ in ticks)  # whole epochs on the axis
    assert all("±" in row[3] and "±" in row[4] for row in rows)
    assert lab.curve_points() == {0: 1, 1: 1}  # one epoch each, one curve per trial
    assert "Sweep folder" in window.log.text()

    best = result.best()
    assert lab.apply_button.isEnabled()
    qtbot.mouseClick(lab.apply_button, Qt.MouseButton.LeftButton)
    assert (window.config.dropout.kind, window.config.dropout.rate) == ("dropout", best.rate)
    assert window.regularization_panel.dropout_rate.text() == f"{best.rate:g}"
    assert "dropout dropout" not in window.log.text() and "standard dropout at rate" in window.log.text()
    assert not window.problems
    for trial in result.trials:  # VGG16's model files are ~60 MB each
        (Path(trial.run_dir) / "model.keras").unlink()


def test_bad_rates_are_marked_and_block_the_sweep(make_window, image_folder):
    window = make_window(vgg_config(image_folder))
    lab = window.dropout_lab
    lab.rates_edit.setText("0.1, 1.5")
    assert not lab.run_button.isEnabled()
    assert lab.rates_edit.property("problem") and "below 1" in lab.rates_edit.toolTip()
    lab.rates_edit.setText("0.1")
    lab.kind_boxes["dropout"].setChecked(False)
    lab.kind_boxes["spatial"].setChecked(True)  # needs the feature-map placement, which the config lacks
    assert lab.run_button.isEnabled()
    assert not lab.start_sweep() and not lab.running
    assert "feature_map" in lab.problem_label.text()


def test_each_dropout_kind_is_explained_and_the_ramp_is_for_dropblock_only(make_window, image_folder):
    window = make_window(vgg_config(image_folder))
    panel = window.regularization_panel
    assert panel.kind_help.text() == DROPOUT_HELP["dropout"]
    assert not panel.ramp_epochs.isEnabled()
    for index in range(panel.dropout_kind.count()):
        kind = panel.dropout_kind.itemData(index)
        assert panel.dropout_kind.itemData(index, Qt.ItemDataRole.ToolTipRole) == DROPOUT_HELP[kind]
    panel.dropout_kind.setValue("dropblock")
    assert window.config.dropout.kind == "dropblock"
    assert panel.kind_help.text() == DROPOUT_HELP["dropblock"] and panel.ramp_epochs.isEnabled()
    panel.ramp_epochs.setValue(3)
    assert window.config.dropout.ramp_epochs == 3
