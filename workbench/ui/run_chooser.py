"""A combo box of the saved runs that have a trained model (for Evaluate and Predict)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QComboBox, QSizePolicy, QWidget

from workbench.core.runs.listing import best_val_accuracy, run_label
from workbench.core.runs.store import RunRecord


def chooser_text(record: RunRecord) -> str:
    parts = [run_label(record)]
    if record.config is not None:
        parts.append(record.config.backbone.name)
    best = best_val_accuracy(record)
    if best is not None:
        parts.append(f"val acc {best:.3f}")
    if run_label(record) != record.id:
        parts.append(record.id)
    return " · ".join(parts)


class RunChooser(QComboBox):
    """Lists usable runs, newest first; `run_changed(run_dir)` when a person or code picks another."""

    run_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(28)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setPlaceholderText("No trained runs yet")
        self._current = ""
        self.currentIndexChanged.connect(self._on_index_changed)

    def set_runs(self, records: Sequence[RunRecord]) -> None:
        """Show these runs (those with a model and a config); keep the chosen one when it is still there."""
        keep = self._current
        usable = sorted((r for r in records if r.has_model and r.config is not None),
                        key=lambda r: r.id, reverse=True)
        self.blockSignals(True)
        try:
            self.clear()
            for record in usable:
                self.addItem(chooser_text(record), str(record.path))
                self.setItemData(self.count() - 1, str(record.path), Qt.ItemDataRole.ToolTipRole)
            index = self.findData(keep) if keep else -1
            self.setCurrentIndex(index if index >= 0 else (0 if usable else -1))
        finally:
            self.blockSignals(False)
        self._on_index_changed(self.currentIndex())

    def run_dir(self) -> str:
        """The chosen run's folder, or "" when there is none."""
        data = self.currentData()
        return str(data) if data else ""

    def set_run_dir(self, run_dir: str) -> bool:
        index = self.findData(str(run_dir))
        if index < 0:
            index = next((i for i in range(self.count())
                          if os.path.abspath(str(self.itemData(i))) == os.path.abspath(run_dir)), -1)
        if index < 0:
            return False
        self.setCurrentIndex(index)
        return True

    @Slot(int)
    def _on_index_changed(self, _index: int) -> None:
        current = self.run_dir()
        if current != self._current:
            self._current = current
            self.run_changed.emit(current)
