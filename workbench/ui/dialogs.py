"""Non-blocking message boxes and the About text, kept out of the window's own code."""

from __future__ import annotations

import importlib.metadata
import platform

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

import workbench


def open_error_box(parent: QWidget, title: str, text: str, details: str = "") -> QMessageBox:
    """A window-modal error box that does not block the event loop (runs keep going)."""
    box = QMessageBox(QMessageBox.Icon.Critical, title, text, QMessageBox.StandardButton.Ok, parent)
    if details:
        box.setDetailedText(details)
    box.setWindowModality(Qt.WindowModality.WindowModal)
    box.open()
    return box


def open_info_box(parent: QWidget, title: str, text: str) -> QMessageBox:
    box = QMessageBox(QMessageBox.Icon.Information, title, text, QMessageBox.StandardButton.Ok, parent)
    box.open()
    return box


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def about_text() -> str:
    """The versions that matter when someone reports a problem."""
    return (
        f"Workbench {workbench.__version__}\n"
        "Point-and-click transfer learning: pretrained backbones, dropout, freezing, live curves.\n\n"
        f"TensorFlow {_version('tensorflow')}, Keras {_version('keras')}\n"
        f"PySide6 {_version('PySide6-Essentials')}, pyqtgraph {_version('pyqtgraph')}\n"
        f"Python {platform.python_version()}"
    )
