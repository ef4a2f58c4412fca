"""The main window: settings panels on the left, run controls, live curves and the log.

It owns the one RunConfig the panels edit, validates it on every edit (pure Python,
instant), and owns the TaskRunner that runs it in a child process. Scanning the
dataset and counting trainable layers run as background jobs; TensorFlow is never
imported in this process (model jobs run in the model worker, ui/tasks/processes.py).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from pathlib import Path

from PySide6.QtCore import QByteArray, QThreadPool, Signal, Slot
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QIcon
from PySide6.QtWidgets import (
    QApplication,
    QMainWindow,
    QMessageBox,
    QStyle,
    QTabWidget,
)

from workbench.core.base.events import Event, RunFailed, RunFinished
from workbench.core.base.problems import Problem
from workbench.core.config.derived import default_run_name
from workbench.core.config.run import RunConfig
from workbench.core.config.validate import validate
from workbench.core.config.validate import warnings as config_warnings
from workbench.resources import resource_path
from workbench.ui import settings as keys
from workbench.ui.compare import TransferComparison
from workbench.ui.config_files import ConfigFiles, dropped_folder, dropped_images
from workbench.ui.controls_state import ControlsState
from workbench.ui.data_loop import DataLoop
from workbench.ui.defaults import first_launch_config
from workbench.ui.dialogs import about_text, open_error_box, open_info_box
from workbench.ui.docks import build_docks, build_status_bar
from workbench.ui.fields import install_wheel_guard
from workbench.ui.getting_started import GettingStarted
from workbench.ui.layout import build_run_buttons, central_column
from workbench.ui.menus import build_menus
from workbench.ui.panels import (
    BackbonePanel,
    ConfigPanel,
    DataPanel,
    RegularizationPanel,
    TrainingPanel,
)
from workbench.ui.panels.evaluate import EvaluatePanel
from workbench.ui.panels.export import ExportDialog
from workbench.ui.panels.gan_lab import GanLabPanel
from workbench.ui.panels.predict import PredictPanel
from workbench.ui.panels.runs import RunsPanel
from workbench.ui.panels.tuning import TuningPanel
from workbench.ui.plots import TrainingPlots
from workbench.ui.problems_view import problem_summary
from workbench.ui.progress import RunProgress
from workbench.ui.readouts import READOUT_FIELDS, Readouts, ReadoutSettings
from workbench.ui.run_view import RunView
from workbench.ui.saved_runs import SavedRuns
from workbench.ui.settings import app_settings
from workbench.ui.simple_mode import ViewMode
from workbench.ui.tasks.background import count_trainable
from workbench.ui.tasks.processes import close_model_worker
from workbench.ui.tasks.runner import RUN, TaskFunction, TaskRunner

DEMO_NAME = "demo"  # the first launch's run name (ui/defaults.py), for the bundled demo dataset only
READOUT_DELAY_MS = 400
STARTUP_READOUT_DELAY_MS = 1500  # let the window paint before the model worker builds the first model


def app_icon() -> QIcon:
    try:
        return QIcon(str(resource_path("icons", "workbench.png")))
    except FileNotFoundError:
        return QIcon()


class MainWindow(QMainWindow):
    """The Workbench window. `run_ended(result)` fires after a run's end has been shown."""

    run_ended = Signal(object)

    def __init__(
        self,
        config: RunConfig | None = None,
        *,
        runs_dir: str | Path | None = None,
        run_fn: TaskFunction | None = None,
    ):
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle("Workbench")
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        install_wheel_guard(QApplication.instance())  # fields take the wheel only when focused
        self.config = config if config is not None else first_launch_config()
        self.runs_dir = runs_dir
        self.settings = app_settings()
        self.problems: list[Problem] = []
        self.last_result: RunFinished | RunFailed | None = None
        self.error_box: QMessageBox | None = None
        self.info_box: QMessageBox | None = None
        self.close_after_run = False  # the window closes once the stopping run has ended (compare.py reads it)

        self.runner = TaskRunner(self, fn=run_fn or RUN, name="workbench-training")
        self.run_view = RunView(self)
        self.runner.event.connect(self.run_view.on_event)
        self.runner.finished.connect(self.run_view.on_finished)
        self.comparison = TransferComparison(self)  # transfer vs zero-init: two runs in a row (ui/compare.py)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(2)
        # dataset scan, trainable-layer count, GPUs; read here so tests can patch this module's names
        self.readouts = Readouts(self, self.pool, ReadoutSettings(READOUT_DELAY_MS, count_trainable))
        # Evaluate, predict, Grad-CAM and export wait for the model worker: one at a time, on their
        # own thread, so they never hold up a dataset scan; `model_cancel` ends their waits on quit.
        self.model_pool = QThreadPool(self)
        self.model_pool.setMaxThreadCount(1)
        self.model_cancel = threading.Event()
        self.export_dialog: ExportDialog | None = None
        self.active_run_dir = ""
        self.saved_runs = SavedRuns(self)
        self.config_files = ConfigFiles(self)

        self.data_panel = DataPanel(self.config)
        self.backbone_panel = BackbonePanel(self.config)
        self.regularization_panel = RegularizationPanel(self.config)
        self.training_panel = TrainingPanel(self.config)
        self.training_panel.runs_dir = runs_dir
        self.backbone_panel.set_runs_dir(runs_dir)  # lists the backbones saved from runs
        self.regularization_panel.attach_jobs(self.pool, self.model_cancel)  # builds the freeze map
        self.panels: list[ConfigPanel] = [
            self.data_panel, self.backbone_panel, self.regularization_panel, self.training_panel,
        ]
        for panel in self.panels:
            panel.edited.connect(self._on_edited)

        self._build_central()
        build_docks(self)  # settings and log docks (ui/docks.py)
        self.view_mode, self.getting_started = ViewMode(self), GettingStarted(self)  # Simple/Expert; Help
        self.menu_actions = build_menus(self)
        self.open_config_action = self.menu_actions.open_config
        self.save_config_action = self.menu_actions.save_config
        self.open_folder_action = self.menu_actions.open_folder
        self.resume_action = self.menu_actions.resume
        self.install_launcher_action = self.menu_actions.install_launcher
        self.train_action = self.menu_actions.train
        self.compare_action = self.menu_actions.compare
        self.stop_action = self.menu_actions.stop
        build_status_bar(self)
        self.readouts.start_device_probe_later()

        self._restore_settings()
        self.view_mode.restore()
        self.regularization_panel.set_readout("Counting trainable layers…", "busy")
        self.revalidate()
        self.readouts.start_scan()
        self.readouts.schedule_readout(STARTUP_READOUT_DELAY_MS)

    @property
    def scan_report(self):
        """The latest dataset scan (the Readouts own it)."""
        return self.readouts.scan_report

    # ---- building (widgets from ui/layout.py) ---------------------------------------------------
    def _build_central(self) -> None:
        row = build_run_buttons(self.style())
        self.train_button, self.pause_button, self.stop_button = row.train, row.pause, row.stop
        self.compare_button, self.problem_label = row.compare, row.problem_label
        self.train_button.clicked.connect(self.start_training)
        self.pause_button.clicked.connect(self.toggle_pause)
        self.stop_button.clicked.connect(self.stop_training)
        self.compare_button.clicked.connect(self.start_comparison)
        self.progress = RunProgress()
        self.plots = TrainingPlots()
        self.plots.set_epochs(self.config.training.epochs)
        self.setCentralWidget(central_column(row, self.progress, self._build_views()))

    def _build_views(self) -> QTabWidget:
        """Live curves, saved runs, evaluation and prediction, as tabs of the central area."""
        from workbench.core.runs.store import default_runs_dir

        self.runs_panel = RunsPanel(Path(self.runs_dir) if self.runs_dir else default_runs_dir())
        self.evaluate_panel = EvaluatePanel(self.pool, self.model_pool, self.model_cancel)
        self.predict_panel = PredictPanel(self.model_pool, self.model_cancel)
        self.views = QTabWidget()
        self.views.setObjectName("views")
        self.views.setDocumentMode(True)
        self.views.addTab(self.plots, "Training")
        self.views.addTab(self.runs_panel, "Runs")
        self.views.addTab(self.evaluate_panel, "Evaluate")
        self.views.addTab(self.predict_panel, "Predict")
        self.data_loop = DataLoop(self)  # the Fix data and Label tabs (ui/data_loop.py)
        self.tuning = TuningPanel(lambda: self.config, self.runs_dir)  # Optuna studies; the dropout sweep is a preset
        self.views.addTab(self.tuning, "Tuning")
        # The second mode: a DCGAN with its own config, runs (runs/gan/), plots, FID and sweep.
        self.gan_lab = GanLabPanel(self.runs_dir, self.model_pool, self.model_cancel)
        self.views.addTab(self.gan_lab, "GAN lab")
        self.runs_panel.set_model_jobs(self.model_pool, self.model_cancel)  # Save backbone loads the run's model
        self.saved_runs.connect_views()
        self.views.currentChanged.connect(self._on_view_changed)
        return self.views

    @Slot(int)
    def _on_view_changed(self, _index: int) -> None:
        """The GAN lab has its own settings: the classifier's dock makes room for its curves."""
        if hasattr(self, "settings_dock"):
            self.settings_dock.setVisible(self.views.currentWidget() is not self.gan_lab)

    # ---- editing and validation ------------------------------------------------------------
    @Slot(str)
    def _on_edited(self, path: str) -> None:
        for panel in self.panels:
            if panel is not self.sender():
                panel.update_state()
        self.revalidate()
        if path == "data.folder":
            self.readouts.schedule_scan()
            if self.config.name == DEMO_NAME and Path(self.config.data.folder).name != DEMO_NAME:
                self.training_panel.set_value("name", "")  # another dataset: no longer "demo"
        if path.startswith(READOUT_FIELDS):
            self.readouts.schedule_readout()
        if path == "training.epochs" and not self.runner.running:
            self.plots.set_epochs(self.config.training.epochs)

    def revalidate(self) -> list[Problem]:
        """Collect every problem, mark it at its field, and allow Train only when there are none."""
        problems = [p for panel in self.panels for p in panel.input_problems()]
        typed = {p.field for p in problems}
        problems += [p for p in validate(self.config) if p.field not in typed]
        report = self.readouts.current_scan()
        if report is not None:
            problems += [p for p in getattr(report, "blocking", ()) if p not in problems]
        self.problems = problems

        by_field: dict[str, list[str]] = defaultdict(list)
        for problem in problems:
            by_field[problem.field].append(problem.message)
        warning = self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
        cautions: dict[str, list[str]] = defaultdict(list)
        for caution in config_warnings(self.config):
            cautions[caution.field].append(caution.message)
        for index, panel in enumerate(self.panels):
            marked = panel.show_problems(by_field)
            panel.show_warnings(cautions)
            self.tabs.setTabIcon(index, warning if marked else QIcon())
        self._show_problem_summary()
        self.update_controls()
        self.view_mode.refresh()  # in Simple, a hidden field with a problem comes into view
        return problems

    def _field_label(self, path: str) -> str:
        for panel in self.panels:
            label = panel.label_for(path)
            if label:
                return label
        return path

    def _show_problem_summary(self) -> None:
        text, details = problem_summary(self.problems, self._field_label, self.readouts.current_scan())
        self.problem_label.setText(text)
        self.problem_label.setToolTip(details)
        self.problem_label.setProperty("ready", not self.problems)
        self.problem_label.style().unpolish(self.problem_label)
        self.problem_label.style().polish(self.problem_label)

    def update_controls(self) -> None:
        """Enable what may be used now; ControlsState holds the rules."""
        runner = self.runner
        state = ControlsState(running=runner.running, stopping=runner.stopping, paused=runner.paused,
                              has_problems=bool(self.problems), sweep_running=self.tuning.running,
                              gan_running=self.gan_lab.running)
        self.train_button.setEnabled(state.can_train)
        self.stop_button.setEnabled(state.can_stop)
        self.pause_button.setEnabled(state.can_stop)
        self.pause_button.setText("Resume" if state.paused else "Pause")
        icon = QStyle.StandardPixmap.SP_MediaPlay if state.paused else QStyle.StandardPixmap.SP_MediaPause
        self.pause_button.setIcon(self.style().standardIcon(icon))
        self.train_action.setEnabled(state.can_train)
        self.stop_action.setEnabled(state.can_stop)
        self.comparison.update_controls()
        for panel in self.panels:
            panel.setEnabled(state.can_edit)
        for action in (self.open_config_action, self.open_folder_action, self.resume_action):
            action.setEnabled(state.can_edit)
        self.runs_panel.set_training(state.models_busy, self.active_run_dir if state.running else "")
        self.tuning.set_training(state.sweep_blocked)
        self.gan_lab.set_training(state.gan_blocked)

    def set_config(self, config: RunConfig) -> None:
        """Replace the whole config (opened from a file): every panel shows it."""
        self.config = config
        for panel in self.panels:
            panel.set_config(config)
        self.plots.set_epochs(config.training.epochs)
        self.readouts.scan_report = None
        self.revalidate()
        self.readouts.start_scan()
        self.readouts.schedule_readout()

    def refresh_readout(self) -> None:
        """Count the editor's config again (after a run, whose own counts the readout showed)."""
        self.readouts.schedule_readout()

    # ---- running ----------------------------------------------------------------------------
    @Slot()
    def start_training(self) -> None:
        if self.runner.running:
            return
        if self.revalidate():
            self.statusBar().showMessage("Fix the problems marked in red first", 5000)
            return
        self.start_run(self.config)

    def start_run(self, config: RunConfig) -> None:
        """Train `config` on the worker: the editor's, or one made from it (the comparison's two runs)."""
        self.readouts.readout_timer.stop()
        if not config.name.strip():  # named after its dataset and backbone, never a stale "demo"
            config = config.replace(name=default_run_name(config))
        epochs = config.training.epochs
        self.plots.reset(epochs)
        self.progress.preparing(epochs)
        b = config.backbone
        width = f" ×{b.width:g}" if b.width != 1.0 else ""
        weights = {"imagenet": "ImageNet weights", "none": "re-initialised weights"}.get(
            b.weights, f"weights from {Path(b.weights_file).name}"
        )
        self.log.add("info", f"Starting: {b.name}{width}, {weights}, {epochs} epoch{'s' if epochs != 1 else ''} "
                             f"on {config.data.folder}")
        self.last_result = None
        self.views.setCurrentWidget(self.plots)
        self.runner.start(config, runs_dir=self.runs_dir)
        self.statusBar().showMessage("Training…")
        self.update_controls()

    @Slot()
    def start_comparison(self) -> None:
        """Train the config as it is and with zero transfer, then overlay both runs (ui/compare.py)."""
        self.comparison.start()

    def resume_run(self, run_dir: str | Path) -> bool:
        return self.run_view.resume(run_dir)

    @Slot()
    def stop_training(self) -> None:
        if self.runner.running and not self.runner.stopping:
            self.runner.stop()
            self.progress.set_paused(False)
            self.log.add("info", "Stopping after the current batch…")
            self.statusBar().showMessage("Stopping…")
            self.update_controls()

    @Slot()
    def toggle_pause(self) -> None:
        if not self.runner.running:
            return
        if self.runner.paused:
            self.runner.resume()
            self.progress.set_paused(False)
            self.statusBar().showMessage("Training…")
        else:
            self.runner.pause()
            self.progress.set_paused(True)
            self.statusBar().showMessage("Pausing after the current batch…")
        self.update_controls()

    @Slot(object)
    def _on_run_event(self, event: Event) -> None:
        """Kept for tests that feed events directly; RunView shows them."""
        self.run_view.on_event(event)

    @Slot()
    def show_view_of_action(self) -> None:
        """A View menu action shows the tab whose index it carries."""
        action = self.sender()
        if isinstance(action, QAction):
            self.views.setCurrentIndex(int(action.data()))

    @Slot(str)
    def open_export_dialog(self, run_dir: str) -> ExportDialog:
        return self.saved_runs.open_export_dialog(run_dir)

    # ---- files (ui/config_files.py) --------------------------------------------------------
    def open_config(self, path: str | Path) -> bool:
        return self.config_files.open_config(path)

    def save_config(self, path: str | Path) -> bool:
        return self.config_files.save_config(path)

    def set_dataset_folder(self, folder: str) -> None:
        self.tabs.setCurrentIndex(self.panels.index(self.data_panel))
        self.data_panel.set_value("data.folder", folder)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if dropped_images(event) or (not self.runner.running and dropped_folder(event) is not None):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        """A folder becomes the dataset (not while a run trains); images are predicted with the current
        run (the Predict tab), also while a run trains."""
        folder, images = dropped_folder(event), dropped_images(event)
        if folder is not None and not self.runner.running:
            self.set_dataset_folder(folder)
            event.acceptProposedAction()
        elif images:
            self.views.setCurrentWidget(self.predict_panel)
            self.predict_panel.add_paths(images)
            event.acceptProposedAction()

    # ---- dialogs ---------------------------------------------------------------------------
    def show_error(self, title: str, text: str, details: str = "") -> QMessageBox:
        """A non-blocking error dialog on the GUI thread; kept in `error_box` (tests read it)."""
        if self.error_box is not None:
            self.error_box.deleteLater()
        self.error_box = open_error_box(self, title, text, details)
        return self.error_box

    def show_info(self, title: str, text: str) -> QMessageBox:
        if self.info_box is not None:
            self.info_box.deleteLater()
        self.info_box = open_info_box(self, title, text)
        return self.info_box

    @Slot()
    def install_launcher(self) -> None:
        from workbench.desktop import install_launcher

        try:
            files = install_launcher()
        except OSError as exc:
            self.show_error("Cannot install the launcher", str(exc))
            return
        self.show_info(
            "Launcher installed",
            f"Workbench is now in your desktop's application menu.\n\n{files.desktop_file}\n"
            f"Starts: {files.command}",
        )

    @Slot()
    def show_about(self) -> None:
        self.show_info("About Workbench", about_text())

    # ---- settings and closing ----------------------------------------------------------------
    def _restore_settings(self) -> None:
        geometry = self.settings.value(keys.GEOMETRY)
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(1320, 840)
        state = self.settings.value(keys.STATE)
        if isinstance(state, QByteArray) and not state.isEmpty():
            self.restoreState(state)

    def _save_settings(self) -> None:
        self.settings.setValue(keys.GEOMETRY, self.saveGeometry())
        self.settings.setValue(keys.STATE, self.saveState())
        self.settings.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.runner.running:
            event.ignore()
            if self.close_after_run:
                return  # already stopping; the window closes when the run has ended
            answer = QMessageBox.question(
                self,
                "Stop training?",
                "A run is in progress. Stop it and close Workbench?\n\n"
                "What has been trained so far is kept in the run folder.",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.No,
            )
            if answer == QMessageBox.StandardButton.Yes:
                self.close_after_run = True
                self.stop_training()
                self.statusBar().showMessage("Stopping the run before closing…")
            return
        self._save_settings()
        self.hide()  # gone at once, even while a background job finishes
        self.shutdown()
        event.accept()

    @Slot()
    def shutdown(self) -> None:
        """Stop everything that runs in the background and wait for it (on quit)."""
        self.readouts.stop()
        self.model_cancel.set()  # model jobs stop waiting (a running one ends the model worker)
        self.tuning.shutdown()
        self.gan_lab.shutdown()
        self.runner.shutdown()
        self.pool.clear()
        self.model_pool.clear()
        self.pool.waitForDone()
        self.model_pool.waitForDone()
        close_model_worker()
