"""RGB arrays (made off the GUI thread by the model jobs) to Qt pixmaps, on the GUI thread."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QIcon, QImage, QPixmap


def to_image(rgb: np.ndarray) -> QImage:
    """A QImage that owns a copy of an RGB uint8 array (H, W, 3)."""
    array = np.ascontiguousarray(rgb[..., :3], dtype=np.uint8)
    height, width = array.shape[:2]
    image = QImage(array.data, width, height, 3 * width, QImage.Format.Format_RGB888)
    return image.copy()  # the array may go away; the copy owns its pixels


def to_pixmap(rgb: np.ndarray | None, size: int | None = None) -> QPixmap:
    """A pixmap of the array (scaled to fit size x size when given); a grey square for None."""
    if rgb is None:
        pixmap = QPixmap(size or 32, size or 32)
        pixmap.fill(QColor("#e2e8f0"))
        return pixmap
    pixmap = QPixmap.fromImage(to_image(rgb))
    if size:
        pixmap = pixmap.scaled(QSize(size, size), Qt.AspectRatioMode.KeepAspectRatio,
                               Qt.TransformationMode.SmoothTransformation)
    return pixmap


def to_icon(rgb: np.ndarray | None, size: int) -> QIcon:
    return QIcon(to_pixmap(rgb, size))
