"""The main window: settings panels on the left, run controls, live curves and the log.

It owns the one RunConfig the panels edit, validates it on every edit (pure Python,
instant), and owns the TrainingRunner that runs it on a QThread. Scanning the
dataset and counting trainable layers run as background jobs; TensorFlow is never
imported on the GUI thread.
"""

from __future__ import annotations

import importlib.metadata
import platform
import threading
from collections import defaultdict
from pathlib import Path

from PySide6.QtCore import QByteArray, Qt, QThreadPool, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QStyle,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

import workbench
from workbench.core.base.events import (
    BatchEnd,
    EpochEnd,
    Event,
    Message,
    RunFailed,
    RunFinished,
    RunStarted,
)
from workbench.core.base.freeze import FreezeSummary
from workbench.core.base.problems import ConfigError, Problem
from workbench.core.config.run import RunConfig, load_config, save_config
from workbench.core.config.validate import validate
from workbench.resources import resource_path
from workbench.ui import settings as keys
from workbench.ui.compare import TransferComparison
from workbench.ui.defaults import first_launch_config
from workbench.ui.fields import ElidedLabel
from workbench.ui.log_view import LogView
from workbench.ui.panels import (
    BackbonePanel,
    ConfigPanel,
    DataPanel,
    RegularizationPanel,
    TrainingPanel,
)
from workbench.ui.panels.dropout_lab import DropoutLabPanel
from workbench.ui.panels.evaluate import EvaluatePanel
from workbench.ui.panels.export import ExportDialog
from workbench.ui.panels.gan_lab import GanLabPanel
from workbench.ui.panels.predict import PredictPanel
from workbench.ui.panels.runs import RunsPanel
from workbench.ui.plots import TrainingPlots
from workbench.ui.progress import RunProgress
from workbench.ui.settings import app_settings
from workbench.ui.tasks.background import BackgroundJobs, count_trainable, scan_dataset
from workbench.ui.tasks.runner import RunFunction, TrainingRunner

