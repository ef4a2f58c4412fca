"""Runs > Report…: the selected run's self-contained HTML report, written on a model job.

The report (core.analysis.report) loads the run's model and computes Grad-CAMs, so it runs
as a background model job (ui/tasks/model_jobs.report, in the model worker process) and never on
the GUI thread. When it is written, the log names the file and the default browser opens it.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QThreadPool, QUrl, Signal, Slot
from PySide6.QtGui import QAction, QDesktopServices

from workbench.ui.tasks import model_jobs
from workbench.ui.tasks.background import BackgroundJobs


class ReportAction(QAction):
    """The action of a Runs panel (`panel`: selected_records(), log_message, show_error)."""

    report_written = Signal(object)  # core.analysis.report.ReportResult

    def __init__(self, panel: Any):
        super().__init__("Report…", panel)
        self.panel = panel
        self.setToolTip("Write a self-contained HTML report of the run (config, curves, confusion matrix, "
                        "per-class scores, mistakes with Grad-CAM, environment) and open it")
        self.open_when_done = True  # tests switch it off: no browser
        self.writing: dict[int, str] = {}  # job id -> run folder
        self._jobs: BackgroundJobs | None = None
        self._cancel = threading.Event()
        self.triggered.connect(self.start_selected)

    def set_model_jobs(self, pool: QThreadPool, cancel: threading.Event | None = None) -> None:
        self._jobs = BackgroundJobs(pool, self)
        self._jobs.done.connect(self._on_done)
        self._jobs.failed.connect(self._on_failed)
        if cancel is not None:
            self._cancel = cancel

    @Slot()
    def start_selected(self) -> None:
        records = self.panel.selected_records()
        if len(records) == 1 and records[0].config is not None:
            self.start(str(records[0].path))

    def start(self, run_dir: str) -> int:
        """Write <run>/report.html on a model job; the job's id."""
        if self._jobs is None:  # a panel on its own (tests): the application's pool
            self.set_model_jobs(QThreadPool.globalInstance())
        job = self._jobs.submit(model_jobs.report, run_dir, None, self._cancel)
        self.writing[job] = run_dir
        self.panel.log_message.emit("info", f"Writing the report of {Path(run_dir).name}…")
        return job

    @Slot(int, object)
    def _on_done(self, job_id: int, result: Any) -> None:
        self.writing.pop(job_id, None)
        missing = f" ({'; '.join(result.notes)})" if result.notes else ""
        self.panel.log_message.emit("success", f"Report written: {result.path}{missing}")
        if self.open_when_done:
            QDesktopServices.openUrl(QUrl.fromLocalFile(result.path))
        self.report_written.emit(result)

    @Slot(int, str)
    def _on_failed(self, job_id: int, message: str) -> None:
        run_dir = self.writing.pop(job_id, "")
        if message.startswith("Cancelled"):
            return  # the window is closing
        self.panel.log_message.emit("error", f"Could not write the report of {Path(run_dir).name}: {message}")
        self.panel.show_error("Cannot write the report", f"The report of {Path(run_dir).name} could not be "
                                                         f"written:\n\n{message}")
