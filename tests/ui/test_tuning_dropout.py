"""The Dropout lab's sweep, now the Tuning tab's dropout-rate preset; and the Regularization
panel's explanation of each dropout kind and its DropBlock ramp."""

from __future__ import annotations

from PySide6.QtCore import Qt
from ui_helpers import tiny_config

from workbench.ui.panels.regularization import DROPOUT_HELP


def dropout_config(folder):
    config = tiny_config(folder, epochs=1)
    config.dropout.kind, config.dropout.rate = "dropout", 0.25
    return config


def test_the_preset_fills_a_grid_over_rates_kinds_and_folds(make_window, image_folder, qtbot):
    window = make_window(dropout_config(image_folder))
    panel, form = window.tuning, window.tuning.form
    assert [k for k, box in form.preset_kinds.items() if box.isChecked()] == ["dropout"]  # the config's kind
    form.preset_rates.setText("0.1, 0.5")
    form.preset_kinds["gaussian"].setChecked(True)
    form.preset_folds.setValue(3)
    form.name_edit.setText("kept")
    qtbot.mouseClick(form.preset_button, Qt.MouseButton.LeftButton)

    assert form.searched() == ["dropout_rate", "dropout_kind"]
    assert form.range_edits["dropout_rate"].text() == "0.1, 0.5"
    assert form.range_edits["dropout_kind"].text() == "dropout, gaussian"
    assert (form.sampler_combo.value(), form.trials_spin.value(), form.folds_spin.value()) == ("grid", 4, 3)
    assert not form.pruner_check.isChecked() and form.name_edit.text() == "kept"
    tune, typed = form.read()
    assert not typed and tune.search["dropout_rate"].choices == [0.1, 0.5] and tune.folds == 3
    assert not panel.problems and panel.start_button.isEnabled()

    form.preset_kinds["dropout"].setChecked(False)  # the config's own kind only: no kind to search
    form.preset_kinds["gaussian"].setChecked(False)
    form.use_dropout_preset()
    assert form.searched() == ["dropout_rate"] and form.trials_spin.value() == 2


def test_bad_rates_and_a_kind_the_config_cannot_take_are_marked_and_block_the_study(make_window, image_folder):
    window = make_window(dropout_config(image_folder))
    panel, form = window.tuning, window.tuning.form
    form.preset_rates.setText("0.1, 1.5")
    assert not form.preset_button.isEnabled()
    assert form.preset_rates.property("problem") and "below 1" in form.preset_rates.toolTip()
    assert not form.use_dropout_preset()
    form.preset_rates.setText("0.1")
    assert form.preset_button.isEnabled()
    form.preset_kinds["dropout"].setChecked(False)
    form.preset_kinds["spatial"].setChecked(True)  # needs the feature-map placement, which the config lacks
    assert form.use_dropout_preset()
    assert not panel.start_button.isEnabled() and not panel.start_study() and not panel.running
    assert "feature_map" in panel.problem_label.text()


def test_each_dropout_kind_is_explained_and_the_ramp_is_for_dropblock_only(make_window, image_folder):
    window = make_window(dropout_config(image_folder))
    panel = window.regularization_panel
    assert panel.kind_help.text() == DROPOUT_HELP["dropout"]
    assert not panel.ramp_epochs.isEnabled()
    for index in range(panel.dropout_kind.count()):
        kind = panel.dropout_kind.itemData(index)
        assert panel.dropout_kind.itemData(index, Qt.ItemDataRole.ToolTipRole) == DROPOUT_HELP[kind]
    assert window.tuning.form.preset_kinds["dropblock"].toolTip().endswith(DROPOUT_HELP["dropblock"])
    panel.dropout_kind.setValue("dropblock")
    assert window.config.dropout.kind == "dropblock"
    assert panel.kind_help.text() == DROPOUT_HELP["dropblock"] and panel.ramp_epochs.isEnabled()
    panel.ramp_epochs.setValue(3)
    assert window.config.dropout.ramp_epochs == 3
