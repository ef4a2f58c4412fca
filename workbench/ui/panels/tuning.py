"""Tuning tab: search the current config's hyperparameters with an Optuna study, and watch it.

The form (panels/tuning_form.py) describes a `TuneConfig` over the window's config; Start runs
`core/tune/study.py: run_study` in a child process through the shared TaskRunner, and its
events fill the trials table, the optimisation history, the importances and every trial's
curve (ui/tuning_views.py). "Apply best" hands the best trial's config to the window. The
Dropout lab's sweep is the form's dropout-rate preset. Neither Optuna nor TensorFlow is
imported here: importances arrive computed in the study's events.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from workbench.core.base.events import BatchEnd, EpochEnd, Message, RunFailed, RunStarted
from workbench.core.base.problems import Problem
from workbench.core.config.run import RunConfig
from workbench.core.config.tune import SEARCHABLE, trial_config, validate_tune
from workbench.core.runs.studies import (
    StudyFinished,
    StudyProgress,
    StudyStarted,
    TrialEnded,
    TrialRunEvent,
    TrialStarted,
    read_study,
)
from workbench.ui.panels.tuning_form import SEARCH_FIELD, TuneForm, short_label
from workbench.ui.tasks.runner import TUNE, TaskFunction, TaskRunner
from workbench.ui.tuning_views import HistoryPlot, ImportancePlot, TrialCurves, TrialsTable

LABELS = {name: short_label(name) for name in SEARCHABLE}
REASONS = {"trials": "all trials done", "time": "the time limit was reached", "grid done": "every grid point tried",
           "stopped": "", "no trial can train": "no trial can train"}  # StudyFinished.reason for a person


def describe_params(params: dict) -> str:
    """"Learning rate 0.001, Dropout kind gaussian" for the log and the status line."""
    def value(v: object) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    return ", ".join(f"{LABELS.get(name, name)} {value(v)}" for name, v in params.items())


class TuningPanel(QWidget):
    """The form, Start / Stop / Apply best, and the study's live table and plots."""

    apply_requested = Signal(object)  # the best trial's RunConfig, for the window to take
    run_requested = Signal(str)  # a trial's run folder, to show in Runs
    running_changed = Signal(bool)
    log_message = Signal(str, str)  # level, text: for the main window's log
    study_ended = Signal(object)  # StudyFinished, or RunFailed when the study could not run

    def __init__(self, config_getter: Callable[[], RunConfig], runs_dir: str | Path | None = None,
                 parent: QWidget | None = None, study_fn: TaskFunction | None = None):
        super().__init__(parent)
        self._config_getter = config_getter
        self.runs_dir = runs_dir
        self.runner = TaskRunner(self, fn=study_fn or TUNE, pausable=False, name="workbench-study",
                                 crash_title="The study crashed")
        self.runner.event.connect(self._on_event)
        self.runner.finished.connect(self._on_finished)
        self.problems: list[Problem] = []
        self.result: StudyFinished | RunFailed | None = None
        self.best_number: int | None = None
        self.best_value: float | None = None
        self.best_params: dict = {}
        self._blocked = False
        self._planned = 0
        self._resumed = 0
        self._ended = 0
        self._epochs = 1
        self._folds = 1

        self.form = TuneForm(config_getter)
        self.form.edited.connect(self.revalidate)
        self.form_scroll = scroll = QScrollArea()
        scroll.setWidget(self.form)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(300)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(scroll)
        splitter.addWidget(self._build_results())
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([370, 560])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(splitter)
        self.revalidate()

    def _build_results(self) -> QWidget:
        self.start_button = QPushButton("Start")
        self.start_button.setObjectName("startStudyButton")
        self.start_button.setToolTip("Run the study: each trial trains the current config with the trial's values")
        self.start_button.clicked.connect(self.start_study)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop the running trial within one batch and start no other; the study is kept")
        self.stop_button.clicked.connect(self.stop_study)
        self.apply_button = QPushButton("Apply best")
        self.apply_button.setToolTip("Write the best trial's values into the config (the panels on the left)")
        self.apply_button.clicked.connect(self.apply_best)
        buttons = QHBoxLayout()
        for button in (self.start_button, self.stop_button, self.apply_button):
            buttons.addWidget(button)
        self.best_label = QLabel("")
        self.best_label.setWordWrap(True)
        buttons.addWidget(self.best_label, 1)
        self.status_label = QLabel("Tick what to search, or use the dropout-rate preset, and press Start.")
        self.status_label.setWordWrap(True)
        self.problem_label = QLabel()
        self.problem_label.setObjectName("problemSummary")
        self.problem_label.setWordWrap(True)
        self.problem_label.setTextFormat(Qt.TextFormat.PlainText)
        self.problem_label.setProperty("ready", False)
        self.problem_label.setVisible(False)

        self.table = TrialsTable()
        self.table.run_activated.connect(self.run_requested)
        self.history = HistoryPlot()
        self.importance = ImportancePlot()
        self.curves = TrialCurves()
        self.plots = QTabWidget()  # one at a time: side by side they are too narrow to read beside the form
        self.plots.setDocumentMode(True)
        self.plots.addTab(self.history, "History")
        self.plots.addTab(self.curves, "Trial curves")
        self.plots.addTab(self.importance, "Importance")
        views = QSplitter(Qt.Orientation.Vertical)
        views.addWidget(self.table)
        views.addWidget(self.plots)
        views.setSizes([170, 260])

        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(buttons)
        layout.addWidget(self.problem_label)
        layout.addWidget(self.status_label)
        layout.addWidget(views, 1)
        return box

    # ---- state ------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.runner.running

    def set_training(self, blocked: bool) -> None:
        """A run or another lab holds the machine: no study starts and nothing is applied meanwhile."""
        self._blocked = blocked
        self._update_controls()

    def _update_controls(self) -> None:
        running = self.runner.running
        self.start_button.setEnabled(not running and not self._blocked and not self.problems)
        self.stop_button.setEnabled(running and not self.runner.stopping)
        self.apply_button.setEnabled(not running and not self._blocked and bool(self.best_params))
        self.form.setEnabled(not running)

    @Slot()
    def revalidate(self) -> list[Problem]:
        """Mark the form's problems beside their fields, list the others, allow Start only without any."""
        tune, typed = self.form.read()
        found = validate_tune(tune)
        if typed:  # a range being typed is left out of the search: "choose a parameter" would mislead
            found = [p for p in found if p.field != SEARCH_FIELD]
        self.problems = typed + found
        elsewhere = self.form.show_problems(self.problems)
        if self.problems:
            lines = [f"• {p.message if p.field.startswith('tune') else p}" for p in elsewhere[:6]]
            lines += [f"• and {len(elsewhere) - 6} more"] if len(elsewhere) > 6 else []
            marked = len(self.problems) - len(elsewhere)
            if marked:
                lines.insert(0, f"• {marked} marked in the form")
            self.problem_label.setText("The study cannot start:\n" + "\n".join(lines))
        self.problem_label.setVisible(bool(self.problems))
        self._update_controls()
        return self.problems

    @Slot()
    def on_config_edited(self) -> None:
        """The window's config changed: its problems and the trials' may have too."""
        if self.isVisible() and not self.running:
            self.revalidate()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self.running:
            self.revalidate()

    # ---- running ----------------------------------------------------------------------------
    @Slot()
    def start_study(self) -> bool:
        if self.runner.running or self._blocked or self.revalidate():
            return False
        tune, _ = self.form.read()
        self.result = None
        self.best_number, self.best_value, self.best_params = None, None, {}
        self._planned, self._resumed, self._ended, self._epochs = tune.trials, 0, 0, 1
        self.table.start(list(tune.search), LABELS)
        self.history.clear()
        self.curves.clear()
        self.importance.set_importances({}, LABELS)
        self.best_label.setText("")
        self.status_label.setText("Starting the study…")
        self.log_message.emit("info", f"Tuning study: {', '.join(LABELS[n] for n in tune.search)}, "
                                      f"{tune.trials} trial{'s' if tune.trials != 1 else ''}, {tune.sampler} sampler"
                                      + (f", {tune.folds} folds" if tune.folds >= 2 else ""))
        self.runner.start(tune, self.runs_dir)
        self._update_controls()
        self.running_changed.emit(True)
        return True

    @Slot()
    def stop_study(self) -> None:
        if self.runner.running and not self.runner.stopping:
            self.runner.stop()
            self.status_label.setText("Stopping after the current batch…")
            self._update_controls()

    @Slot()
    def apply_best(self) -> RunConfig | None:
        """The current config with the best trial's values, handed to the window (`apply_requested`)."""
        if not self.best_params or self.runner.running or self._blocked:
            return None
        config = trial_config(self._config_getter(), self.best_params)
        self.apply_requested.emit(config)
        text = f"Applied trial {self.best_number}'s values to the config: {describe_params(self.best_params)}"
        self.status_label.setText(text + ".")
        self.log_message.emit("success", text)
        return config

    def shutdown(self) -> None:
        """Stop a running study and wait for its thread (on quit)."""
        self.runner.shutdown()

    # ---- events -------------------------------------------------------------------------------
    @Slot(object)
    def _on_event(self, event: object) -> None:
        if isinstance(event, TrialRunEvent):
            self._on_trial_event(event)
        elif isinstance(event, TrialStarted):
            self._folds = event.folds
            self.table.set_trial(event.number, event.params, "running")
            self.status_label.setText(f"{self._where(event.number)}: {describe_params(event.params)}")
        elif isinstance(event, TrialEnded):
            self._on_trial_ended(event)
        elif isinstance(event, StudyProgress):
            self._on_progress(event)
        elif isinstance(event, StudyStarted):
            self._planned, self._resumed = event.trials_planned, event.resumed_trials
            self.table.start(list(event.params), LABELS)
            if event.resumed_trials:
                self._show_earlier_trials(event.study_dir)
            joined = f", joining {event.resumed_trials} earlier trials" if event.resumed_trials else ""
            self.log_message.emit("info", f"Study '{event.study_name}' in {event.study_dir} "
                                          f"(storage {event.storage}{joined})")
        elif isinstance(event, StudyFinished):
            self.result = event
        elif isinstance(event, Message):
            self.log_message.emit(event.level, event.text)

    def _show_earlier_trials(self, study_dir: str) -> None:
        """A study continued or joined: the trials its folder records so far, before this process's."""
        for trial in read_study(study_dir).trials:
            if trial.state in ("complete", "pruned", "failed"):
                self.table.set_trial(trial.number, trial.params, trial.state, trial.value, trial.seconds,
                                     trial.error, trial.run_dirs)
                self.history.add(trial.number, trial.value, trial.state)

    def _where(self, number: int) -> str:
        done = self._resumed + self._ended
        return f"Trial {number} ({min(done + 1, max(self._planned, 1))} of {self._planned})"

    def _on_trial_event(self, wrapped: TrialRunEvent) -> None:
        event = wrapped.event
        where = self._where(wrapped.number) + (f", fold {wrapped.fold + 1} of {self._folds}" if self._folds >= 2 else "")
        if isinstance(event, EpochEnd):
            value = event.logs.get("val_accuracy")
            if value is not None:
                self.curves.add(wrapped.number, wrapped.fold, event.epoch, float(value))
            self.status_label.setText(f"{where}: epoch {event.epoch + 1} of {self._epochs} done")
        elif isinstance(event, BatchEnd):
            self.status_label.setText(f"{where}: epoch {event.epoch + 1} of {self._epochs}, "
                                      f"batch {event.batch + 1} of {event.steps}")
        elif isinstance(event, RunStarted):
            self._epochs = event.epochs
            self.curves.set_epochs(event.epochs)
        elif isinstance(event, Message) and event.level != "info":
            self.log_message.emit(event.level, f"Trial {wrapped.number}: {event.text}")
        elif isinstance(event, RunFailed):
            self.log_message.emit("error", f"Trial {wrapped.number}: {event.error}")

    def _on_trial_ended(self, ended: TrialEnded) -> None:
        self._ended += 1
        self.table.set_trial(ended.number, ended.params, ended.state, ended.value, ended.seconds, ended.error,
                             ended.run_dirs)
        self.history.add(ended.number, ended.value, ended.state)
        value = "" if ended.value is None or not math.isfinite(ended.value) else f": {ended.value:.4f}"
        level = {"complete": "info", "pruned": "info"}.get(ended.state, "warning")
        error = f" ({ended.error})" if ended.error else ""
        self.log_message.emit(level, f"Trial {ended.number} {ended.state}{value}{error}")

    def _on_progress(self, progress: StudyProgress) -> None:
        self.best_number, self.best_value = progress.best_number, progress.best_value
        self.best_params = dict(progress.best_params)
        self.table.set_best(progress.best_number)
        self.curves.set_best(progress.best_number)
        self.importance.set_importances(progress.importances, LABELS)
        self._show_best()

    def _show_best(self) -> None:
        if self.best_number is None or self.best_value is None:
            self.best_label.setText("")
            return
        self.best_label.setText(f"Best: trial {self.best_number}, val. accuracy {self.best_value:.4f}")
        self.best_label.setToolTip(describe_params(self.best_params))

    @Slot(object)
    def _on_finished(self, result: object) -> None:
        self.curves.redraw(force=True)
        if isinstance(result, StudyFinished):
            self.result = result
            if result.best_params:
                self.best_number, self.best_value = result.best_number, result.best_value
                self.best_params = dict(result.best_params)
                self.table.set_best(result.best_number)
                self.curves.set_best(result.best_number)
                self._show_best()
            counts = ", ".join(f"{n} {state}" for state, n in result.counts.items() if n)
            why = REASONS.get(result.reason, result.reason)
            self.status_label.setText(f"Study {'stopped' if result.stopped else 'finished'}"
                                      f"{f' ({why})' if why else ''}: {counts or 'no trials'}. "
                                      f"Saved in {result.study_dir}")
            if result.best_params:
                self.log_message.emit("success", f"Study done: best trial {result.best_number}, val. accuracy "
                                                 f"{result.best_value:.4f} with {describe_params(result.best_params)}")
        else:
            error = getattr(result, "error", str(result))
            self.problem_label.setText(f"The study could not run:\n• {error}")
            self.problem_label.setVisible(True)
            self.status_label.setText("The study failed.")
            self.log_message.emit("error", f"The study failed: {error}")
        self._update_controls()
        self.running_changed.emit(False)
        self.study_ended.emit(result)
