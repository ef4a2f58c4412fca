"""Transfer in the GUI: the Transfer choice, two-phase fields and marker, the freeze map, and the comparison
of transfer with zero-init."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from ui_helpers import fake_run, tiny_config

from workbench.core.base.events import EpochEnd, Message, RunFinished
from workbench.core.config.run import load_config
from workbench.ui import main_window


def test_transfer_choice_keeps_zero_and_weights_none_in_step(make_window):
    window = make_window()
    panel = window.backbone_panel
    panel.set_value("backbone.weights", "imagenet")
    panel.transfer.setValue("zero")  # as a person picks it
    assert window.config.backbone.transfer == "zero" and window.config.backbone.weights == "none"
    assert "random weights" in panel.transfer_help.text()
    assert not panel.keep_blocks.isEnabled()

    panel.transfer.setValue("partial")
    assert window.config.backbone.weights != "none"
    assert panel.keep_blocks.isEnabled() and panel.rest.isEnabled()
    panel.keep_blocks.setValue(4)
    panel.rest.setValue("finetune")
    assert (window.config.backbone.keep_blocks, window.config.backbone.rest) == (4, "finetune")
    assert "first blocks" in panel.transfer_help.text()

    panel.weights.setValue("none")
    assert window.config.backbone.transfer == "zero"


def test_two_phase_fields_and_the_phase_marker(make_window):
    window = make_window()
    panel = window.training_panel
    assert not panel.phase1_epochs.isEnabled()
    panel.two_phase.setChecked(True)
    assert window.config.training.two_phase and panel.phase1_epochs.isEnabled()
    panel.phase1_epochs.setValue(2)
    assert window.config.training.phase1_epochs == 2

    window.plots.reset(4)
    window.plots.add_epoch(EpochEnd(epoch=0, logs={"loss": 1.0}))
    window._on_run_event(Message("info", "Phase 2", kind="phase", epoch=2))
    assert len(window.plots.markers) == 2 and window.plots.markers[0].value() == 2.0
    window.plots.reset(4)
    assert window.plots.markers == []


def test_partial_transfer_says_the_freeze_policy_is_not_used(make_window):
    window = make_window()
    window.backbone_panel.set_value("backbone.weights", "imagenet")
    window.backbone_panel.transfer.setValue("partial")
    hint = window.regularization_panel.freeze_hint
    assert not hint.isHidden() and "freeze policy is not used" in hint.text()


# ---- the freeze map, and comparing transfer with zero-init ------------------------------------

@pytest.fixture(scope="module")
def weights_file(tmp_path_factory) -> Path:
    """A saved MobileNetV2 x0.35 backbone (random but fixed weights): 'pretrained' weights for tiny configs."""
    import keras

    from workbench.core.engine import backbones
    from workbench.core.engine.weights import save_backbone_weights

    keras.utils.set_random_seed(1)
    path = tmp_path_factory.mktemp("weights") / "tiny.weights.h5"
    return save_backbone_weights(backbones.build_backbone("MobileNetV2", 32, 0.35), path)


def pretrained_config(folder: Path, weights: Path, epochs: int = 1):
    config = tiny_config(folder, epochs=epochs)
    config.backbone.weights = "file"
    config.backbone.weights_file = str(weights)
    return config


def test_ticking_a_block_in_the_freeze_map_makes_a_custom_policy_that_a_run_trains_exactly(
        make_window, qtbot, image_folder, weights_file, monkeypatch):
    from workbench.core.config.backbone_catalogue import get_backbone
    from workbench.core.engine.model import freeze_map
    from workbench.core.engine.saving import load_model

    monkeypatch.setattr(main_window, "READOUT_DELAY_MS", 50)
    config = pretrained_config(image_folder, weights_file)
    config.freeze.policy, config.freeze.blocks = "top_blocks", 1
    window = make_window(config)
    panel = window.regularization_panel
    dialog = panel.open_freeze_map()
    view = dialog.view
    assert view.status.text() == "Loading layers…" and view.tree.topLevelItemCount() == 0
    qtbot.waitUntil(lambda: view.map is not None, timeout=60_000)

    # The map shows the policy: the top block trains, its pretrained BatchNorm stays frozen (no check box).
    rows = view.map.rows
    assert [r.block for r in rows][:1] == ["stem"] and rows[-1].block == "top"
    assert view.checked_names() == ["Conv_1"] and "Conv_1_bn" in view.map.locked
    assert view.layer_item("Conv_1_bn").data(0, Qt.ItemDataRole.CheckStateRole) is None  # no box
    assert 0 < panel.freeze_bar.trainable_share() < 1 and panel.freeze_bar.rows == list(rows)
    assert "trainable: 1 layer" in view.legend.text()

    # Ticking a whole block adds its layers (less the locked BatchNorm) and makes the policy custom.
    view.set_block_checked("block 16", True)
    expected = [r.name for r in rows if r.block in ("block 16", "top") and r.name not in view.map.locked]
    qtbot.waitUntil(lambda: window.config.freeze.policy == "custom", timeout=5000)
    assert window.config.freeze.trainable_layers == expected
    assert panel.freeze_policy.value() == "custom"
    assert view.block_item("block 16").checkState(0) == Qt.CheckState.Checked
    assert view.status.text().startswith(f"MobileNetV2: {len(expected)} of {len(rows)} backbone layers trainable")
    # The live readout counts the same layers, plus the head's classifier.
    readout = panel.readout
    qtbot.waitUntil(lambda: readout.text().startswith(f"{len(expected) + 1} of "), timeout=60_000)
    assert view.readout.text().endswith(readout.text())

    # Unticking one layer takes it out of the list; unticking everything is the policy "all".
    view.layer_item(expected[0]).setCheckState(0, Qt.CheckState.Unchecked)
    qtbot.waitUntil(lambda: window.config.freeze.trainable_layers == expected[1:], timeout=5000)
    assert view.block_item("block 16").checkState(0) == Qt.CheckState.PartiallyChecked
    view.freeze_all()
    qtbot.waitUntil(lambda: window.config.freeze.policy == "all", timeout=5000)
    assert window.config.freeze.trainable_layers == []
    view.set_block_checked("block 16", True)
    view.set_block_checked("top", True)
    qtbot.waitUntil(lambda: window.config.freeze.trainable_layers == expected, timeout=5000)
    assert window.problems == []

    # A run of that config trains exactly those layers; no edits while it runs.
    with qtbot.waitSignal(window.run_ended, timeout=180_000) as ended:
        window.start_training()
        assert not panel.isEnabled() and not dialog.isEnabled()
    result = ended.args[0]
    assert isinstance(result, RunFinished), result
    saved = json.loads((Path(result.run_dir) / "config.json").read_text())
    assert saved["freeze"] == {**saved["freeze"], "policy": "custom", "trainable_layers": expected}
    model = load_model(Path(result.run_dir) / "model.keras", compile=False)
    trained = [r.name for r in freeze_map(model, get_backbone("MobileNetV2")) if r.trainable]
    assert trained == expected
    assert panel.isEnabled() and dialog.isEnabled()


def test_compare_trains_transfer_then_zero_init_and_overlays_both_runs(make_window, qtbot, image_folder,
                                                                       weights_file, tmp_path):
    window = make_window(pretrained_config(image_folder, weights_file), runs_dir=tmp_path / "runs")
    assert window.compare_button.isEnabled() and window.compare_action.isEnabled()
    with qtbot.waitSignal(window.comparison.finished, timeout=180_000) as done:
        window.compare_action.trigger()
        assert window.comparison.stage == 1 and not window.compare_button.isEnabled()
        assert window.compare_button.text() == "Comparing 1/2…"
    runs = done.args[0]
    assert len(runs) == 2
    first, second = (load_config(Path(r) / "config.json") for r in runs)
    assert (first.name, first.backbone.weights, first.backbone.transfer) == ("ui-test (transfer)", "file", "all")
    assert (second.name, second.backbone.weights, second.backbone.transfer) == ("ui-test (zero-init)", "none", "zero")
    assert Path(runs[0]).name.endswith("-transfer") and Path(runs[1]).name.endswith("-zero-init")
    assert all((Path(r) / "model.keras").is_file() for r in runs)

    panel = window.runs_panel
    assert window.views.currentWidget() is panel
    assert sorted(panel.selected_paths()) == sorted(runs)
    assert panel.curves.curve_count(kind="val") == 4  # loss and accuracy of each run, overlaid
    assert sorted(label.split(" · ")[0] for label, _ in panel.curves.legend_entries) == [
        "ui-test (transfer)", "ui-test (zero-init)"]
    assert all(Path(r).name in panel.curves.legend.text() for r in runs)  # name · id: two runs always differ
    assert window.config.name == "ui-test" and window.config.backbone.weights == "file"  # the editor's config
    assert window.compare_button.isEnabled() and window.compare_button.text() == "Compare with zero-init"


def test_stop_ends_the_comparison_during_either_run(make_window, qtbot, image_folder, tmp_path):
    weights = tmp_path / "w.weights.h5"
    weights.write_bytes(b"")  # never read: the runs are stand-ins
    plan, names = [], []

    def run_fn(config, emit, stop_event, **kwargs):
        names.append((config.name, config.backbone.transfer))
        return plan.pop(0)(config, emit, stop_event, **kwargs)

    slow = fake_run(epochs=100, steps=100, delay=0.002)
    window = make_window(pretrained_config(image_folder, weights), run_fn=run_fn)

    plan[:] = [slow]  # stopped during the first run: the second never starts
    with qtbot.waitSignal(window.comparison.finished, timeout=20_000) as done:
        window.start_comparison()
        qtbot.wait(50)
        window.stop_training()
    assert done.args[0] == ["/tmp/r"] and names == [("ui-test (transfer)", "all")]
    assert not window.runner.running and not window.comparison.active and window.compare_button.isEnabled()

    names.clear()
    plan[:] = [fake_run(epochs=1, steps=3), slow]  # stopped during the second
    with qtbot.waitSignal(window.comparison.finished, timeout=20_000) as done:
        window.start_comparison()
        qtbot.waitUntil(lambda: window.comparison.stage == 2 and window.runner.running, timeout=10_000)
        assert window.compare_button.text() == "Comparing 2/2…"
        window.stop_button.click()
    assert len(done.args[0]) == 2 and names == [("ui-test (transfer)", "all"), ("ui-test (zero-init)", "zero")]
    assert not window.runner.running and not plan

    window.backbone_panel.set_value("backbone.weights", "none")  # nothing pretrained to compare
    assert not window.compare_button.isEnabled() and "random weights" in window.compare_button.toolTip()
