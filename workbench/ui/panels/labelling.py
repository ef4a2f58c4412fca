"""Label: active learning. A run's model ranks a folder of unlabelled images by its Monte-Carlo-dropout
uncertainty (entropy or BALD); the person labels the top ones with a click or a number key, and each
file moves into that class folder of the dataset (logged, undoable); Retrain trains the run's config
again on the grown dataset.

Ranking is `core.analysis.uncertainty.rank_unlabelled` as a background model job; the moves are
core/data/edits.py calls (dataset_edits.py). Before any move the run's classes are checked against
the dataset's class folders.
"""

from __future__ import annotations

import os
import threading

from PySide6.QtCore import QEvent, QObject, Qt, QThreadPool, Signal, Slot
from PySide6.QtGui import QColor, QKeyEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from workbench.core.data import edits
from workbench.core.runs.store import RunError, load_run
from workbench.ui.images import to_icon
from workbench.ui.panels.dataset_edits import (
    BUSY_STYLE,
    ERROR_STYLE,
    DatasetEdits,
    job_error,
    thumbnail_gallery,
)
from workbench.ui.run_chooser import RunChooser
from workbench.ui.tasks import data_jobs
from workbench.ui.tasks.background import BackgroundJobs
from workbench.ui.tasks.model_jobs import GALLERY_THUMB

PATH, RANKED, LABEL = Qt.ItemDataRole.UserRole, Qt.ItemDataRole.UserRole + 1, Qt.ItemDataRole.UserRole + 2
NUMBER_KEYS = {getattr(Qt.Key, f"Key_{n}"): n for n in range(1, 10)}


