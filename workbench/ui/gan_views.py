"""The GAN lab's live view: both losses, the discriminator's outputs and the grid of samples.

Curves keep their points in growing numpy buffers and redraw on a timer, as the classifier's
plots do, so a fast run never redraws per step.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.core.base.events import GanSamples, GanStep
from workbench.core.runs.gan_sweeps import GanSweepResult
from workbench.ui.plot_export import add_export_menu
from workbench.ui.plots import drawn_points

REDRAW_MS = 50
COLORS = {"d_loss": "#2563eb", "g_loss": "#ea580c", "d_real": "#16a34a", "d_fake": "#dc2626"}
SWEEP_COLUMNS = ("Rate", "Status", "FID", "Inception Score", "Steps", "Run folder")
SAMPLES_HINT = "Samples from a fixed noise batch appear here."


class SeriesBuffer:
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


def make_plot(title: str, left: str) -> pg.PlotWidget:
    widget = pg.PlotWidget(background="w")
    item = widget.getPlotItem()
    item.setTitle(f"<span style='font-size:11pt; font-weight:600'>{title}</span>")
    item.setLabel("bottom", "step")
    item.setLabel("left", left)
    item.showGrid(x=True, y=True, alpha=0.2)
    item.setDownsampling(auto=True, mode="peak")
    item.setClipToView(True)
    item.setMenuEnabled(False)
    add_export_menu(widget, "gan-" + left.split()[0].strip("'"))
    return widget


def legend_label(entries: tuple[tuple[str, str], ...]) -> QLabel:
    """A legend under a plot, outside its data: ━ name for each (colour, name)."""
    label = QLabel("&nbsp;&nbsp;&nbsp;".join(f"<span style='color:{colour}'>━━</span> {name}"
                                               for colour, name in entries))
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setWordWrap(True)
    return label


def with_legend(plot: pg.PlotWidget, legend: QLabel) -> QWidget:
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(0)
    layout.addWidget(plot, 1)
    layout.addWidget(legend)
    return box


class GanLiveView(QWidget):
    """Losses and D(real)/D(fake) per step, and the latest samples; redrawn every REDRAW_MS."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._build())
        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self.redraw)
        self._timer.start()

    def _build(self) -> QWidget:
        self.loss_plot = make_plot("Losses", "loss")
        self.d_plot = make_plot("D(real) and D(fake)", "probability 'real'")
        self.d_plot.getPlotItem().enableAutoRange(y=False)
        self.d_plot.setYRange(0, 1, padding=0.02)
        self.curves = {
            "d_loss": self.loss_plot.plot(pen=pg.mkPen(COLORS["d_loss"], width=1.5), name="discriminator", antialias=False),
            "g_loss": self.loss_plot.plot(pen=pg.mkPen(COLORS["g_loss"], width=1.5), name="generator", antialias=False),
            "d_real": self.d_plot.plot(pen=pg.mkPen(COLORS["d_real"], width=1.5), name="D(real)", antialias=False),
            "d_fake": self.d_plot.plot(pen=pg.mkPen(COLORS["d_fake"], width=1.5), name="D(fake)", antialias=False),
        }
        self._series = {key: SeriesBuffer() for key in self.curves}
        self._dirty = False

        self.samples_view = pg.GraphicsLayoutWidget()
        self.samples_view.setBackground("w")
        self.samples_box = self.samples_view.addViewBox(lockAspect=True, invertY=True, enableMouse=False)
        self.samples_image = pg.ImageItem(axisOrder="row-major")
        self.samples_box.addItem(self.samples_image)
        self.samples_label = QLabel(SAMPLES_HINT)
        self.samples_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        samples = QWidget()
        samples_layout = QVBoxLayout(samples)
        samples_layout.setContentsMargins(0, 0, 0, 0)
        samples_layout.addWidget(self.samples_view, 1)
        samples_layout.addWidget(self.samples_label)

        self.loss_legend = legend_label(((COLORS["d_loss"], "discriminator"), (COLORS["g_loss"], "generator")))
        self.d_legend = legend_label(((COLORS["d_real"], "D(real): on real images"),
                                      (COLORS["d_fake"], "D(fake): on generated ones")))
        live = QSplitter(Qt.Orientation.Horizontal)  # drag to give the curves or the samples more room
        live.setChildrenCollapsible(False)
        plots = QSplitter(Qt.Orientation.Vertical)
        plots.setChildrenCollapsible(False)
        plots.addWidget(with_legend(self.loss_plot, self.loss_legend))
        plots.addWidget(with_legend(self.d_plot, self.d_legend))
        live.addWidget(plots)
        live.addWidget(samples)
        live.setStretchFactor(0, 3)
        live.setStretchFactor(1, 2)
        live.setSizes([600, 300])
        self.samples_label.setWordWrap(True)
        self.samples_label.setMinimumWidth(1)
        return live

    def set_steps(self, steps: int) -> None:
        for plot in (self.loss_plot, self.d_plot):
            plot.getPlotItem().setXRange(0, steps, padding=0.02)

    def reset(self) -> None:
        for series in self._series.values():
            series.clear()
        self._dirty = True
        self.samples_image.clear()
        self.samples_label.setText(SAMPLES_HINT)

    def add_step(self, event: GanStep) -> None:
        for key in self._series:
            value = getattr(event, key)
            if np.isfinite(value):
                self._series[key].add(event.step, value)
        self._dirty = True

    def show_samples(self, event: GanSamples) -> None:
        if event.pixels:
            self.samples_image.setImage(event.array(), autoLevels=False, levels=(0, 255))
            self.samples_box.autoRange(padding=0.01)
        self.samples_label.setText(f"Step {event.step}: samples from the fixed noise (spread {event.diversity:.3f})")

    def points(self) -> dict[str, int]:
        """Points drawn per curve (for tests and automation)."""
        return drawn_points(self.curves)

    @Slot()
    def redraw(self, force: bool = False) -> None:
        if not (self._dirty or force):
            return
        self._dirty = False
        for key, curve in self.curves.items():
            curve.setData(*self._series[key].arrays())

    def stop(self) -> None:
        self._timer.stop()


class GanSweepTable(QTableWidget):
    """FID per discriminator dropout rate; the best (lowest FID) row in bold."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(0, len(SWEEP_COLUMNS), parent)
        self.setHorizontalHeaderLabels(SWEEP_COLUMNS)
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.horizontalHeader().setStretchLastSection(True)

    def show_trials(self, trials) -> None:
        best = GanSweepResult(trials=list(trials)).best()
        bold = QFont(self.font())
        bold.setBold(True)
        self.setRowCount(len(trials))
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
                self.setItem(r, c, item)

    def rows(self) -> list[list[str]]:
        return [[self.item(r, c).text() for c in range(self.columnCount())]
                for r in range(self.rowCount())]
