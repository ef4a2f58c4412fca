"""GAN lab: train a DCGAN with dropout in the discriminator, watch it learn, score it with FID.

The second mode of Workbench, built from the same pieces as the classifier: a plain config
(core/config/gan.py) edited by a bound form (panels/gan_form.py) and checked on every edit,
runs and sweeps through the shared task runners (ui/tasks) with the core in a child process,
a live view that redraws on a timer (ui/gan_views.py), a run folder per run. FID runs as a
background model job in the model worker process. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QThreadPool, Signal, Slot
from PySide6.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
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
    PathEdit,
    breakable,
    mark_problem,
)
from workbench.ui.gan_views import GanLiveView, GanSweepTable
from workbench.ui.panels.gan_form import GanForm
from workbench.ui.tasks import model_jobs
from workbench.ui.tasks.background import BackgroundJobs
from workbench.ui.tasks.runner import GAN_RUN, GAN_SWEEP, TaskFunction, TaskRunner


def default_gan_config() -> GanConfig:
    """A first config that trains in minutes on a laptop CPU."""
    config = GanConfig()
    config.training.steps = 2000
    config.training.batch_size = 64
    return config


class GanLabPanel(QWidget):
    """The GAN config form, Train / Pause / Stop, live losses and D outputs, the sample grid, FID and the sweep."""

    running_changed = Signal(bool)
    log_message = Signal(str, str)  # level, text: for the main window's log
    run_ended = Signal(object)  # RunFinished | RunFailed
    fid_computed = Signal(object)  # FidResult

    def __init__(self, runs_dir: str | Path | None, model_pool: QThreadPool, cancel: threading.Event,
                 parent: QWidget | None = None, run_fn: TaskFunction | None = None, sweep_fn: TaskFunction | None = None,
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

        self.runner = TaskRunner(self, fn=run_fn or GAN_RUN, name="workbench-gan")
        self.runner.event.connect(self._on_event)
        self.runner.finished.connect(self._on_finished)
        self.sweeper = TaskRunner(self, fn=sweep_fn or GAN_SWEEP, pausable=False, name="workbench-gan-sweep",
                                  crash_title="The sweep crashed")
        self.sweeper.event.connect(self._on_sweep_event)
        self.sweeper.finished.connect(self._on_sweep_finished)
        self.fid_jobs = BackgroundJobs(model_pool, self)
        self.fid_jobs.done.connect(self._on_fid_done)
        self.fid_jobs.failed.connect(self._on_fid_failed)

        self.form = GanForm(self.config)
        self.form.edited.connect(self._on_form_edited)
        form_box = QWidget()
        form_layout = QVBoxLayout(form_box)
        form_layout.setContentsMargins(0, 0, 0, 0)
        form_layout.addWidget(self.form)
        form_layout.addLayout(self._build_files())
        form_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(form_box)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(280)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addLayout(self._build_buttons())
        right_layout.addWidget(self.status_label)
        right_layout.addWidget(self.problem_label)
        views = QSplitter(Qt.Orientation.Vertical)
        self.live = GanLiveView()
        views.addWidget(self.live)
        views.addWidget(self._build_results())
        views.setChildrenCollapsible(False)
        views.setStretchFactor(0, 3)
        views.setStretchFactor(1, 1)
        views.setSizes([480, 200])
        right_layout.addWidget(views, 1)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(scroll)
        splitter.addWidget(right)
        splitter.setChildrenCollapsible(False)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([320, 900])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(splitter)

        self.set_config(self.config)

    def _build_files(self) -> QHBoxLayout:
        files = QHBoxLayout()
        self.open_button = QPushButton("Open config…")
        self.open_button.clicked.connect(self.open_config_dialog)
        self.save_button = QPushButton("Save config…")
        self.save_button.setToolTip("Save as JSON; train it headless with: workbench gan CONFIG.json")
        self.save_button.clicked.connect(self.save_config_dialog)
        files.addWidget(self.open_button)
        files.addWidget(self.save_button)
        files.addStretch(1)
        return files

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
        self.status_label.setMinimumWidth(1)  # a long run folder wraps; it never widens the window
        self.problem_label = QLabel()
        self.problem_label.setObjectName("problemSummary")
        self.problem_label.setWordWrap(True)
        self.problem_label.setTextFormat(Qt.TextFormat.PlainText)
        row = QHBoxLayout()
        for button in (self.train_button, self.pause_button, self.stop_button):
            row.addWidget(button)
        row.addStretch(1)
        return row

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
        self.fid_label.setMinimumWidth(1)
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
        self.sweep_table = GanSweepTable()
        layout.addWidget(self.sweep_table, 1)

        fid.setFlat(True)
        sweep.setFlat(True)
        box = QTabWidget()  # one above the other's tab: the curves above keep their height
        box.setDocumentMode(True)
        box.addTab(fid, "FID and Inception Score")
        box.addTab(sweep, "Dropout sweep")
        fid.setTitle("")
        sweep.setTitle("FID per discriminator dropout rate")
        return box

    # ---- the config -----------------------------------------------------------------------
    @property
    def widgets(self) -> dict[str, QWidget]:
        return self.form.widgets

    def set_config(self, config: GanConfig) -> None:
        """Show a whole config (opened from a file) in the form."""
        self.config = config
        self.form.set_config(config)
        self.revalidate()

    def set_value(self, path: str, value: Any) -> None:
        """Set one field as a person would."""
        self.form.set_value(path, value)

    @Slot(str)
    def _on_form_edited(self, path: str) -> None:
        self.revalidate()

    def revalidate(self) -> list[Problem]:
        """Mark each problem at its field and enable Train when there are none."""
        typed = self.form.input_problems()
        bad_input = {p.field for p in typed}
        self.problems = typed + [p for p in validate_gan(self.config) if p.field not in bad_input]
        by_field: dict[str, list[str]] = defaultdict(list)
        for problem in self.problems:
            by_field[problem.field].append(problem.message)
        self.form.show_problems(by_field)
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
        self.form.source_label.setText("FID uses: " + (describe_source(self.config.evaluation) if not problems
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
        self.stop_button.setText("Stopping…" if training and self.runner.stopping else "Stop")
        try:
            parse_rates(self.rates_edit.text())
            rates_ok = True
        except ValueError:
            rates_ok = False
        self.sweep_button.setEnabled(free and not self.problems and rates_ok)
        self.sweep_stop_button.setEnabled(sweeping and not self.sweeper.stopping)
        self.fid_button.setEnabled(not self.running and bool(self.fid_run.value())  # also while a classifier trains
                                   and not feature_problems(self.config.evaluation))
        editable = not (training or sweeping)
        for widget in (self.form, self.open_button, self.rates_edit):
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
            self.status_label.setText("Stopping… (the current step ends, then the generator and its last "
                                      "samples are saved: this can take a few seconds)")
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
            self.status_label.setText("Pausing after the current step…")
        self._update_controls()

    def _set_running(self) -> None:
        self._update_controls()
        self.running_changed.emit(True)

    def _reset_live(self) -> None:
        self.live.reset()
        self.last_samples = None

    @Slot(object)
    def _on_event(self, event) -> None:
        self._show_event(event)

    def _show_event(self, event) -> None:
        if isinstance(event, GanStep):
            self.live.add_step(event)
            if (event.step % 10 == 0 or event.step == self._steps) and not (
                    self.runner.stopping or self.runner.paused):  # "Stopping…" and "Paused" stay readable
                self.status_label.setText(
                    f"Step {event.step} of {self._steps}: d_loss {event.d_loss:.3f}, g_loss {event.g_loss:.3f}, "
                    f"D(real) {event.d_real:.2f}, D(fake) {event.d_fake:.2f}")
        elif isinstance(event, GanSamples):
            self.last_samples = event
            self.live.show_samples(event)
        elif isinstance(event, GanStarted):
            self._steps = event.steps
            self.live.set_steps(event.steps)
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
            if event.text == "Paused" and self.runner.paused:  # the step under way has ended
                self.status_label.setText("Paused (the run waits between two steps)")

    @Slot(object)
    def _on_finished(self, result) -> None:
        self.last_result = result
        if isinstance(result, RunFinished):
            text = "Stopped" if result.stopped else "Finished"
            self.status_label.setText(f"{text} after {result.epochs_done} steps. Saved in "
                                      f"{breakable(result.run_dir)}")
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
    @property
    def samples_image(self):
        return self.live.samples_image

    def points(self) -> dict[str, int]:
        """Points drawn per curve (for tests and automation)."""
        return self.live.points()

    def _redraw(self, force: bool = False) -> None:
        self.live.redraw(force)

    # ---- FID -----------------------------------------------------------------------------
    @Slot()
    def compute_fid(self) -> bool:
        run = self.fid_run.value()
        if self.running or not run:
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
            saved = (f"Its results could not be saved: {event.error}" if event.error
                     else f"Saved in {event.sweep_dir}")
            self.status_label.setText(f"Sweep {'stopped' if event.stopped else 'finished'}: {event.trials_done} of "
                                      f"{event.trials_total} rates ran. {saved}")
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
        self.sweep_table.show_trials(trials)

    def table_rows(self) -> list[list[str]]:
        return self.sweep_table.rows()

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
        self.live.stop()
        self.runner.shutdown()
        self.sweeper.shutdown()
