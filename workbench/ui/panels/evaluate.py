"""Evaluate panel: how good a trained run is on its own validation images.

Evaluate runs `core.evaluation.evaluate_run` as a background model job (in the model
worker process, also while a run trains) and shows the confusion matrix, the
per-class precision, recall, F1 and support, overall, balanced and top-k accuracy and
macro-F1, and the misclassified images, most confident mistakes first. "On test" scores
the run's held-out test set (its test split or test folder, or another folder of the same
classes), kept apart from the validation figures. A run evaluated before shows its saved
evaluation at once.
"""

from __future__ import annotations

import functools
import os
import threading
import time

from PySide6.QtCore import QSize, Qt, QThreadPool, Signal, Slot
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.ui.cam_view import CamView
from workbench.ui.confusion import ConfusionMatrixView
from workbench.ui.fields import PathEdit
from workbench.ui.images import to_icon
from workbench.ui.run_chooser import RunChooser
from workbench.ui.tasks import model_jobs
from workbench.ui.tasks.background import BackgroundJobs

SCORE_COLUMNS = ("Class", "Precision", "Recall", "F1", "Support")
CAM_PX, CAM_RENDER_PX = 96, 200  # the selected mistake's Grad-CAM: smallest, and drawn at
CAM_HINT = "Click a misclassified image to see where the model looked (Grad-CAM of the class it chose)."


def _cell(text: str, align_right: bool = True) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
    if align_right:
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item


