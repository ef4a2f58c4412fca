"""The Tuning tab's live views: the trials table, the optimisation history, the parameter
importances and every trial's validation curve.

They take plain values from the study's events (core/runs/studies.py); curves keep their
points in lists and redraw on a timer, as the other plots do, so a fast study never
redraws per epoch.
"""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.ui.plot_export import add_export_menu
from workbench.ui.plots import drawn_points
from workbench.ui.tuning_ranges import format_value

REDRAW_MS = 100
STATE_NAMES = {"running": "running", "complete": "complete", "pruned": "pruned", "failed": "failed"}
STATE_COLOURS = {"running": "#2563eb", "complete": "#15803d", "pruned": "#a16207", "failed": "#dc2626"}
VALUE_COLOUR, BEST_COLOUR, PRUNED_COLOUR = "#2563eb", "#ea580c", "#9ca3af"
TRIAL_COLOURS = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777",
                 "#4b5563", "#65a30d")  # dark enough on white; trial n takes colour n modulo 10


def make_plot(title: str, bottom: str, left: str, export_name: str) -> pg.PlotWidget:
    widget = pg.PlotWidget(background="w")
    item = widget.getPlotItem()
    item.setTitle(f"<span style='font-size:10pt; font-weight:600'>{title}</span>")
    item.setLabel("bottom", bottom)
    item.setLabel("left", left)
    item.showGrid(x=True, y=True, alpha=0.2)
    item.setMenuEnabled(False)
    for side in ("left", "bottom"):
        item.getAxis(side).enableAutoSIPrefix(False)  # accuracies as 0.9, not 900 x0.001
    add_export_menu(widget, export_name)
    return widget


