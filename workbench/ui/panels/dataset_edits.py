"""What the Fix data and Label tabs share: a thumbnail gallery, and edits of a dataset folder with Undo.

Edits are core/data/edits.py calls (file moves, no TensorFlow: quick enough for the GUI thread);
every one is logged in the dataset folder, and Undo (or Ctrl+Z in the tab) puts the newest back.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QSize, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices, QKeySequence, QShortcut
from PySide6.QtWidgets import QLabel, QListView, QListWidget, QPushButton, QWidget

from workbench.core.data import edits
from workbench.ui.tasks.model_jobs import GALLERY_THUMB

ERROR_STYLE, BUSY_STYLE = "color: #b91c1c", "color: #2563eb"


def thumbnail_gallery(tooltip: str) -> QListWidget:
    """An icon-mode list of thumbnails with two lines of text under each."""
    gallery = QListWidget()
    gallery.setViewMode(QListView.ViewMode.IconMode)
    gallery.setIconSize(QSize(GALLERY_THUMB, GALLERY_THUMB))
    gallery.setGridSize(QSize(GALLERY_THUMB + 52, GALLERY_THUMB + 50))
    gallery.setResizeMode(QListView.ResizeMode.Adjust)
    gallery.setMovement(QListView.Movement.Static)
    gallery.setWordWrap(True)
    gallery.setUniformItemSizes(True)
    gallery.setMinimumHeight(GALLERY_THUMB + 60)
    gallery.setToolTip(tooltip)
    return gallery


def job_error(message: str) -> str:
    """A failed job's message without the exception's name when it is one of ours (bad input, a bad run)."""
    known = ("RunError: ", "ValueError: ", "TimeoutError: ", "OSError: ")
    return message.split(": ", 1)[1] if message.startswith(known) else message


def show_in_file_manager(path: str) -> bool:
    """Open the folder that holds `path` in the desktop's file manager."""
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(path).parent)))


class DatasetEdits(QObject):
    """Makes a panel's edits of one dataset folder and says what happened in its status line.

    `edited(edit)` after every edit made or undone (the window rescans the dataset).
    """

    edited = Signal(object)

    def __init__(self, panel: QWidget, status: QLabel):
        super().__init__(panel)
        self.status = status
        self.dataset = ""
        self.undo_button = QPushButton("Undo")
        self.undo_button.setToolTip("Put back the file of the newest edit in this dataset (Ctrl+Z); "
                                    "every edit is logged in its .workbench-edits.jsonl")
        self.undo_button.clicked.connect(self.undo)
        shortcut = QShortcut(QKeySequence.StandardKey.Undo, panel)
        shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        shortcut.activated.connect(self.undo)
        self.update_undo()

    def set_dataset(self, folder: str) -> None:
        self.dataset = folder
        self.update_undo()

    def update_undo(self) -> None:
        try:
            can = bool(self.dataset) and bool(edits.pending(self.dataset))
        except edits.EditError:
            can = False
        self.undo_button.setEnabled(can)

    def apply(self, make: Callable[[], edits.Edit]) -> edits.Edit | None:
        """Make one edit; its description, or the reason it was refused, goes to the status line."""
        try:
            edit = make()
        except edits.EditError as exc:
            self.say(f"Not done: {exc}", ERROR_STYLE)
            self.update_undo()
            return None
        self.say(edit.describe() + "  (Undo or Ctrl+Z puts it back)")
        self.update_undo()
        self.edited.emit(edit)
        return edit

    @Slot()
    def undo(self) -> edits.Edit | None:
        if not self.dataset:
            return None
        return self.apply(lambda: edits.undo_last(self.dataset))

    def say(self, text: str, style: str = "") -> None:
        self.status.setText(text)
        self.status.setStyleSheet(style)
