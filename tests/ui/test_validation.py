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
