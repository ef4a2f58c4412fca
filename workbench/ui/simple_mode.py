"""Simple / Expert: how much of the window a person sees. Remembered between sessions.

Simple shows what a first run needs: the dataset folder, the backbone, the epochs, Train and
Stop, the curves and the results (Runs, Evaluate, Predict). Every other setting keeps the
value the config has and is only hidden, never changed: switching never edits the config. A
hidden field that has a problem or a warning is shown anyway, so nothing blocks Train unseen.
Expert shows everything.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import (
    QButtonGroup,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from workbench.ui import settings as keys
from workbench.ui.fields import form_row, reason_label

SIMPLE, EXPERT = "simple", "expert"
SIMPLE_FIELDS = ("data.folder", "backbone.name", "training.epochs")  # the settings Simple shows
SIMPLE_VIEWS = ("plots", "runs_panel", "evaluate_panel", "predict_panel")  # the window's view tabs Simple keeps


def has_reason(widget: QWidget | None) -> bool:
    """Whether a problem or a warning is written under the field."""
    label = reason_label(widget) if widget is not None else None
    return label is not None and bool(label.text())


class ModeSwitch(QWidget):
    """Two buttons above the settings, "Simple" and "Expert", and a link to Getting started."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("modeSwitch")
        self.simple = QPushButton("Simple")
        self.simple.setToolTip("Only what a first run needs: the folder, the backbone, the epochs. "
                               "Every other setting keeps its value.")
        self.expert = QPushButton("Expert")
        self.expert.setToolTip("Every setting and every tool (Regularization, the labs, the comparison)")
        self.group = QButtonGroup(self)
        for button in (self.simple, self.expert):
            button.setCheckable(True)
            button.setObjectName("modeButton")
            self.group.addButton(button)
        self.guide = QPushButton("Getting started…")
        self.guide.setObjectName("guideButton")
        self.guide.setFlat(True)
        self.guide.setToolTip("A short guided first run over the demo images")
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 4, 8, 2)
        row.setSpacing(0)
        label = QLabel("View:")
        label.setObjectName("hint")
        row.addWidget(label)
        row.addSpacing(6)
        row.addWidget(self.simple)
        row.addWidget(self.expert)
        row.addStretch(1)
        row.addWidget(self.guide)


class ViewMode(QObject):
    """Applies Simple or Expert to `window` (the MainWindow) and remembers the choice (QSettings)."""

    changed = Signal(bool)  # simple

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.simple = False
        self.switch = ModeSwitch()
        container = QWidget()
        layout = QVBoxLayout(container)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.switch)
        layout.addWidget(window.tabs, 1)
        window.settings_dock.setWidget(container)  # the switch sits right above the settings
        self.actions = QActionGroup(self)
        self.simple_action = QAction("&Simple (the essentials)", self.actions, checkable=True)
        self.expert_action = QAction("&Expert (every setting)", self.actions, checkable=True)
        self.simple_action.setToolTip(self.switch.simple.toolTip())
        self.expert_action.setToolTip(self.switch.expert.toolTip())
        self.simple_action.triggered.connect(self._on_simple_chosen)
        self.expert_action.triggered.connect(self._on_expert_chosen)
        self.switch.simple.clicked.connect(self._on_simple_chosen)
        self.switch.expert.clicked.connect(self._on_expert_chosen)
        self._show_choice()

    # ---- choosing ----------------------------------------------------------------------------
    def restore(self) -> None:
        """Apply the mode remembered from the last session (Expert when there is none)."""
        self.set_simple(self.window.settings.value(keys.VIEW_MODE, EXPERT) == SIMPLE, remember=False)

    @Slot()
    def _on_simple_chosen(self) -> None:
        self.set_simple(True)

    @Slot()
    def _on_expert_chosen(self) -> None:
        self.set_simple(False)

    def set_simple(self, simple: bool, remember: bool = True) -> None:
        was = self.simple
        self.simple = simple
        if remember:
            self.window.settings.setValue(keys.VIEW_MODE, SIMPLE if simple else EXPERT)
        self._show_choice()
        self.refresh()
        w = self.window
        if simple and not w.views.isTabVisible(w.views.currentIndex()):
            w.views.setCurrentWidget(w.plots)
        if simple and not w.tabs.isTabVisible(w.tabs.currentIndex()):
            w.tabs.setCurrentIndex(0)
        if simple:
            w.log_dock.setVisible(False)  # the View menu can bring it back
        elif was:
            w.log_dock.setVisible(True)  # Expert shows everything there is, the log included
        if was != simple:
            self.changed.emit(simple)

    def _show_choice(self) -> None:
        for widget, on in ((self.switch.simple, self.simple), (self.switch.expert, not self.simple),
                           (self.simple_action, self.simple), (self.expert_action, not self.simple)):
            blocked = widget.blockSignals(True)
            widget.setChecked(on)
            widget.blockSignals(blocked)

    # ---- showing -------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Show or hide every part for the mode; called again after each validation (hidden fields with
        a problem or a warning come into view)."""
        w = self.window
        simple = self.simple
        for index, panel in enumerate(w.panels):
            shown = self._apply_to_panel(panel, simple)
            w.tabs.setTabVisible(index, shown)
        for button in (w.pause_button, w.compare_button):
            button.setVisible(not simple)
        w.compare_action.setVisible(not simple)
        for index in range(w.views.count()):
            keep = any(w.views.widget(index) is getattr(w, name, None) for name in SIMPLE_VIEWS)
            w.views.setTabVisible(index, keep or not simple)
        for action in getattr(w.menu_actions, "views", ()):
            action.setVisible(w.views.isTabVisible(int(action.data())))

    def _apply_to_panel(self, panel, simple: bool) -> bool:
        """Hide the panel's groups and rows that Simple leaves out; whether anything of it shows."""
        paths = panel.fields()
        marks = {path: panel.widget_for(path) for path in paths}
        wanted = {path for path in paths if not simple or path in SIMPLE_FIELDS or has_reason(marks[path])}
        any_shown = False
        for group in panel.findChildren(QGroupBox, options=Qt.FindChildOption.FindDirectChildrenOnly):
            inside = [p for p in paths if marks[p] is not None and group.isAncestorOf(marks[p])]
            group_shown = not simple or any(p in wanted for p in inside)
            group.setVisible(group_shown)
            any_shown |= group_shown
            if not group_shown:
                continue
            for path in inside:
                place = form_row(marks[path])
                if place is None:
                    continue
                form, row = place
                form.setRowVisible(row, path in wanted)
                reason = reason_label(marks[path])
                if reason is not None:
                    reason_place = form_row(reason)
                    if reason_place is not None:
                        reason_place[0].setRowVisible(reason_place[1], path in wanted and bool(reason.text()))
        return any_shown
