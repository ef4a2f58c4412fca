"""Predict panel: a trained run's answers for new images, with Monte-Carlo dropout and Grad-CAM.

Drop images or a folder on the panel (or open them). Prediction runs
`core.predict.predict_images` as a background model job (in the model worker process,
also while a run trains): the top-k classes per
image, and with Monte-Carlo passes (dropout kept on, 0 = off) each probability's
spread and the predictive entropy. Selecting an image shows it with a Grad-CAM
heat map of its top class, computed in the background too.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QThreadPool, Signal, Slot
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.core.base.images import TRAINED_EXTENSIONS
from workbench.ui.cam_view import CamView
from workbench.ui.images import to_icon
from workbench.ui.run_chooser import RunChooser
from workbench.ui.tasks import model_jobs
from workbench.ui.tasks.background import BackgroundJobs

RESULT_COLUMNS = ("Image", "Prediction", "Probability", "Entropy", "Top classes")
TOPK_COLUMNS = ("Class", "Probability", "± spread")
# What training accepts (JPEG, PNG, BMP, GIF): a TIFF or WebP would be predicted but could never be trained on.
IMAGE_FILTER = ("Images (" + " ".join(f"*{e}" for e in sorted(TRAINED_EXTENSIONS)) + ");;All files (*)")
PREVIEW_PX = 180  # the smallest the preview gets (the window fits 1024x700)
PREVIEW_RENDER_PX = 280  # the size the image and its Grad-CAM are drawn at


def entropy_of(prediction) -> float | None:
    """The prediction's entropy in nats (Monte-Carlo's when it has one, else of its probabilities)."""
    if prediction.entropy is not None:
        return prediction.entropy
    if not prediction.probabilities:
        return None
    return -sum(p * math.log(p) for p in prediction.probabilities.values() if p > 0)


def probability_text(prediction, label: str) -> str:
    p = prediction.probabilities.get(label, 0.0)
    spread = prediction.std.get(label)
    return f"{p:.3f} ± {spread:.3f}" if spread is not None else f"{p:.3f}"


def _cell(text: str, right: bool = False) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
    if right:
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item


class PredictPanel(QWidget):
    """Predict with the chosen run; `predictions` holds the last answers (one per image)."""

    predicted = Signal(object)  # the PredictionResult just shown

    def __init__(self, model_pool: QThreadPool, cancel: threading.Event, parent: QWidget | None = None):
        super().__init__(parent)
        self.setAcceptDrops(True)
        self._cancel = cancel
        self._predicting = False
        self._stale = False
        self.paths: list[str] = []
        self.result: model_jobs.PredictionResult | None = None
        self.cam: model_jobs.GradCamResult | None = None
        self._cams: dict[tuple[str, str, str], model_jobs.GradCamResult] = {}
        self._cam_wanted: tuple[str, str, str] | None = None
        self._cam_running: tuple[str, str, str] | None = None
        self.jobs = BackgroundJobs(model_pool, self)
        self.jobs.done.connect(self._on_predicted)
        self.jobs.failed.connect(self._on_predict_failed)
        self.cam_jobs = BackgroundJobs(model_pool, self)
        self.cam_jobs.done.connect(self._on_cam_done)
        self.cam_jobs.failed.connect(self._on_cam_failed)

        self.chooser = RunChooser()
        self.chooser.run_changed.connect(self._on_run_changed)
        self.open_images_button = QPushButton("Open images…")
        self.open_images_button.clicked.connect(self.open_images_dialog)
        self.open_folder_button = QPushButton("Open folder…")
        self.open_folder_button.clicked.connect(self.open_folder_dialog)
        self.top_k = QSpinBox()
        self.top_k.setRange(1, 20)
        self.top_k.setValue(3)
        self.top_k.setPrefix("top-")
        self.top_k.setToolTip("How many of the most probable classes to list per image")
        self.mc_passes = QSpinBox()
        self.mc_passes.setRange(0, 500)
        self.mc_passes.setSingleStep(10)
        self.mc_passes.setSpecialValueText("off")
        self.mc_passes.setToolTip(
            "Monte-Carlo passes: predict this many times with the head's dropout left on, then show the mean "
            "probability, its spread (±) and the entropy: a cheap measure of how unsure the model is. "
            "0 = off; 20 to 50 is typical.")
        self.predict_button = QPushButton("Predict")
        self.predict_button.setToolTip("Predict the images again (with the run, top-k and passes shown)")
        self.predict_button.clicked.connect(self._on_predict_clicked)
        row = QHBoxLayout()
        row.addWidget(QLabel("Run"))
        row.addWidget(self.chooser, 1)
        row.addWidget(self.open_images_button)
        row.addWidget(self.open_folder_button)
        options = QHBoxLayout()  # a second row: the window stays usable at 1024 px wide
        options.addWidget(self.top_k)
        options.addWidget(QLabel("Monte-Carlo passes"))
        options.addWidget(self.mc_passes)
        options.addStretch(1)
        options.addWidget(self.predict_button)

        self.status = QLabel("Drop images or a folder here, or open them.")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.table = QTableWidget(0, len(RESULT_COLUMNS))
        self.table.setHorizontalHeaderLabels(RESULT_COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(model_jobs.TABLE_THUMB + 4)
        self.table.setIconSize(QSize(model_jobs.TABLE_THUMB, model_jobs.TABLE_THUMB))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(len(RESULT_COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._on_selection_changed)

        # The image with its heat map, the colour scale ("low ... high") and a caption (ui/cam_view.py).
        self.cam_view = CamView(PREVIEW_PX, PREVIEW_RENDER_PX)
        self.preview, self.show_cam, self.cam_status = self.cam_view.preview, self.cam_view.show_cam, self.cam_view.caption
        self.topk_table = QTableWidget(0, len(TOPK_COLUMNS))
        self.topk_table.setHorizontalHeaderLabels(TOPK_COLUMNS)
        self.topk_table.verticalHeader().setVisible(False)
        self.topk_table.verticalHeader().setDefaultSectionSize(22)
        self.topk_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.topk_table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.topk_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.topk_table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.detail_title = QLabel()
        self.detail_title.setWordWrap(True)

        detail = QWidget()
        detail_layout = QVBoxLayout(detail)
        detail_layout.setContentsMargins(0, 0, 0, 0)
        detail_layout.addWidget(self.detail_title)
        detail_layout.addWidget(self.cam_view, 3)
        detail_layout.addWidget(self.topk_table, 2)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.table)
        splitter.addWidget(detail)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(6)
        layout.addLayout(row)
        layout.addLayout(options)
        layout.addWidget(self.status)
        layout.addWidget(splitter, 1)
        self._update_controls()

    # ---- runs and inputs --------------------------------------------------------------------------
    def set_runs(self, records) -> None:
        self.chooser.set_runs(records)
        self._update_controls()

    def set_run(self, run_dir: str) -> bool:
        return self.chooser.set_run_dir(run_dir)

    @property
    def predictions(self) -> list:
        return self.result.predictions if self.result is not None else []

    @property
    def busy(self) -> bool:
        return self._predicting

    def _update_controls(self) -> None:
        can = bool(self.chooser.run_dir())
        self.predict_button.setEnabled(can and bool(self.paths) and not self._predicting)
        for button in (self.open_images_button, self.open_folder_button):
            button.setEnabled(can)

    @Slot(str)
    def _on_run_changed(self, _run_dir: str) -> None:
        self._update_controls()
        if self.paths and self.result is not None:  # same images, the newly chosen run
            if self.isVisible():
                self.predict()
            else:
                self._stale = True  # predicted when the tab is shown: clicking through runs loads no models

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._stale and not self._predicting:
            self.predict()

    @Slot()
    def open_images_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Choose images to predict", self._start_folder(), IMAGE_FILTER)
        if files:
            self.add_paths(files)

    @Slot()
    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder of images to predict", self._start_folder())
        if folder:
            self.add_paths([folder])

    def _start_folder(self) -> str:
        return str(Path(self.paths[0]).parent) if self.paths else str(Path.home())

    def add_paths(self, paths: Sequence[str | os.PathLike]) -> bool:
        """Predict these files and folders (they replace the ones shown)."""
        self.paths = [os.fspath(p) for p in paths]
        return self.predict()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.add_paths(paths)

    # ---- predicting --------------------------------------------------------------------------------
    @Slot()
    def _on_predict_clicked(self) -> None:
        self.predict()

    def predict(self) -> bool:
        run_dir = self.chooser.run_dir()
        if not run_dir:
            self._set_status("Train a run first: predictions need a trained model.", "error")
            return False
        if not self.paths:
            return False
        self._stale = False
        self._predicting = True
        passes = self.mc_passes.value()
        extra = f", {passes} Monte-Carlo passes" if passes else ""
        self._set_status(f"Predicting {self._describe_inputs()}{extra}…", "busy")
        self.jobs.submit(model_jobs.predict, run_dir, list(self.paths), self.top_k.value(), passes, self._cancel)
        self._update_controls()
        return True

    def _describe_inputs(self) -> str:
        if len(self.paths) == 1:
            return Path(self.paths[0]).name
        return f"{len(self.paths)} files and folders"

    def _set_status(self, text: str, level: str = "") -> None:
        colours = {"error": "#b91c1c", "busy": "#2563eb", "warning": "#b45309"}
        self.status.setText(text)
        self.status.setStyleSheet(f"color: {colours[level]}" if level in colours else "")

    @Slot(int, object)
    def _on_predicted(self, job_id: int, result: model_jobs.PredictionResult) -> None:
        if job_id != self.jobs.latest:
            return
        self._predicting = False
        self._update_controls()
        self.show_result(result)
        self.predicted.emit(result)

    @Slot(int, str)
    def _on_predict_failed(self, job_id: int, message: str) -> None:
        if job_id != self.jobs.latest:
            return
        self._predicting = False
        self._update_controls()
        if not message.startswith("Cancelled"):
            text = message.split(": ", 1)[1] if message.startswith(("RunError: ", "ValueError: ")) else message
            self._set_status(f"Cannot predict: {text}", "error")

    def show_result(self, result: model_jobs.PredictionResult) -> None:
        self.result = result
        self._cams.clear()
        self.cam = None
        predictions = result.predictions
        self.table.setRowCount(len(predictions))
        for row, (p, thumb) in enumerate(zip(predictions, result.thumbnails, strict=True)):
            name = _cell(Path(p.path).name)
            name.setToolTip(p.path)
            if thumb is not None:
                name.setIcon(to_icon(thumb, model_jobs.TABLE_THUMB))
            self.table.setItem(row, 0, name)
            if not p.ok:
                error = _cell(p.error)
                error.setForeground(QColor("#b91c1c"))
                self.table.setItem(row, 1, error)
                for column in range(2, len(RESULT_COLUMNS)):
                    self.table.setItem(row, column, _cell(""))
                continue
            entropy = entropy_of(p)
            self.table.setItem(row, 1, _cell(p.label))
            self.table.setItem(row, 2, _cell(probability_text(p, p.label), right=True))
            self.table.setItem(row, 3, _cell("" if entropy is None else f"{entropy:.3f}", right=True))
            self.table.setItem(row, 4, _cell(" · ".join(f"{label} {prob:.2f}" for label, prob in p.top)))
        ok = sum(1 for p in predictions if p.ok)
        failed = len(predictions) - ok
        mc = f", {result.mc_passes} Monte-Carlo passes (± is the spread, entropy in nats)" if result.mc_passes else ""
        text = f"{ok} image{'s' if ok != 1 else ''} predicted in {result.seconds:.1f} s{mc}"
        if failed:
            text += f"; {failed} could not be read (in red)"
        self._set_status(text, "warning" if failed else "")
        if predictions:
            self.table.selectRow(0)
        else:
            self._show_detail(None)

    # ---- the selected image -----------------------------------------------------------------------
    def selected_prediction(self):
        rows = self.table.selectionModel().selectedRows()
        if not rows or self.result is None:
            return None
        row = rows[0].row()
        return self.result.predictions[row] if row < len(self.result.predictions) else None

    @Slot()
    def _on_selection_changed(self) -> None:
        self._show_detail(self.selected_prediction())

    def _show_detail(self, prediction) -> None:
        self.topk_table.setRowCount(0)
        self.cam = None
        self._cam_wanted = None
        self.cam_view.clear()
        if prediction is None:
            self.detail_title.setText("")
            return
        self.detail_title.setText(f"<b>{Path(prediction.path).name}</b>")
        self.detail_title.setToolTip(prediction.path)
        if not prediction.ok:
            self.cam_status.setText(prediction.error)
            return
        self.topk_table.setRowCount(len(prediction.top))
        for row, (label, _prob) in enumerate(prediction.top):
            self.topk_table.setItem(row, 0, _cell(label))
            self.topk_table.setItem(row, 1, _cell(f"{prediction.probabilities.get(label, 0.0):.3f}", right=True))
            spread = prediction.std.get(label)
            self.topk_table.setItem(row, 2, _cell("" if spread is None else f"{spread:.3f}", right=True))
        self._request_cam(prediction)

    def _request_cam(self, prediction) -> None:
        if self.result is None:
            return
        key = (self.result.run_dir, prediction.path, prediction.label)
        self._cam_wanted = key
        if key in self._cams:
            self.cam = self._cams[key]
            self._show_preview()
            return
        self.cam_status.setText(f"Computing Grad-CAM for '{prediction.label}'…")
        if self._cam_running is None:  # else it starts when the one running ends: clicks never pile up
            self._start_cam(key)

    def _start_cam(self, key: tuple[str, str, str]) -> None:
        self._cam_running = key
        self.cam_jobs.submit(model_jobs.grad_cam, *key, self._cancel)

    def _next_cam(self) -> None:
        self._cam_running = None
        wanted = self._cam_wanted
        if wanted is not None and wanted not in self._cams:
            self._start_cam(wanted)

    @Slot(int, object)
    def _on_cam_done(self, job_id: int, cam: model_jobs.GradCamResult) -> None:
        key = self._cam_running
        if key is not None:
            self._cams[key] = cam
            if key == self._cam_wanted:
                self.cam = cam
                self._show_preview()
        self._next_cam()

    @Slot(int, str)
    def _on_cam_failed(self, job_id: int, message: str) -> None:
        key = self._cam_running
        if key is not None and key == self._cam_wanted and not message.startswith("Cancelled"):
            self.cam_status.setText(f"No Grad-CAM for this image: {message}")
            self._cams.pop(key, None)
            self._cam_wanted = None  # do not retry the same failure
        self._next_cam()

    @Slot()
    def _show_preview(self) -> None:
        if self.cam is not None:
            self.cam_view.set_cam(self.cam, f"Grad-CAM for '{self.cam.class_name}': "
                                            "the bright areas raised its score most.")
