"""Saved runs' curves, read from their metrics.csv: one run, or several overlaid to compare.

One run is drawn like the live plots (training blue, validation orange). Several
runs get one colour each: validation solid with markers, training dashed, and a
legend below the plots names each run's colour.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from workbench.core.runs.listing import overlay_label, run_label
from workbench.core.runs.store import RunRecord
from workbench.ui.plot_export import add_export_menu
from workbench.ui.plots import TRAIN_COLOR, VAL_COLOR

# Distinct on white and for the common colour-vision deficiencies (Okabe-Ito, then Tableau).
RUN_COLORS = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000",
              "#8c564b", "#7f7f7f", "#bcbd22")
METRICS = (("loss", "Loss"), ("accuracy", "Accuracy"))


@dataclass
class DrawnCurve:
    run: str  # run folder path
    metric: str  # "loss" | "accuracy"
    kind: str  # "train" | "val"
    item: pg.PlotDataItem


def _series(record: RunRecord, key: str) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for row in record.metrics:
        value = row.get(key)
        if value is not None and math.isfinite(value):
            xs.append(float(row["epoch"]))  # metrics.csv counts epochs from 1
            ys.append(value)
    return np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)


class RunCurves(QWidget):
    """Loss and accuracy of the runs given to `show_runs`, side by side."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.plots: dict[str, pg.PlotWidget] = {}
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        for metric, title in METRICS:
            plot = pg.PlotWidget()
            item = plot.getPlotItem()
            item.setTitle(f"<span style='font-size:10pt; font-weight:600'>{title}</span>")
            item.setLabel("bottom", "epoch")
            item.showGrid(x=True, y=True, alpha=0.2)
            item.setMenuEnabled(False)
            add_export_menu(plot, f"runs-{metric}")
            self.plots[metric] = plot
            row.addWidget(plot)
        self.legend = QLabel()
        self.legend.setObjectName("hint")
        self.legend.setWordWrap(True)
        self.legend.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addLayout(row, 1)
        layout.addWidget(self.legend)
        self.curves: list[DrawnCurve] = []
        self.legend_entries: list[tuple[str, str]] = []  # (label, colour)
        self.show_runs([])

    def curve_count(self, metric: str | None = None, kind: str | None = None) -> int:
        """How many curves are drawn (with data), optionally of one metric and kind: for tests."""
        return sum(1 for c in self.curves if (metric is None or c.metric == metric)
                   and (kind is None or c.kind == kind))

    def show_runs(self, records: Sequence[RunRecord]) -> None:
        for plot in self.plots.values():
            plot.getPlotItem().clear()
        self.curves.clear()
        self.legend_entries.clear()
        records = list(records)
        if not records:
            self.legend.setText("Select a run to see its curves; select several (Ctrl or Shift) to compare them.")
            return
        single = len(records) == 1
        parts = []
        for index, record in enumerate(records):
            colour = RUN_COLORS[index % len(RUN_COLORS)]
            label = run_label(record) if single else overlay_label(record)
            drawn = 0
            for metric, plot in self.plots.items():
                for kind, key in (("train", metric), ("val", f"val_{metric}")):
                    x, y = _series(record, key)
                    if not len(x):
                        continue
                    if single:
                        style = self._style(kind, TRAIN_COLOR if kind == "train" else VAL_COLOR, dashed=False)
                    else:
                        style = self._style(kind, colour, dashed=kind == "train")
                    item = plot.getPlotItem().plot(x, y, **style)
                    self.curves.append(DrawnCurve(str(record.path), metric, kind, item))
                    drawn += 1
            self.legend_entries.append((label, colour))
            note = "" if drawn else " (no epochs recorded)"
            if not single:
                parts.append(f"<span style='color:{colour}'>━━</span> {html.escape(label)}{note}")
            elif note:
                parts.append(f"{html.escape(label)}{note}")
        if single:
            prefix = " &nbsp; ".join(parts)
            self.legend.setText(
                (prefix + " &nbsp;&nbsp; " if prefix else "")
                + f"<span style='color:{TRAIN_COLOR}'>━●━</span> training &nbsp;&nbsp; "
                f"<span style='color:{VAL_COLOR}'>━■━</span> validation"
            )
        else:
            self.legend.setText(" &nbsp;&nbsp; ".join(parts)
                                + " &nbsp;&nbsp; <i>(solid: validation, dashed: training)</i>")
        accuracy = self.plots["accuracy"].getPlotItem()
        accuracy.enableAutoRange(y=False)
        accuracy.setYRange(0, 1, padding=0.02)
        for plot in self.plots.values():
            plot.getPlotItem().enableAutoRange(x=True)

    @staticmethod
    def _style(kind: str, colour: str, dashed: bool) -> dict:
        line = Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine
        if kind == "val":
            return {"pen": pg.mkPen(colour, width=2.5, style=line), "symbol": "s", "symbolSize": 6,
                    "symbolBrush": colour, "symbolPen": "w"}
        return {"pen": pg.mkPen(colour, width=1.8, style=line), "symbol": "o", "symbolSize": 5,
                "symbolBrush": colour, "symbolPen": "w"}