class EvaluatePanel(QWidget):
    """Evaluate the chosen run; `evaluation` holds the Evaluation shown (None before the first)."""

    export_requested = Signal(str)  # run folder
    image_activated = Signal(str, str)  # run folder, image path: look at it in the Predict panel
    evaluated = Signal(object)  # the Evaluation just computed

    def __init__(self, pool: QThreadPool, model_pool: QThreadPool, cancel: threading.Event,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self._cancel = cancel
        self._job_run = ""  # the run the running evaluation is for
        self.evaluation = None
        self.result: model_jobs.EvaluationResult | None = None
        self.jobs = BackgroundJobs(model_pool, self)
        self.jobs.done.connect(self._on_evaluated)
        self.jobs.failed.connect(self._on_failed)
        self.saved_jobs = BackgroundJobs(pool, self)
        self.saved_jobs.done.connect(self._on_saved_loaded)
        self.saved_jobs.failed.connect(self._on_saved_failed)
        self.cam_jobs = BackgroundJobs(model_pool, self)
        self.cam_jobs.done.connect(self._on_cam_done)
        self.cam_jobs.failed.connect(self._on_cam_failed)
        self._cam_running: tuple[str, str, str] | None = None  # (run, image, class) being computed
        self._cam_wanted: tuple[str, str, str] | None = None

        self.chooser = RunChooser()
        self.chooser.run_changed.connect(self._on_run_changed)
        self.top_k = QSpinBox()
        self.top_k.setRange(1, 20)
        self.top_k.setValue(3)
        self.top_k.setPrefix("top-")
        self.top_k.setToolTip("Also count an image as right when its class is among the k most probable")
        self.evaluate_button = QPushButton("Evaluate")
        self.evaluate_button.setToolTip("Run the model on the run's validation or test images (in the background)")
        self.evaluate_button.clicked.connect(self._on_evaluate_clicked)
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Save the model as .keras, SavedModel or TFLite, checked against the original")
        self.export_button.clicked.connect(self._on_export_clicked)
        self.on = QComboBox()
        self.on.addItem("on validation", "validation")
        self.on.addItem("on test", "test")
        self.on.setToolTip("Validation: the images the run validated on. Test: its held-out test set (test split "
                           "or test folder), or the folder chosen beside, never used in training")
        self.on.currentIndexChanged.connect(self._on_split_changed)
        self.test_folder = PathEdit(folder=True, caption="Choose a folder of test images (one sub-folder per class)")
        self.test_folder.line_edit.setPlaceholderText("the run's own test set, or choose a folder")
        self.test_folder.setVisible(False)
        row = QHBoxLayout()
        row.addWidget(QLabel("Run"))
        row.addWidget(self.chooser, 1)
        row.addWidget(self.on)
        row.addWidget(self.test_folder, 1)
        row.addWidget(self.top_k)
        row.addWidget(self.evaluate_button)
        row.addWidget(self.export_button)

        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary = QLabel()
        font = QFont(self.summary.font())
        font.setPointSizeF(font.pointSizeF() * 1.15)
        font.setWeight(QFont.Weight.DemiBold)
        self.summary.setFont(font)
        self.summary.setWordWrap(True)
        self.notes = QLabel()
        self.notes.setWordWrap(True)
        self.notes.setStyleSheet("color: #b45309")
        self.notes.setVisible(False)

        self.matrix = ConfusionMatrixView()
        self.matrix.setMinimumSize(220, 150)
        self.scores = QTableWidget(0, len(SCORE_COLUMNS))
        self.scores.setHorizontalHeaderLabels(SCORE_COLUMNS)
        self.scores.verticalHeader().setVisible(False)
        self.scores.verticalHeader().setDefaultSectionSize(22)
        self.scores.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.scores.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.scores.setMinimumWidth(330)  # ten class names stay readable beside the matrix

        self.gallery_title = QLabel("Misclassified validation images")
        self.gallery = QListWidget()
        self.gallery.setViewMode(QListView.ViewMode.IconMode)
        self.gallery.setIconSize(QSize(model_jobs.GALLERY_THUMB, model_jobs.GALLERY_THUMB))
        self.gallery.setGridSize(QSize(model_jobs.GALLERY_THUMB + 44, model_jobs.GALLERY_THUMB + 46))
        self.gallery.setResizeMode(QListView.ResizeMode.Adjust)
        self.gallery.setMovement(QListView.Movement.Static)
        self.gallery.setWordWrap(True)
        self.gallery.setUniformItemSizes(True)
        self.gallery.setMinimumHeight(model_jobs.GALLERY_THUMB + 60)
        self.gallery.setToolTip("Double-click an image to look at it in the Predict tab, with Grad-CAM")
        self.gallery.itemActivated.connect(self._on_gallery_activated)
        self.gallery.currentItemChanged.connect(self._on_gallery_current)
        self.cam_view = CamView(CAM_PX, CAM_RENDER_PX)  # the selected mistake with its heat map and colour scale
        self.cam_view.clear(CAM_HINT)

        upper = QSplitter(Qt.Orientation.Horizontal)
        upper.addWidget(self.matrix)
        upper.addWidget(self.scores)
        upper.setStretchFactor(0, 1)
        upper.setStretchFactor(1, 1)
        lower = QWidget()
        lower_layout = QVBoxLayout(lower)
        lower_layout.setContentsMargins(0, 0, 0, 0)
        lower_layout.addWidget(self.gallery_title)
        gallery_row = QSplitter(Qt.Orientation.Horizontal)
        gallery_row.addWidget(self.gallery)
        gallery_row.addWidget(self.cam_view)
        gallery_row.setStretchFactor(0, 3)
        gallery_row.setStretchFactor(1, 1)
        lower_layout.addWidget(gallery_row, 1)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(upper)
        splitter.addWidget(lower)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(6)
        layout.addLayout(row)
        layout.addWidget(self.status)
        layout.addWidget(self.summary)
        layout.addWidget(self.notes)
        layout.addWidget(splitter, 1)
        self._clear("Choose a run and press Evaluate.")
        self._update_controls()

    # ---- runs --------------------------------------------------------------------------------
    def set_runs(self, records) -> None:
        self.chooser.set_runs(records)
        self._update_controls()

    def set_run(self, run_dir: str) -> bool:
        return self.chooser.set_run_dir(run_dir)

    @property
    def busy(self) -> bool:
        return bool(self._job_run)

    def _update_controls(self) -> None:
        has_run = bool(self.chooser.run_dir())
        self.evaluate_button.setEnabled(has_run and not self.busy)
        self.export_button.setEnabled(has_run)

    @Slot(str)
    def _on_run_changed(self, run_dir: str) -> None:
        self._clear("" if run_dir else "No trained run yet: train one, then evaluate it here.")
        self._update_controls()
        if run_dir:
            self.status.setText("Looking for a saved evaluation…")
            self.saved_jobs.submit(model_jobs.load_saved_evaluation, run_dir, self.split)

    @property
    def split(self) -> str:
        """"validation" or "test": what Evaluate scores."""
        return self.on.currentData()

    @Slot(int)
    def _on_split_changed(self, _index: int) -> None:
        self.test_folder.setVisible(self.split == "test")
        self._on_run_changed(self.chooser.run_dir())

    # ---- evaluating ----------------------------------------------------------------------------
    @Slot()
    def _on_evaluate_clicked(self) -> None:
        self.evaluate()

    def evaluate(self, run_dir: str | None = None) -> bool:
        """Start evaluating `run_dir` (default: the chosen run) in the background; False when it cannot start."""
        if run_dir:
            self.chooser.set_run_dir(run_dir)
        run_dir = self.chooser.run_dir()
        if not run_dir or self.busy:
            return False
        self._job_run = run_dir
        self.status.setText(f"Evaluating on the {self.split} images… (loading the model takes a few seconds)")
        self.status.setStyleSheet("color: #2563eb")
        options = {"on": "test", "test_folder": self.test_folder.value() or None} if self.split == "test" else {}
        self.jobs.submit(functools.partial(model_jobs.evaluate, **options), run_dir, self.top_k.value(), self._cancel)
        self._update_controls()
        return True

    @Slot(int, object)
    def _on_evaluated(self, job_id: int, result: model_jobs.EvaluationResult) -> None:
        run = self._job_run
        self._job_run = ""
        self._update_controls()
        if job_id != self.jobs.latest:
            return
        if run == self.chooser.run_dir():
            self.show_result(result)
        self.evaluated.emit(result.evaluation)

    @Slot(int, str)
    def _on_failed(self, job_id: int, message: str) -> None:
        self._job_run = ""
        self._update_controls()
        if job_id == self.jobs.latest:
            if message.startswith("Cancelled"):
                return
            text = message.split(": ", 1)[1] if message.startswith(("RunError: ", "TimeoutError: ")) else message
            self.status.setText(f"Cannot evaluate this run: {text}")
            self.status.setStyleSheet("color: #b91c1c")

    @Slot(int, object)
    def _on_saved_loaded(self, job_id: int, result: model_jobs.EvaluationResult | None) -> None:
        if job_id != self.saved_jobs.latest or self.busy:
            return
        if self.result is not None and not self.result.saved:
            return  # a fresh evaluation is already on show
        if result is None or result.evaluation.split != self.split or (
                result.evaluation.run_dir and not _same(result.evaluation.run_dir, self.chooser.run_dir())):
            self.status.setText("Not evaluated yet: press Evaluate.")
            self.status.setStyleSheet("")
            return
        self.show_result(result)

    @Slot(int, str)
    def _on_saved_failed(self, job_id: int, message: str) -> None:
        if job_id == self.saved_jobs.latest and not self.busy:
            self.status.setText("Not evaluated yet: press Evaluate.")
            self.status.setStyleSheet("")

    # ---- showing --------------------------------------------------------------------------------
    def _clear(self, status: str) -> None:
        self.evaluation = None
        self.result = None
        self.status.setText(status)
        self.status.setStyleSheet("")
        self.summary.setText("")
        self.notes.setVisible(False)
        self.matrix.set_matrix([], [])
        self.scores.setRowCount(0)
        self.gallery.clear()
        self.gallery_title.setText(f"Misclassified {self.split} images")
        self._cam_wanted = None
        self.cam_view.clear(CAM_HINT)

    def show_result(self, result: model_jobs.EvaluationResult) -> None:
        e = result.evaluation
        self.result, self.evaluation = result, e
        if result.saved:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(result.saved_at)) if result.saved_at else ""
            self.status.setText(f"Saved evaluation{' of ' + when if when else ''}: press Evaluate to compute it again.")
        else:
            self.status.setText("Evaluated just now (saved as evaluation.json in the run folder).")
        self.status.setStyleSheet("")
        wrong = len(e.mistakes)
        where = f" from {e.source}" if e.source else ""
        self.summary.setText(
            f"Accuracy {e.accuracy:.1%} · balanced accuracy {e.balanced_accuracy:.1%} · macro-F1 {e.macro_f1:.3f} · "
            f"top-{e.top_k} accuracy {e.top_k_accuracy:.1%} · {e.count} {e.split} images{where}, "
            f"{len(e.class_names)} classes, {wrong} misclassified"
        )
        self.notes.setText("\n".join(f"Note: {n}" for n in e.notes))
        self.notes.setVisible(bool(e.notes))
        self.matrix.set_matrix(e.confusion, e.class_names)
        self._fill_scores(e)
        self._fill_gallery(result)

    def _fill_scores(self, e) -> None:
        rows = list(e.per_class)
        self.scores.setRowCount(len(rows) + 1)
        for r, s in enumerate(rows):
            values = [s.name, f"{s.precision:.3f}", f"{s.recall:.3f}", f"{s.f1:.3f}", str(s.support)]
            for c, text in enumerate(values):
                cell = _cell(text, align_right=c > 0)
                if c == 3 and s.support and s.f1 < 0.5:
                    cell.setForeground(QColor("#b91c1c"))
                self.scores.setItem(r, c, cell)
        n = max(len(rows), 1)
        macro = [sum(getattr(s, k) for s in rows) / n for k in ("precision", "recall", "f1")]
        values = ["average (macro)", *(f"{v:.3f}" for v in macro), str(sum(s.support for s in rows))]
        bold = QFont(self.scores.font())
        bold.setBold(True)
        for c, text in enumerate(values):
            cell = _cell(text, align_right=c > 0)
            cell.setFont(bold)
            self.scores.setItem(len(rows), c, cell)

    def _fill_gallery(self, result: model_jobs.EvaluationResult) -> None:
        e = result.evaluation
        self.gallery.clear()
        shown = e.mistakes[: len(result.thumbnails)]
        for mistake, thumb in zip(shown, result.thumbnails, strict=True):
            text = f"{mistake.true_label} → {mistake.predicted_label}\n{mistake.confidence:.0%}"
            item = QListWidgetItem(to_icon(thumb, model_jobs.GALLERY_THUMB), text)
            item.setToolTip(f"{mistake.path}\ntrue: {mistake.true_label}\n"
                            f"predicted: {mistake.predicted_label} ({mistake.confidence:.1%})")
            item.setData(Qt.ItemDataRole.UserRole, mistake.path)
            item.setData(Qt.ItemDataRole.UserRole + 1, mistake.predicted_label)
            self.gallery.addItem(item)
        if not e.mistakes:
            self.gallery_title.setText(f"Misclassified {e.split} images: none, every {e.split} image is right")
        elif len(shown) < len(e.mistakes):
            self.gallery_title.setText(f"Misclassified {e.split} images: {len(e.mistakes)}, the {len(shown)} "
                                       "most confident shown (true → predicted, confidence)")
        else:
            self.gallery_title.setText(f"Misclassified {e.split} images: {len(e.mistakes)}, most confident first "
                                       "(true → predicted, confidence)")

    @Slot(QListWidgetItem)
    def _on_gallery_activated(self, item: QListWidgetItem) -> None:
        run_dir = self.evaluation.run_dir if self.evaluation is not None else ""
        path = item.data(Qt.ItemDataRole.UserRole)
        if run_dir and path:
            self.image_activated.emit(run_dir, path)

    # ---- Grad-CAM of the selected mistake (a model job, one at a time) ----------------------------
    @Slot(QListWidgetItem, QListWidgetItem)
    def _on_gallery_current(self, item: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        run_dir = self.evaluation.run_dir if self.evaluation is not None else ""
        if item is None or not run_dir:
            return
        path, predicted = item.data(Qt.ItemDataRole.UserRole), item.data(Qt.ItemDataRole.UserRole + 1)
        if not path or not predicted:
            return
        self._cam_wanted = (run_dir, path, predicted)
        self.cam_view.clear(f"Computing Grad-CAM for '{predicted}'…")
        if self._cam_running is None:  # else it starts when the one running ends: clicks never pile up
            self._start_cam(self._cam_wanted)

    def _start_cam(self, key: tuple[str, str, str]) -> None:
        self._cam_running = key
        self.cam_jobs.submit(model_jobs.grad_cam, *key, self._cancel)

    def _next_cam(self, key: tuple[str, str, str] | None) -> None:
        self._cam_running = None
        if self._cam_wanted is not None and self._cam_wanted != key:
            self._start_cam(self._cam_wanted)

    @Slot(int, object)
    def _on_cam_done(self, _job_id: int, cam: model_jobs.GradCamResult) -> None:
        key = self._cam_running
        if key is not None and key == self._cam_wanted:
            self.cam_view.set_cam(cam, f"Grad-CAM for '{cam.class_name}', the class the model chose: "
                                       "the bright areas raised its score most.")
        self._next_cam(key)

    @Slot(int, str)
    def _on_cam_failed(self, _job_id: int, message: str) -> None:
        key = self._cam_running
        if key is not None and key == self._cam_wanted and not message.startswith("Cancelled"):
            self.cam_view.clear(f"No Grad-CAM for this image: {message}")
        self._next_cam(key)

    @Slot()
    def _on_export_clicked(self) -> None:
        run_dir = self.chooser.run_dir()
        if run_dir:
            self.export_requested.emit(run_dir)


def _same(a: str, b: str) -> bool:
    return bool(a) and bool(b) and os.path.abspath(a) == os.path.abspath(b)
