"""The widgets of the window's frame: the run buttons, the settings tabs and the central column.

Plain builders that return widgets, so main_window.py only connects them.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QPushButton,
    QScrollArea,
    QStyle,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from workbench.ui.fields import ElidedLabel


@dataclass
class RunButtons:
    """The row above the curves: run controls and the one-line problem summary."""

    train: QPushButton
    pause: QPushButton
    stop: QPushButton
    compare: QPushButton
    problem_label: ElidedLabel

    def row(self) -> QHBoxLayout:
        buttons = QHBoxLayout()
        buttons.setSpacing(8)
        for button in (self.train, self.pause, self.stop, self.compare):
            buttons.addWidget(button)
        buttons.addSpacing(12)
        buttons.addWidget(self.problem_label, 1)
        return buttons


def build_run_buttons(style: QStyle) -> RunButtons:
    icon = style.standardIcon
    train = QPushButton(icon(QStyle.StandardPixmap.SP_MediaPlay), "Train")
    train.setObjectName("trainButton")
    train.setToolTip("Start training with these settings (Ctrl+Return)")
    train.setShortcut(QKeySequence("Ctrl+Return"))
    pause = QPushButton(icon(QStyle.StandardPixmap.SP_MediaPause), "Pause")
    pause.setToolTip("Pause between batches; Resume carries on where it stopped")
    stop = QPushButton(icon(QStyle.StandardPixmap.SP_MediaStop), "Stop")
    stop.setToolTip("Stop within one batch; the model trained so far is kept")
    compare = QPushButton("Compare with zero-init")
    compare.setObjectName("compareButton")
    problem_label = ElidedLabel()
    problem_label.setObjectName("problemSummary")
    problem_label.setTextFormat(Qt.TextFormat.PlainText)
    return RunButtons(train, pause, stop, compare, problem_label)


def central_column(buttons: RunButtons, progress: QWidget, views: QWidget) -> QWidget:
    """Buttons, progress, a rule, then the tabbed views taking the rest of the height."""
    line = QFrame()
    line.setFrameShape(QFrame.Shape.HLine)
    line.setFrameShadow(QFrame.Shadow.Sunken)
    central = QWidget()
    layout = QVBoxLayout(central)
    layout.setContentsMargins(10, 10, 10, 6)
    layout.setSpacing(8)
    layout.addLayout(buttons.row())
    layout.addWidget(progress)
    layout.addWidget(line)
    layout.addWidget(views, 1)
    return central


def settings_tabs(panels) -> QTabWidget:
    """One scrolling tab per settings panel (they can be taller than the dock)."""
    tabs = QTabWidget()
    tabs.setDocumentMode(True)
    for panel in panels:
        scroll = QScrollArea()
        scroll.setWidget(panel)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # The form always takes the dock's width (never wider): focusing a field cannot scroll the
        # panel sideways, and labels wrap or go above their fields instead.
        panel.setMinimumWidth(1)
        tabs.addTab(scroll, panel.title)
    return tabs
