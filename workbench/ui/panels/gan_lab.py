"""GAN lab: train a DCGAN with dropout in the discriminator, watch it learn, score it with FID.

The second mode of Workbench, built from the same pieces as the classifier: a plain config
(core.gan_config.GanConfig) edited by a form and checked on every edit, a run through the
shared TrainingRunner (ui/worker.py) with `core.gan.run` in a child process as its run function,
events drawn by plots that redraw on a timer, a run folder per run. FID runs as a background
model job under the Keras lock; the dropout-rate sweep runs through the shared SweepRunner.
Nothing here imports TensorFlow: the core does, in the child processes and the model jobs.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QThreadPool, QTimer, Signal, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.core.base.events import (
    GanEvaluated,
    GanSamples,
    GanStarted,
    GanStep,
    Message,
    RunFailed,
    RunFinished,
)
from workbench.core.base.problems import ConfigError, Problem
from workbench.core.config.fields import get_field, set_field
from workbench.core.config.gan import (
    GanConfig,
    feature_problems,
    load_gan_config,
    save_gan_config,
    validate_gan,
)
from workbench.core.config.gan_sweep import GanSweepConfig, validate_gan_sweep
from workbench.core.config.sweep import parse_rates
from workbench.core.runs.gan_sweeps import (
    GanSweepFinished,
    GanSweepResult,
    GanSweepStarted,
    GanTrialDone,
    GanTrialEvent,
)
from workbench.ui.fields import (
    CheckGroup,
    ChoiceCombo,
    FloatEdit,
    InputError,
    PathEdit,
    mark_problem,
)
from workbench.ui.plots import drawn_points
from workbench.ui.tasks import model_jobs
from workbench.ui.tasks.background import BackgroundJobs
from workbench.ui.tasks.runner import GAN_RUN, RunFunction, TrainingRunner
from workbench.ui.tasks.sweep_runner import GAN_SWEEP, SweepRunner

REDRAW_MS = 50
COLORS = {"d_loss": "#2563eb", "g_loss": "#ea580c", "d_real": "#16a34a", "d_fake": "#dc2626"}
SWEEP_COLUMNS = ("Rate", "Status", "FID", "Inception Score", "Steps", "Run folder")






def default_gan_config() -> GanConfig:
    """A first config that trains in minutes on a laptop CPU."""
    config = GanConfig()
    config.training.steps = 2000
    config.training.batch_size = 64
    return config


class _Curve:
    """x/y values in numpy buffers that double when full (setData gets views, not lists)."""

    def __init__(self) -> None:
        self.data = np.empty((2, 1024))
        self.n = 0

    def add(self, x: float, y: float) -> None:
        if self.n == self.data.shape[1]:
            grown = np.empty((2, 2 * self.n))
            grown[:, : self.n] = self.data
            self.data = grown
        self.data[:, self.n] = (x, y)
        self.n += 1

    def clear(self) -> None:
        self.data = np.empty((2, 1024))
        self.n = 0

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return self.data[0, : self.n], self.data[1, : self.n]


def _plot(title: str, left: str) -> pg.PlotWidget:
    widget = pg.PlotWidget(background="w")
    item = widget.getPlotItem()
    item.setTitle(f"<span style='font-size:11pt; font-weight:600'>{title}</span>")
    item.setLabel("bottom", "step")
    item.setLabel("left", left)
    item.showGrid(x=True, y=True, alpha=0.2)
    item.setDownsampling(auto=True, mode="peak")
    item.setClipToView(True)
    item.setMenuEnabled(False)
    item.addLegend(offset=(-10, 10))
    return widget


class GanLabPanel(QWidget):
    """The GAN config form, Train / Pause / Stop, live losses and D outputs, the sample grid, FID and the sweep."""

    running_changed = Signal(bool)
    log_message = Signal(str, str)  # level, text: for the main window's log
    run_ended = Signal(object)  # RunFinished | RunFailed
    fid_computed = Signal(object)  # FidResult

    def __init__(self, runs_dir: str | Path | None, model_pool: QThreadPool, cancel: threading.Event,
                 parent: QWidget | None = None, run_fn: RunFunction | None = None, sweep_fn=None,
                 config: GanConfig | None = None):
        super().__init__(parent)
        from workbench.core.runs.store import gan_runs_root

        self.runs_root = gan_runs_root(runs_dir)
        self.config = config or default_gan_config()
        self._cancel = cancel
        self._training_elsewhere = False
        self.problems: list[Problem] = []
        self.last_result: RunFinished | RunFailed | None = None
        self.last_samples: GanSamples | None = None
        self.fid_result = None
        self.sweep_result: GanSweepResult | None = None
        self.sweep_trials: list = []
        self._fid_busy = False
        self._steps = 1

        self.runner = TrainingRunner(self, run_fn=run_fn or GAN_RUN)
        self.runner.event.connect(self._on_event)
        self.runner.finished.connect(self._on_finished)
        self.sweeper = SweepRunner(self, sweep_fn=sweep_fn or GAN_SWEEP)
        self.sweeper.event.connect(self._on_sweep_event)
        self.sweeper.finished.connect(self._on_sweep_finished)
        self.fid_jobs = BackgroundJobs(model_pool, self)
        self.fid_jobs.done.connect(self._on_fid_done)
        self.fid_jobs.failed.connect(self._on_fid_failed)

        self.widgets: dict[str, QWidget] = {}
        form_widget = self._build_form()
        scroll = QScrollArea()
        scroll.setWidget(form_widget)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(360)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addLayout(self._build_buttons())
        right_layout.addWidget(self.status_label)
        right_layout.addWidget(self.problem_label)
        views = QSplitter(Qt.Orientation.Vertical)
        views.addWidget(self._build_live())
        views.addWidget(self._build_results())
        views.setSizes([420, 260])
        right_layout.addWidget(views, 1)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(scroll)
        splitter.addWidget(right)
        splitter.setSizes([380, 900])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(splitter)

        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self._redraw)
        self._timer.start()
        self.set_config(self.config)

    # ---- building ---------------------------------------------------------------------
    def _field(self, form: QFormLayout, label: str, path: str, widget: QWidget, tip: str = "") -> None:
        if tip:
            widget.setToolTip(tip)
        self.widgets[path] = widget
        form.addRow(label, widget)
        signal = getattr(widget, "valueChanged", None) or getattr(widget, "textChanged", None)
        if isinstance(widget, QCheckBox):
            signal = widget.toggled
        signal.connect(self._on_form_edited)

    @staticmethod
    def _spin(low: int, high: int, step: int = 1) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(low, high)
        spin.setSingleStep(step)
        spin.setMaximumWidth(140)
        return spin

    def _build_form(self) -> QWidget:
        from workbench.core.config.backbone_catalogue import BACKBONES

        box = QWidget()
        outer = QVBoxLayout(box)
        outer.setContentsMargins(0, 0, 6, 0)

        data = QGroupBox("Images")
        form = QFormLayout(data)
        self._field(form, "Folder", "data.folder", PathEdit(folder=True, caption="Choose a folder of images"),
                    "A folder of images, or a folder with one sub-folder per class")
        self._field(form, "Class", "data.class_name", QLineEdit(),
                    "One class (sub-folder) to learn; empty: every image in the folder")
        self.widgets["data.class_name"].setPlaceholderText("all classes")
        self._field(form, "Image size", "data.image_size", ChoiceCombo([(32, "32 x 32"), (64, "64 x 64")]))
        self._field(form, "Keep in memory", "data.cache", QCheckBox("decode each image once"))
        outer.addWidget(data)

        model = QGroupBox("Networks")
        form = QFormLayout(model)
        self._field(form, "Latent size", "model.latent_size", self._spin(1, 1024),
                    "Length of the noise vector the generator starts from (typical: 100)")
        self._field(form, "Generator width", "model.generator_width", self._spin(4, 1024, 8),
                    "Filters of the generator's last block, doubled toward its start (typical: 64)")
        self._field(form, "Discriminator width", "model.discriminator_width", self._spin(4, 1024, 8),
                    "Filters of the discriminator's first block, doubled toward its end (typical: 64)")
        self._field(form, "Dropout rate", "dropout.rate", FloatEdit(),
                    "Dropout in the discriminator (0: none). It keeps the discriminator from winning outright.")
        self._field(form, "Dropout placement", "dropout.placement",
                    CheckGroup([("after_conv", "after each convolution block"), ("before_output", "before the output")]))
        outer.addWidget(model)

        training = QGroupBox("Training")
        form = QFormLayout(training)
        self._field(form, "Steps", "training.steps", self._spin(1, 10_000_000, 100))
        self._field(form, "Batch size", "training.batch_size", self._spin(2, 4096, 8))
        self._field(form, "Generator learning rate", "training.generator_learning_rate", FloatEdit(),
                    "Adam's learning rate for the generator (typical: 2e-4)")
        self._field(form, "Generator beta 1", "training.generator_beta_1", FloatEdit(),
                    "Adam's beta_1 for the generator (typical for a DCGAN: 0.5)")
        self._field(form, "Discriminator learning rate", "training.discriminator_learning_rate", FloatEdit())
        self._field(form, "Discriminator beta 1", "training.discriminator_beta_1", FloatEdit())
        self._field(form, "Label smoothing", "training.label_smoothing", FloatEdit(),
                    "One-sided: the discriminator's target for real images becomes 1 - this (0: off; typical 0.1)")
        self._field(form, "Samples every", "training.sample_every", self._spin(1, 1_000_000, 10),
                    "Refresh (and save) the grid of samples every this many steps")
        self._field(form, "Checkpoint every", "training.checkpoint_every", self._spin(1, 10_000_000, 100),
                    "Save generator.keras every this many steps")
        self._field(form, "Seed", "training.seed", self._spin(0, 2_000_000_000))
        self._field(form, "Collapse guard", "guard.enabled", QCheckBox("stop and explain when training collapses"))
        outer.addWidget(training)

        fid = QGroupBox("FID features")
        form = QFormLayout(fid)
        self._field(form, "Network", "evaluation.features", ChoiceCombo([
            ("auto", "automatic (InceptionV3 if its weights are here)"), ("classifier", "a trained classifier"),
            ("backbone", "a backbone"), ("inception", "InceptionV3 (ImageNet)")]))
        self._field(form, "Classifier run", "evaluation.classifier_run",
                    PathEdit(folder=True, caption="Choose a trained classifier's run folder"),
                    "Its penultimate layer gives the features, its softmax the Inception Score")
        self._field(form, "Backbone", "evaluation.backbone", ChoiceCombo([(n, n) for n in BACKBONES]))
        self._field(form, "Backbone weights", "evaluation.backbone_weights", ChoiceCombo([
            ("imagenet", "ImageNet (from the Keras cache)"), ("file", "a weights file"), ("none", "random")]))
        self._field(form, "Weights file", "evaluation.weights_file",
                    PathEdit(folder=False, file_filter="Weights (*.h5 *.keras)", caption="Choose a weights file"))
        self._field(form, "Images compared", "evaluation.samples", self._spin(10, 50_000, 100))
        self._field(form, "FID at the end", "evaluation.fid_at_end", QCheckBox("compute FID when training ends"))
        self.source_label = QLabel()
        self.source_label.setObjectName("hint")
        self.source_label.setWordWrap(True)
        form.addRow(self.source_label)
        outer.addWidget(fid)

        files = QHBoxLayout()
        self.open_button = QPushButton("Open config…")
        self.open_button.clicked.connect(self.open_config_dialog)
        self.save_button = QPushButton("Save config…")
        self.save_button.setToolTip("Save as JSON; train it headless with: workbench gan CONFIG.json")
        self.save_button.clicked.connect(self.save_config_dialog)
        files.addWidget(self.open_button)
        files.addWidget(self.save_button)
        files.addStretch(1)
        outer.addLayout(files)
        outer.addStretch(1)
        return box

    def _build_buttons(self) -> QHBoxLayout:
        self.train_button = QPushButton("Train GAN")
        self.train_button.setObjectName("ganTrainButton")
        self.train_button.clicked.connect(self.start_training)
        self.pause_button = QPushButton("Pause")
        self.pause_button.clicked.connect(self.toggle_pause)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop after the current step; the generator so far is saved")
        self.stop_button.clicked.connect(self.stop_training)
        self.status_label = QLabel("Choose a folder of images and press Train GAN.")
        self.status_label.setWordWrap(True)
        self.problem_label = QLabel()
        self.problem_label.setObjectName("problemSummary")
        self.problem_label.setWordWrap(True)
        self.problem_label.setTextFormat(Qt.TextFormat.PlainText)
        row = QHBoxLayout()
        for button in (self.train_button, self.pause_button, self.stop_button):
            row.addWidget(button)
        row.addStretch(1)
        return row

    def _build_live(self) -> QWidget:
        self.loss_plot = _plot("Losses", "loss")
        self.d_plot = _plot("Discriminator outputs", "probability 'real'")
        self.d_plot.getPlotItem().enableAutoRange(y=False)
        self.d_plot.setYRange(0, 1, padding=0.02)
        self.curves = {
            "d_loss": self.loss_plot.plot(pen=pg.mkPen(COLORS["d_loss"], width=1.5), name="discriminator", antialias=False),
            "g_loss": self.loss_plot.plot(pen=pg.mkPen(COLORS["g_loss"], width=1.5), name="generator", antialias=False),
            "d_real": self.d_plot.plot(pen=pg.mkPen(COLORS["d_real"], width=1.5), name="D(real)", antialias=False),
            "d_fake": self.d_plot.plot(pen=pg.mkPen(COLORS["d_fake"], width=1.5), name="D(fake)", antialias=False),
        }
        self._series = {key: _Curve() for key in self.curves}
        self._dirty = False

        self.samples_view = pg.GraphicsLayoutWidget()
        self.samples_view.setBackground("w")
        self.samples_box = self.samples_view.addViewBox(lockAspect=True, invertY=True, enableMouse=False)
        self.samples_image = pg.ImageItem(axisOrder="row-major")
        self.samples_box.addItem(self.samples_image)
        self.samples_label = QLabel("Samples from a fixed noise batch appear here.")
        self.samples_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        samples = QWidget()
        samples_layout = QVBoxLayout(samples)
        samples_layout.setContentsMargins(0, 0, 0, 0)
        samples_layout.addWidget(self.samples_view, 1)
        samples_layout.addWidget(self.samples_label)

        live = QSplitter(Qt.Orientation.Horizontal)
        plots = QSplitter(Qt.Orientation.Vertical)
        plots.addWidget(self.loss_plot)
        plots.addWidget(self.d_plot)
        live.addWidget(plots)
        live.addWidget(samples)
        live.setSizes([560, 340])
        return live

    def _build_results(self) -> QWidget:
        fid = QGroupBox("FID and Inception Score")
        form = QFormLayout(fid)
        self.fid_run = PathEdit(folder=True, caption="Choose a GAN run folder")
        self.fid_run.setToolTip("A GAN run folder (with generator.keras); the last run is filled in")
        self.fid_run.valueChanged.connect(self._update_controls)
        form.addRow("GAN run", self.fid_run)
        self.fid_button = QPushButton("Compute FID")
        self.fid_button.clicked.connect(self.compute_fid)
        self.fid_label = QLabel("–")
        self.fid_label.setWordWrap(True)
        self.fid_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row = QHBoxLayout()
        row.addWidget(self.fid_button)
        row.addWidget(self.fid_label, 1)
        form.addRow(row)

        sweep = QGroupBox("Dropout sweep: FID per discriminator dropout rate")
        layout = QVBoxLayout(sweep)
        row = QHBoxLayout()
        self.rates_edit = QLineEdit("0, 0.3, 0.5")
        self.rates_edit.setToolTip("Discriminator dropout rates, separated by commas; one GAN run each, with the "
                                   "settings on the left, and FID at its end")
        self.rates_edit.textChanged.connect(self._update_controls)
        self.sweep_button = QPushButton("Run sweep")
        self.sweep_button.clicked.connect(self.start_sweep)
        self.sweep_stop_button = QPushButton("Stop sweep")
        self.sweep_stop_button.clicked.connect(self.stop_sweep)
        row.addWidget(QLabel("Rates"))
        row.addWidget(self.rates_edit, 1)
        row.addWidget(self.sweep_button)
        row.addWidget(self.sweep_stop_button)
        layout.addLayout(row)
        self.sweep_table = QTableWidget(0, len(SWEEP_COLUMNS))
        self.sweep_table.setHorizontalHeaderLabels(SWEEP_COLUMNS)
        self.sweep_table.verticalHeader().setVisible(False)
        self.sweep_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.sweep_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.sweep_table.horizontalHeader().setStretchLastSection(True)
        layout.addWidget(self.sweep_table, 1)

        box = QWidget()
        box_layout = QHBoxLayout(box)
        box_layout.setContentsMargins(0, 0, 0, 0)
        box_layout.addWidget(fid, 1)
        box_layout.addWidget(sweep, 1)
        return box

    # ---- the config ---------------------------------------------------------------------
    def set_config(self, config: GanConfig) -> None:
        """Show a whole config (opened from a file) in the form."""
        self.config = config
        for path, widget in self.widgets.items():
            blocked = widget.blockSignals(True)
            self._write(widget, get_field(config, path))
            widget.blockSignals(blocked)
        self.revalidate()

    def set_value(self, path: str, value: Any) -> None:
        """Set one field through its widget, as a person would."""
        self._write(self.widgets[path], value)

    @staticmethod
    def _write(widget: QWidget, value: Any) -> None:
        if isinstance(widget, QCheckBox):
            widget.setChecked(bool(value))
        elif hasattr(widget, "setValue"):  # the fields.py widgets (FloatEdit is a QLineEdit too) and spin boxes
            widget.setValue(value)
        else:
            widget.setText(str(value))

    @staticmethod
    def _read(path: str, widget: QWidget) -> Any:
        if isinstance(widget, QCheckBox):
            return widget.isChecked()
        if hasattr(widget, "value"):
            return widget.value()
        return widget.text().strip()

    @Slot()
    def _on_form_edited(self) -> None:
        self.revalidate()

    def revalidate(self) -> list[Problem]:
        """Read every field into the config, mark each problem at its field, enable Train when there are none."""
        typed: list[Problem] = []
        for path, widget in self.widgets.items():
            try:
                set_field(self.config, path, self._read(path, widget))
            except InputError as exc:
                typed.append(Problem(path, str(exc)))
        bad_input = {p.field for p in typed}
        self.problems = typed + [p for p in validate_gan(self.config) if p.field not in bad_input]
        by_field: dict[str, list[str]] = defaultdict(list)
        for problem in self.problems:
            by_field[problem.field].append(problem.message)
        for path, widget in self.widgets.items():
            target = widget.mark_target() if hasattr(widget, "mark_target") else widget
            mark_problem(target, by_field.get(path, []))
        if self.problems:
            shown = "\n".join(f"• {self._label(p.field)}: {p.message}" if p.field else f"• {p.message}"
                              for p in self.problems[:6])
            more = f"\n… and {len(self.problems) - 6} more" if len(self.problems) > 6 else ""
            self.problem_label.setText(f"Fix to train:\n{shown}{more}")
        self.problem_label.setVisible(bool(self.problems))
        self._show_source()
        self._update_controls()
        return self.problems

    def _label(self, path: str) -> str:
        return path.split(".")[-1].replace("_", " ")

    def _show_source(self) -> None:
        from workbench.core.config.gan_features import describe_source

        problems = feature_problems(self.config.evaluation)
        self.source_label.setText("FID uses: " + (describe_source(self.config.evaluation) if not problems
                                                  else problems[0].message))

    # ---- state ---------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """Whether the lab trains (a run or a sweep) or computes FID: it holds the machine."""
        return self.runner.running or self.sweeper.running or self._fid_busy

    def set_training(self, busy: bool) -> None:
        """A classifier run or a dropout sweep holds the machine: nothing starts here meanwhile."""
        self._training_elsewhere = busy
        self._update_controls()

    def _update_controls(self) -> None:
        training = self.runner.running
        sweeping = self.sweeper.running
        free = not self.running and not self._training_elsewhere
        self.train_button.setEnabled(free and not self.problems)
        self.pause_button.setEnabled(training and not self.runner.stopping)
        self.pause_button.setText("Resume" if self.runner.paused else "Pause")
        self.stop_button.setEnabled(training and not self.runner.stopping)
        try:
            parse_rates(self.rates_edit.text())
            rates_ok = True
        except ValueError:
            rates_ok = False
        self.sweep_button.setEnabled(free and not self.problems and rates_ok)
        self.sweep_stop_button.setEnabled(sweeping and not self.sweeper.stopping)
        self.fid_button.setEnabled(free and bool(self.fid_run.value())
                                   and not feature_problems(self.config.evaluation))
        editable = not (training or sweeping)
        for widget in (*self.widgets.values(), self.open_button, self.rates_edit):
            widget.setEnabled(editable)

    # ---- training ---------------------------------------------------------------------------
    @Slot()
    def start_training(self) -> bool:
        if self.running or self._training_elsewhere:
            return False
        if self.revalidate():
            self.status_label.setText("Fix the problems listed above first.")
            return False
        self._reset_live()
        self.last_result = None
        t = self.config.training
        self.status_label.setText("Starting…")
        self.log_message.emit("info", f"GAN lab: training a {self.config.data.image_size} px DCGAN on "
                                      f"{self.config.data.folder} for {t.steps} steps")
        self.runner.start(self.config, runs_dir=self.runs_root)
        self._set_running()
        return True

    @Slot()
    def stop_training(self) -> None:
        if self.runner.running and not self.runner.stopping:
            self.runner.stop()
            self.status_label.setText("Stopping after the current step…")
            self._update_controls()

    @Slot()
    def toggle_pause(self) -> None:
        if not self.runner.running:
            return
        if self.runner.paused:
            self.runner.resume()
            self.status_label.setText("Training…")
        else:
            self.runner.pause()
            self.status_label.setText("Paused (the run waits between two steps)")
        self._update_controls()

    def _set_running(self) -> None:
        self._update_controls()
        self.running_changed.emit(True)

    def _reset_live(self) -> None:
        for series in self._series.values():
            series.clear()
        self._dirty = True
        self.samples_image.clear()
        self.last_samples = None
        self.samples_label.setText("Samples from a fixed noise batch appear here.")

    @Slot(object)
    def _on_event(self, event) -> None:
        self._show_event(event)

    def _show_event(self, event) -> None:
        if isinstance(event, GanStep):
            for key in self._series:
                value = getattr(event, key)
                if np.isfinite(value):
                    self._series[key].add(event.step, value)
            self._dirty = True
            if event.step % 10 == 0 or event.step == self._steps:
                self.status_label.setText(
                    f"Step {event.step} of {self._steps}: d_loss {event.d_loss:.3f}, g_loss {event.g_loss:.3f}, "
                    f"D(real) {event.d_real:.2f}, D(fake) {event.d_fake:.2f}")
        elif isinstance(event, GanSamples):
            self.last_samples = event
            if event.pixels:
                self.samples_image.setImage(event.array(), autoLevels=False, levels=(0, 255))
                self.samples_box.autoRange(padding=0.01)
            self.samples_label.setText(f"Step {event.step}: samples from the fixed noise (spread {event.diversity:.3f})")
        elif isinstance(event, GanStarted):
            self._steps = event.steps
            self.loss_plot.getPlotItem().setXRange(0, event.steps, padding=0.02)
            self.d_plot.getPlotItem().setXRange(0, event.steps, padding=0.02)
            self.log_message.emit("info", f"GAN run folder: {event.run_dir} ({event.images} images; generator "
                                          f"{event.generator_params:,}, discriminator {event.discriminator_params:,} "
                                          "parameters)")
            self.status_label.setText(f"Training: {event.steps} steps on {event.images} images")
        elif isinstance(event, GanEvaluated):
            self._show_fid_text(event.fid, event.inception_score, event.inception_score_std, event.network,
                                event.real_images, event.generated_images)
            score = "" if event.inception_score is None else f", Inception Score {event.inception_score:.3f}"
            self.log_message.emit("success", f"FID {event.fid:.3f}{score} at step {event.step} "
                                             f"(features: {event.network})")
        elif isinstance(event, Message):
            self.log_message.emit(event.level, event.text)

    @Slot(object)
    def _on_finished(self, result) -> None:
        self.last_result = result
        if isinstance(result, RunFinished):
            text = "Stopped" if result.stopped else "Finished"
            self.status_label.setText(f"{text} after {result.epochs_done} steps. Saved in {result.run_dir}")
            self.log_message.emit("success", f"GAN {text.lower()} after {result.epochs_done} steps: {result.run_dir}")
        else:
            title = {"diverged": "Training collapsed", "invalid": "Cannot train"}.get(result.kind, "Training failed")
            self.status_label.setText(f"{title}: {result.error}\n{result.details if result.kind != 'error' else ''}".strip())
            self.log_message.emit("error", result.error)
        if result.run_dir and (Path(result.run_dir) / "generator.keras").is_file():
            self.fid_run.setValue(result.run_dir)
        self._redraw(force=True)
        self._update_controls()
        self.running_changed.emit(False)
        self.run_ended.emit(result)

    # ---- plots -----------------------------------------------------------------------------
    def points(self) -> dict[str, int]:
        """Points drawn per curve (for tests and automation)."""
        return drawn_points(self.curves)

    @Slot()
    def _redraw(self, force: bool = False) -> None:
        if not (self._dirty or force):
            return
        self._dirty = False
        for key, curve in self.curves.items():
            curve.setData(*self._series[key].arrays())

    # ---- FID -----------------------------------------------------------------------------
    @Slot()
    def compute_fid(self) -> bool:
        run = self.fid_run.value()
        if self.running or self._training_elsewhere or not run:
            return False
        problems = feature_problems(self.config.evaluation)
        if problems:
            self.fid_label.setText(problems[0].message)
            return False
        if not (Path(run) / "generator.keras").is_file():
            self.fid_label.setText(f"{run} is not a GAN run with a saved generator (generator.keras)")
            return False
        from copy import deepcopy

        self._fid_busy = True
        self.fid_label.setText("Computing FID…")
        self.fid_jobs.submit(model_jobs.compute_run_fid, run, deepcopy(self.config.evaluation), self._cancel)
        self._set_running()
        return True

    @Slot(int, object)
    def _on_fid_done(self, job_id: int, result) -> None:
        self._fid_busy = False
        self.fid_result = result
        self._show_fid_text(result.fid, result.inception_score, result.inception_score_std, result.network,
                            result.real_images, result.generated_images)
        self.log_message.emit("success", result.text())
        self._update_controls()
        self.running_changed.emit(False)
        self.fid_computed.emit(result)

    @Slot(int, str)
    def _on_fid_failed(self, job_id: int, message: str) -> None:
        self._fid_busy = False
        self.fid_label.setText(f"FID could not be computed: {message}")
        self.log_message.emit("error", f"FID could not be computed: {message}")
        self._update_controls()
        self.running_changed.emit(False)

    def _show_fid_text(self, value, score, score_std, network, real, generated) -> None:
        extra = "" if score is None else f", Inception Score {score:.3f} ± {score_std:.3f}"
        self.fid_label.setText(f"FID {value:.3f}{extra}\n{real} real vs {generated} generated images.\n"
                               f"Features: {network}")

    # ---- sweep -----------------------------------------------------------------------------
    @Slot()
    def start_sweep(self) -> bool:
        if self.running or self._training_elsewhere:
            return False
        try:
            rates = parse_rates(self.rates_edit.text())
        except ValueError as exc:
            mark_problem(self.rates_edit, [str(exc)])
            return False
        mark_problem(self.rates_edit, [])
        sweep = GanSweepConfig(GanConfig.from_dict(self.config.to_dict()), rates)
        problems = validate_gan_sweep(sweep)
        if problems:
            self.status_label.setText("The sweep cannot start: " + "; ".join(str(p) for p in problems[:3]))
            return False
        self.sweep_result = None
        self.sweep_trials = []
        self._fill_table()
        self._reset_live()
        self.log_message.emit("info", f"GAN dropout sweep: rates {', '.join(f'{r:g}' for r in rates)}")
        self.sweeper.start(sweep, self.runs_root)
        self._set_running()
        return True

    @Slot()
    def stop_sweep(self) -> None:
        if self.sweeper.running and not self.sweeper.stopping:
            self.sweeper.stop()
            self.status_label.setText("Stopping the sweep after the current step…")
            self._update_controls()

    @Slot(object)
    def _on_sweep_event(self, event) -> None:
        if isinstance(event, GanTrialEvent):
            inner = event.event
            if isinstance(inner, GanStarted):
                self._reset_live()
            if isinstance(inner, (GanStep, GanSamples, GanStarted, GanEvaluated)):
                self._show_event(inner)
                if isinstance(inner, GanStarted):
                    self.status_label.setText(f"Sweep: dropout {event.rate:g}, {inner.steps} steps")
            elif isinstance(inner, Message):
                self.log_message.emit(inner.level, inner.text)
            elif isinstance(inner, RunFailed):
                self.log_message.emit("error", f"Sweep rate {event.rate:g}: {inner.error}")
        elif isinstance(event, GanTrialDone):
            self.sweep_trials.append(event.trial)
            self._fill_table()
        elif isinstance(event, GanSweepStarted):
            self.log_message.emit("info", f"GAN sweep folder: {event.sweep_dir}")
        elif isinstance(event, GanSweepFinished):
            self.status_label.setText(f"Sweep {'stopped' if event.stopped else 'finished'}: {event.trials_done} of "
                                      f"{event.trials_total} rates ran. Saved in {event.sweep_dir}")
        elif isinstance(event, Message):
            self.log_message.emit(event.level, event.text)

    @Slot(object)
    def _on_sweep_finished(self, result) -> None:
        if isinstance(result, GanSweepResult):
            self.sweep_result = result
            if result.problems:
                self.status_label.setText("The sweep cannot start: " + "; ".join(str(p) for p in result.problems[:3]))
            best = result.best()
            if best is not None:
                self.log_message.emit("success", f"GAN sweep: the lowest FID ({best.fid:.3f}) at discriminator "
                                                 f"dropout {best.rate:g}")
        else:
            self.status_label.setText(f"The sweep failed: {getattr(result, 'error', result)}")
        self._fill_table()
        self._redraw(force=True)
        self._update_controls()
        self.running_changed.emit(False)

    def _fill_table(self) -> None:
        trials = self.sweep_result.trials if self.sweep_result is not None else self.sweep_trials
        best = GanSweepResult(trials=list(trials)).best()
        bold = QFont(self.sweep_table.font())
        bold.setBold(True)
        self.sweep_table.setRowCount(len(trials))
        for r, t in enumerate(trials):
            cells = (f"{t.rate:g}", t.status + (f": {t.error}" if t.error and t.status != "finished" else ""),
                     "–" if t.fid is None else f"{t.fid:.3f}",
                     "–" if t.inception_score is None else f"{t.inception_score:.3f}",
                     str(t.steps_done), t.run_dir)
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c in (0, 2, 3, 4):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if t == best:
                    item.setFont(bold)
                    item.setToolTip("Best: the lowest FID")
                if c == 2 and t.network:
                    item.setToolTip(f"Features: {t.network}")
                self.sweep_table.setItem(r, c, item)

    def table_rows(self) -> list[list[str]]:
        return [[self.sweep_table.item(r, c).text() for c in range(self.sweep_table.columnCount())]
                for r in range(self.sweep_table.rowCount())]

    # ---- files -----------------------------------------------------------------------------
    @Slot()
    def open_config_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a GAN config", str(Path.home()),
                                              "GAN config (*.json);;All files (*)")
        if path:
            self.open_config(path)

    def open_config(self, path: str | Path) -> bool:
        try:
            config = load_gan_config(path)
        except ConfigError as exc:
            self.status_label.setText(f"Cannot open {path}: " + "; ".join(str(p) for p in exc.problems[:3]))
            return False
        self.set_config(config)
        self.log_message.emit("info", f"Opened GAN config {path}")
        return True

    @Slot()
    def save_config_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the GAN config", str(Path.home() / "gan.json"),
                                              "GAN config (*.json)")
        if path:
            self.save_config(path if path.lower().endswith(".json") else path + ".json")

    def save_config(self, path: str | Path) -> bool:
        try:
            save_gan_config(self.config, path)
        except OSError as exc:
            self.status_label.setText(f"Cannot save {path}: {exc}")
            return False
        self.log_message.emit("info", f"Saved GAN config {path} (train it headless: workbench gan {path})")
        return True

    # ---- closing ---------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop a run or sweep and wait for its thread (on quit)."""
        self._timer.stop()
        self.runner.shutdown()
        self.sweeper.shutdown()
