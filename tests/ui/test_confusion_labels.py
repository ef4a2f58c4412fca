"""The Evaluate view with 10 classes: every column of the confusion matrix keeps a readable label."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QFontMetrics, QImage, QPainter

from workbench.core.analysis.evaluation import evaluate_predictions
from workbench.ui.confusion import column_labels
from workbench.ui.tasks import model_jobs

FASHION = ("T-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
           "ankle boot")


def ten_class_evaluation():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 4)
    probabilities = rng.dirichlet(np.ones(10), len(labels))
    probabilities[np.arange(len(labels)), labels] += 1.0  # mostly right
    return evaluate_predictions(probabilities / probabilities.sum(1, keepdims=True), labels, FASHION)


def drawn_labels(axis) -> list[str]:
    """The tick texts pyqtgraph would draw (it leaves out a label that overlaps its neighbour)."""
    image = QImage(10, 10, QImage.Format.Format_RGB32)
    painter = QPainter(image)
    if axis.style.get("tickFont") is not None:
        painter.setFont(axis.style["tickFont"])  # as AxisItem.paint does
    try:
        specs = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return [text for _rect, _flags, text in specs[2]] if specs else []


def test_ten_class_columns_are_all_labelled_at_the_default_size(make_window, qtbot):
    window = make_window()
    window.resize(1340, 840)
    window.show()
    qtbot.waitExposed(window)
    panel = window.evaluate_panel
    window.views.setCurrentWidget(panel)
    panel.show_result(model_jobs.EvaluationResult(ten_class_evaluation()))
    matrix = panel.matrix
    for _ in range(3):  # the axes size themselves to their labels as they are painted
        matrix.grab()
        qtbot.wait(20)
    bottom = matrix.getPlotItem().getAxis("bottom")
    texts = matrix.column_texts
    assert len(texts) == 10
    assert drawn_labels(bottom) == texts  # all ten drawn, none dropped for overlapping
    cell = matrix.getPlotItem().vb.width() / 10
    metrics = QFontMetrics(bottom.style.get("tickFont") or matrix.font())
    assert all(metrics.horizontalAdvance(t) <= cell for t in texts)
    assert "ankle boot" in bottom.toolTip() and "10. ankle boot" in bottom.toolTip()
    assert texts[-1] == "ankle boot" or texts[-1].startswith(("ank", "10"))
    assert len(drawn_labels(matrix.getPlotItem().getAxis("left"))) == 10


def test_labels_shrink_to_numbers_when_columns_are_very_narrow(qapp):
    from PySide6.QtGui import QFont

    metrics = QFontMetrics(QFont())
    assert column_labels(FASHION, 400, metrics) == list(FASHION)
    short = column_labels(FASHION, 40, metrics)
    assert any(t.endswith("…") for t in short) and all(metrics.horizontalAdvance(t) <= 40 for t in short)
    assert column_labels(FASHION, 8, metrics) == [str(i) for i in range(1, 11)]
