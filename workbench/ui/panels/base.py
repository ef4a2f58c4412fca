"""What every settings panel shares: widgets bound to dotted config fields.

A panel edits fields of the one RunConfig the main window holds and says which
field changed (`edited`); it never builds layers or touches the core otherwise.
Text that is not a value yet (letters in a number field) stays in the widget and
is reported as an input problem; the config keeps its last good value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QFormLayout, QGroupBox, QLineEdit, QVBoxLayout, QWidget

from workbench.core.base.problems import Problem
from workbench.core.config.fields import get_field, set_field
from workbench.core.config.run import RunConfig
from workbench.ui.fields import InputError, mark_problem, mark_warning


@dataclass
class Binding:
    path: str
    label: str
    widget: QWidget
    read: Callable[[], Any]
    write: Callable[[Any], None]
    mark: QWidget


def _adapt(widget: QWidget) -> tuple[Callable[[], Any], Callable[[Any], None], Any, QWidget]:
    """read, write, change signal and the widget that shows a problem, for any field widget."""
    mark = widget.mark_target() if hasattr(widget, "mark_target") else widget
    if hasattr(widget, "value") and hasattr(widget, "setValue"):
        return widget.value, widget.setValue, widget.valueChanged, mark
    if isinstance(widget, QCheckBox):
        return widget.isChecked, widget.setChecked, widget.toggled, mark
    if isinstance(widget, QLineEdit):
        return (lambda: widget.text().strip()), widget.setText, widget.textChanged, mark
    raise TypeError(f"cannot bind a {type(widget).__name__} to a config field")


class ConfigPanel(QWidget):
    """Base of the Data, Backbone, Regularization and Training panels."""

    edited = Signal(str)  # dotted path of a field a person changed
    title = ""

    def __init__(self, config: RunConfig, parent: QWidget | None = None):
        super().__init__(parent)
        self._config = config
        self._bindings: dict[str, Binding] = {}
        self._input_problems: dict[str, str] = {}
        self._loading = False
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(8, 8, 8, 8)
        self._layout.setSpacing(10)

    # ---- building ------------------------------------------------------------
    def add_group(self, title: str) -> QFormLayout:
        box = QGroupBox(title)
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        # In a narrow dock a label goes above its field rather than pushing the form sideways.
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self._layout.addWidget(box)
        return form

    def finish_layout(self) -> None:
        self._layout.addStretch(1)

    def bind(self, path: str, widget: QWidget, label: str, tooltip: str = "") -> QWidget:
        read, write, signal, mark = _adapt(widget)
        if tooltip:
            mark.setToolTip(tooltip)
            widget.setToolTip(tooltip)
        self._bindings[path] = Binding(path, label, widget, read, write, mark)
        signal.connect(lambda *_: self._on_widget_changed(path))  # same thread: a lambda is safe here
        self._loading = True
        try:
            write(get_field(self._config, path))
        finally:
            self._loading = False
        return widget

    # ---- config in and out -----------------------------------------------------
    @property
    def config(self) -> RunConfig:
        return self._config

    def set_config(self, config: RunConfig) -> None:
        self._config = config
        self.refresh()

    def refresh(self) -> None:
        """Show the config's values in every widget."""
        self._loading = True
        try:
            for path, binding in self._bindings.items():
                binding.write(get_field(self._config, path))
        finally:
            self._loading = False
        self._input_problems.clear()
        self.update_state()

    def set_value(self, path: str, value: Any) -> None:
        """Change a field from code (a dialog, a drop, a dependent default) as if a person typed it."""
        set_field(self._config, path, value)
        binding = self._bindings.get(path)
        if binding is not None:
            self._loading = True
            try:
                binding.write(value)
            finally:
                self._loading = False
            self._input_problems.pop(path, None)
        self.update_state()
        self.edited.emit(path)

    def _on_widget_changed(self, path: str) -> None:
        if self._loading:
            return
        binding = self._bindings[path]
        try:
            value = binding.read()
        except InputError as exc:
            self._input_problems[path] = str(exc)
        else:
            self._input_problems.pop(path, None)
            set_field(self._config, path, value)
            self.after_edit(path)
        self.update_state()
        self.edited.emit(path)

    def after_edit(self, path: str) -> None:
        """Hook: adjust dependent fields after a person changed `path`."""

    def update_state(self) -> None:
        """Hook: enable or disable widgets that depend on other fields."""

    # ---- problems ----------------------------------------------------------------
    def fields(self) -> Sequence[str]:
        return tuple(self._bindings)

    def bound_widget(self, path: str) -> QWidget | None:
        """The widget bound to `path` (widget_for gives the one that shows its problems)."""
        binding = self._bindings.get(path)
        return binding.widget if binding else None

    def widget_for(self, path: str) -> QWidget | None:
        binding = self._bindings.get(path)
        return binding.mark if binding else None

    def label_for(self, path: str) -> str | None:
        binding = self._bindings.get(path)
        return binding.label if binding else None

    def input_problems(self) -> list[Problem]:
        return [Problem(path, message) for path, message in self._input_problems.items()]

    def show_problems(self, by_field: Mapping[str, Sequence[str]]) -> int:
        """Mark the widgets of fields with problems and clear the others; the number marked."""
        marked = 0
        for path, binding in self._bindings.items():
            messages = by_field.get(path, ())
            mark_problem(binding.mark, messages)
            marked += bool(messages)
        return marked

    def show_warnings(self, by_field: Mapping[str, Sequence[str]]) -> None:
        """Write warnings (values that run but probably should not) under their fields; never blocking."""
        for path, binding in self._bindings.items():
            mark_warning(binding.mark, by_field.get(path, ()))
