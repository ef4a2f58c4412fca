"""Bad input is shown at its field, and Train stays disabled until every problem is fixed."""

from __future__ import annotations

from PySide6.QtCore import Qt


def test_invalid_dropout_rate_marks_the_field_and_disables_train(make_window, qtbot):
    window = make_window()
    window.show()
    rate = window.regularization_panel.dropout_rate
    assert window.train_button.isEnabled()

    rate.selectAll()
    qtbot.keyClicks(rate, "1.5")
    assert window.config.dropout.rate == 1.5
    assert rate.property("problem") is True
    assert "below 1" in rate.toolTip()
    assert not window.train_button.isEnabled()
    assert "Dropout rate" in window.problem_label.text()
    regularization_tab = window.panels.index(window.regularization_panel)
    assert not window.tabs.tabIcon(regularization_tab).isNull()

    rate.selectAll()
    qtbot.keyClicks(rate, "0.3")
    assert rate.property("problem") is False
    assert window.train_button.isEnabled()
    assert window.tabs.tabIcon(regularization_tab).isNull()


def test_text_that_is_not_a_number_is_a_problem(make_window, qtbot):
    window = make_window()
    field = window.training_panel.learning_rate
    before = window.config.training.learning_rate
    field.selectAll()
    qtbot.keyClicks(field, "fast")
    assert field.property("problem") is True
    assert "enter a number" in field.toolTip()
    assert window.config.training.learning_rate == before  # the config keeps its last good value
    assert not window.train_button.isEnabled()
    field.selectAll()
    qtbot.keyClicks(field, "1e-4")
    assert window.config.training.learning_rate == 1e-4
    assert window.train_button.isEnabled()


def test_problems_between_fields_are_shown(make_window, qtbot):
    window = make_window()
    window.regularization_panel.dropout_kind.setValue("spatial")  # needs the feature_map placement
    placement = window.regularization_panel.placement
    assert placement.property("problem") is True
    assert not window.train_button.isEnabled()
    placement.boxes["feature_map"].setChecked(True)
    assert placement.property("problem") is False
    assert window.train_button.isEnabled()


def test_clicking_a_disabled_train_button_starts_nothing(make_window, qtbot):
    window = make_window()
    window.training_panel.epochs.setValue(0)
    assert window.training_panel.epochs.property("problem") is True
    qtbot.mouseClick(window.train_button, Qt.MouseButton.LeftButton)
    assert not window.runner.running


def test_learning_rate_says_what_is_wrong_and_warns_when_high(make_window, qtbot):
    """100 is refused with a reason about the value; 0.5 runs with a warning beside the field."""
    from workbench.ui.fields import reason_label

    window = make_window()
    window.show()
    field = window.training_panel.learning_rate
    field.selectAll()
    qtbot.keyClicks(field, "100")
    assert field.property("problem") is True
    label = reason_label(field)
    assert label is not None and not label.isHidden()
    assert "100 is far too large" in label.text()  # beside the field, not only in the tooltip
    assert not window.train_button.isEnabled()

    field.selectAll()
    qtbot.keyClicks(field, "0.5")
    assert field.property("problem") is False
    assert window.train_button.isEnabled()  # a warning does not block
    assert not label.isHidden() and "very high" in label.text() and label.property("kind") == "warning"

    field.selectAll()
    qtbot.keyClicks(field, "1e-3")
    assert label.isHidden()


def test_the_mouse_wheel_over_an_unfocused_spin_box_leaves_its_value(make_window, qtbot):
    from PySide6.QtCore import QPoint, QPointF
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    window = make_window()
    window.show()
    window.tabs.setCurrentWidget(window.training_panel)
    seed = window.training_panel.seed
    before = seed.value()

    def wheel() -> None:
        centre = QPointF(seed.rect().center())
        event = QWheelEvent(centre, QPointF(seed.mapToGlobal(seed.rect().center())), QPoint(0, 0),
                            QPoint(0, 120), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                            Qt.ScrollPhase.NoScrollPhase, False)
        QApplication.sendEvent(seed, event)

    wheel()
    assert seed.value() == before  # not focused: the panel scrolls, the seed stays
    assert seed.focusPolicy() == Qt.FocusPolicy.StrongFocus  # and the wheel does not focus it
    seed.hasFocus = lambda: True  # focused (offscreen windows get no real focus)
    wheel()
    assert seed.value() == before + 1


def test_test_split_class_weights_and_schedule_fields_are_bound_and_checked(make_window, qtbot):
    window = make_window()
    window.show()
    data, training = window.data_panel, window.training_panel

    data.test_split.selectAll()
    qtbot.keyClicks(data.test_split, "0.9")  # with the validation split of 0.2: nothing left to train on
    assert window.config.data.test_split == 0.9
    assert data.test_split.property("problem") is True and "below 1" in data.test_split.toolTip()
    assert not window.train_button.isEnabled()
    data.test_split.selectAll()
    qtbot.keyClicks(data.test_split, "0.1")
    assert data.test_split.property("problem") is False and window.train_button.isEnabled()

    assert not training.manual_class_weights.isEnabled()
    training.class_weights.setCurrentIndex(training.class_weights.findData("manual"))
    assert window.config.training.class_weights == "manual" and training.manual_class_weights.isEnabled()
    assert training.manual_class_weights.property("problem") is True  # manual, but no weights yet
    qtbot.keyClicks(training.manual_class_weights, "circle=3, square")
    assert "is not class=weight" in training.manual_class_weights.toolTip()
    qtbot.keyClicks(training.manual_class_weights, "=0.5")
    assert window.config.training.manual_class_weights == {"circle": 3.0, "square": 0.5}

    assert not training.warmup_epochs.isEnabled()
    training.lr_schedule.setCurrentIndex(training.lr_schedule.findData("cosine"))
    assert training.warmup_epochs.isEnabled() and not training.plateau_factor.isEnabled()
    training.warmup_epochs.setValue(window.config.training.epochs)
    assert training.warmup_epochs.property("problem") is True and "shorter than the run" in training.warmup_epochs.toolTip()
