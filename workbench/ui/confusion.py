"""A confusion-matrix heat map: true classes down, predicted classes across, counts in the cells.

Cells are coloured by the share of their row (the recall view), so a small class
is as readable as a big one; the numbers are the counts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Slot
from PySide6.QtWidgets import QToolTip, QWidget

MAX_LABELLED_CLASSES = 30  # above this the cells are too small for numbers: hover shows them
DARK_TEXT, LIGHT_TEXT = "#0f172a", "#ffffff"


def _blue_lut() -> np.ndarray:
    """White to deep blue, 256 steps."""
    t = np.linspace(0.0, 1.0, 256)[:, None]
    white, blue = np.array([255.0, 255.0, 255.0]), np.array([29.0, 78.0, 216.0])
    return np.rint(white * (1 - t) + blue * t).astype(np.uint8)


class ConfusionMatrixView(pg.PlotWidget):
    """Call `set_matrix(counts, class_names)`; `counts` keeps the numbers shown (for tests and tooltips)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.counts = np.zeros((0, 0), dtype=np.int64)
        self.class_names: tuple[str, ...] = ()
        self.texts: list[pg.TextItem] = []
        item = self.getPlotItem()
        item.setMenuEnabled(False)
        item.hideButtons()
        item.setMouseEnabled(x=False, y=False)
        item.invertY(True)
        item.setLabel("bottom", "predicted class")
        item.setLabel("left", "true class")
        item.setTitle("<span style='font-size:10pt; font-weight:600'>Confusion matrix</span>")
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setLookupTable(_blue_lut())
        item.addItem(self.image)
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)

    def set_matrix(self, counts: np.ndarray, class_names: Sequence[str]) -> None:
        counts = np.asarray(counts, dtype=np.int64)
        n = len(class_names)
        item = self.getPlotItem()
        for text in self.texts:
            item.removeItem(text)
        self.texts.clear()
        self.counts, self.class_names = counts, tuple(class_names)
        if n == 0:
            self.image.clear()
            return
        rows = counts.sum(axis=1, keepdims=True)
        share = counts / np.maximum(rows, 1)
        self.image.setImage(share.astype(np.float64), levels=(0.0, 1.0), autoLevels=False)
        self.image.setRect(QRectF(0, 0, n, n))
        ticks = [(i + 0.5, name) for i, name in enumerate(class_names)]
        for axis in ("bottom", "left"):
            item.getAxis(axis).setTicks([ticks, []])
        if n <= MAX_LABELLED_CLASSES:
            for i in range(n):
                for j in range(n):
                    colour = LIGHT_TEXT if share[i, j] > 0.55 else DARK_TEXT
                    text = pg.TextItem(str(int(counts[i, j])), color=colour, anchor=(0.5, 0.5))
                    text.setPos(j + 0.5, i + 0.5)
                    item.addItem(text)
                    self.texts.append(text)
        item.setXRange(0, n, padding=0.0)
        item.setYRange(0, n, padding=0.0)

    def shown_total(self) -> int:
        """The sum of the counts written in the cells."""
        return sum(int(t.textItem.toPlainText()) for t in self.texts)

    @Slot(object)
    def _on_mouse_moved(self, position: QPointF) -> None:
        n = len(self.class_names)
        if not n or not self.getPlotItem().vb.sceneBoundingRect().contains(position):
            return
        point = self.getPlotItem().vb.mapSceneToView(position)
        j, i = int(np.floor(point.x())), int(np.floor(point.y()))
        if 0 <= i < n and 0 <= j < n:
            row = int(self.counts[i].sum())
            share = f" ({self.counts[i, j] / row:.0%} of {row})" if row else ""
            QToolTip.showText(
                self.mapToGlobal(self.mapFromScene(position)),
                f"true {self.class_names[i]}, predicted {self.class_names[j]}: "
                f"{int(self.counts[i, j])} image{'s' if self.counts[i, j] != 1 else ''}{share}",
                self,
            )
