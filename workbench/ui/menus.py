"""The window's menu bar, built apart so main_window.py stays about behaviour, not wiring."""

from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow


@dataclass
class MenuActions:
    """The actions the window enables and disables while a run trains (tests read them too)."""

    open_config: QAction
    save_config: QAction
    open_folder: QAction
    resume: QAction
    install_launcher: QAction
    train: QAction
    compare: QAction
    stop: QAction
    views: list[QAction] = field(default_factory=list)  # View > one per view tab (Simple hides some)


def build_menus(window: QMainWindow) -> MenuActions:
    """File, Run, View and Help menus; `window` is the MainWindow whose slots they call."""
    bar = window.menuBar()
    file_menu = bar.addMenu("&File")
    open_config = file_menu.addAction("&Open config…", QKeySequence.StandardKey.Open)
    open_config.triggered.connect(window.config_files.open_config_dialog)
    save_config = file_menu.addAction("&Save config…", QKeySequence.StandardKey.Save)
    save_config.triggered.connect(window.config_files.save_config_dialog)
    file_menu.addSeparator()
    open_folder = file_menu.addAction("Open &dataset folder…", QKeySequence("Ctrl+D"))
    open_folder.triggered.connect(window.config_files.open_dataset_dialog)
    file_menu.addSeparator()
    resume = file_menu.addAction("&Resume a run…")
    resume.setToolTip("Continue a stopped, failed or interrupted run from its last checkpoint")
    resume.triggered.connect(window.run_view.resume_dialog)
    file_menu.addSeparator()
    install_launcher = file_menu.addAction("Install desktop &launcher")
    install_launcher.triggered.connect(window.install_launcher)
    file_menu.addSeparator()
    quit_action = file_menu.addAction("&Quit", QKeySequence.StandardKey.Quit)
    quit_action.setMenuRole(QAction.MenuRole.QuitRole)
    quit_action.triggered.connect(window.close)

    run_menu = bar.addMenu("&Run")
    train = run_menu.addAction("&Train")
    train.triggered.connect(window.start_training)
    compare = run_menu.addAction("&Compare transfer with zero-init")
    compare.triggered.connect(window.start_comparison)
    stop = run_menu.addAction("&Stop")
    stop.triggered.connect(window.stop_training)

    view_menu = bar.addMenu("&View")
    for action in window.view_mode.actions.actions():  # Simple / Expert (ui/simple_mode.py)
        view_menu.addAction(action)
    view_menu.addSeparator()
    view_menu.addAction(window.settings_dock.toggleViewAction())
    view_menu.addAction(window.log_dock.toggleViewAction())
    view_menu.addSeparator()
    views = window.views
    view_actions = []
    for index in range(views.count()):
        action = view_menu.addAction(views.tabText(index), QKeySequence(f"Ctrl+{index + 1}"))
        action.setData(index)
        action.triggered.connect(window.show_view_of_action)
        view_actions.append(action)

    help_menu = bar.addMenu("&Help")
    guide = help_menu.addAction("&Getting started…")
    guide.setToolTip("A short guided first run over the demo images")
    guide.triggered.connect(window.getting_started.start)
    window.view_mode.switch.guide.clicked.connect(window.getting_started.start)
    help_menu.addSeparator()
    about = help_menu.addAction("&About Workbench")
    about.setMenuRole(QAction.MenuRole.AboutRole)
    about.triggered.connect(window.show_about)
    return MenuActions(open_config, save_config, open_folder, resume, install_launcher, train, compare, stop,
                       view_actions)
