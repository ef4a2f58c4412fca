"""Runs panel: every saved run in the runs folder, its curves, and what can be done with it.

The table is read from the runs folder itself (config.json, metrics.csv and
summary.json of each run), so it shows runs from earlier sessions and from the
CLI. A folder that cannot be read is listed with its problem. Selecting one run
shows its curves; selecting several overlays them. Rename writes the config's
name (atomically; the folder keeps its name), Delete asks first, "Run again"
hands the run's config to the main window's editor. "Save backbone" writes the
run's trained backbone under a name (core.weights.save_run_backbone, on a model job)
so that another run can start from it (the Backbone panel lists it).
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import Qt, QThreadPool, QUrl, Signal, Slot
from PySide6.QtGui import QAction, QColor, QDesktopServices, QKeySequence, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QSplitter,
    QStyle,
    QTableWidget,
    QTableWidgetItem,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from workbench.core.base.problems import ConfigError
from workbench.core.config.run import RunConfig
from workbench.core.runs.listing import (
    RunCache,
    describe,
    list_runs,
    run_label,
    run_status,
    run_time,
)
from workbench.core.runs.store import CONFIG_FILE, RunRecord, delete_run, rename_run
from workbench.ui.panels.report_action import ReportAction
from workbench.ui.run_curves import RunCurves
from workbench.ui.tasks.background import BackgroundJobs

COLUMNS = ("Date", "Name", "Backbone", "Weights", "Dropout", "Freeze", "Best val acc", "Test acc", "Epochs",
           "Duration", "Status")
PATH_ROLE = Qt.ItemDataRole.UserRole
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
STATUS_COLORS = {"error": "#b91c1c", "warning": "#b45309", "busy": "#2563eb", "ok": "#15803d"}


class SortItem(QTableWidgetItem):
    """Sorts by the value in SORT_ROLE (numbers as numbers), not by the text."""

    def __lt__(self, other: QTableWidgetItem) -> bool:
        mine, theirs = self.data(SORT_ROLE), other.data(SORT_ROLE)
        try:
            return mine < theirs
        except TypeError:
            return str(mine) < str(theirs)


def _item(text: str, key: object, tooltip: str = "") -> SortItem:
    item = SortItem(text)
    item.setData(SORT_ROLE, key)
    if tooltip:
        item.setToolTip(tooltip)
    item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
    return item


# ---- the panel --------------------------------------------------------------------------------

class RunsPanel(QWidget):
    """The saved runs: a table, their curves, and rename / delete / run again / evaluate / export."""

    run_again_requested = Signal(object)  # RunConfig (a copy)
    evaluate_requested = Signal(str)  # run folder
    export_requested = Signal(str)
    current_run_changed = Signal(str)  # exactly one usable run selected
    runs_changed = Signal(object)  # list[RunRecord], after every refresh
    backbone_saved = Signal(str)  # the .weights.h5 file a run's backbone was saved to
    log_message = Signal(str, str)  # level, text: for the main window's log

    def __init__(self, root: str | os.PathLike, parent: QWidget | None = None):
        super().__init__(parent)
        self.root = Path(root)
        self._read_cache: RunCache = {}  # runs read before, by folder: only changed ones are read again
        self.records: dict[str, RunRecord] = {}
        self.error_box: QMessageBox | None = None
        self._training = False
        self._active_dir = ""
        self._save_jobs: BackgroundJobs | None = None
        self._save_cancel = threading.Event()
        self.saving: dict[int, tuple[str, str]] = {}  # job id -> (run folder, name) of backbones being saved

        style = self.style()
        self.refresh_action = QAction(style.standardIcon(QStyle.StandardPixmap.SP_BrowserReload), "Refresh", self)
        self.refresh_action.setToolTip("Read the runs folder again (F5)")
        self.refresh_action.setShortcut(QKeySequence(QKeySequence.StandardKey.Refresh))
        self.refresh_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.refresh_action.triggered.connect(self.refresh)
        self.rename_action = QAction("Rename…", self)
        self.rename_action.setToolTip("Change the run's name (its folder keeps its name)")
        self.rename_action.triggered.connect(self.rename_selected)
        self.delete_action = QAction(style.standardIcon(QStyle.StandardPixmap.SP_TrashIcon), "Delete…", self)
        self.delete_action.setToolTip("Delete the selected runs and their folders (asks first)")
        self.delete_action.setShortcut(QKeySequence(QKeySequence.StandardKey.Delete))
        self.delete_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.delete_action.triggered.connect(self.delete_selected)
        self.run_again_action = QAction(style.standardIcon(QStyle.StandardPixmap.SP_MediaPlay),
                                        "Run again with this config", self)
        self.run_again_action.setToolTip("Load the run's settings into the editor, ready to train")
        self.run_again_action.triggered.connect(self.run_again_selected)
        self.evaluate_action = QAction("Evaluate", self)
        self.evaluate_action.setToolTip("Confusion matrix, per-class scores and mistakes on the validation images")
        self.evaluate_action.triggered.connect(self._emit_evaluate)
        self.export_action = QAction("Export…", self)
        self.export_action.setToolTip("Save the model as .keras, SavedModel or TFLite, checked against the original")
        self.export_action.triggered.connect(self._emit_export)
        self.save_backbone_action = QAction("Save backbone…", self)
        self.save_backbone_action.setToolTip(
            "Save the run's trained backbone under a name, to start other runs from it "
            "(Backbone panel: Saved)")
        self.save_backbone_action.triggered.connect(self.save_backbone_selected)
        self.report_action = ReportAction(self)  # a self-contained HTML report, on a model job
        self.show_folder_action = QAction(style.standardIcon(QStyle.StandardPixmap.SP_DirOpenIcon),
                                          "Show folder", self)
        self.show_folder_action.setToolTip("Open the run's folder in the file manager")
        self.show_folder_action.triggered.connect(self.show_folder)

        toolbar = QToolBar()
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for action in (self.refresh_action, None, self.run_again_action, self.evaluate_action, self.export_action,
                       self.report_action, self.save_backbone_action, None, self.rename_action, self.delete_action,
                       self.show_folder_action):
            if action is None:
                toolbar.addSeparator()
            else:
                toolbar.addAction(action)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("runsTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)  # names keep their whole width; the table scrolls sideways instead
        self.table.setMinimumHeight(22 * 6 + 28)  # six rows at least
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        for action in (self.run_again_action, self.evaluate_action, self.export_action, self.report_action,
                       self.save_backbone_action,
                       self.rename_action, self.delete_action, self.show_folder_action, self.refresh_action):
            self.table.addAction(action)
        self.table.itemSelectionChanged.connect(self._on_selection_changed)
        header.setSortIndicator(0, Qt.SortOrder.DescendingOrder)  # newest first until a person sorts otherwise

        self.empty_label = QLabel()
        self.empty_label.setObjectName("hint")
        self.empty_label.setWordWrap(True)
        self.curves = RunCurves()

        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.setSpacing(4)
        top_layout.addWidget(toolbar)
        top_layout.addWidget(self.table, 1)
        top_layout.addWidget(self.empty_label)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(top)
        splitter.addWidget(self.curves)
        splitter.setStretchFactor(0, 3)  # the list gets more rows, the curves stay readable
        splitter.setStretchFactor(1, 2)
        splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)
        self.refresh()

    # ---- listing ------------------------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:
        """Re-read the folder whenever the tab comes into view: runs made by the CLI meanwhile show up."""
        super().showEvent(event)
        if not event.spontaneous():
            self.refresh()

    @Slot()
    def refresh(self) -> None:
        """Read the runs folder again; the selection stays on the runs that are still there."""
        selected = self.selected_paths()
        records = list_runs(self.root, self._read_cache)
        self.records = {str(r.path): r for r in records}
        table = self.table
        sort_column = table.horizontalHeader().sortIndicatorSection()
        sort_order = table.horizontalHeader().sortIndicatorOrder()
        table.setSortingEnabled(False)
        table.blockSignals(True)
        try:
            table.clearSelection()
            table.setRowCount(len(records))
            for row, record in enumerate(records):
                self._fill_row(row, record)
            table.setSortingEnabled(True)
            table.sortItems(sort_column, sort_order)
            for row in range(table.rowCount()):
                if table.item(row, 0).data(PATH_ROLE) in selected:
                    self._add_row_to_selection(row)
        finally:
            table.blockSignals(False)
        if records:
            broken = sum(1 for r in records if r.problem)
            text = f"{len(records)} run{'s' if len(records) != 1 else ''} in {self.root}"
            if broken:
                text += f" ({broken} cannot be read: see the Status column's tooltip)"
        else:
            text = f"No runs yet in {self.root}. Train once and the run appears here."
        self.empty_label.setText(text)
        self._on_selection_changed()
        self.runs_changed.emit(records)

    def _add_row_to_selection(self, row: int) -> None:
        model = self.table.selectionModel()
        model.select(self.table.model().index(row, 0),
                     model.SelectionFlag.Select | model.SelectionFlag.Rows)

    def _fill_row(self, row: int, record: RunRecord) -> None:
        path = str(record.path)
        active = bool(self._active_dir) and os.path.abspath(path) == os.path.abspath(self._active_dir)
        started = run_time(record)
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(started)) if started else ""
        date = _item(when, f"{started:016.3f} {record.id}", path)  # ties (same second) by folder name
        date.setData(PATH_ROLE, path)
        cells = [date] + [_item(*cell) for cell in describe(record)]
        text, level, tooltip = run_status(record, active)
        status = _item(text, text, tooltip)
        status.setForeground(QColor(STATUS_COLORS[level]))
        cells.append(status)
        if record.problem:
            for cell in cells:
                cell.setForeground(QColor(STATUS_COLORS["error"]))
                cell.setToolTip(f"{record.path}\n\n{record.problem}")
        for column, cell in enumerate(cells):
            self.table.setItem(row, column, cell)

    def row_of(self, run_dir: str | os.PathLike) -> int:
        wanted = os.path.abspath(run_dir)
        for row in range(self.table.rowCount()):
            if os.path.abspath(self.table.item(row, 0).data(PATH_ROLE)) == wanted:
                return row
        return -1

    def select_runs(self, run_dirs: Sequence[str | os.PathLike]) -> None:
        """Select these runs (and no others), as a person would with Ctrl-click."""
        self.table.blockSignals(True)
        try:
            self.table.clearSelection()
            for run_dir in run_dirs:
                row = self.row_of(run_dir)
                if row >= 0:
                    self._add_row_to_selection(row)
        finally:
            self.table.blockSignals(False)
        self._on_selection_changed()

    def selected_paths(self) -> list[str]:
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        return [self.table.item(row, 0).data(PATH_ROLE) for row in rows]

    def selected_records(self) -> list[RunRecord]:
        return [self.records[p] for p in self.selected_paths() if p in self.records]

    def _single(self) -> RunRecord | None:
        records = self.selected_records()
        return records[0] if len(records) == 1 else None

    @Slot()
    def _on_selection_changed(self) -> None:
        records = self.selected_records()
        self.curves.show_runs(records)
        self._update_actions()
        single = self._single()
        if single is not None and single.has_model and single.config is not None:
            self.current_run_changed.emit(str(single.path))

    def set_training(self, running: bool, active_dir: str = "") -> None:
        """While a run trains: mark its row, and disable Run again and what would touch that run."""
        changed = active_dir != self._active_dir or (self._training and not running)  # a run ended: re-read
        self._training, self._active_dir = running, active_dir if running else ""
        if changed:
            self.refresh()
        self._update_actions()

    def _is_active(self, record: RunRecord) -> bool:
        """Whether `record` is the run that trains now."""
        return bool(self._active_dir) and os.path.abspath(record.path) == os.path.abspath(self._active_dir)

    def _update_actions(self) -> None:
        records = self.selected_records()
        single = records[0] if len(records) == 1 else None
        usable = single is not None and single.config is not None
        active = any(self._is_active(r) for r in records)
        self.rename_action.setEnabled(usable)
        self.run_again_action.setEnabled(usable and not self._training)
        model_ok = usable and single.has_model and not active  # the model worker loads it, also while a run trains
        self.evaluate_action.setEnabled(model_ok)
        self.export_action.setEnabled(model_ok)
        self.save_backbone_action.setEnabled(model_ok)
        self.report_action.setEnabled(usable and not active)
        self.delete_action.setEnabled(bool(records) and not active)
        self.show_folder_action.setEnabled(single is not None)
        busy = " (not of the run that trains now)" if active else ""
        self.evaluate_action.setToolTip("Confusion matrix, per-class scores and mistakes on the validation images"
                                        + busy)

    # ---- actions ------------------------------------------------------------------------------
    @Slot()
    def rename_selected(self) -> None:
        record = self._single()
        if record is None or record.config is None:
            return
        name, ok = QInputDialog.getText(
            self, "Rename run", f"New name for {record.id}\n(the folder keeps its name):",
            QLineEdit.EchoMode.Normal, record.config.name,
        )
        if ok:
            self.rename_run(record.path, name.strip())

    def rename_run(self, run_dir: str | os.PathLike, name: str) -> bool:
        """Write the new name into the run's config.json (atomically); the folder is not renamed."""
        try:
            rename_run(run_dir, name)
        except ConfigError as exc:
            self.show_error("Cannot rename the run", f"Its config cannot be read:\n\n{exc}")
            return False
        except OSError as exc:
            self.show_error("Cannot rename the run", f"{Path(run_dir) / CONFIG_FILE} could not be written: {exc}")
            return False
        self.refresh()
        return True

    @Slot()
    def delete_selected(self) -> None:
        records = self.selected_records()
        if not records:
            return
        names = "\n".join(f"• {run_label(r)} ({r.id})" for r in records[:10])
        more = f"\n… and {len(records) - 10} more" if len(records) > 10 else ""
        count = f"{len(records)} runs" if len(records) > 1 else "this run"
        answer = QMessageBox.question(
            self, "Delete runs?",
            f"Delete {count} with everything in {'their folders' if len(records) > 1 else 'its folder'} "
            f"(model, curves, exports)?\n\n{names}{more}\n\nThis cannot be undone.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No,
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.delete_runs([r.path for r in records])

    def delete_runs(self, run_dirs: Sequence[str | os.PathLike]) -> list[str]:
        """Delete run folders: first moved to a hidden name (gone from the list at once), then removed.

        The model worker notices a deleted run's model is gone at its next job (worker_jobs.run_model)."""
        failed = []
        for run_dir in run_dirs:
            path = Path(run_dir)
            if self._active_dir and os.path.abspath(path) == os.path.abspath(self._active_dir):
                failed.append(f"{path.name}: it is training now")
                continue
            try:
                delete_run(path)
            except (OSError, ValueError) as exc:
                failed.append(f"{path.name}: {exc}")
                continue
        self.refresh()
        if failed:
            self.show_error("Some runs were not deleted", "\n".join(failed))
        return failed

    @Slot()
    def run_again_selected(self) -> None:
        record = self._single()
        if record is not None and record.config is not None and not self._training:
            self.run_again_requested.emit(RunConfig.from_dict(record.config.to_dict()))

    @Slot()
    def _emit_evaluate(self) -> None:
        record = self._single()
        if record is not None and record.has_model:
            self.evaluate_requested.emit(str(record.path))

    @Slot()
    def _emit_export(self) -> None:
        record = self._single()
        if record is not None and record.has_model:
            self.export_requested.emit(str(record.path))

    # ---- save a run's backbone ----------------------------------------------------------------
    def set_model_jobs(self, pool: QThreadPool, cancel: threading.Event | None = None) -> None:
        """The pool that loads models (one at a time) and the event that ends its waits on quit."""
        self._save_jobs = BackgroundJobs(pool, self)
        self._save_jobs.done.connect(self._on_backbone_saved)
        self._save_jobs.failed.connect(self._on_backbone_failed)
        if cancel is not None:
            self._save_cancel = cancel
        self.report_action.set_model_jobs(pool, cancel)

    @Slot()
    def save_backbone_selected(self) -> None:
        record = self._single()
        if record is None or record.config is None or not record.has_model or self._is_active(record):
            return
        default = re.sub(r"[^A-Za-z0-9_.-]+", "-", run_label(record)).strip("-.") or record.id
        name, ok = QInputDialog.getText(
            self, "Save backbone",
            f"Save the trained {record.config.backbone.name} of {run_label(record)} as\n"
            f"(in {self.root / 'weights'}; choose it later in the Backbone panel):",
            QLineEdit.EchoMode.Normal, default,
        )
        if ok and name.strip():
            self.save_backbone(record.path, name.strip())

    def save_backbone(self, run_dir: str | os.PathLike, name: str) -> int:
        """Save the run's backbone as <runs>/weights/<name>.weights.h5 on a background job; its id (0: not started)."""
        from workbench.core.runs.saved_backbones import SAVED_BACKBONES_DIR
        from workbench.ui.tasks.transfer_jobs import save_backbone

        clean = re.sub(r"[^A-Za-z0-9_.-]+", "-", name.strip()).strip("-.")
        target = self.root / SAVED_BACKBONES_DIR / f"{clean}.weights.h5"
        if clean and target.exists():
            answer = QMessageBox.question(
                self, "Replace the saved backbone?",
                f"A backbone named '{clean}' is saved already:\n{target}\n\nReplace it?",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
            if answer != QMessageBox.StandardButton.Yes:
                return 0
        if self._save_jobs is None:  # a panel on its own (tests): the application's pool
            self.set_model_jobs(QThreadPool.globalInstance())
        job = self._save_jobs.submit(save_backbone, str(run_dir), name, str(self.root), self._save_cancel)
        self.saving[job] = (str(run_dir), name)
        self.log_message.emit("info", f"Saving the backbone of {Path(run_dir).name} as '{clean or name}'…")
        return job

    @Slot(int, object)
    def _on_backbone_saved(self, job_id: int, saved) -> None:
        self.saving.pop(job_id, None)
        self.log_message.emit("success", f"Saved the backbone of {Path(saved.run_dir).name}: {saved.path} "
                                         f"(Backbone panel: Saved, to start another run from it)")
        self.backbone_saved.emit(saved.path)

    @Slot(int, str)
    def _on_backbone_failed(self, job_id: int, message: str) -> None:
        run_dir, name = self.saving.pop(job_id, ("", ""))
        if message.startswith("Cancelled"):
            return  # the window is closing
        self.log_message.emit("error", f"Could not save the backbone of {Path(run_dir).name}: {message}")
        self.show_error("Cannot save the backbone", f"The backbone of {Path(run_dir).name} could not be saved "
                                                    f"as '{name}':\n\n{message}")

    @Slot()
    def show_folder(self) -> None:
        record = self._single()
        if record is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(record.path)))

    def show_error(self, title: str, text: str) -> QMessageBox:
        if self.error_box is not None:
            self.error_box.deleteLater()
        box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, self)
        box.open()
        self.error_box = box
        return box
