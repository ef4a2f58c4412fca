"""Every live plot takes its data away as PNG, SVG and CSV (pyqtgraph's exporters), or as an image copy."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image
from PySide6.QtWidgets import QApplication

from workbench.core.base.events import BatchEnd, EpochEnd
from workbench.ui.plot_export import export_plot
from workbench.ui.plots import TrainingPlots


@pytest.fixture
def plots(qtbot):
    plots = TrainingPlots()
    qtbot.addWidget(plots)
    plots.resize(900, 320)
    plots.show()
    plots.reset(3)
    for epoch in range(3):
        for batch in range(4):
            plots.add_batch(BatchEnd(epoch=epoch, batch=batch, steps=4, logs={"loss": 2.0 - 0.1 * (4 * epoch + batch)}))
        plots.add_epoch(EpochEnd(epoch=epoch, logs={"loss": 1.5 - 0.3 * epoch, "val_loss": 1.6 - 0.2 * epoch,
                                                     "accuracy": 0.5 + 0.1 * epoch, "val_accuracy": 0.4 + 0.1 * epoch}))
    plots.redraw_now()
    return plots


def test_png_svg_and_csv_hold_the_curves(plots, tmp_path):
    plot = plots.loss_plot
    png = export_plot(plot, tmp_path / "loss.png")
    pixels = np.asarray(Image.open(png).convert("RGB"))
    assert pixels.shape[1] >= 800 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20  # not blank
    svg = export_plot(plot, tmp_path / "loss.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "<path" in svg
    rows = list(csv.reader(export_plot(plot, tmp_path / "loss.csv").open()))
    numbers = [float(v) for row in rows[1:] for v in row if v.strip()]
    assert len(rows) >= 4 and 1.6 in [round(v, 6) for v in numbers]  # the first validation loss is there
    with pytest.raises(ValueError, match="png, .svg or .csv"):
        export_plot(plot, tmp_path / "loss.gif")


def test_the_right_click_menu_offers_the_four_actions_and_copy_fills_the_clipboard(plots):
    menu = plots.loss_plot.export_menu.menu
    assert [a.text() for a in menu.actions()] == ["Export PNG…", "Export SVG…", "Export CSV…", "Copy image"]
    QApplication.clipboard().clear()
    menu.actions()[3].trigger()
    assert not QApplication.clipboard().image().isNull()
