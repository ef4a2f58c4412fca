"""Export dialog: save a run's model for use outside Workbench, checked against the original.

`core.export.export_run` runs as a background model job; the dialog then shows
where the file went, its size, and the check (the largest difference between the
exported model's probabilities and the original's), or why it failed.
"""

from __future__ import annotations

import html
import math
import threading
from pathlib import Path

from PySide6.QtCore import Qt, QThreadPool, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from workbench.core.config.export import FILE_NAMES, FORMATS, INT8_IO
from workbench.ui.fields import PathEdit
from workbench.ui.tasks import model_jobs
from workbench.ui.tasks.background import BackgroundJobs

FORMAT_LABELS = {
    "keras": "Keras (.keras): for Keras programs and Workbench",
    "savedmodel": "TensorFlow SavedModel: for TF Serving and TensorFlow programs",
    "tflite": "TFLite (float32): for phones and small devices",
    "tflite-dynamic": "TFLite, dynamic-range quantised: about 4× smaller, slightly less exact",
    "tflite-int8": "TFLite, full int8: integer only (microcontrollers, NPUs), checked by its accuracy",
    "onnx": "ONNX: for ONNX Runtime and other ONNX programs, checked in onnxruntime",
}
INT8_IO_LABELS = {"int8": "int8 pixels and scores (-128..127)", "uint8": "uint8 pixels and scores (0..255)"}


def describe_result(result) -> tuple[str, bool]:
    """Rich text for an ExportResult, and whether it succeeded."""
    if result.ok:
        lines = [
            "<b style='color:#15803d'>Exported and checked.</b>",
            f"Path: <code>{html.escape(result.path)}</code>",
            f"Size: {html.escape(result.size_text)}",
            f"Check: largest difference from the original model {result.max_abs_diff:.2g} "
            f"(allowed {result.tolerance:g}) on {html.escape(result.checked_on or 'test images')}"
            if result.format != "tflite-int8" else
            f"Check: {_int8_figures(result)}",
        ]
        if not math.isnan(result.top1_agreement):
            lines.append(f"Top-1 agreement with the original: {result.top1_agreement:.0%}")
        if result.labels_path:
            lines.append(f"Class names, in output order: <code>{html.escape(result.labels_path)}</code>")
        if result.needs_select_tf_ops:
            lines.append("<span style='color:#b45309'>This TFLite model needs TensorFlow ops at run time "
                         "(the Flex delegate).</span>")
        return "<br>".join(lines), True
    lines = [f"<b style='color:#b91c1c'>The export failed:</b> {html.escape(result.error or 'unknown reason')}"]
    if result.path:
        lines.append(f"The file was written but should not be used: <code>{html.escape(result.path)}</code>")
    if result.format == "tflite-int8" and not math.isnan(result.accuracy):
        lines.append(_int8_figures(result))
    elif not math.isnan(result.max_abs_diff):
        lines.append(f"Largest difference from the original: {result.max_abs_diff:.3g} "
                     f"(allowed {result.tolerance:g})")
    return "<br>".join(lines), False


def _int8_figures(result) -> str:
    return (f"accuracy {result.accuracy:.1%} against the original model's {result.reference_accuracy:.1%} "
            f"on {html.escape(result.checked_on)}; size {html.escape(result.size_text)} against "
            f"{html.escape(result.reference_size_text)} for float TFLite; inputs and outputs {result.int8_io}")


