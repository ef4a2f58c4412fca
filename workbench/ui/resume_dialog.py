"""File > Resume run…: the runs by name, status and date, newest first; only resumable ones can be chosen.

A run can be resumed when it has a checkpoint (written after each epoch) and has not finished
all its epochs: a stopped, failed, diverged or killed run. The others are listed greyed out with
the reason, so a person sees why their run is not offered. "Other folder…" still picks a run
folder that lives elsewhere.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.core.runs.checkpoint_state import read_state
from workbench.core.runs.listing import list_runs, run_label, run_status, run_time
from workbench.core.runs.store import CHECKPOINT_FILE, RunRecord

COLUMNS = ("Name", "Status", "Started", "Epochs done")


def why_not_resumable(record: RunRecord) -> str:
    """"" when the run can be resumed from its checkpoint, else the reason in a person's words."""
    if record.problem or record.config is None:
        return f"Cannot be read: {record.problem or 'no config'}"
    if not record.has_checkpoint:
        return "No checkpoint: the run ended before its first epoch did"
    if record.summary.get("status") == "finished":
        return "Finished: there is nothing left to train"
    state = read_state(record.path / CHECKPOINT_FILE)
    if state is None:
        return "The checkpoint cannot be read"
    if state["epochs_done"] >= record.config.training.epochs:
        return "Every epoch is done: there is nothing left to train"
    return ""


def epochs_text(record: RunRecord) -> str:
    if record.config is None:
        return ""
    state = read_state(record.path / CHECKPOINT_FILE) if record.has_checkpoint else None
    done = state["epochs_done"] if state else len(record.metrics)
    return f"{done} of {record.config.training.epochs}"


class ResumeDialog(QDialog):
    """`chosen(run_dir)` when a person picks a resumable run (or another run folder) and presses Resume."""

    chosen = Signal(str)

    def __init__(self, runs_dir: str | os.PathLike, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Resume a run")
        self.runs_dir = Path(runs_dir)
        self.records: list[RunRecord] = []
        intro = QLabel("Continue a stopped, failed or interrupted run from its last checkpoint, with its own "
                       "settings. Runs that cannot be resumed are greyed out (hover to see why).")
        intro.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(24)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.cellDoubleClicked.connect(self._on_double_clicked)
        self.empty = QLabel(f"No runs in {self.runs_dir} yet.")
        self.empty.setObjectName("hint")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setDefault(True)
        self.buttons.addButton(self.resume_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.other_button = QPushButton("Other folder…")
        self.other_button.setToolTip("Resume a run folder that is not in the runs folder")
        self.buttons.addButton(self.other_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.buttons.accepted.connect(self._on_resume)
        self.buttons.rejected.connect(self.reject)
        self.other_button.clicked.connect(self._on_other_folder)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.empty)
        layout.addWidget(self.buttons)
        self.resize(640, 380)
        self.refresh()

    def refresh(self) -> None:
        """Read the runs folder again: newest first."""
        self.records = sorted(list_runs(self.runs_dir), key=run_time, reverse=True)
        self.table.setRowCount(len(self.records))
        first_resumable = -1
        for row, record in enumerate(self.records):
            reason = why_not_resumable(record)
            status, _level, status_tip = run_status(record)
            started = time.strftime("%Y-%m-%d %H:%M", time.localtime(run_time(record)))
            cells = (run_label(record), status, started, epochs_text(record))
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, str(record.path))
                tip = f"{record.path}\n{reason}" if reason else f"{record.path}\n{status_tip}"
                item.setToolTip(tip)
                if reason:  # listed, greyed out, not selectable
                    item.setFlags(Qt.ItemFlag.NoItemFlags)
                else:
                    item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
                self.table.setItem(row, column, item)
            if not reason and first_resumable < 0:
                first_resumable = row
        self.empty.setVisible(not self.records)
        if first_resumable >= 0:
            self.table.selectRow(first_resumable)
        self._update_buttons()

    def resumable_rows(self) -> list[int]:
        return [r for r in range(self.table.rowCount()) if self.table.item(r, 0).flags() & Qt.ItemFlag.ItemIsEnabled]

    def select_run(self, run_dir: str | os.PathLike) -> bool:
        """Select the row of `run_dir` (only a resumable one can be selected)."""
        for row in self.resumable_rows():
            if os.path.abspath(self.table.item(row, 0).data(Qt.ItemDataRole.UserRole)) == os.path.abspath(run_dir):
                self.table.selectRow(row)
                return True
        return False

    def selected_run(self) -> str:
        rows = self.table.selectionModel().selectedRows()
        return self.table.item(rows[0].row(), 0).data(Qt.ItemDataRole.UserRole) if rows else ""

    @Slot()
    def _update_buttons(self) -> None:
        self.resume_button.setEnabled(bool(self.selected_run()))

    @Slot(int, int)
    def _on_double_clicked(self, row: int, _column: int) -> None:
        if row in self.resumable_rows():
            self.table.selectRow(row)
            self._on_resume()

    @Slot()
    def _on_resume(self) -> None:
        run_dir = self.selected_run()
        if run_dir:
            self.accept()
            self.chosen.emit(run_dir)

    @Slot()
    def _on_other_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a run folder to resume", str(self.runs_dir))
        if folder:
            self.accept()
            self.chosen.emit(folder)
