"""The window's docks (settings, log) and its status bar, built apart so main_window.py stays
about behaviour. `window` is the MainWindow; these set the attributes it and the tests use."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget, QLabel, QMainWindow

from workbench.ui.layout import settings_tabs
from workbench.ui.log_view import LogView


def build_docks(window: QMainWindow) -> None:
    """`tabs` (one per settings panel) in `settings_dock` on the left, `log` in `log_dock` below."""
    window.tabs = settings_tabs(window.panels)
    window.settings_dock = QDockWidget("Settings", window)
    window.settings_dock.setObjectName("settingsDock")
    window.settings_dock.setWidget(window.tabs)
    window.settings_dock.setFeatures(
        QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetFloatable
    )
    window.settings_dock.setMinimumWidth(400)
    window.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, window.settings_dock)

    window.log = LogView()
    window.log_dock = QDockWidget("Log", window)
    window.log_dock.setObjectName("logDock")
    window.log_dock.setWidget(window.log)
    window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, window.log_dock)
    window.resizeDocks([window.settings_dock], [440], Qt.Orientation.Horizontal)
    window.resizeDocks([window.log_dock], [170], Qt.Orientation.Vertical)


def build_status_bar(window: QMainWindow) -> None:
    """The runs folder and the devices (`runs_label`, `device_label`) at the right of the status bar."""
    from workbench.core.runs.store import default_runs_dir

    runs = Path(window.runs_dir) if window.runs_dir else default_runs_dir()
    window.runs_label = QLabel(f"Runs: {runs}")
    window.runs_label.setObjectName("hint")
    window.statusBar().addPermanentWidget(window.runs_label)
    window.device_label = QLabel("")
    window.device_label.setObjectName("hint")
    window.statusBar().addPermanentWidget(window.device_label)
    window.statusBar().showMessage("Ready", 5000)
