"""Dropout lab: train the current config at several dropout rates (and kinds), with k-fold cross-validation.

The sweep runs on its own QThread (ui.sweep_worker) and reports every trial's epochs;
the panel overlays each trial's validation loss per epoch (one colour per rate, one
line style per kind, the folds of a rate on top of each other), fills a table with the
mean ± std over the folds, and "Apply best" hands the winning kind and rate to the
main window, which writes them into the config (the Regularization panel shows them).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.core.base.events import BatchEnd, EpochEnd, Message, RunFailed, RunStarted
from workbench.core.base.problems import Problem
from workbench.core.config.run import RunConfig
from workbench.core.config.sweep import SweepConfig, parse_rates, validate_sweep
from workbench.core.runs.sweeps import (
    SweepFinished,
    SweepResult,
    SweepStarted,
    SweepTrialDone,
    SweepTrialEvent,
)
from workbench.ui.fields import mark_problem
from workbench.ui.panels.regularization import (
    DROPOUT_HELP,
    DROPOUT_KINDS,
    DROPOUT_NAMES,
    dropout_kind_label,
)
from workbench.ui.plot_export import add_export_menu
from workbench.ui.plots import drawn_points
from workbench.ui.tasks.runner import SWEEP, TaskFunction, TaskRunner

REDRAW_MS = 50
KIND_STYLES = (Qt.PenStyle.SolidLine, Qt.PenStyle.DashLine, Qt.PenStyle.DotLine,
               Qt.PenStyle.DashDotLine, Qt.PenStyle.DashDotDotLine)
KIND_SYMBOLS = ("o", "s", "t", "d", "+")
COLUMNS = ("Kind", "Rate", "Folds", "Validation loss (mean ± std)", "Validation accuracy (mean ± std)")


def rate_color(index: int, count: int) -> str:
    """Distinct colours for the rates, from blue (low) to red (high)."""
    palette = ("#2563eb", "#0891b2", "#16a34a", "#ca8a04", "#ea580c", "#dc2626", "#9333ea", "#db2777")
    if count <= len(palette):
        step = (len(palette) - 1) / max(count - 1, 1)
        return palette[round(index * step)]
    return pg.intColor(index, hues=count).name()


class DropoutLabPanel(QWidget):
    """Rates, kinds and folds; Run sweep / Stop / Apply best; live curves and the results table."""

    apply_requested = Signal(str, float)  # the winning kind and rate
    running_changed = Signal(bool)
    log_message = Signal(str, str)  # level, text: for the main window's log
    sweep_ended = Signal(object)  # SweepResult (or RunFailed if the sweep crashed)

    def __init__(self, config_getter: Callable[[], RunConfig], runs_dir: str | Path | None = None,
                 parent: QWidget | None = None, sweep_fn: TaskFunction | None = None):
        super().__init__(parent)
        self._config_getter = config_getter
        self.runs_dir = runs_dir
        self.runner = TaskRunner(self, fn=sweep_fn or SWEEP, pausable=False, name="workbench-sweep",
                                 crash_title="The sweep crashed")
        self.runner.event.connect(self._on_event)
        self.runner.finished.connect(self._on_finished)
        self.result: SweepResult | None = None
        self.trial_results: list = []
        self._training = False
        self._plan: tuple[tuple[str, float, int], ...] = ()
        self._epochs = 1
        self._series: dict[int, tuple[list[float], list[float]]] = {}
        self.curves: dict[int, pg.PlotDataItem] = {}
        self._dirty = False

        # ---- settings
        box = QGroupBox("Sweep")
        form = QFormLayout(box)
        self.rates_edit = QLineEdit("0, 0.2, 0.4, 0.6")
        self.rates_edit.setToolTip("Dropout rates to try, separated by commas; each at least 0 and below 1.")
        form.addRow("Rates", self.rates_edit)
        kinds = QHBoxLayout()
        kinds.setContentsMargins(0, 0, 0, 0)
        self.kind_boxes: dict[str, QCheckBox] = {}
        for kind, label in DROPOUT_KINDS:
            check = QCheckBox(label.split(" (")[0])
            check.setToolTip(f"{label}: {DROPOUT_HELP[kind]}")
            self.kind_boxes[kind] = check
            kinds.addWidget(check)
        kinds.addStretch(1)
        initial = config_getter().dropout.kind
        if initial in self.kind_boxes:
            self.kind_boxes[initial].setChecked(True)
        kinds_widget = QWidget()
        kinds_widget.setLayout(kinds)
        kinds_widget.setToolTip("Kinds to try (none checked: the kind set in Regularization).")
        form.addRow("Kinds", kinds_widget)
        self.folds_spin = QSpinBox()
        self.folds_spin.setRange(1, 20)
        self.folds_spin.setValue(1)
        self.folds_spin.setSpecialValueText("off (use the validation split)")
        self.folds_spin.setMaximumWidth(260)
        self.folds_spin.setToolTip(
            "k-fold cross-validation: each rate trains k times, each time validating on another "
            "k-th of the images (stratified by class), and the table shows the mean ± std.")
        form.addRow("Folds", self.folds_spin)
        note = QLabel("Every other setting comes from the panels on the left. Each trial leaves a run folder; "
                      "the sweep's table is saved in runs/sweep-<id>/.")
        note.setObjectName("note")
        note.setWordWrap(True)
        form.addRow(note)

        self.run_button = QPushButton("Run sweep")
        self.run_button.setObjectName("runSweepButton")
        self.run_button.clicked.connect(self.start_sweep)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop the running trial within one batch; no other trial starts")
        self.stop_button.clicked.connect(self.stop_sweep)
        self.apply_button = QPushButton("Apply best")
        self.apply_button.setToolTip("Write the kind and rate with the lowest mean validation loss into the config")
        self.apply_button.clicked.connect(self.apply_best)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.apply_button)
        buttons.addStretch(1)
        self.status_label = QLabel("Choose rates and press Run sweep.")
        self.status_label.setWordWrap(True)
        self.problem_label = QLabel()
        self.problem_label.setObjectName("problemSummary")
        self.problem_label.setWordWrap(True)
        self.problem_label.setTextFormat(Qt.TextFormat.PlainText)
        self.problem_label.setProperty("ready", False)
        self.problem_label.setVisible(False)

        # ---- curves and table
        self.plot = pg.PlotWidget(background="w")
        item = self.plot.getPlotItem()
        item.setTitle("<span style='font-size:11pt; font-weight:600'>Validation loss of every trial</span>")
        item.setLabel("bottom", "epoch")
        item.setLabel("left", "val_loss")
        item.showGrid(x=True, y=True, alpha=0.2)
        item.setMenuEnabled(False)
        add_export_menu(self.plot, "dropout-sweep-val_loss")
        self.legend = item.addLegend(offset=(-10, 10))
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.plot)
        splitter.addWidget(self.table)
        splitter.setSizes([320, 160])

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(box)
        layout.addLayout(buttons)
        layout.addWidget(self.problem_label)
        layout.addWidget(self.status_label)
        layout.addWidget(splitter, 1)

        self.rates_edit.textChanged.connect(self._on_rates_edited)
        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self._redraw)
        self._timer.start()
        self._update_controls()

    # ---- state ------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.runner.running

    def set_training(self, running: bool) -> None:
        """A training run holds the machine: no sweep starts and nothing is applied meanwhile."""
        self._training = running
        self._update_controls()

    def _update_controls(self) -> None:
        running = self.runner.running
        self.run_button.setEnabled(not running and not self._training and self._rates_ok())
        self.stop_button.setEnabled(running and not self.runner.stopping)
        self.apply_button.setEnabled(not running and not self._training and self.best() is not None)
        for widget in (self.rates_edit, self.folds_spin, *self.kind_boxes.values()):
            widget.setEnabled(not running)

    def _rates_ok(self) -> bool:
        try:
            parse_rates(self.rates_edit.text())
        except ValueError:
            return False
        return True

    @Slot()
    def _on_rates_edited(self) -> None:
        try:
            parse_rates(self.rates_edit.text())
        except ValueError as exc:
            mark_problem(self.rates_edit, [str(exc)])
        else:
            mark_problem(self.rates_edit, [])
        self._update_controls()

    def sweep_config(self) -> SweepConfig:
        """The sweep the widgets describe, over a snapshot of the current config. Raises ValueError for bad rates."""
        base = RunConfig.from_dict(self._config_getter().to_dict())
        kinds = [kind for kind, box in self.kind_boxes.items() if box.isChecked()]
        return SweepConfig(base, parse_rates(self.rates_edit.text()), kinds, self.folds_spin.value())

    def best(self):
        result = self.result if self.result is not None else SweepResult(trials=list(self.trial_results))
        return result.best()

    def _show_problems(self, problems: list[Problem] | list[str]) -> None:
        text = "\n".join(f"• {p}" for p in problems)
        self.problem_label.setText(f"The sweep cannot start:\n{text}" if problems else "")
        self.problem_label.setVisible(bool(problems))

    # ---- running ----------------------------------------------------------------------
    @Slot()
    def start_sweep(self) -> bool:
        if self.runner.running or self._training:
            return False
        try:
            sweep = self.sweep_config()
        except ValueError as exc:
            self._show_problems([f"Rates: {exc}"])
            return False
        problems = validate_sweep(sweep)
        if problems:
            self._show_problems(problems)
            return False
        self._show_problems([])
        self.result = None
        self.trial_results = []
        self._reset_plot()
        self._fill_table()
        trials = len(sweep.trials())
        self.status_label.setText(f"Starting {trials} trial{'s' if trials != 1 else ''}…")
        self.log_message.emit("info", f"Dropout sweep: rates {', '.join(f'{r:g}' for r in sweep.rate_list())}, "
                                      f"kinds {', '.join(sweep.kind_list())}, "
                                      f"{sweep.folds if sweep.folds >= 2 else 'no'} folds: {trials} trials")
        self.runner.start(sweep, self.runs_dir)
        self._update_controls()
        self.running_changed.emit(True)
        return True

    @Slot()
    def stop_sweep(self) -> None:
        if self.runner.running and not self.runner.stopping:
            self.runner.stop()
            self.status_label.setText("Stopping after the current batch…")
            self._update_controls()

    @Slot()
    def apply_best(self) -> None:
        best = self.best()
        if best is None or self.runner.running or self._training:
            return
        self.apply_requested.emit(best.kind, float(best.rate))
        self.status_label.setText(f"Applied {DROPOUT_NAMES.get(best.kind, best.kind)} at rate {best.rate:g} to the config "
                                  "(see Regularization).")

    def shutdown(self) -> None:
        """Stop a running sweep and wait for its thread (on quit)."""
        self._timer.stop()
        self.runner.shutdown()

    # ---- events -----------------------------------------------------------------------
    @Slot(object)
    def _on_event(self, event) -> None:
        if isinstance(event, SweepTrialEvent):
            self._on_trial_event(event)
        elif isinstance(event, SweepTrialDone):
            self.trial_results.append(event.trial)
            self._fill_table()
            t = event.trial
            if t.counts:
                self.log_message.emit("info", f"Sweep trial {t.index + 1}: {t.kind} rate {t.rate:g} fold {t.fold + 1}: "
                                              f"best val_loss {t.val_loss:.4f}")
            else:
                self.log_message.emit("warning", f"Sweep trial {t.index + 1} {t.status}"
                                                 + (f": {t.error}" if t.error else ""))
        elif isinstance(event, SweepStarted):
            self._start_plot(event)
            self.log_message.emit("info", f"Sweep folder: {event.sweep_dir}")
        elif isinstance(event, SweepFinished):
            saved = (f"Its results could not be saved: {event.error}" if event.error
                     else f"Saved in {event.sweep_dir}")
            self.status_label.setText(
                f"Sweep {'stopped' if event.stopped else 'finished'}: {event.trials_done} of "
                f"{event.trials_total} trials ran. {saved}")
        elif isinstance(event, Message):
            self.log_message.emit(event.level, event.text)

    def _on_trial_event(self, wrapped: SweepTrialEvent) -> None:
        event = wrapped.event
        where = (f"Trial {wrapped.trial_index + 1} of {len(self._plan)}: {wrapped.kind} at rate {wrapped.rate:g}"
                 + (f", fold {wrapped.fold + 1}" if self._folds >= 2 else ""))
        if isinstance(event, EpochEnd):
            value = event.logs.get("val_loss")
            if value is not None and math.isfinite(value):
                xs, ys = self._series.setdefault(wrapped.trial_index, ([], []))
                xs.append(float(event.epoch + 1))
                ys.append(value)
                self._dirty = True
            self.status_label.setText(f"{where}: epoch {event.epoch + 1} of {self._epochs} done")
        elif isinstance(event, BatchEnd):
            self.status_label.setText(f"{where}: epoch {event.epoch + 1} of {self._epochs}, "
                                      f"batch {event.batch + 1} of {event.steps}")
        elif isinstance(event, RunStarted):
            self._epochs = event.epochs
            self.status_label.setText(f"{where}: started")
        elif isinstance(event, Message) and event.level != "info":
            self.log_message.emit(event.level, event.text)
        elif isinstance(event, RunFailed):
            self.log_message.emit("error", f"{where}: {event.error}")

    @Slot(object)
    def _on_finished(self, result) -> None:
        if isinstance(result, SweepResult):
            self.result = result
            if result.problems:
                self._show_problems(list(result.problems))
            self._fill_table()
            best = result.best()
            if best is not None:
                self.log_message.emit("success", f"Sweep done: best {best.kind} at rate {best.rate:g} "
                                                 f"(mean val_loss {best.val_loss_mean:.4f} over {best.folds} "
                                                 f"fold{'s' if best.folds != 1 else ''})")
        else:
            self._show_problems([getattr(result, "error", str(result))])
            self.status_label.setText("The sweep failed.")
        self._redraw(force=True)
        self._update_controls()
        self.running_changed.emit(False)
        self.sweep_ended.emit(result)

    # ---- curves ------------------------------------------------------------------------
    @property
    def _folds(self) -> int:
        return max((f for _, _, f in self._plan), default=0) + 1

    def _reset_plot(self) -> None:
        for curve in self.curves.values():
            self.plot.getPlotItem().removeItem(curve)
        self.curves.clear()
        self._series.clear()
        self.legend.clear()
        self._plan = ()

    def _start_plot(self, event: SweepStarted) -> None:
        self._reset_plot()
        self._plan = event.trials
        self._epochs = event.epochs
        rates = list(dict.fromkeys(rate for _, rate, _ in event.trials))
        kinds = list(dict.fromkeys(kind for kind, _, _ in event.trials))
        item = self.plot.getPlotItem()
        item.enableAutoRange(x=False)
        item.setXRange(0.5, max(1, event.epochs) + 0.5, padding=0.02)
        step = max(1, -(-event.epochs // 10))  # whole epochs only: no 0.5 or 3.5 on the axis
        item.getAxis("bottom").setTicks([[(float(e), str(e)) for e in range(1, event.epochs + 1, step)], []])
        named: set[tuple[str, float]] = set()
        for index, (kind, rate, _) in enumerate(event.trials):
            color = rate_color(rates.index(rate), len(rates))
            k = kinds.index(kind)
            pen = pg.mkPen(color, width=2, style=KIND_STYLES[k % len(KIND_STYLES)])
            first = (kind, rate) not in named
            named.add((kind, rate))
            name = (f"{kind} {rate:g}" if len(kinds) > 1 else f"rate {rate:g}") if first else None
            curve = item.plot(pen=pen, symbol=KIND_SYMBOLS[k % len(KIND_SYMBOLS)], symbolSize=7,
                              symbolBrush=color, symbolPen="w", name=name)
            self.curves[index] = curve

    def curve_points(self) -> dict[int, int]:
        """Points drawn per trial (for tests and automation)."""
        return drawn_points(self.curves)

    @Slot()
    def _redraw(self, force: bool = False) -> None:
        if not (self._dirty or force):
            return
        self._dirty = False
        for index, curve in self.curves.items():
            xs, ys = self._series.get(index, ([], []))
            curve.setData(xs, ys)

    # ---- table ------------------------------------------------------------------------
    def _fill_table(self) -> None:
        result = self.result if self.result is not None else SweepResult(trials=list(self.trial_results))
        rows = result.table()
        best = result.best()
        self.table.setRowCount(len(rows))

        def pm(mean, std, digits=4) -> str:
            return "–" if mean is None else f"{mean:.{digits}f} ± {std:.{digits}f}"

        bold = QFont(self.table.font())
        bold.setBold(True)
        for r, row in enumerate(rows):
            cells = (dropout_kind_label(row.kind), f"{row.rate:g}", f"{row.folds}" + (f" of {row.trials}" if row.trials != row.folds else ""),
                     pm(row.val_loss_mean, row.val_loss_std), pm(row.val_accuracy_mean, row.val_accuracy_std, 3))
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c >= 1:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if row == best:
                    item.setFont(bold)
                    item.setToolTip("Best: the lowest mean validation loss")
                self.table.setItem(r, c, item)
        self._update_controls()

    def table_rows(self) -> list[list[str]]:
        """The table's text, row by row (for tests and automation)."""
        return [[self.table.item(r, c).text() for c in range(self.table.columnCount())]
                for r in range(self.table.rowCount())]
