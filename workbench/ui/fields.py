"""Input widgets that each edit one config field, and the red mark that shows a problem on one.

Every widget here offers the same small protocol: `value()` (raises InputError for
text that is not a value yet), `setValue(v)` and a `valueChanged` signal. Numbers
are typed into line edits rather than spin boxes where a spin box would silently
clamp or round (a learning rate of 1e-5, a rate of 1.5): `config.validate` then
says what is wrong, next to the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QSize, Qt, Signal, Slot
from PySide6.QtGui import QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QAbstractSpinBox,
    QApplication,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)


class InputError(ValueError):
    """Text in a field that is not a value (yet); the message is shown at the field."""


def format_float(value: float) -> str:
    return f"{value:g}"


class FloatEdit(QLineEdit):
    """A number typed as text: accepts 0.001, 1e-3 and values outside the valid range."""

    valueChanged = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setMaximumWidth(120)
        self.textChanged.connect(self.valueChanged)

    def value(self) -> float:
        text = self.text().strip().replace(",", ".")
        try:
            return float(text)
        except ValueError:
            raise InputError("enter a number, e.g. 0.2 or 1e-3") from None

    def setValue(self, value: float) -> None:
        self.setText(format_float(value))


class IntListEdit(QLineEdit):
    """Whole numbers separated by commas ("256, 128"); empty means none."""

    valueChanged = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.textChanged.connect(self.valueChanged)

    def value(self) -> list[int]:
        parts = [p.strip() for p in self.text().replace(";", ",").split(",")]
        try:
            return [int(p) for p in parts if p]
        except ValueError:
            raise InputError("enter whole numbers separated by commas, e.g. 256, 128 (or leave empty)") from None

    def setValue(self, value: Sequence[int]) -> None:
        self.setText(", ".join(str(v) for v in value))


class PathEdit(QWidget):
    """A path typed or chosen with Browse… (a folder, or a file with `file_filter`)."""

    valueChanged = Signal()

    def __init__(self, *, folder: bool, file_filter: str = "", caption: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self._folder, self._filter, self._caption = folder, file_filter, caption
        self.line_edit = QLineEdit()
        self.line_edit.setPlaceholderText("choose a folder…" if folder else "choose a file…")
        self.line_edit.setClearButtonEnabled(True)
        self.browse_button = QPushButton("Browse…")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.line_edit, 1)
        layout.addWidget(self.browse_button)
        self.line_edit.textChanged.connect(self.valueChanged)
        self.browse_button.clicked.connect(self.browse)

    def value(self) -> str:
        return self.line_edit.text().strip()

    def setValue(self, value: str) -> None:
        self.line_edit.setText(value)

    def mark_target(self) -> QWidget:
        return self.line_edit

    @Slot()
    def browse(self) -> None:
        start = self.value() or str(Path.home())
        if self._folder:
            chosen = QFileDialog.getExistingDirectory(self, self._caption or "Choose a folder", start)
        else:
            chosen, _ = QFileDialog.getOpenFileName(self, self._caption or "Choose a file", start, self._filter)
        if chosen:
            self.setValue(chosen)


class ChoiceCombo(QComboBox):
    """A drop-down of (value, label) choices; value() is the config value, not the label."""

    valueChanged = Signal()

    def __init__(self, choices: Sequence[tuple[object, str]], parent: QWidget | None = None):
        super().__init__(parent)
        # As narrow as the dock needs: a long choice is elided in the closed box, whole in the list.
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(10)
        self.set_choices(choices)
        self.currentIndexChanged.connect(self.valueChanged)

    def set_choices(self, choices: Sequence[tuple[object, str]]) -> None:
        blocked = self.blockSignals(True)
        current = self.currentData()
        self.clear()
        for value, label in choices:
            self.addItem(label, value)
            self.setItemData(self.count() - 1, label, Qt.ItemDataRole.ToolTipRole)
        if current is not None and self.findData(current) >= 0:
            self.setCurrentIndex(self.findData(current))
        self.blockSignals(blocked)

    def value(self) -> object:
        return self.currentData()

    def setValue(self, value: object) -> None:
        index = self.findData(value)
        if index < 0:  # a value the config holds but the list lacks (a hand-edited file): show it
            self.addItem(str(value), value)
            index = self.count() - 1
        self.setCurrentIndex(index)


class CheckGroup(QFrame):
    """Several check boxes that together make a list of the checked values."""

    valueChanged = Signal()

    def __init__(self, choices: Sequence[tuple[str, str]], parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("fieldFrame")
        self.boxes: dict[str, QCheckBox] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.setSpacing(2)
        for value, label in choices:
            box = QCheckBox(label)
            box.toggled.connect(self.valueChanged)
            self.boxes[value] = box
            layout.addWidget(box)

    def value(self) -> list[str]:
        return [v for v, box in self.boxes.items() if box.isChecked()]

    def setValue(self, value: Sequence[str]) -> None:
        for v, box in self.boxes.items():
            box.setChecked(v in value)


class RadioGroup(QFrame):
    """Radio buttons for (value, label) choices."""

    valueChanged = Signal()

    def __init__(self, choices: Sequence[tuple[str, str]], parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("fieldFrame")
        self.buttons: dict[str, QRadioButton] = {}
        self._group = QButtonGroup(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.setSpacing(2)
        for value, label in choices:
            button = QRadioButton(label)
            self._group.addButton(button)
            self.buttons[value] = button
            layout.addWidget(button)
        self._group.buttonToggled.connect(self._toggled)

    @Slot(QRadioButton, bool)
    def _toggled(self, _button: QRadioButton, checked: bool) -> None:
        if checked:
            self.valueChanged.emit()

    def value(self) -> str:
        for v, button in self.buttons.items():
            if button.isChecked():
                return v
        return ""

    def setValue(self, value: str) -> None:
        if value in self.buttons:
            self.buttons[value].setChecked(True)


class ToggleAmount(QWidget):
    """A check box that switches an amount on (the spin box) or off (0)."""

    valueChanged = Signal()

    def __init__(self, label: str, default: float = 0.1, parent: QWidget | None = None):
        super().__init__(parent)
        self.check = QCheckBox(label)
        self.amount = QDoubleSpinBox()
        self.amount.setRange(0.01, 0.99)
        self.amount.setSingleStep(0.05)
        self.amount.setDecimals(2)
        self.amount.setValue(default)
        self.amount.setEnabled(False)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.check, 1)
        layout.addWidget(self.amount)
        self.check.toggled.connect(self.amount.setEnabled)
        self.check.toggled.connect(self.valueChanged)
        self.amount.valueChanged.connect(self.valueChanged)

    def value(self) -> float:
        return float(self.amount.value()) if self.check.isChecked() else 0.0

    def setValue(self, value: float) -> None:
        self.check.setChecked(value > 0)
        if value > 0:
            self.amount.setValue(value)

    def mark_target(self) -> QWidget:
        return self.amount


def breakable(path: str) -> str:
    """A path that a word-wrapped label may break after each "/" (a zero-width space there)."""
    return path.replace("/", "/\u200b")


class ElidedLabel(QLabel):
    """One line of text that ends in "…" when it does not fit, instead of widening the window."""

    def minimumSizeHint(self) -> QSize:
        return QSize(40, super().minimumSizeHint().height())

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        rect = self.contentsRect()
        text = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, rect.width())
        self.style().drawItemText(
            painter, rect, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
            self.palette(), self.isEnabled(), text, self.foregroundRole(),
        )


class WheelGuard(QObject):
    """Spin boxes and drop-downs take the mouse wheel only when they have the focus.

    Installed once on the application: scrolling a settings panel over a field scrolls the
    panel instead of changing the seed from 42 to 48.
    """

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind == QEvent.Type.Polish and isinstance(watched, (QAbstractSpinBox, QComboBox)):
            watched.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # a wheel must not give them the focus
        elif (kind == QEvent.Type.Wheel and isinstance(watched, (QAbstractSpinBox, QComboBox))
                and not watched.hasFocus()):
            area = scroll_area_of(watched)
            if area is not None:  # the panel scrolls instead
                QApplication.sendEvent(area.verticalScrollBar(), event)
            return True
        return False


def scroll_area_of(widget: QWidget) -> QAbstractScrollArea | None:
    parent = widget.parentWidget()
    while parent is not None and not isinstance(parent, QAbstractScrollArea):
        parent = parent.parentWidget()
    return parent


def install_wheel_guard(app: QApplication) -> WheelGuard:
    """Install the one WheelGuard on `app` (idempotent); it lives as long as the application."""
    guard = app.findChild(WheelGuard)
    if guard is None:
        guard = WheelGuard(app)
        app.installEventFilter(guard)
    for widget in app.allWidgets():  # those polished before the guard came
        if isinstance(widget, (QAbstractSpinBox, QComboBox)):
            widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    return guard


def reason_label(widget: QWidget) -> QLabel | None:
    """The label under a field that says what is wrong with it (None until a problem was shown)."""
    return getattr(widget, "reason_label", None)


def form_row(widget: QWidget) -> tuple[QFormLayout, int] | None:
    """The form layout and row that hold `widget` (or the field widget it sits in)."""
    w: QWidget | None = widget
    while w is not None and w.parentWidget() is not None:
        layout = w.parentWidget().layout()
        if isinstance(layout, QFormLayout):
            row, _role = layout.getWidgetPosition(w)
            if row >= 0:
                return layout, row
        w = w.parentWidget()
    return None


def _show_reason(widget: QWidget, text: str, kind: str) -> None:
    """Write `text` under the field's row (hidden when empty); `kind` is "problem" or "warning"."""
    label = reason_label(widget)
    if label is None:
        if not text:
            return
        place = form_row(widget)
        if place is None:
            return  # not in a form: the tooltip and the border say it
        form, row = place
        label = QLabel()
        label.setObjectName("fieldReason")
        label.setWordWrap(True)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form.insertRow(row + 1, "", label)
        widget.reason_label = label
    label.setText(text)
    label.setProperty("kind", kind)
    label.style().unpolish(label)
    label.style().polish(label)
    place = form_row(label)
    if place is not None:
        place[0].setRowVisible(place[1], bool(text))
    else:
        label.setVisible(bool(text))


def mark_warning(widget: QWidget, messages: Sequence[str]) -> None:
    """Show (or clear) a warning under a field: the value can run, but probably should not."""
    if widget.property("problem"):
        return  # a problem outranks a warning on the same field
    _show_reason(widget, "\n".join(messages), "warning")


def mark_problem(widget: QWidget, messages: Sequence[str]) -> None:
    """Show (or clear) a problem on a widget: a red border, the reason under the field, and a tooltip."""
    _show_reason(widget, "\n".join(messages), "problem")
    base = widget.property("baseToolTip")
    if base is None:
        base = widget.toolTip()
        widget.setProperty("baseToolTip", base)
    has_problem = bool(messages)
    if bool(widget.property("problem")) != has_problem:
        widget.setProperty("problem", has_problem)
        widget.style().unpolish(widget)
        widget.style().polish(widget)
        widget.update()
    if has_problem:
        text = "\n".join(messages)
        widget.setToolTip(f"{text}\n\n{base}" if base else text)
    else:
        widget.setToolTip(base)