def whole_ticks(plot: pg.PlotWidget, last: int, first: int = 0) -> None:
    """Whole numbers only on the x axis (trial numbers, epochs), at most about ten of them."""
    step = max(1, -(-(last - first + 1) // 10))
    plot.getPlotItem().getAxis("bottom").setTicks([[(float(v), str(v)) for v in range(first, last + 1, step)], []])


def caption(html: str) -> QLabel:
    """A line under a plot, outside its data: a legend or what the lines mean."""
    label = QLabel(html)
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setWordWrap(True)
    return label


def plot_box(widget: QWidget, plot: pg.PlotWidget, note: QLabel | None = None) -> None:
    layout = QVBoxLayout(widget)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(0)
    layout.addWidget(plot, 1)
    if note is not None:
        layout.addWidget(note)


def format_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


class TrialsTable(QTableWidget):
    """One row per trial: its number, a column per searched parameter, value, state, duration.

    A double-click asks for the trial's run to be shown (`run_activated`, the first run folder).
    """

    run_activated = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(0, 0, parent)
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.horizontalHeader().setStretchLastSection(True)
        self.setToolTip("Double-click a finished trial to see its run in Runs")
        self.params: list[str] = []
        self.run_dirs: dict[int, list[str]] = {}
        self._rows: dict[int, int] = {}
        self._best: int | None = None
        self.cellDoubleClicked.connect(self._on_double_click)

    def start(self, params: list[str], labels: dict[str, str]) -> None:
        """Empty the table and make a column for each searched parameter."""
        self.params = list(params)
        self.run_dirs.clear()
        self._rows.clear()
        self._best = None
        self.setRowCount(0)
        columns = ["Trial", *(labels.get(p, p) for p in self.params), "Value", "State", "Duration"]
        self.setColumnCount(len(columns))
        self.setHorizontalHeaderLabels(columns)

    def _row(self, number: int) -> int:
        if number not in self._rows:
            self._rows[number] = self.rowCount()
            self.insertRow(self.rowCount())
        return self._rows[number]

    def _set(self, row: int, column: int, text: str, right: bool = False) -> QTableWidgetItem:
        item = QTableWidgetItem(text)
        if right:
            item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.setItem(row, column, item)
        return item

    def set_trial(self, number: int, params: dict, state: str, value: float | None = None,
                  seconds: float | None = None, error: str = "", run_dirs: list[str] | None = None) -> None:
        """Add or update the row of trial `number`."""
        row = self._row(number)
        self._set(row, 0, str(number), right=True)
        for column, name in enumerate(self.params, start=1):
            self._set(row, column, format_value(params[name]) if name in params else "", right=True)
        end = len(self.params) + 1
        self._set(row, end, "–" if value is None or not math.isfinite(value) else f"{value:.4f}", right=True)
        state_item = self._set(row, end + 1, STATE_NAMES.get(state, state))
        state_item.setForeground(pg.mkColor(STATE_COLOURS.get(state, "#111827")))
        if error:
            state_item.setToolTip(error)
        self._set(row, end + 2, "" if seconds is None else format_seconds(seconds), right=True)
        if run_dirs:
            self.run_dirs[number] = list(run_dirs)
        self._mark_best()
        self.scrollToItem(self.item(row, 0))

    def set_best(self, number: int | None) -> None:
        self._best = number
        self._mark_best()

    def _mark_best(self) -> None:
        bold = QFont(self.font())
        bold.setBold(True)
        for number, row in self._rows.items():
            for column in range(self.columnCount()):
                item = self.item(row, column)
                if item is not None:
                    item.setFont(bold if number == self._best else self.font())

    def row_texts(self) -> list[list[str]]:
        """The table's text, row by row (for tests and automation)."""
        return [[self.item(r, c).text() if self.item(r, c) else "" for c in range(self.columnCount())]
                for r in range(self.rowCount())]

    def number_at(self, row: int) -> int | None:
        return next((number for number, r in self._rows.items() if r == row), None)

    @Slot(int, int)
    def _on_double_click(self, row: int, _column: int) -> None:
        number = self.number_at(row)
        dirs = self.run_dirs.get(number, []) if number is not None else []
        if dirs:
            self.run_activated.emit(dirs[0])


class HistoryPlot(QWidget):
    """Each finished trial's value (pruned ones grey) and the best value so far."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.plot = make_plot("Optimisation history", "trial", "val. accuracy", "tuning-history")
        item = self.plot.getPlotItem()
        self.values = item.plot(pen=None, symbol="o", symbolSize=7, symbolBrush=VALUE_COLOUR, symbolPen="w")
        self.pruned = item.plot(pen=None, symbol="o", symbolSize=7, symbolBrush=PRUNED_COLOUR, symbolPen="w")
        self.best = item.plot(pen=pg.mkPen(BEST_COLOUR, width=2))
        legend = caption(f"<span style='color:{VALUE_COLOUR}'>●</span> trial &nbsp;&nbsp; "
                         f"<span style='color:{PRUNED_COLOUR}'>●</span> stopped early (pruned) &nbsp;&nbsp; "
                         f"<span style='color:{BEST_COLOUR}'>━━</span> best so far")
        plot_box(self, self.plot, legend)
        self.points: dict[int, tuple[float, str]] = {}

    def clear(self) -> None:
        self.points.clear()
        self._draw()

    def add(self, number: int, value: float | None, state: str) -> None:
        if value is None or not math.isfinite(value) or state == "failed":
            return
        self.points[number] = (float(value), state)
        self._draw()

    def best_so_far(self) -> list[float]:
        best, out = -math.inf, []
        for number in sorted(self.points):
            value, state = self.points[number]
            if state == "complete":
                best = max(best, value)
            out.append(best)
        return out

    def _draw(self) -> None:
        numbers = sorted(self.points)
        complete = [n for n in numbers if self.points[n][1] == "complete"]
        pruned = [n for n in numbers if self.points[n][1] != "complete"]
        self.values.setData(complete, [self.points[n][0] for n in complete])
        self.pruned.setData(pruned, [self.points[n][0] for n in pruned])
        xs, ys = [], []  # a step: the best holds until a trial beats it
        for n, b in zip(numbers, self.best_so_far(), strict=True):
            if math.isfinite(b):
                if ys:
                    xs.append(n)
                    ys.append(ys[-1])
                xs.append(n)
                ys.append(b)
        self.best.setData(xs, ys)
        if numbers:
            whole_ticks(self.plot, numbers[-1], numbers[0])


class ImportancePlot(QWidget):
    """How much each searched parameter mattered (Optuna's evaluator, computed in the study's process)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.plot = make_plot("Parameter importance", "importance", "", "tuning-importance")
        item = self.plot.getPlotItem()
        item.showGrid(x=True, y=False, alpha=0.2)
        item.setMouseEnabled(x=False, y=False)
        self.bars = pg.BarGraphItem(x0=[], y=[], height=0.6, width=[], brush="#60a5fa", pen=pg.mkPen("#2563eb"))
        item.addItem(self.bars)
        self.hint = pg.TextItem("Shown after a few finished trials", color="#6b7280", anchor=(0.5, 0.5))
        item.addItem(self.hint)
        self.hint.setPos(0.5, 0.5)
        plot_box(self, self.plot)
        self.importances: dict[str, float] = {}

    def set_importances(self, importances: dict[str, float], labels: dict[str, str]) -> None:
        """Bars, largest on top; an empty dict shows the hint instead."""
        self.importances = dict(importances)
        ordered = sorted(importances.items(), key=lambda kv: kv[1])  # the largest drawn last: on top
        item = self.plot.getPlotItem()
        self.hint.setVisible(not ordered)
        self.bars.setOpts(x0=[0.0] * len(ordered), y=list(range(len(ordered))), height=0.6,
                          width=[max(0.0, float(v)) for _, v in ordered])
        item.getAxis("left").setTicks([[(float(i), labels.get(name, name)) for i, (name, _) in enumerate(ordered)], []])
        if ordered:
            item.setYRange(-0.6, len(ordered) - 0.4, padding=0)
            item.setXRange(0, max(max(v for _, v in ordered), 1e-6) * 1.05, padding=0)
        else:
            item.setYRange(0, 1, padding=0)
            item.setXRange(0, 1, padding=0)


class TrialCurves(QWidget):
    """Validation accuracy per epoch, one line per trial (and fold); the best trial's line is thick."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.plot = make_plot("Trial curves", "epoch", "val. accuracy", "tuning-curves")
        plot_box(self, self.plot, caption("One line per trial (and fold), a colour per trial; the best trial's "
                                          "line is thick."))
        self.curves: dict[tuple[int, int], pg.PlotDataItem] = {}
        self._series: dict[tuple[int, int], tuple[list[float], list[float]]] = {}
        self._best: int | None = None
        self._epochs = 1
        self._dirty = False
        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self.redraw)
        self._timer.start()

    def clear(self) -> None:
        for curve in self.curves.values():
            self.plot.getPlotItem().removeItem(curve)
        self.curves.clear()
        self._series.clear()
        self._best = None
        self._epochs = 1

    def set_epochs(self, epochs: int) -> None:
        if epochs > self._epochs:
            self._epochs = epochs
            whole_ticks(self.plot, epochs, 1)

    def add(self, number: int, fold: int, epoch: int, value: float) -> None:
        """Epoch `epoch` (0-based) of trial `number`, fold `fold`, reached `value`."""
        if not math.isfinite(value):
            return
        key = (number, fold)
        if key not in self.curves:
            colour = TRIAL_COLOURS[number % len(TRIAL_COLOURS)]
            self.curves[key] = self.plot.getPlotItem().plot(pen=pg.mkPen(colour, width=1.5), symbol="o",
                                                            symbolSize=4, symbolBrush=colour, symbolPen=None)
        xs, ys = self._series.setdefault(key, ([], []))
        xs.append(float(epoch + 1))
        ys.append(float(value))
        self.set_epochs(epoch + 1)
        self._dirty = True

    def set_best(self, number: int | None) -> None:
        self._best = number
        for (trial, _fold), curve in self.curves.items():
            pen = curve.opts["pen"]
            colour = pg.mkPen(pen).color()
            curve.setPen(pg.mkPen(colour, width=3.5 if trial == number else 1.5))
            curve.setZValue(10 if trial == number else 0)

    def points(self) -> dict[tuple[int, int], int]:
        """Points drawn per (trial, fold) (for tests and automation)."""
        return drawn_points(self.curves)

    @Slot()
    def redraw(self, force: bool = False) -> None:
        if not (self._dirty or force):
            return
        self._dirty = False
        for key, curve in self.curves.items():
            curve.setData(*self._series[key])
