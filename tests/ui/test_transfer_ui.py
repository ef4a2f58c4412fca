"""The Transfer choice on the Backbone panel, the two-phase fields, and the phase marker on the plots."""

from __future__ import annotations

from workbench.core.events import EpochEnd, Message


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
