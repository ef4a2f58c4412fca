"""Live training curves: loss and accuracy against epochs.

Events only append numbers to lists; a 20 Hz timer redraws when something changed,
with setData on curves made once (redrawing per event would flood the GUI thread).
Batch values are smoothed with an exponential moving average that runs on across
epochs and drawn at fractional epochs (Keras reports each batch as the running mean
of its epoch so far, which restarts every epoch: `batch_values` undoes that first); epoch values are points at whole epochs. A long batch curve is
handed to pyqtgraph already cut to the visible epochs and reduced to a min/max
envelope of about two points per pixel column (`peak_envelope`): the same picture
as pyqtgraph's own peak downsampling, without redoing it over every point on each
repaint.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from workbench.core.base.events import BatchEnd, EpochEnd
from workbench.ui.plot_export import add_export_menu

TRAIN_COLOR = "#2563eb"
VAL_COLOR = "#ea580c"
BATCH_COLOR = "#93c5fd"
REDRAW_MS = 50
EMA_WEIGHT = 0.3  # weight of the newest batch value in the smoothed curve

pg.setConfigOptions(antialias=True, background="w", foreground="#334155")


class MetricPlot(pg.PlotWidget):
    """One metric: smoothed batch values, training per epoch, validation per epoch."""

    def __init__(self, title: str, metric: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.metric = metric
        item = self.getPlotItem()
        item.setTitle(f"<span style='font-size:11pt; font-weight:600'>{title}</span>")
        item.setLabel("bottom", "epoch")
        item.showGrid(x=True, y=True, alpha=0.2)
        for axis in ("left", "bottom"):
            item.getAxis(axis).setStyle(maxTickLevel=1)  # the finest grid level cost most of each repaint
        item.setMenuEnabled(False)
        self.export_menu = add_export_menu(self, metric)
        # No antialiasing on the long batch curve: a noisy curve of 100,000 points took ~1.4 s per
        # repaint with it and ~30 ms without (benchmarks/bench_plot.py).
        self.batch_curve = item.plot(pen=pg.mkPen(BATCH_COLOR, width=1), antialias=False)
        self.train_curve = item.plot(
            pen=pg.mkPen(TRAIN_COLOR, width=2.5), symbol="o", symbolSize=7,
            symbolBrush=TRAIN_COLOR, symbolPen="w",
        )
        self.val_curve = item.plot(
            pen=pg.mkPen(VAL_COLOR, width=2.5), symbol="s", symbolSize=7,
            symbolBrush=VAL_COLOR, symbolPen="w",
        )
        self.set_epochs(1)

    def show_batches(self, x: np.ndarray, y: np.ndarray) -> None:
        """Draw the batch curve: only the visible epochs, as an envelope about two points per pixel."""
        if len(x) > 2:
            low, high = self.getPlotItem().viewRange()[0]
            start = max(int(np.searchsorted(x, low)) - 1, 0)
            stop = int(np.searchsorted(x, high)) + 1
            x, y = peak_envelope(x[start:stop], y[start:stop], max(ENVELOPE_MIN, 2 * self.width()))
        self.batch_curve.setData(x, y, skipFiniteCheck=True)

    def set_epochs(self, epochs: int) -> None:
        item = self.getPlotItem()
        item.enableAutoRange(x=False)
        item.setXRange(0, max(1, epochs), padding=0.03)


ENVELOPE_MIN = 512  # points of a reduced batch curve, whatever the widget's width


def drawn_points(curves: dict) -> dict:
    """How many points each curve draws now (for tests and automation)."""
    counts = {}
    for key, curve in curves.items():
        x, _ = curve.getData()
        counts[key] = 0 if x is None else len(x)
    return counts


def peak_envelope(x: np.ndarray, y: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """At most about `max_points` points that draw like all of them: each run of neighbours
    becomes its lowest and highest value, so no spike disappears. x must be sorted."""
    n = len(x)
    if n <= max_points:
        return x, y
    size = -(-2 * n // max_points)  # points per pair of output points
    whole = n - n % size
    ys = y[:whole].reshape(-1, size)
    out_x = np.repeat(x[:whole:size], 2)
    out_y = np.empty(len(out_x))
    out_y[0::2] = ys.min(axis=1)
    out_y[1::2] = ys.max(axis=1)
    return np.concatenate([out_x, x[whole:]]), np.concatenate([out_y, y[whole:]])


class _Series:
    """x and y values of one curve, grown as events arrive.

    Kept in numpy buffers that double when full, so a redraw hands setData views
    instead of converting a Python list of 100,000 floats each time.
    """

    def __init__(self) -> None:
        self._data = np.empty((2, 256))
        self._n = 0
        self.version = 0  # changes with every add or clear: a curve redraws only when it changed

    def __len__(self) -> int:
        return self._n

    @property
    def x(self) -> np.ndarray:
        return self._data[0, : self._n]

    @property
    def y(self) -> np.ndarray:
        return self._data[1, : self._n]

    def add(self, x: float, y: float) -> None:
        if self._n == self._data.shape[1]:
            grown = np.empty((2, 2 * self._n))
            grown[:, : self._n] = self._data
            self._data = grown
        self._data[0, self._n] = x
        self._data[1, self._n] = y
        self._n += 1
        self.version += 1

    def clear(self) -> None:
        self._data = np.empty((2, 256))  # a new buffer: the curves may still hold views of the old one
        self._n = 0
        self.version += 1

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return self.x, self.y


class TrainingPlots(QWidget):
    """The loss plot and the accuracy plot, fed with BatchEnd and EpochEnd events."""

    METRICS = ("loss", "accuracy")

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.loss_plot = MetricPlot("Loss", "loss")
        self.accuracy_plot = MetricPlot("Accuracy", "accuracy")
        self.accuracy_plot.getPlotItem().enableAutoRange(y=False)
        self.accuracy_plot.setYRange(0, 1, padding=0.02)
        self._plots = {"loss": self.loss_plot, "accuracy": self.accuracy_plot}
        # One legend for both plots, outside them, so it never hides a curve.
        self.legend = QLabel(
            f"<span style='color:{BATCH_COLOR}'>━━━</span> batches (moving average across epochs) &nbsp;&nbsp;&nbsp; "
            f"<span style='color:{TRAIN_COLOR}'>━●━</span> training, per epoch &nbsp;&nbsp;&nbsp; "
            f"<span style='color:{VAL_COLOR}'>━■━</span> validation, per epoch"
        )
        self.legend.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.legend.setWordWrap(True)  # on two lines in a narrow window, never clipped
        plots = QHBoxLayout()
        plots.setContentsMargins(0, 0, 0, 0)
        plots.addWidget(self.loss_plot)
        plots.addWidget(self.accuracy_plot)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addLayout(plots, 1)
        layout.addWidget(self.legend)

        self._batch = {m: _Series() for m in self.METRICS}
        self._train = {m: _Series() for m in self.METRICS}
        self._val = {m: _Series() for m in self.METRICS}
        self._ema: dict[str, float] = {}
        self._running: dict[str, tuple[int, int, float]] = {}  # metric -> epoch, batches, running mean
        self._dirty = False
        self._drawn: dict[int, int] = {}  # id(curve) -> version of the series it shows
        self.redraws = 0
        self.markers: list[pg.InfiniteLine] = []  # phase switches (two-phase fine-tuning)

        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self._redraw)
        for plot in self._plots.values():
            plot.sigXRangeChanged.connect(self._view_changed)  # zoom or pan: cut the batch curve anew
        self._timer.start()

    def reset(self, epochs: int) -> None:
        for series in (*self._batch.values(), *self._train.values(), *self._val.values()):
            series.clear()
        self._ema.clear()
        self._running.clear()
        for plot in self._plots.values():
            plot.set_epochs(epochs)
        self.loss_plot.getPlotItem().enableAutoRange(y=True)  # a new run's loss, not the last run's scale
        for plot in self._plots.values():
            for line in self.markers:
                if line.scene() is not None and line in plot.getPlotItem().items:
                    plot.removeItem(line)
        self.markers.clear()
        self._dirty = True

    def add_marker(self, epoch: int, label: str = "fine-tuning") -> None:
        """A dashed vertical line where the run switched phase (`epoch` 0-based: drawn at its start)."""
        for plot in self._plots.values():
            line = pg.InfiniteLine(
                pos=float(epoch), angle=90, movable=False,
                pen=pg.mkPen("#64748b", width=1, style=Qt.PenStyle.DashLine),
                label=label, labelOpts={"position": 0.9, "color": "#475569"},
            )
            plot.addItem(line)
            self.markers.append(line)

    def set_epochs(self, epochs: int) -> None:
        for plot in self._plots.values():
            plot.set_epochs(epochs)

    def add_batch(self, event: BatchEnd) -> None:
        x = event.epoch + (event.batch + 1) / max(event.steps, 1)
        for metric in self.METRICS:
            value = self._batches_value(metric, event)
            if value is None:
                continue
            previous = self._ema.get(metric)
            smoothed = value if previous is None else EMA_WEIGHT * value + (1 - EMA_WEIGHT) * previous
            self._ema[metric] = smoothed
            self._batch[metric].add(x, smoothed)
            self._dirty = True

    def _batches_value(self, metric: str, event: BatchEnd) -> float | None:
        """The mean of `metric` over the batches since the last event of this epoch.

        Keras logs a batch's metric as the mean over the epoch so far; two running means give
        the mean of the batches between them (batch events may be thinned out on the way).
        """
        mean = event.logs.get(metric)
        if mean is None or not math.isfinite(mean):
            return None
        seen = event.batch + 1
        last = self._running.get(metric)
        self._running[metric] = (event.epoch, seen, mean)
        if last is None or last[0] != event.epoch or not 0 < last[1] < seen:
            return mean  # the first event of an epoch: the mean of its batches so far
        value = (seen * mean - last[1] * last[2]) / (seen - last[1])
        return value if math.isfinite(value) else mean

    def add_epoch(self, event: EpochEnd) -> None:
        x = float(event.epoch + 1)
        for metric in self.METRICS:
            for series, key in ((self._train[metric], metric), (self._val[metric], f"val_{metric}")):
                value = event.logs.get(key)
                if value is not None and math.isfinite(value):
                    series.add(x, value)
                    self._dirty = True

    def epoch_points(self) -> int:
        """How many epochs the training-loss curve shows (for tests and automation)."""
        x, _ = self.loss_plot.train_curve.getData()
        return 0 if x is None else len(x)

    def batch_points(self) -> int:
        """How many batch values the loss curve holds (it may draw fewer: see peak_envelope)."""
        return len(self._batch["loss"])

    def redraw_now(self) -> None:
        self._dirty = True
        self._redraw()

    @Slot()
    def _view_changed(self) -> None:
        self._dirty = True

    @Slot()
    def _redraw(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        for metric, plot in self._plots.items():
            plot.show_batches(*self._batch[metric].arrays())
            # The epoch curves (with symbols, costly to set) change once an epoch, not with each batch.
            for curve, series in ((plot.train_curve, self._train[metric]), (plot.val_curve, self._val[metric])):
                if self._drawn.get(id(curve)) != series.version:
                    curve.setData(*series.arrays())
                    self._drawn[id(curve)] = series.version
        self.redraws += 1