class LabelPanel(QWidget):
    """Rank, label, undo, retrain; `ranking` is the core Ranking shown (None before the first)."""

    edited = Signal(object)  # an edits.Edit made or undone: the dataset changed
    retrain_requested = Signal(object)  # the run's RunConfig, on the dataset the labels went into

    def __init__(self, model_pool: QThreadPool, cancel: threading.Event, parent: QWidget | None = None):
        super().__init__(parent)
        self._cancel = cancel
        self._busy = False
        self.ranking = None
        self.jobs = BackgroundJobs(model_pool, self)
        self.jobs.done.connect(self._on_ranked)
        self.jobs.failed.connect(self._on_failed)

        self.chooser = RunChooser()
        self.chooser.run_changed.connect(self._on_run_changed)
        self.folder = QLineEdit()
        self.folder.setPlaceholderText("a folder of unlabelled images")
        self.dataset = QLineEdit()
        self.dataset.setPlaceholderText("the dataset the labelled images go into (the run's, by default)")
        self.dataset.editingFinished.connect(self._on_dataset_changed)
        self.passes = QSpinBox()
        self.passes.setRange(2, 200)
        self.passes.setValue(20)
        self.passes.setSuffix(" MC passes")
        self.top = QSpinBox()
        self.top.setRange(1, 1000)
        self.top.setValue(50)
        self.top.setPrefix("top ")
        self.by = QComboBox()
        self.by.addItem("by entropy", "entropy")
        self.by.addItem("by BALD", "bald")
        self.by.setToolTip("Entropy: the model is unsure, for any reason. BALD (mutual information): "
                           "its Monte-Carlo passes disagree, so a label teaches it most")
        self.rank_button = QPushButton("Rank")
        self.rank_button.setToolTip("Rank the unlabelled images by the model's uncertainty (in the background)")
        self.rank_button.clicked.connect(self.start_ranking)

        grid = QGridLayout()
        grid.addWidget(QLabel("Run"), 0, 0)
        grid.addWidget(self.chooser, 0, 1, 1, 4)
        grid.addWidget(QLabel("Unlabelled"), 1, 0)
        grid.addWidget(self.folder, 1, 1)
        grid.addWidget(self._browse(self.folder, "Folder of unlabelled images"), 1, 2)
        options = QHBoxLayout()
        for widget in (self.passes, self.top, self.by, self.rank_button):
            options.addWidget(widget)
        grid.addLayout(options, 1, 3, 1, 2)
        grid.addWidget(QLabel("Label into"), 2, 0)
        grid.addWidget(self.dataset, 2, 1)
        grid.addWidget(self._browse(self.dataset, "Dataset folder (one sub-folder per class)"), 2, 2)
        grid.setColumnStretch(1, 1)

        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.gallery = thumbnail_gallery("Select an image and press its class's number key (1-9) "
                                         "or click the class below")
        self.gallery.installEventFilter(self)
        self.edits = DatasetEdits(self, self.status)
        self.edits.edited.connect(self._on_edited)
        self.class_row = QHBoxLayout()
        self.class_buttons: list[QPushButton] = []
        self.retrain_button = QPushButton("Retrain")
        self.retrain_button.setToolTip("Train the run's config again, on the dataset with the new labels")
        self.retrain_button.clicked.connect(self._on_retrain)
        actions = QHBoxLayout()
        actions.addLayout(self.class_row)
        actions.addStretch(1)
        actions.addWidget(self.edits.undo_button)
        actions.addWidget(self.retrain_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addLayout(grid)
        layout.addWidget(self.status)
        layout.addWidget(self.gallery, 1)
        layout.addLayout(actions)
        self.edits.say("Choose a run and a folder of unlabelled images, then Rank: label the images the model "
                       "is least sure of first.")
        self._update_controls()

    def _browse(self, field: QLineEdit, title: str) -> QPushButton:
        button = QPushButton("Browse…")

        def choose() -> None:
            folder = QFileDialog.getExistingDirectory(self, title, field.text())
            if folder:
                field.setText(folder)
                field.editingFinished.emit()

        button.clicked.connect(choose)
        return button

    # ---- runs and ranking ---------------------------------------------------------------------
    def set_runs(self, records) -> None:
        self.chooser.set_runs(records)
        self._update_controls()

    @Slot(str)
    def _on_run_changed(self, run_dir: str) -> None:
        self.ranking = None
        self.gallery.clear()
        self._set_classes(())
        try:
            config = load_run(run_dir).config if run_dir else None
        except (RunError, OSError):
            config = None
        if config is not None:
            self.dataset.setText(config.data.folder)
            self._on_dataset_changed()
        self._update_controls()

    @Slot()
    def start_ranking(self) -> bool:
        run_dir, folder = self.chooser.run_dir(), self.folder.text().strip()
        if not run_dir or self._busy:
            return False
        if not folder or not os.path.isdir(folder):
            self.edits.say(f"Choose a folder of unlabelled images{': not found: ' + folder if folder else ''}",
                           ERROR_STYLE)
            return False
        self._busy = True
        self.edits.say(f"Ranking the images of {folder} with {self.passes.value()} Monte-Carlo passes…", BUSY_STYLE)
        self.jobs.submit(data_jobs.rank, run_dir, folder, self.passes.value(), self.top.value(),
                         self.by.currentData(), self._cancel)
        self._update_controls()
        return True

    @Slot(int, object)
    def _on_ranked(self, job_id: int, result: data_jobs.RankingResult) -> None:
        self._busy = False
        if job_id != self.jobs.latest:
            return
        self.ranking = ranking = result.ranking
        self.gallery.clear()
        for r, thumb in zip(ranking.images, result.thumbnails, strict=True):
            item = QListWidgetItem(to_icon(thumb, GALLERY_THUMB), "")
            item.setData(RANKED, r)
            self._mark(item, r.path, "")
            self.gallery.addItem(item)
        self._set_classes(ranking.class_names)
        if not self.dataset.text().strip() and ranking.dataset:
            self.dataset.setText(ranking.dataset)
        self.gallery.setCurrentRow(0)
        self.gallery.setFocus()
        self._on_dataset_changed(ranked=True)

    @Slot(int, str)
    def _on_failed(self, job_id: int, message: str) -> None:
        self._busy = False
        self._update_controls()
        if job_id == self.jobs.latest and not message.startswith("Cancelled"):
            self.edits.say(f"Cannot rank: {job_error(message)}", ERROR_STYLE)

    def _summary(self) -> str:
        r = self.ranking
        lines = [f"{len(r.images)} of {r.ranked} images, least sure first (by {r.by}, {r.mc_passes} "
                 f"pass{'es' if r.mc_passes != 1 else ''}). Select one and press 1-9 or click its class."]
        lines += [f"Note: {n}" for n in r.notes]
        if r.broken:
            lines.append(r.broken_text())
        return "\n".join(lines)

    # ---- the dataset and its classes ----------------------------------------------------------
    def mismatch(self) -> str:
        """Why labels cannot go into the chosen dataset now, or ""."""
        dataset = self.dataset.text().strip()
        if not dataset:
            return "choose the dataset folder the labelled images go into"
        return edits.class_mismatch(dataset, self.ranking.class_names) if self.ranking is not None else ""

    @Slot()
    def _on_dataset_changed(self, ranked: bool = False) -> None:
        self.edits.set_dataset(self.dataset.text().strip())
        if self.ranking is not None:
            problem = self.mismatch()
            text = self._summary() if ranked or not problem else ""
            if problem:
                self.edits.say((text + "\n" if text else "") + f"Labelling is off: {problem}", ERROR_STYLE)
            elif ranked:
                self.edits.say(text)
        self._update_controls()

    def _set_classes(self, names) -> None:
        for button in self.class_buttons:
            self.class_row.removeWidget(button)
            button.deleteLater()
        self.class_buttons = []
        for number, name in enumerate(names, 1):
            button = QPushButton(f"{number} · {name}" if number <= 9 else name)
            button.setToolTip(f"Label the selected image '{name}'" + (f" (key {number})" if number <= 9 else ""))
            button.setProperty("class_name", name)
            button.clicked.connect(self._on_class_clicked)
            self.class_row.addWidget(button)
            self.class_buttons.append(button)

    def _update_controls(self) -> None:
        self.rank_button.setEnabled(bool(self.chooser.run_dir()) and not self._busy)
        can_label = self.ranking is not None and not self.mismatch()
        for button in self.class_buttons:
            button.setEnabled(can_label)
        self.retrain_button.setEnabled(bool(self.chooser.run_dir()) and not (self.ranking and self.mismatch()))

    # ---- labelling ----------------------------------------------------------------------------
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Number keys 1-9 in the gallery label the selected image."""
        if watched is self.gallery and event.type() == QEvent.Type.KeyPress:
            number = NUMBER_KEYS.get(event.key()) if isinstance(event, QKeyEvent) else None
            if number is not None and event.modifiers() in (Qt.KeyboardModifier.NoModifier,
                                                            Qt.KeyboardModifier.KeypadModifier):
                if self.ranking is not None and number <= len(self.ranking.class_names):
                    self.label_selected(self.ranking.class_names[number - 1])
                return True
        return super().eventFilter(watched, event)

    @Slot()
    def _on_class_clicked(self) -> None:
        self.label_selected(self.sender().property("class_name"))

    def label_selected(self, class_name: str) -> bool:
        """Move the selected image into `class_name` of the dataset; the next unlabelled one is selected."""
        item = self.gallery.currentItem()
        if item is None or self.ranking is None:
            return False
        problem = self.mismatch()
        if problem:
            self.edits.say(f"Not labelled: {problem}", ERROR_STYLE)
            return False
        if item.data(LABEL):
            self.edits.say(f"Already labelled '{item.data(LABEL)}': Undo first to label it again", ERROR_STYLE)
            return False
        dataset = self.dataset.text().strip()
        return self.edits.apply(lambda: edits.move_to_class(dataset, item.data(PATH), class_name)) is not None

    def _mark(self, item: QListWidgetItem, path: str, label: str) -> None:
        r = item.data(RANKED)
        item.setData(PATH, path)
        item.setData(LABEL, label)
        text = f"{r.guess}? {r.confidence:.0%}\nH {r.entropy:.2f} · BALD {r.mutual_info:.2f}"
        item.setText(f"✓ {label}\n{text}" if label else text)
        item.setForeground(QColor("#16a34a") if label else QColor())
        item.setToolTip(f"{path}\nguess: {r.guess} ({r.confidence:.1%})\nentropy {r.entropy:.3f} nats · "
                        f"BALD {r.mutual_info:.3f} nats" + (f"\nlabelled '{label}'" if label else ""))

    @Slot(object)
    def _on_edited(self, edit: edits.Edit) -> None:
        """Follow the file: labelled items turn green and the next one is selected; undone ones come back."""
        for row in range(self.gallery.count()):
            item = self.gallery.item(row)
            if os.path.abspath(item.data(PATH)) != os.path.abspath(edit.source):
                continue
            label = "" if edit.action == "undo" else os.path.basename(os.path.dirname(edit.dest))
            self._mark(item, edit.dest, label)
            following = [self.gallery.item(i) for i in range(row, self.gallery.count())]
            after = next((it for it in following if not it.data(LABEL)), None) if label else item
            if after is not None:
                self.gallery.setCurrentItem(after)
            break
        self.edited.emit(edit)

    @Slot()
    def _on_retrain(self) -> None:
        try:
            config = load_run(self.chooser.run_dir()).config
        except (RunError, OSError) as exc:
            self.edits.say(f"Cannot retrain: {exc}", ERROR_STYLE)
            return
        if config is None:
            self.edits.say("Cannot retrain: the run's config cannot be read", ERROR_STYLE)
            return
        dataset = self.dataset.text().strip()
        if dataset and os.path.abspath(dataset) != os.path.abspath(config.data.folder):
            config = config.replace(**{"data.folder": dataset})
        self.retrain_requested.emit(config)
