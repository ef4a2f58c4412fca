"""An image with its Grad-CAM heat map, the colour scale ("low ... high") beside it, and a caption.

Shared by the Predict and Evaluate views. It shows a `model_jobs.GradCamResult` (plain arrays
made off the GUI thread) and never computes anything itself.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from workbench.ui.images import to_pixmap

LEGEND_WIDTH = 110
LEGEND_HEIGHT = 10


class CamView(QWidget):
    """`set_cam(result, caption)` draws the overlay (or, with `show_cam` unticked, the plain image),
    its legend and its caption."""

    def __init__(self, min_px: int, render_px: int, parent: QWidget | None = None):
        super().__init__(parent)
        self.render_px = render_px
        self.cam = None
        self.preview = QLabel()
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setMinimumSize(min_px, min_px)
        self.preview.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.preview.setStyleSheet("background: #f1f5f9; border-radius: 4px")
        self.show_cam = QCheckBox("Grad-CAM heat map")
        self.show_cam.setToolTip("Grad-CAM: where the model looked for the class (bright: most)")
        self.show_cam.setChecked(True)
        self.show_cam.toggled.connect(self.redraw)
        self.legend_low = QLabel("low")
        self.legend_bar = QLabel()
        self.legend_bar.setFixedSize(LEGEND_WIDTH, LEGEND_HEIGHT)
        self.legend_bar.setScaledContents(True)
        self.legend_bar.setToolTip("The heat map's colours: dark where the area hardly raised the class's score, "
                                   "bright yellow where it raised it most (relative to this image's peak)")
        self.legend_high = QLabel("high")
        for label in (self.legend_low, self.legend_high):
            label.setObjectName("hint")
        self.legend = QWidget()
        legend_row = QHBoxLayout(self.legend)
        legend_row.setContentsMargins(0, 0, 0, 0)
        legend_row.setSpacing(4)
        legend_row.addWidget(self.legend_low)
        legend_row.addWidget(self.legend_bar)
        legend_row.addWidget(self.legend_high)
        self.legend.setVisible(False)
        controls = QHBoxLayout()
        controls.setContentsMargins(0, 0, 0, 0)
        controls.addWidget(self.show_cam)
        controls.addStretch(1)
        controls.addWidget(self.legend)
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        self.caption.setObjectName("hint")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.preview, 1)
        layout.addLayout(controls)
        layout.addWidget(self.caption)

    def clear(self, caption: str = "") -> None:
        self.cam = None
        self.preview.clear()
        self.legend.setVisible(False)
        self.caption.setText(caption)

    def set_caption(self, text: str) -> None:
        self.caption.setText(text)

    def set_cam(self, cam, caption: str) -> None:
        """Show a GradCamResult with `caption`, followed by the coarse-map note when there is one."""
        self.cam = cam
        note = getattr(cam, "note", "")
        self.caption.setText(f"{caption} {note}".strip())
        legend = getattr(cam, "legend", None)
        if legend is not None:
            self.legend_bar.setPixmap(to_pixmap(legend))
        self.redraw()

    @Slot()
    def redraw(self) -> None:
        if self.cam is None:
            return
        on = self.show_cam.isChecked()
        self.legend.setVisible(on and getattr(self.cam, "legend", None) is not None)
        self.preview.setPixmap(to_pixmap(self.cam.overlay if on else self.cam.image, self.render_px))