SCAN_DELAY_MS = 300
READOUT_DELAY_MS = 400
STARTUP_READOUT_DELAY_MS = 1500  # let the window paint before TensorFlow loads in the background
READOUT_FIELDS = ("backbone.", "head.", "dropout.", "freeze.", "data.image_size")


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
        run_fn: RunFunction | None = None,
    ):
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle("Workbench")
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self.config = config if config is not None else first_launch_config()
        self.runs_dir = runs_dir
        self.settings = app_settings()
        self.problems: list[Problem] = []
        self.scan_report = None
        self.last_result: RunFinished | RunFailed | None = None
        self.error_box: QMessageBox | None = None
        self.info_box: QMessageBox | None = None
        self._close_after_run = False

        self.runner = TrainingRunner(self, run_fn=run_fn)
        self.runner.event.connect(self._on_run_event)
        self.runner.finished.connect(self._on_run_finished)
        self.comparison = TransferComparison(self)  # transfer vs zero-init: two runs in a row (ui/compare.py)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(2)
        self.pool.setExpiryTimeout(-1)  # threads keep their pinned Python thread state (model_jobs)
        self.scan_jobs = BackgroundJobs(self.pool, self)
        self.scan_jobs.done.connect(self._on_scan_done)
        self.scan_jobs.failed.connect(self._on_scan_failed)
        self.scan_jobs.progress.connect(self._on_scan_progress)
        self.readout_jobs = BackgroundJobs(self.pool, self)
        self.readout_jobs.done.connect(self._on_readout_done)
        self.readout_jobs.failed.connect(self._on_readout_failed)
        # Evaluate, predict, Grad-CAM and export load models: one at a time, on their own thread,
        # so they never hold up a dataset scan; `model_cancel` lets them stop waiting on quit.
        self.model_pool = QThreadPool(self)
        self.model_pool.setMaxThreadCount(1)
        self.model_pool.setExpiryTimeout(-1)  # one thread, one Python thread state for TensorFlow (model_jobs)
        self.model_cancel = threading.Event()
        self.export_dialog: ExportDialog | None = None
        self._active_run_dir = ""

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
        self._build_docks()
        self._build_menus()
        self._build_status_bar()

        self._scan_timer = QTimer(self)
        self._scan_timer.setSingleShot(True)
        self._scan_timer.timeout.connect(self._start_scan)
        self._readout_timer = QTimer(self)
        self._readout_timer.setSingleShot(True)
        self._readout_timer.timeout.connect(self._start_readout)
        # Which GPUs TensorFlow sees: TF loads on a pool thread, after the window has painted.
        self.device_jobs = BackgroundJobs(self.pool, self)
        self.device_jobs.done.connect(self._on_devices_done)
        self.device_jobs.failed.connect(self._on_devices_failed)
        self._device_timer = QTimer(self)
        self._device_timer.setSingleShot(True)
        self._device_timer.timeout.connect(self._start_device_probe)
        self._device_timer.start(self.DEVICE_PROBE_DELAY_MS)

        self._restore_settings()
        self.regularization_panel.set_readout("Counting trainable layers…", "busy")
        self.revalidate()
        self._start_scan()
        self._schedule_readout(STARTUP_READOUT_DELAY_MS)

    # ---- building -----------------------------------------------------------------------
    def _build_central(self) -> None:
        style = self.style()
        self.train_button = QPushButton(style.standardIcon(QStyle.StandardPixmap.SP_MediaPlay), "Train")
        self.train_button.setObjectName("trainButton")
        self.train_button.setToolTip("Start training with these settings (Ctrl+Return)")
        self.train_button.setShortcut(QKeySequence("Ctrl+Return"))
        self.train_button.clicked.connect(self.start_training)
        self.pause_button = QPushButton(style.standardIcon(QStyle.StandardPixmap.SP_MediaPause), "Pause")
        self.pause_button.setToolTip("Pause between batches; Resume carries on where it stopped")
        self.pause_button.clicked.connect(self.toggle_pause)
        self.stop_button = QPushButton(style.standardIcon(QStyle.StandardPixmap.SP_MediaStop), "Stop")
        self.stop_button.setToolTip("Stop within one batch; the model trained so far is kept")
        self.stop_button.clicked.connect(self.stop_training)
        self.compare_button = QPushButton("Compare with zero-init")
        self.compare_button.setObjectName("compareButton")
        self.compare_button.clicked.connect(self.start_comparison)
        self.problem_label = ElidedLabel()
        self.problem_label.setObjectName("problemSummary")
        self.problem_label.setTextFormat(Qt.TextFormat.PlainText)

        buttons = QHBoxLayout()
        buttons.setSpacing(8)
        buttons.addWidget(self.train_button)
        buttons.addWidget(self.pause_button)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.compare_button)
        buttons.addSpacing(12)
        buttons.addWidget(self.problem_label, 1)

        self.progress = RunProgress()
        self.plots = TrainingPlots()
        self.plots.set_epochs(self.config.training.epochs)
        line = QFrame()
        line.setFrameShape(QFrame.Shape.HLine)
        line.setFrameShadow(QFrame.Shadow.Sunken)

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(10, 10, 10, 6)
        layout.setSpacing(8)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(line)
        layout.addWidget(self._build_views(), 1)
        self.setCentralWidget(central)

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
        self.dropout_lab = DropoutLabPanel(lambda: self.config, self.runs_dir)
        self.views.addTab(self.dropout_lab, "Dropout lab")
        self.dropout_lab.apply_requested.connect(self.apply_dropout)
        self.dropout_lab.running_changed.connect(self._on_sweep_running)
        self.dropout_lab.log_message.connect(self._on_sweep_message)
        # The second mode: a DCGAN with its own config, runs (runs/gan/), plots, FID and sweep.
        self.gan_lab = GanLabPanel(self.runs_dir, self.model_pool, self.model_cancel)
        self.views.addTab(self.gan_lab, "GAN lab")
        self.gan_lab.running_changed.connect(self._on_sweep_running)
        self.gan_lab.log_message.connect(self._on_sweep_message)
        self.runs_panel.runs_changed.connect(self._on_runs_changed)
        self.runs_panel.current_run_changed.connect(self._on_run_selected)
        self.runs_panel.run_again_requested.connect(self.run_again)
        self.runs_panel.evaluate_requested.connect(self.evaluate_run)
        self.runs_panel.export_requested.connect(self.open_export_dialog)
        self.runs_panel.set_model_jobs(self.model_pool, self.model_cancel)  # Save backbone loads the run's model
        self.runs_panel.backbone_saved.connect(self.backbone_panel.add_saved_backbone)
        self.runs_panel.log_message.connect(self._on_sweep_message)
        self.evaluate_panel.export_requested.connect(self.open_export_dialog)
        self.evaluate_panel.image_activated.connect(self._on_image_activated)
        self._on_runs_changed(list(self.runs_panel.records.values()))
        return self.views

    def _build_docks(self) -> None:
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        for panel in self.panels:
            scroll = QScrollArea()
            scroll.setWidget(panel)
            scroll.setWidgetResizable(True)
            scroll.setFrameShape(QFrame.Shape.NoFrame)
            scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            self.tabs.addTab(scroll, panel.title)
        self.settings_dock = QDockWidget("Settings", self)
        self.settings_dock.setObjectName("settingsDock")
        self.settings_dock.setWidget(self.tabs)
        self.settings_dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        self.settings_dock.setMinimumWidth(400)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.settings_dock)

        self.log = LogView()
        self.log_dock = QDockWidget("Log", self)
        self.log_dock.setObjectName("logDock")
        self.log_dock.setWidget(self.log)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.log_dock)
        self.resizeDocks([self.settings_dock], [440], Qt.Orientation.Horizontal)
        self.resizeDocks([self.log_dock], [170], Qt.Orientation.Vertical)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.open_config_action = file_menu.addAction("&Open config…", QKeySequence.StandardKey.Open)
        self.open_config_action.triggered.connect(self.open_config_dialog)
        self.save_config_action = file_menu.addAction("&Save config…", QKeySequence.StandardKey.Save)
        self.save_config_action.triggered.connect(self.save_config_dialog)
        file_menu.addSeparator()
        self.open_folder_action = file_menu.addAction("Open &dataset folder…", QKeySequence("Ctrl+D"))
        self.open_folder_action.triggered.connect(self.open_dataset_dialog)
        file_menu.addSeparator()
        self.resume_action = file_menu.addAction("&Resume a run…")
        self.resume_action.setToolTip("Continue a stopped, failed or interrupted run from its last checkpoint")
        self.resume_action.triggered.connect(self.resume_run_dialog)
        file_menu.addSeparator()
        self.install_launcher_action = file_menu.addAction("Install desktop &launcher")
        self.install_launcher_action.triggered.connect(self.install_launcher)
        file_menu.addSeparator()
        quit_action = file_menu.addAction("&Quit", QKeySequence.StandardKey.Quit)
        quit_action.setMenuRole(QAction.MenuRole.QuitRole)
        quit_action.triggered.connect(self.close)

        run_menu = self.menuBar().addMenu("&Run")
        self.train_action = run_menu.addAction("&Train")
        self.train_action.triggered.connect(self.start_training)
        self.compare_action = run_menu.addAction("&Compare transfer with zero-init")
        self.compare_action.triggered.connect(self.start_comparison)
        self.stop_action = run_menu.addAction("&Stop")
        self.stop_action.triggered.connect(self.stop_training)

        view_menu = self.menuBar().addMenu("&View")
        view_menu.addAction(self.settings_dock.toggleViewAction())
        view_menu.addAction(self.log_dock.toggleViewAction())
        view_menu.addSeparator()
        for index in range(self.views.count()):
            action = view_menu.addAction(self.views.tabText(index), QKeySequence(f"Ctrl+{index + 1}"))
            action.setData(index)
            action.triggered.connect(self._on_view_action)

        help_menu = self.menuBar().addMenu("&Help")
        about = help_menu.addAction("&About Workbench")
        about.setMenuRole(QAction.MenuRole.AboutRole)
        about.triggered.connect(self.show_about)

    DEVICE_PROBE_DELAY_MS = 2500

    @Slot()
    def _start_device_probe(self) -> None:
        from workbench.ui.tasks.background import probe_devices

        self.device_jobs.submit(probe_devices)

    @Slot(int, object)
    def _on_devices_done(self, job_id: int, text) -> None:
        self.device_label.setText(str(text))
        self.training_panel.device_label.setText(str(text))

    @Slot(int, str)
    def _on_devices_failed(self, job_id: int, message: str) -> None:
        self.device_label.setText("Devices: unknown")
        self.device_label.setToolTip(message)

    def _build_status_bar(self) -> None:
        from workbench.core.runs.store import default_runs_dir

        runs = Path(self.runs_dir) if self.runs_dir else default_runs_dir()
        self.runs_label = QLabel(f"Runs: {runs}")
        self.runs_label.setObjectName("hint")
        self.statusBar().addPermanentWidget(self.runs_label)
        self.device_label = QLabel("")
        self.device_label.setObjectName("hint")
        self.statusBar().addPermanentWidget(self.device_label)
        self.statusBar().showMessage("Ready", 5000)

    # ---- editing and validation ------------------------------------------------------------
    @Slot(str)
    def _on_edited(self, path: str) -> None:
        for panel in self.panels:
            if panel is not self.sender():
                panel.update_state()
        self.revalidate()
        if path == "data.folder":
            self._scan_timer.start(SCAN_DELAY_MS)
        if path.startswith(READOUT_FIELDS):
            self._schedule_readout(READOUT_DELAY_MS)
        if path == "training.epochs" and not self.runner.running:
            self.plots.set_epochs(self.config.training.epochs)

    def revalidate(self) -> list[Problem]:
        """Collect every problem, mark it at its field, and allow Train only when there are none."""
        problems = [p for panel in self.panels for p in panel.input_problems()]
        typed = {p.field for p in problems}
        problems += [p for p in validate(self.config) if p.field not in typed]
        report = self.scan_report
        if report is not None and self._scan_is_current(report):
            problems += [p for p in getattr(report, "blocking", ()) if p not in problems]
        self.problems = problems

        by_field: dict[str, list[str]] = defaultdict(list)
        for problem in problems:
            by_field[problem.field].append(problem.message)
        warning = self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
        for index, panel in enumerate(self.panels):
            marked = panel.show_problems(by_field)
            self.tabs.setTabIcon(index, warning if marked else QIcon())
        self._show_problem_summary()
        self._update_controls()
        return problems

    def _field_label(self, path: str) -> str:
        for panel in self.panels:
            label = panel.label_for(path)
            if label:
                return label
        return path

    def _show_problem_summary(self) -> None:
        if self.problems:
            first = self.problems[0]
            where = self._field_label(first.field) if first.field else ""
            lead = f"{where}: {first.message}" if where else first.message
            count = len(self.problems)
            text = f"Fix {count} problem{'s' if count > 1 else ''} to train — {lead}"
            details = "\n".join(
                f"• {self._field_label(p.field)}: {p.message}" if p.field else f"• {p.message}" for p in self.problems
            )
            self.problem_label.setText(text)
            self.problem_label.setToolTip(details)
            self.problem_label.setProperty("ready", False)
        else:
            report = self.scan_report
            if report is not None and self._scan_is_current(report):
                images = sum(report.counts.values())
                text = f"Ready: {images} images in {len(report.class_names)} classes"
            else:
                text = "Ready"
            self.problem_label.setText(text)
            self.problem_label.setToolTip("")
            self.problem_label.setProperty("ready", True)
        self.problem_label.style().unpolish(self.problem_label)
        self.problem_label.style().polish(self.problem_label)

    def _update_controls(self) -> None:
        running = self.runner.running
        stopping = self.runner.stopping
        self.train_button.setEnabled(not running and not self.problems and not self.dropout_lab.running
                                     and not self.gan_lab.running)
        self.stop_button.setEnabled(running and not stopping)
        self.pause_button.setEnabled(running and not stopping)
        self.pause_button.setText("Resume" if self.runner.paused else "Pause")
        icon = QStyle.StandardPixmap.SP_MediaPlay if self.runner.paused else QStyle.StandardPixmap.SP_MediaPause
        self.pause_button.setIcon(self.style().standardIcon(icon))
        self.train_action.setEnabled(self.train_button.isEnabled())
        self.stop_action.setEnabled(self.stop_button.isEnabled())
        self.comparison.update_controls()
        for panel in self.panels:
            panel.setEnabled(not running)
        for action in (self.open_config_action, self.open_folder_action, self.resume_action):
            action.setEnabled(not running)
        # a sweep (or the GAN lab) trains too, holding the Keras lock
        models_busy = running or self.dropout_lab.running or self.gan_lab.running
        self.runs_panel.set_training(models_busy, self._active_run_dir if running else "")
        self.evaluate_panel.set_training(models_busy)
        self.predict_panel.set_training(models_busy)
        self.dropout_lab.set_training(running or self.gan_lab.running)
        self.gan_lab.set_training(running or self.dropout_lab.running)

    def set_config(self, config: RunConfig) -> None:
        """Replace the whole config (opened from a file): every panel shows it."""
        self.config = config
        for panel in self.panels:
            panel.set_config(config)
        self.plots.set_epochs(config.training.epochs)
        self.scan_report = None
        self.revalidate()
        self._start_scan()
        self._schedule_readout(READOUT_DELAY_MS)

    # ---- dataset scan (background) ------------------------------------------------------------
    def _scan_is_current(self, report) -> bool:
        folder = self.config.data.folder.strip()
        return bool(folder) and Path(report.root) == Path(folder)

    @Slot()
    def _start_scan(self) -> None:
        folder = self.config.data.folder.strip()
        if not folder or not Path(folder).is_dir():
            self.scan_report = None
            self.data_panel.clear_scan("")
            self.scan_jobs.latest += 1  # forget any scan still running
            self.revalidate()
            return
        self.data_panel.show_scanning(folder)
        self.scan_jobs.submit(scan_dataset, folder, report_progress=True)

    @Slot(int, object)
    def _on_scan_done(self, job_id: int, report) -> None:
        if job_id != self.scan_jobs.latest or not self._scan_is_current(report):
            return
        classes_before = len(self.scan_report.class_names) if self.scan_report else None
        self.scan_report = report
        self.data_panel.show_scan(report)
        self.settings.setValue(keys.LAST_FOLDER, report.root)
        self.revalidate()
        if classes_before is not None and classes_before != len(report.class_names):
            self._schedule_readout(READOUT_DELAY_MS)

    @Slot(int, int, int)
    def _on_scan_progress(self, job_id: int, done: int, total: int) -> None:
        if job_id == self.scan_jobs.latest:
            self.data_panel.show_scanning(self.config.data.folder.strip(), done, total)

    @Slot(int, str)
    def _on_scan_failed(self, job_id: int, message: str) -> None:
        if job_id == self.scan_jobs.latest:
            self.data_panel.show_scan_failed(message)

    # ---- trainable-layer readout (background, debounced) --------------------------------------------
    def refresh_readout(self) -> None:
        """Count the editor's config again (after a run, whose own counts the readout showed)."""
        self._schedule_readout(READOUT_DELAY_MS)

    def _schedule_readout(self, delay_ms: int) -> None:
        if not self.runner.running:
            self._readout_timer.start(delay_ms)

    @Slot()
    def _start_readout(self) -> None:
        if self.runner.running:
            return
        if any(p.field.startswith(READOUT_FIELDS) for p in self.problems):
            self.regularization_panel.set_readout(
                "Fix the problems marked in red to count the trainable layers.", "error"
            )
            return
        report = self.scan_report
        classes = len(report.class_names) if report is not None and len(report.class_names) >= 2 else 2
        snapshot = RunConfig.from_dict(self.config.to_dict())
        self.regularization_panel.set_readout("Counting trainable layers…", "busy")
        self.readout_jobs.submit(count_trainable, snapshot, classes)

    @Slot(int, object)
    def _on_readout_done(self, job_id: int, summary) -> None:
        if job_id != self.readout_jobs.latest or self.runner.running:
            return
        if summary is None:  # another model job held the lock: try again shortly
            self._schedule_readout(READOUT_DELAY_MS)
            return
        self.regularization_panel.set_readout(summary.text)

    @Slot(int, str)
    def _on_readout_failed(self, job_id: int, message: str) -> None:
        if job_id == self.readout_jobs.latest and not self.runner.running:
            self.regularization_panel.set_readout(f"Could not count the trainable layers: {message}", "error")

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
        self._readout_timer.stop()
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
        self._update_controls()

    @Slot()
    def start_comparison(self) -> None:
        """Train the config as it is and with zero transfer, then overlay both runs (ui/compare.py)."""
        self.comparison.start()

    @Slot()
    def resume_run_dialog(self) -> None:
        from workbench.core.runs.store import default_runs_dir

        start = str(Path(self.runs_dir) if self.runs_dir else default_runs_dir())
        folder = QFileDialog.getExistingDirectory(self, "Choose a run folder to resume", start)
        if folder:
            self.resume_run(folder)

    def resume_run(self, run_dir: str | Path) -> bool:
        """Continue a run in its own folder from its last checkpoint, with its own settings.

        The panels show the run's config; the curves show its earlier epochs (from
        metrics.csv) and then continue. The core refuses a finished run, with a dialog.
        """
        from workbench.core.runs.checkpoint_state import read_state
        from workbench.core.runs.store import CHECKPOINT_FILE, CONFIG_FILE

        if self.runner.running:
            return False
        path = Path(run_dir)
        try:
            config = load_config(path / CONFIG_FILE)
        except ConfigError as exc:
            self.show_error("Cannot resume the run", f"{path} cannot be resumed:\n\n"
                            + "\n".join(f"• {p}" for p in exc.problems))
            return False
        state = read_state(path / CHECKPOINT_FILE)
        self.set_config(RunConfig.from_dict(config.to_dict()))  # the panels' copy; the run keeps the file's
        self._readout_timer.stop()
        epochs = config.training.epochs
        self.plots.reset(epochs)
        self.progress.preparing(epochs)
        if state:
            self.log.add("info", f"Resuming run {path.name} after epoch {state['epochs_done']} of {epochs}")
        else:
            self.log.add("warning", f"Run {path.name} has no checkpoint: it starts again from the first epoch")
        self.last_result = None
        self.views.setCurrentWidget(self.plots)
        self.runner.start(config, runs_dir=self.runs_dir, resume_from=str(path))
        self.statusBar().showMessage("Training (resumed)…")
        self._update_controls()
        return True

    def _show_earlier_epochs(self, run_dir: str, through_epoch: int) -> None:
        """A resumed run's curves start with the epochs it had done (metrics.csv is small)."""
        from workbench.core.runs.store import read_metrics

        for row in read_metrics(run_dir):
            if row["epoch"] <= through_epoch:
                logs = {k: v for k, v in row.items() if k not in ("epoch", "seconds")}
                self.plots.add_epoch(EpochEnd(epoch=row["epoch"] - 1, logs=logs, seconds=row.get("seconds", 0.0)))

    @Slot()
    def stop_training(self) -> None:
        if self.runner.running and not self.runner.stopping:
            self.runner.stop()
            self.progress.set_paused(False)
            self.log.add("info", "Stopping after the current batch…")
            self.statusBar().showMessage("Stopping…")
            self._update_controls()

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
            self.statusBar().showMessage("Paused (the run waits between two batches)")
        self._update_controls()

    @Slot(object)
    def _on_run_event(self, event: Event) -> None:
        if isinstance(event, BatchEnd):
            self.plots.add_batch(event)
            self.progress.on_batch(event.epoch, event.batch, event.steps)
        elif isinstance(event, EpochEnd):
            self.plots.add_epoch(event)
            self.progress.on_epoch(event.epoch, event.seconds)
            self.log.add("info", self._epoch_line(event))
        elif isinstance(event, RunStarted):
            self.plots.set_epochs(event.epochs)
            self.progress.started(event.epochs, event.steps_per_epoch)
            if event.initial_epoch:
                self._show_earlier_epochs(event.run_dir, event.initial_epoch)
            counts = FreezeSummary(event.layers_total, event.layers_trainable,
                                   event.params_trainable, event.params_frozen)
            self.regularization_panel.set_readout(counts.text)
            self.log.add("info", f"Run folder: {event.run_dir}")
            self._active_run_dir = event.run_dir
            self.runs_panel.set_training(True, event.run_dir)  # the new run shows in the list, running
            self.log.add(
                "info",
                f"{event.train_images} training and {event.val_images} validation images, "
                f"{len(event.class_names)} classes ({', '.join(event.class_names)}), "
                f"{event.steps_per_epoch} batches per epoch",
            )
        elif isinstance(event, Message):
            self.log.add(event.level, event.text)
            if event.kind == "phase":
                self.plots.add_marker(event.epoch)

    def _epoch_line(self, event: EpochEnd) -> str:
        total = self.config.training.epochs
        parts = [f"{key} {event.logs[key]:.4f}" for key in ("loss", "accuracy", "val_loss", "val_accuracy")
                 if key in event.logs]
        return f"Epoch {event.epoch + 1}/{total}: " + ", ".join(parts) + f" ({event.seconds:.1f} s)"

    @Slot(object)
    def _on_run_finished(self, result: RunFinished | RunFailed) -> None:
        self.last_result = result
        self._active_run_dir = ""
        self.progress.set_paused(False)
        if isinstance(result, RunFinished):
            if result.stopped:
                text = "Stopped"
            elif result.reason:
                text = f"Finished ({result.reason})"
            else:
                text = "Finished"
            self.progress.finish(text)
            epochs = f"{result.epochs_done} epoch{'s' if result.epochs_done != 1 else ''}"
            self.log.add("success", f"{text} after {epochs}. Saved in {result.run_dir}")
            if result.best:
                best = ", ".join(f"{k} {v:.4f}" for k, v in result.best.items() if k.startswith("val_"))
                epoch = int(result.best.get("epoch", 0))
                if best:
                    self.log.add("success", f"Kept the model of epoch {epoch}: {best}")
            self.statusBar().showMessage(f"{text}: {result.run_dir}")
        else:
            self.progress.finish("Failed")
            self.log.add("error", f"{result.error}")
            self.statusBar().showMessage("The run failed", 10000)
            if not self._close_after_run:
                title = "Cannot start training" if result.kind == "invalid" else "Training failed"
                more = f"\n\nThe run folder keeps what was done: {result.run_dir}" if result.run_dir else ""
                self.show_error(title, result.error + more, result.details)
        self._update_controls()  # also re-reads the runs folder: the run's final state is listed
        if result.run_dir:
            self.evaluate_panel.set_run(result.run_dir)
            self.predict_panel.set_run(result.run_dir)
        self.run_ended.emit(result)
        if self._close_after_run:
            QTimer.singleShot(0, self.close)

    # ---- dropout lab ---------------------------------------------------------------------------
    @Slot(str, float)
    def apply_dropout(self, kind: str, rate: float) -> None:
        """The Dropout lab's winner goes into the config, through the Regularization panel."""
        if self.runner.running:
            return
        self.regularization_panel.set_value("dropout.kind", kind)
        self.regularization_panel.set_value("dropout.rate", rate)
        self.log.add("success", f"Applied the sweep's best: {kind} dropout at rate {rate:g}")

    @Slot(bool)
    def _on_sweep_running(self, running: bool) -> None:
        self._update_controls()

    @Slot(str, str)
    def _on_sweep_message(self, level: str, text: str) -> None:
        self.log.add(level, text)

    # ---- saved runs: evaluate, predict, export, run again -----------------------------------
    @Slot(object)
    def _on_runs_changed(self, records) -> None:
        self.evaluate_panel.set_runs(records)
        self.predict_panel.set_runs(records)

    @Slot(str)
    def _on_run_selected(self, run_dir: str) -> None:
        self.evaluate_panel.set_run(run_dir)
        self.predict_panel.set_run(run_dir)

    @Slot()
    def _on_view_action(self) -> None:
        action = self.sender()
        if isinstance(action, QAction):
            self.views.setCurrentIndex(int(action.data()))

    @Slot(object)
    def run_again(self, config: RunConfig) -> None:
        """Load a saved run's config into the editor, ready to train again."""
        if self.runner.running:
            return
        self.set_config(config)
        self.settings_dock.show()
        self.log.add("info", f"Loaded the config of run '{config.name or config.backbone.name}': press Train to run it again")
        self.statusBar().showMessage("Loaded the run's config: press Train to run it again", 8000)

    @Slot(str)
    def evaluate_run(self, run_dir: str) -> None:
        self.views.setCurrentWidget(self.evaluate_panel)
        self.evaluate_panel.evaluate(run_dir)

    @Slot(str, str)
    def _on_image_activated(self, run_dir: str, path: str) -> None:
        self.predict_panel.set_run(run_dir)
        self.views.setCurrentWidget(self.predict_panel)
        self.predict_panel.add_paths([path])

    @Slot(str)
    def open_export_dialog(self, run_dir: str) -> ExportDialog:
        """The Export dialog for a run (one at a time; an export in progress keeps its dialog)."""
        dialog = self.export_dialog
        if dialog is not None and dialog.busy:
            dialog.show()
            dialog.raise_()
            return dialog
        if dialog is not None:
            dialog.deleteLater()
        record = self.runs_panel.records.get(run_dir)
        title = Path(run_dir).name
        if record is not None and record.config is not None and record.config.name:
            title = f"{record.config.name} ({title})"
        dialog = ExportDialog(run_dir, title, self.model_pool, self.model_cancel, self)
        dialog.exported.connect(self._on_exported)
        dialog.export_failed.connect(self._on_export_failed)
        self.export_dialog = dialog
        dialog.open()
        return dialog

    @Slot(object)
    def _on_exported(self, result) -> None:
        if result.ok:
            self.log.add("success", f"Exported {result.format} ({result.size_text}): {result.path}; largest "
                                    f"difference from the original {result.max_abs_diff:.2g}")
        else:
            self.log.add("error", f"Export as {result.format} failed: {result.error}")

    @Slot(str)
    def _on_export_failed(self, message: str) -> None:
        self.log.add("error", f"Export failed: {message}")

    # ---- files ---------------------------------------------------------------------------
    @Slot()
    def open_config_dialog(self) -> None:
        start = str(self.settings.value(keys.LAST_CONFIG, "") or Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Open a config", start, "Workbench config (*.json);;All files (*)")
        if path:
            self.open_config(path)

    def open_config(self, path: str | Path) -> bool:
        try:
            config = load_config(path)
        except ConfigError as exc:
            self.show_error("Cannot open the config", f"{path} cannot be used:\n\n"
                            + "\n".join(f"• {p}" for p in exc.problems))
            return False
        self.set_config(config)
        self.settings.setValue(keys.LAST_CONFIG, str(path))
        self.log.add("info", f"Opened config {path}")
        self.statusBar().showMessage(f"Opened {path}", 5000)
        return True

    @Slot()
    def save_config_dialog(self) -> None:
        last = str(self.settings.value(keys.LAST_CONFIG, "") or "")
        folder = Path(last).parent if last else Path.home()
        name = (self.config.name or "run").replace("/", "-") + ".json"
        path, _ = QFileDialog.getSaveFileName(self, "Save the config", str(folder / name), "Workbench config (*.json)")
        if path:
            if not path.lower().endswith(".json"):
                path += ".json"
            self.save_config(path)

    def save_config(self, path: str | Path) -> bool:
        try:
            save_config(self.config, path)
        except OSError as exc:
            self.show_error("Cannot save the config", f"{path} could not be written: {exc}")
            return False
        self.settings.setValue(keys.LAST_CONFIG, str(path))
        self.log.add("info", f"Saved config {path} (train it headless: workbench train {path})")
        self.statusBar().showMessage(f"Saved {path}", 5000)
        return True

    @Slot()
    def open_dataset_dialog(self) -> None:
        start = str(self.settings.value(keys.LAST_FOLDER, "") or self.config.data.folder or Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder of images (one sub-folder per class)", start)
        if folder:
            self.set_dataset_folder(folder)

    def set_dataset_folder(self, folder: str) -> None:
        self.tabs.setCurrentIndex(self.panels.index(self.data_panel))
        self.data_panel.set_value("data.folder", folder)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if not self.runner.running and self._dropped_folder(event) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        folder = self._dropped_folder(event)
        if folder is not None and not self.runner.running:
            self.set_dataset_folder(folder)
            event.acceptProposedAction()

    @staticmethod
    def _dropped_folder(event: QDragEnterEvent | QDropEvent) -> str | None:
        for url in event.mimeData().urls():
            if url.isLocalFile() and Path(url.toLocalFile()).is_dir():
                return url.toLocalFile()
        return None

    # ---- dialogs ---------------------------------------------------------------------------
    def show_error(self, title: str, text: str, details: str = "") -> QMessageBox:
        """A non-blocking error dialog on the GUI thread; kept in `error_box` (tests read it)."""
        if self.error_box is not None:
            self.error_box.deleteLater()
        box = QMessageBox(QMessageBox.Icon.Critical, title, text, QMessageBox.StandardButton.Ok, self)
        if details:
            box.setDetailedText(details)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        box.open()
        self.error_box = box
        return box

    def show_info(self, title: str, text: str) -> QMessageBox:
        if self.info_box is not None:
            self.info_box.deleteLater()
        box = QMessageBox(QMessageBox.Icon.Information, title, text, QMessageBox.StandardButton.Ok, self)
        box.open()
        self.info_box = box
        return box

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
        def version(package: str) -> str:
            try:
                return importlib.metadata.version(package)
            except importlib.metadata.PackageNotFoundError:
                return "not installed"

        self.show_info(
            "About Workbench",
            f"Workbench {workbench.__version__}\n"
            "Point-and-click transfer learning: pretrained backbones, dropout, freezing, live curves.\n\n"
            f"TensorFlow {version('tensorflow')}, Keras {version('keras')}\n"
            f"PySide6 {version('PySide6-Essentials')}, pyqtgraph {version('pyqtgraph')}\n"
            f"Python {platform.python_version()}",
        )

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
            if self._close_after_run:
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
                self._close_after_run = True
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
        self._scan_timer.stop()
        self._readout_timer.stop()
        self._device_timer.stop()
        self.model_cancel.set()  # model jobs stop waiting for the Keras lock
        self.dropout_lab.shutdown()
        self.gan_lab.shutdown()
        self.runner.shutdown()
        self.pool.clear()
        self.model_pool.clear()
        self.pool.waitForDone()
        self.model_pool.waitForDone()