class ExportDialog(QDialog):
    """Choose a format and export; `exported(result)` for each finished export, `result` keeps the last."""

    exported = Signal(object)  # ExportResult
    export_failed = Signal(str)

    def __init__(self, run_dir: str, title: str, model_pool: QThreadPool, cancel: threading.Event,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(f"Export {title}")
        self.run_dir = run_dir
        self.result = None
        self.error = ""
        self._cancel = cancel
        self._busy = False
        self.jobs = BackgroundJobs(model_pool, self)
        self.jobs.done.connect(self._on_done)
        self.jobs.failed.connect(self._on_failed)

        self.format = QComboBox()
        for fmt in FORMATS:
            self.format.addItem(FORMAT_LABELS.get(fmt, fmt), fmt)
        self.format.currentIndexChanged.connect(self._show_target)
        self.target = QLabel()
        self.target.setWordWrap(True)
        self.target.setObjectName("hint")
        self.target.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form = QFormLayout()
        form.addRow("Format", self.format)
        self.int8_io = QComboBox()
        for io in INT8_IO:
            self.int8_io.addItem(INT8_IO_LABELS[io], io)
        self.int8_io.setToolTip("The type of the full-int8 model's input pixels and output scores")
        form.addRow("Int8 inputs", self.int8_io)
        self._int8_form = form
        self.folder = PathEdit(folder=True, caption="Choose the folder to export into")
        self.folder.line_edit.setPlaceholderText("default: the run's export folder")
        self.folder.setToolTip("Where the exported model and labels.txt go; empty: <run>/export/<format>")
        self.folder.valueChanged.connect(self._show_target)
        form.addRow("Save into", self.folder)
        form.addRow("File", self.target)

        self.progress = QProgressBar()
        self.progress.setRange(0, 0)  # busy: the export gives no progress of its own
        self.progress.setVisible(False)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextFormat(Qt.TextFormat.RichText)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.setMinimumWidth(460)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.export_button = QPushButton("Export")
        self.export_button.setDefault(True)
        self.buttons.addButton(self.export_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.open_button = QPushButton("Show folder")
        self.open_button.setEnabled(False)
        self.buttons.addButton(self.open_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.export_button.clicked.connect(self._on_export_clicked)
        self.open_button.clicked.connect(self._open_folder)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self._show_target()

    @property
    def busy(self) -> bool:
        return self._busy

    def out_dir(self, fmt: str) -> Path:
        """The folder the export goes into: the one chosen, else the run's export/<format>."""
        chosen = self.folder.value().strip()
        return Path(chosen) if chosen else Path(self.run_dir) / "export" / fmt

    def set_format(self, fmt: str) -> None:
        self.format.setCurrentIndex(self.format.findData(fmt))

    @Slot()
    def _show_target(self) -> None:
        fmt = self.format.currentData()
        self.target.setText(str(self.out_dir(fmt) / FILE_NAMES[fmt]))
        self._int8_form.setRowVisible(self.int8_io, fmt == "tflite-int8")

    @Slot()
    def _on_export_clicked(self) -> None:
        self.start()

    def start(self) -> bool:
        if self._busy:
            return False
        self._busy = True
        fmt = self.format.currentData()
        self.result, self.error = None, ""
        self.format.setEnabled(False)
        self.int8_io.setEnabled(False)
        self.folder.setEnabled(False)
        self.export_button.setEnabled(False)
        self.open_button.setEnabled(False)
        self.progress.setVisible(True)
        slow = " (the conversion can take a minute)" if fmt.startswith("tflite") or fmt == "onnx" else ""
        self.message.setText(f"Exporting as {html.escape(fmt)} and checking the result{slow}…")
        self.jobs.submit(model_jobs.export, self.run_dir, fmt, self._cancel, self.int8_io.currentData(),
                         str(self.out_dir(fmt)))
        return True

    def _finish(self) -> None:
        self._busy = False
        self.progress.setVisible(False)
        self.format.setEnabled(True)
        self.int8_io.setEnabled(True)
        self.folder.setEnabled(True)
        self.export_button.setEnabled(True)

    @Slot(int, object)
    def _on_done(self, job_id: int, result) -> None:
        self._finish()
        self.result = result
        text, ok = describe_result(result)
        self.message.setText(text)
        self.open_button.setEnabled(bool(result.path))
        if not ok:
            self.error = result.error
        self.exported.emit(result)

    @Slot(int, str)
    def _on_failed(self, job_id: int, message: str) -> None:
        self._finish()
        if message.startswith("Cancelled"):
            return
        text = message.split(": ", 1)[1] if message.startswith(("RunError: ", "ValueError: ")) else message
        self.error = text
        self.message.setText(f"<b style='color:#b91c1c'>The export failed:</b> {html.escape(text)}")
        self.export_failed.emit(text)

    @Slot()
    def _open_folder(self) -> None:
        if self.result is not None and self.result.path:
            path = Path(self.result.path)
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(path if path.is_dir() else path.parent)))

