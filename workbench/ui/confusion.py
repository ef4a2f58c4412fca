"""A confusion-matrix heat map: true classes down, predicted classes across, counts in the cells.

Cells are coloured by the share of their row (the recall view), so a small class
is as readable as a big one; the numbers are the counts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Slot
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import QToolTip, QWidget

EMPTY_TEXT = "Evaluate a run to see which classes it confuses."
MAX_LABELLED_CLASSES = 30  # above this the cells are too small for numbers: hover shows them
DARK_TEXT, LIGHT_TEXT = "#0f172a", "#ffffff"
MIN_LABEL_PT = 6.5  # the row labels' font shrinks to fit low rows, down to this size


def column_labels(names: Sequence[str], cell_px: float, metrics: QFontMetrics) -> list[str]:
    """The predicted classes' names, each shortened to fit its column ("ankle boot" -> "ankle…");
    column numbers (1, 2, …) when not even two letters and "…" fit. The full names are in tooltips."""
    room = int(cell_px) - 4
    labels = [metrics.elidedText(name, Qt.TextElideMode.ElideRight, max(room, 1)) for name in names]
    if any(len(label) < min(len(name), 3) for label, name in zip(labels, names, strict=True)):
        return [str(i + 1) for i in range(len(names))]  # the left axis then numbers the rows the same way
    return labels


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
        self.column_texts: list[str] = []  # the bottom axis's labels as drawn (shortened to fit)
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
        self.empty_text = pg.TextItem(EMPTY_TEXT, color="#64748b", anchor=(0.5, 0.5))
        item.addItem(self.empty_text)
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        item.vb.sigResized.connect(self._on_view_resized)  # column labels shortened to the new width
        self._show_empty(True)

    def _show_empty(self, empty: bool) -> None:
        """No matrix: a sentence instead of bare axes running -400...400."""
        item = self.getPlotItem()
        self.empty_text.setVisible(empty)
        for axis in ("bottom", "left"):
            item.showAxis(axis, not empty)
        if empty:
            self.empty_text.setPos(0.5, 0.5)
            item.setXRange(0, 1, padding=0.0)
            item.setYRange(0, 1, padding=0.0)

    def is_empty(self) -> bool:
        return self.empty_text.isVisible()

    def set_matrix(self, counts: np.ndarray, class_names: Sequence[str]) -> None:
        counts = np.asarray(counts, dtype=np.int64)
        n = len(class_names)
        item = self.getPlotItem()
        for text in self.texts:
            item.removeItem(text)
        self.texts.clear()
        self.counts, self.class_names = counts, tuple(class_names)
        self._show_empty(n == 0)
        if n == 0:
            self.image.clear()
            return
        rows = counts.sum(axis=1, keepdims=True)
        share = counts / np.maximum(rows, 1)
        self.image.setImage(share.astype(np.float64), levels=(0.0, 1.0), autoLevels=False)
        self.image.setRect(QRectF(0, 0, n, n))
        self._fit_column_labels()
        item.getAxis("bottom").setToolTip("Predicted classes, left to right:\n"
                                          + "\n".join(f"{i + 1}. {name}" for i, name in enumerate(class_names)))
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

    def _fit_column_labels(self) -> None:
        """Column labels that fit their columns (none is dropped for overlapping its neighbour)."""
        n = len(self.class_names)
        if not n:
            return
        item = self.getPlotItem()
        axis = item.getAxis("bottom")
        font = QFont(axis.style.get("tickFont") or self.font())
        cell_px = item.vb.width() / n if item.vb.width() > 0 else self.width() / (n + 2)
        self.column_texts = column_labels(self.class_names, cell_px, QFontMetrics(font))
        numbered = self.column_texts[0] == "1" and self.class_names[0] != "1"
        axis.setTicks([[(i + 0.5, text) for i, text in enumerate(self.column_texts)], []])
        rows = [f"{i + 1}. {name}" if numbered else name for i, name in enumerate(self.class_names)]
        left = item.getAxis("left")
        left.setTicks([[(i + 0.5, text) for i, text in enumerate(rows)], []])
        # Rows lower than a line of text: a smaller font, so that no row loses its label.
        row_px = item.vb.height() / n if item.vb.height() > 0 else 0.0
        row_font = QFont(font)
        while row_px and QFontMetrics(row_font).height() > row_px and row_font.pointSizeF() > MIN_LABEL_PT:
            row_font.setPointSizeF(row_font.pointSizeF() - 0.5)
        if left.style.get("tickFont") != row_font:
            left.setStyle(tickFont=row_font)

    @Slot(object)
    def _on_view_resized(self, _view_box) -> None:
        self._fit_column_labels()

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
