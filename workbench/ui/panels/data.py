"""Data panel: the image folder (with what the scan found), validation, image size."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QSpinBox,
    QStyle,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from workbench.core.config.backbone_catalogue import BACKBONES
from workbench.core.config.run import RunConfig
from workbench.ui.fields import FloatEdit, PathEdit
from workbench.ui.panels.base import ConfigPanel

MAX_LISTED_PROBLEMS = 200


class DataPanel(ConfigPanel):
    title = "Data"

    def __init__(self, config: RunConfig, parent: QWidget | None = None):
        super().__init__(config, parent)
        form = self.add_group("Images")
        self.folder = PathEdit(folder=True, caption="Choose a folder of images (one sub-folder per class)")
        self.bind("data.folder", self.folder, "Image folder",
                  "A folder with one sub-folder per class; you can also drop a folder on the window.")
        form.addRow("Folder", self.folder)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setObjectName("scanSummary")
        form.addRow(self.summary)

        self.classes = QTableWidget(0, 2)
        self.classes.setHorizontalHeaderLabels(["Class", "Images"])
        self.classes.verticalHeader().setVisible(False)
        self.classes.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.classes.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.classes.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.classes.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.classes.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.classes.verticalHeader().setDefaultSectionSize(22)
        form.addRow(self.classes)

        self.problems = QListWidget()
        self.problems.setWordWrap(True)
        self.problems.setMaximumHeight(110)
        self.problems.setVisible(False)
        form.addRow(self.problems)

        form = self.add_group("Validation")
        self.split = FloatEdit()
        self.bind("data.validation_split", self.split, "Validation split",
                  "Share of each class held back for validation (0.2 keeps 20 %), with a fixed seed.")
        form.addRow("Split", self.split)
        self.validation_folder = PathEdit(folder=True, caption="Choose a folder of validation images")
        self.bind("data.validation_folder", self.validation_folder, "Validation folder",
                  "Optional: a separate folder (same class sub-folders) used for validation instead of a split.")
        self.validation_folder.line_edit.setPlaceholderText("optional: a separate folder, instead of the split")
        form.addRow("Folder", self.validation_folder)

        form = self.add_group("Test (held out, never trained on)")
        self.test_split = FloatEdit()
        self.bind("data.test_split", self.test_split, "Test split",
                  "Share of each class held out for a final test (0.1 keeps 10 %), with the seed; training, "
                  "keep-best, early stopping and tuning never see it. Evaluate scores it (on test). 0: none.")
        form.addRow("Split", self.test_split)
        self.test_folder = PathEdit(folder=True, caption="Choose a folder of test images")
        self.bind("data.test_folder", self.test_folder, "Test folder",
                  "Optional: a separate folder of test images (same class sub-folders), instead of a split.")
        self.test_folder.line_edit.setPlaceholderText("optional: a separate folder, instead of the split")
        form.addRow("Folder", self.test_folder)

        form = self.add_group("Input")
        self.image_size = QSpinBox()
        self.image_size.setRange(1, 4096)
        self.image_size.setSingleStep(16)
        self.image_size.setSuffix(" px")
        self.image_size.setMaximumWidth(120)
        self.bind("data.image_size", self.image_size, "Image size",
                  "Images are resized to this square size before they reach the backbone.")
        form.addRow("Image size", self.image_size)
        self.size_hint = QLabel()
        self.size_hint.setWordWrap(True)
        self.size_hint.setObjectName("hint")
        form.addRow(self.size_hint)
        self.cache = QCheckBox("Keep decoded images in memory")
        self.bind("data.cache", self.cache, "Cache",
                  "Faster after the first epoch; needs memory for every image at this size.")
        form.addRow(self.cache)
        self.finish_layout()
        self.clear_scan("")
        self.update_state()

    def update_state(self) -> None:
        self.split.setEnabled(not self.config.data.validation_folder.strip())
        self.test_split.setEnabled(not self.config.data.test_folder.strip())
        spec = BACKBONES.get(self.config.backbone.name)
        if spec is not None:
            self.size_hint.setText(
                f"{spec.name} was trained at {spec.default_size} px: smaller images train faster, "
                "larger ones keep more detail."
            )

    # ---- what the scan found ---------------------------------------------------------
    def clear_scan(self, text: str) -> None:
        self.summary.setText(text)
        self.classes.setRowCount(0)
        self.classes.setVisible(False)
        self.problems.clear()
        self.problems.setVisible(False)

    def show_scanning(self, folder: str, done: int = 0, total: int = 0) -> None:
        counted = f" ({done:,} of {total:,})" if total else ""
        self.clear_scan(f"Checking the images in {folder}…{counted}")

    def show_scan_failed(self, message: str) -> None:
        self.clear_scan(f"Could not scan the folder: {message}")

    def show_scan(self, report) -> None:
        """Show a core ScanReport: classes with counts, then blocking problems and warnings."""
        images = sum(report.counts.values())
        blocking = tuple(getattr(report, "blocking", ()))
        text = f"{images} usable images in {len(report.class_names)} classes"
        if blocking:
            text += " — cannot train yet, see below"
        self.summary.setText(text)
        self.classes.setRowCount(len(report.class_names))
        for row, name in enumerate(report.class_names):
            count = QTableWidgetItem(str(report.counts.get(name, 0)))
            count.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.classes.setItem(row, 0, QTableWidgetItem(name))
            self.classes.setItem(row, 1, count)
        shown_rows = min(len(report.class_names), 8)  # more scroll
        self.classes.setFixedHeight(
            self.classes.horizontalHeader().sizeHint().height()
            + self.classes.verticalHeader().defaultSectionSize() * shown_rows
            + 2 * self.classes.frameWidth()
        )
        self.classes.setVisible(bool(report.class_names))

        self.problems.clear()
        warnings = [p for p in report.problems if p not in blocking]
        error_icon = self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxCritical)
        warning_icon = self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
        listed = [(error_icon, f"Cannot train: {p.message}") for p in blocking]
        listed += [(warning_icon, f"Left out: {p.message}") for p in warnings]
        for icon, message in listed[:MAX_LISTED_PROBLEMS]:
            item = QListWidgetItem(icon, message)
            item.setToolTip(message)
            self.problems.addItem(item)
        if len(listed) > MAX_LISTED_PROBLEMS:
            self.problems.addItem(f"… and {len(listed) - MAX_LISTED_PROBLEMS} more")
        self.problems.setVisible(bool(listed))
