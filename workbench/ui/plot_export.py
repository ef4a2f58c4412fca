"""Plots people can take away: PNG, SVG and CSV through pyqtgraph's own exporters, and Copy image.

pyqtgraph's full context menu stays off on Workbench's plots (its axis and range settings
fight the live updates); a right click offers these four actions instead.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pyqtgraph as pg
import pyqtgraph.exporters  # noqa: F401  (loads the exporter modules)
from pyqtgraph.exporters import CSVExporter, ImageExporter, SVGExporter
from PySide6.QtCore import QObject, QPoint, Qt, Slot
from PySide6.QtWidgets import QFileDialog, QMenu, QMessageBox


def _close_paths_as_lines(node) -> None:
    """Qt 6.11's SVG writer ends closed paths with "Z", which pyqtgraph 0.14's SVG exporter cannot
    parse ("not enough values to unpack"): write the close as a line back to the path's start."""
    for path in node.getElementsByTagName("path"):
        tokens = path.getAttribute("d").split()
        if "Z" not in tokens and "z" not in tokens:
            continue
        start, fixed = None, []
        for token in tokens:
            if token in ("Z", "z"):
                if start is not None:
                    fixed.append("L" + start)
                continue
            if token[:1] == "M":
                start = token[1:]
            fixed.append(token)
        path.setAttribute("d", " ".join(fixed))


def _patch_svg_exporter() -> None:
    module = sys.modules[SVGExporter.__module__]
    original = module.correctCoordinates
    if getattr(original, "closes_paths", False):
        return

    def correct_coordinates(node, defs, item, options):
        _close_paths_as_lines(node)
        return original(node, defs, item, options)

    correct_coordinates.closes_paths = True
    module.correctCoordinates = correct_coordinates


_patch_svg_exporter()

EXPORTERS = {".png": ImageExporter, ".svg": SVGExporter, ".csv": CSVExporter}
FILE_FILTER = "PNG image (*.png);;SVG drawing (*.svg);;CSV data (*.csv)"


def export_plot(plot: pg.PlotWidget, path: str | Path) -> Path:
    """Write the plot to `path`; its suffix picks the format (.png, .svg or .csv)."""
    path = Path(path)
    exporter_type = EXPORTERS.get(path.suffix.lower())
    if exporter_type is None:
        raise ValueError(f"cannot export a plot as '{path.suffix}': use .png, .svg or .csv")
    exporter = exporter_type(plot.getPlotItem())
    if exporter_type is ImageExporter:
        exporter.parameters()["width"] = max(800, int(plot.width() * 2))  # sharper than the screen
    exporter.export(str(path))
    return path


def copy_plot_image(plot: pg.PlotWidget) -> None:
    """The plot as an image on the clipboard."""
    ImageExporter(plot.getPlotItem()).export(copy=True)


class PlotExportMenu(QObject):
    """The right-click menu of one plot: Export PNG / SVG / CSV..., Copy image."""

    def __init__(self, plot: pg.PlotWidget, name: str):
        super().__init__(plot)
        self.plot, self.name = plot, name
        self.menu = QMenu(plot)
        for label, suffix in (("Export PNG…", ".png"), ("Export SVG…", ".svg"), ("Export CSV…", ".csv")):
            action = self.menu.addAction(label)
            action.setData(suffix)
            action.triggered.connect(self.export_dialog)
        self.menu.addAction("Copy image").triggered.connect(self.copy_image)
        plot.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        plot.customContextMenuRequested.connect(self.show_menu)

    @Slot(QPoint)
    def show_menu(self, position: QPoint) -> None:
        self.menu.popup(self.plot.mapToGlobal(position))

    @Slot()
    def export_dialog(self) -> None:
        suffix = self.sender().data() if self.sender() is not None else ".png"
        chosen = {".png": "PNG image (*.png)", ".svg": "SVG drawing (*.svg)", ".csv": "CSV data (*.csv)"}[suffix]
        path, _ = QFileDialog.getSaveFileName(self.plot, "Export the plot", str(Path.home() / f"{self.name}{suffix}"),
                                              FILE_FILTER, chosen)
        if not path:
            return
        if not Path(path).suffix:
            path += suffix
        try:
            export_plot(self.plot, path)
        except (OSError, ValueError) as exc:
            QMessageBox.warning(self.plot, "The plot was not exported", str(exc))

    @Slot()
    def copy_image(self) -> None:
        copy_plot_image(self.plot)


def add_export_menu(plot: pg.PlotWidget, name: str) -> PlotExportMenu:
    """Give `plot` the export menu; `name` is the file name offered (without suffix)."""
    return PlotExportMenu(plot, name)
