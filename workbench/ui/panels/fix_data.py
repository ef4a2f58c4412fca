"""Fix data: the validation (or test) images a run gets wrong or is least sure of, to move or exclude.

Review runs `core.analysis.review.review_images` as a background model job (Monte-Carlo dropout
for the entropy) and shows the mistakes and the most uncertain right answers, each with its true
and predicted class, sortable by loss, confidence and entropy. A selected image can move to
another class, be excluded (to `_excluded/<class>/` in the dataset) or be shown in the file
manager; every edit is logged in the dataset folder and undoable (dataset_edits.py).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from PySide6.QtCore import Qt, QThreadPool, Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from workbench.core.data import edits
from workbench.ui.images import to_icon
from workbench.ui.panels.dataset_edits import (
    BUSY_STYLE,
    ERROR_STYLE,
    DatasetEdits,
    job_error,
    show_in_file_manager,
    thumbnail_gallery,
)
from workbench.ui.run_chooser import RunChooser
from workbench.ui.tasks import data_jobs
from workbench.ui.tasks.background import BackgroundJobs
from workbench.ui.tasks.model_jobs import GALLERY_THUMB

SHOW = ("Mistakes and most uncertain", "Mistakes", "Most uncertain")
SHOW_KINDS = ("both", "mistakes", "uncertain")  # as core Review.gallery
SORT_BY = ("loss", "confidence", "entropy")
PATH = Qt.ItemDataRole.UserRole  # where the image is now (it changes as it moves)


class FixDataPanel(QWidget):
    """The chosen run's review; `review` holds the core Review shown (None before the first)."""

    edited = Signal(object)  # an edits.Edit made or undone: the dataset changed

    def __init__(self, model_pool: QThreadPool, cancel: threading.Event, parent: QWidget | None = None):
        super().__init__(parent)
        self._cancel = cancel
        self._busy = False
        self.review = None
        # Where each reviewed image's file is now (first path -> current), also for images the
        # current filter hides, so an item shown again points at the file and not at its old place.
        self.whereabouts: dict[str, str] = {}
        self.thumbnails: dict = {}
        self.jobs = BackgroundJobs(model_pool, self)
        self.jobs.done.connect(self._on_reviewed)
        self.jobs.failed.connect(self._on_failed)

        self.chooser = RunChooser()
        self.chooser.run_changed.connect(self._on_run_changed)
        self.passes = QSpinBox()
        self.passes.setRange(2, 200)
        self.passes.setValue(20)
        self.passes.setSuffix(" MC passes")
        self.passes.setToolTip("Monte-Carlo dropout passes for each image's entropy")
        self.split = QComboBox()
        self.split.addItem("validation images", "validation")
        self.split.addItem("test images", "test")
        self.split.setToolTip("The run's validation split, or its test set (a test folder or held-out split)")
        self.review_button = QPushButton("Review")
        self.review_button.setToolTip("Score the run's images with Monte-Carlo dropout (in the background)")
        self.review_button.clicked.connect(self.start_review)
        row = QHBoxLayout()
        row.addWidget(QLabel("Run"))
        row.addWidget(self.chooser, 1)
        row.addWidget(self.split)
        row.addWidget(self.passes)
        row.addWidget(self.review_button)

        self.show_combo = QComboBox()
        self.show_combo.addItems(SHOW)
        self.sort_combo = QComboBox()
        self.sort_combo.addItems([f"by {s}" for s in SORT_BY])
        self.sort_combo.setToolTip("Worst first: highest loss, lowest confidence, or highest entropy")
        for combo in (self.show_combo, self.sort_combo):
            combo.currentIndexChanged.connect(self._refill)
        filters = QHBoxLayout()
        filters.addWidget(QLabel("Show"))
        filters.addWidget(self.show_combo)
        filters.addWidget(QLabel("sorted"))
        filters.addWidget(self.sort_combo)
        filters.addStretch(1)

        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.gallery = thumbnail_gallery("Select an image, then move it to its right class or exclude it")
        self.gallery.currentItemChanged.connect(self._update_controls)

        self.edits = DatasetEdits(self, self.status)
        self.edits.edited.connect(self._on_edited)
        self.move_combo = QComboBox()
        self.move_combo.setToolTip("The class the selected image really belongs to")
        self.move_button = QPushButton("Move to class")
        self.move_button.clicked.connect(self.move_selected)
        self.exclude_button = QPushButton("Exclude")
        self.exclude_button.setToolTip("Move the image to _excluded/<class>/ in the dataset: "
                                       "training leaves it out, nothing is deleted")
        self.exclude_button.clicked.connect(self.exclude_selected)
        self.folder_button = QPushButton("Show in folder")
        self.folder_button.clicked.connect(self._on_show_in_folder)
        actions = QHBoxLayout()
        for widget in (self.move_combo, self.move_button, self.exclude_button, self.folder_button):
            actions.addWidget(widget)
        actions.addStretch(1)
        actions.addWidget(self.edits.undo_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addLayout(row)
        layout.addWidget(self.status)
        layout.addLayout(filters)
        layout.addWidget(self.gallery, 1)
        layout.addLayout(actions)
        self.edits.say("Choose a run and press Review to see the images it gets wrong or is least sure of.")
        self._update_controls()

    # ---- runs and reviewing -------------------------------------------------------------------
    def set_runs(self, records) -> None:
        self.chooser.set_runs(records)
        self._update_controls()

    @Slot(str)
    def _on_run_changed(self, _run_dir: str) -> None:
        self.review, self.thumbnails, self.whereabouts = None, {}, {}
        self.gallery.clear()
        self._update_controls()

    @Slot()
    def start_review(self) -> bool:
        run_dir = self.chooser.run_dir()
        if not run_dir or self._busy:
            return False
        self._busy = True
        self.edits.say(f"Reviewing the {self.split.currentText()} with Monte-Carlo dropout… "
                       "(loading the model takes a few seconds)", BUSY_STYLE)
        self.jobs.submit(data_jobs.review, run_dir, self.split.currentData(), self.passes.value(), self._cancel)
        self._update_controls()
        return True

    @Slot(int, object)
    def _on_reviewed(self, job_id: int, result: data_jobs.ReviewResult) -> None:
        self._busy = False
        if job_id != self.jobs.latest:
            return
        self.review, self.thumbnails, self.whereabouts = result.review, result.thumbnails, {}
        self.edits.set_dataset(self.review.dataset)
        self.move_combo.clear()
        self.move_combo.addItems(list(self.review.class_names))
        wrong = sum(r.wrong for r in self.review.images)
        notes = "".join(f"\nNote: {n}" for n in self.review.notes)
        mismatch = edits.class_mismatch(self.review.dataset, self.review.class_names)
        self.edits.say(f"{len(self.review.images)} {self.review.split} images, {wrong} wrong, "
                       f"{self.review.mc_passes} Monte-Carlo passes.{notes}"
                       + (f"\nMoving is off: {mismatch}" if mismatch else ""), ERROR_STYLE if mismatch else "")
        self._refill()

    @Slot(int, str)
    def _on_failed(self, job_id: int, message: str) -> None:
        self._busy = False
        self._update_controls()
        if job_id == self.jobs.latest and not message.startswith("Cancelled"):
            self.edits.say(f"Cannot review this run: {job_error(message)}", ERROR_STYLE)

    # ---- the gallery --------------------------------------------------------------------------
    def shown(self) -> list:
        """The ImageReviews in the gallery, in its order."""
        if self.review is None:
            return []
        return self.review.gallery(data_jobs.UNCERTAIN_SHOWN, SHOW_KINDS[self.show_combo.currentIndex()],
                                   SORT_BY[self.sort_combo.currentIndex()])

    @Slot()
    def _refill(self) -> None:
        self.gallery.clear()
        for r in self.shown():
            now = self.whereabouts.get(os.path.abspath(r.path), r.path)
            item = QListWidgetItem(to_icon(self.thumbnails.get(r.path), GALLERY_THUMB), "")
            item.setData(PATH + 1, r.path)
            item.setData(PATH + 2, r)
            self._label(item, now)
            self.gallery.addItem(item)
        self._update_controls()

    def _label(self, item: QListWidgetItem, now: str) -> None:
        """The item's text for where its file is now: moved or excluded items say so."""
        r = item.data(PATH + 2)
        item.setData(PATH, now)
        mark = "✗" if r.wrong else "?"
        text = f"{mark} {r.true_label} → {r.predicted_label}\n{r.confidence:.0%} · H {r.entropy:.2f}"
        if now != r.path:
            text += "\n(excluded)" if edits.EXCLUDED_FOLDER in Path(now).parts else f"\n(now in {Path(now).parent.name})"
        item.setText(text)
        item.setToolTip(f"{now}\ntrue: {r.true_label}\npredicted: {r.predicted_label} ({r.confidence:.1%})\n"
                        f"loss {r.loss:.3f} · entropy {r.entropy:.3f} nats · BALD {r.mutual_info:.3f}")

    @Slot()
    def _update_controls(self, *_args) -> None:
        self.review_button.setEnabled(bool(self.chooser.run_dir()) and not self._busy)
        selected = self.gallery.currentItem() is not None and self.review is not None
        for widget in (self.move_button, self.exclude_button, self.folder_button, self.move_combo):
            widget.setEnabled(selected)

    # ---- actions ------------------------------------------------------------------------------
    @Slot()
    def move_selected(self) -> bool:
        item = self.gallery.currentItem()
        if item is None or self.review is None:
            return False
        mismatch = edits.class_mismatch(self.review.dataset, self.review.class_names)
        if mismatch:
            self.edits.say(f"Not moved: {mismatch}", ERROR_STYLE)
            return False
        target = self.move_combo.currentText()
        return self.edits.apply(lambda: edits.move_to_class(self.review.dataset, item.data(PATH), target)) is not None

    @Slot()
    def exclude_selected(self) -> bool:
        item = self.gallery.currentItem()
        if item is None or self.review is None:
            return False
        return self.edits.apply(lambda: edits.exclude(self.review.dataset, item.data(PATH))) is not None

    @Slot()
    def _on_show_in_folder(self) -> None:
        item = self.gallery.currentItem()
        if item is not None:
            show_in_file_manager(item.data(PATH))

    @Slot(object)
    def _on_edited(self, edit: edits.Edit) -> None:
        """Follow the file: the item whose image just moved shows where it is now."""
        source = os.path.abspath(edit.source)
        for first, now in list(self.whereabouts.items()) + [(source, source)]:
            if os.path.abspath(now) == source:
                self.whereabouts[first] = edit.dest
                break
        for i in range(self.gallery.count()):
            item = self.gallery.item(i)
            if os.path.abspath(item.data(PATH)) == os.path.abspath(edit.source):
                self._label(item, edit.dest)
        self.edited.emit(edit)
