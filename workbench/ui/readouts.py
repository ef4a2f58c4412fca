"""What the window learns in the background: the dataset scan, the trainable-layer count, the GPUs.

Each runs as a BackgroundJobs job, debounced by a timer; the layer count and the device probe
run in the model worker process (TensorFlow never loads in the window); `window` is the
MainWindow whose panels show the answers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Slot

from workbench.core.config.run import RunConfig
from workbench.ui import settings as keys
from workbench.ui.tasks.background import BackgroundJobs, scan_dataset

SCAN_DELAY_MS = 300
DEVICE_PROBE_DELAY_MS = 2500
READOUT_FIELDS = ("backbone.", "head.", "dropout.", "freeze.", "data.image_size")


@dataclass(frozen=True)
class ReadoutSettings:
    """How the trainable-layer count runs: its debounce and the job (tests slow or spy on both)."""

    delay_ms: int
    count: Callable  # (RunConfig, num_classes, cancel) -> FreezeSummary | None, on a pool thread


class Readouts(QObject):
    """Owns the scan, readout and device jobs and their timers; `scan_report` is the latest scan."""

    def __init__(self, window, pool, readout: ReadoutSettings):
        super().__init__(window)
        self.window = window
        self.readout = readout
        self.scan_report = None
        self.scan_jobs = BackgroundJobs(pool, self)
        self.scan_jobs.done.connect(self._on_scan_done)
        self.scan_jobs.failed.connect(self._on_scan_failed)
        self.scan_jobs.progress.connect(self._on_scan_progress)
        self.readout_jobs = BackgroundJobs(pool, self)
        self.readout_jobs.done.connect(self._on_readout_done)
        self.readout_jobs.failed.connect(self._on_readout_failed)
        # Which GPUs TensorFlow sees: asked of the model worker, after the window has painted.
        self.device_jobs = BackgroundJobs(pool, self)
        self.device_jobs.done.connect(self._on_devices_done)
        self.device_jobs.failed.connect(self._on_devices_failed)
        self.scan_timer = self._timer(self.start_scan)
        self.readout_timer = self._timer(self._start_readout)
        self.device_timer = self._timer(self._start_device_probe)

    def _timer(self, slot) -> QTimer:
        timer = QTimer(self)
        timer.setSingleShot(True)
        timer.timeout.connect(slot)
        return timer

    def start_device_probe_later(self) -> None:
        self.device_timer.start(DEVICE_PROBE_DELAY_MS)

    def stop(self) -> None:
        """No more jobs from the timers (on quit)."""
        self.scan_timer.stop()
        self.readout_timer.stop()
        self.device_timer.stop()

    # ---- devices -----------------------------------------------------------------------------
    @Slot()
    def _start_device_probe(self) -> None:
        from workbench.ui.tasks.background import probe_devices

        self.device_jobs.submit(probe_devices, self.window.model_cancel)

    @Slot(int, object)
    def _on_devices_done(self, job_id: int, text) -> None:
        self.window.device_label.setText(str(text))
        self.window.training_panel.device_label.setText(str(text))

    @Slot(int, str)
    def _on_devices_failed(self, job_id: int, message: str) -> None:
        self.window.device_label.setText("Devices: unknown")
        self.window.device_label.setToolTip(message)

    # ---- dataset scan ------------------------------------------------------------------------
    def scan_is_current(self, report) -> bool:
        folder = self.window.config.data.folder.strip()
        return bool(folder) and Path(report.root) == Path(folder)

    def current_scan(self):
        """The scan report when it is of the folder the config names now, else None."""
        report = self.scan_report
        return report if report is not None and self.scan_is_current(report) else None

    def schedule_scan(self) -> None:
        self.scan_timer.start(SCAN_DELAY_MS)

    @Slot()
    def start_scan(self) -> None:
        w = self.window
        folder = w.config.data.folder.strip()
        if not folder or not Path(folder).is_dir():
            self.scan_report = None
            w.data_panel.clear_scan("")
            self.scan_jobs.latest += 1  # forget any scan still running
            w.revalidate()
            return
        w.data_panel.show_scanning(folder)
        self.scan_jobs.submit(scan_dataset, folder, report_progress=True)

    @Slot(int, object)
    def _on_scan_done(self, job_id: int, report) -> None:
        if job_id != self.scan_jobs.latest or not self.scan_is_current(report):
            return
        w = self.window
        classes_before = len(self.scan_report.class_names) if self.scan_report else None
        self.scan_report = report
        w.data_panel.show_scan(report)
        w.settings.setValue(keys.LAST_FOLDER, report.root)
        w.revalidate()
        if classes_before is not None and classes_before != len(report.class_names):
            self.schedule_readout()

    @Slot(int, int, int)
    def _on_scan_progress(self, job_id: int, done: int, total: int) -> None:
        if job_id == self.scan_jobs.latest:
            self.window.data_panel.show_scanning(self.window.config.data.folder.strip(), done, total)

    @Slot(int, str)
    def _on_scan_failed(self, job_id: int, message: str) -> None:
        if job_id == self.scan_jobs.latest:
            self.window.data_panel.show_scan_failed(message)

    # ---- trainable-layer readout (debounced) ---------------------------------------------------
    def schedule_readout(self, delay_ms: int | None = None) -> None:
        if not self.window.runner.running:
            self.readout_timer.start(self.readout.delay_ms if delay_ms is None else delay_ms)

    @Slot()
    def _start_readout(self) -> None:
        w = self.window
        if w.runner.running:
            return
        if any(p.field.startswith(READOUT_FIELDS) for p in w.problems):
            w.regularization_panel.set_readout(
                "Fix the problems marked in red to count the trainable layers.", "error"
            )
            return
        report = self.scan_report
        classes = len(report.class_names) if report is not None and len(report.class_names) >= 2 else 2
        snapshot = RunConfig.from_dict(w.config.to_dict())
        w.regularization_panel.set_readout("Counting trainable layers…", "busy")
        self.readout_jobs.submit(self.readout.count, snapshot, classes, self.window.model_cancel)

    @Slot(int, object)
    def _on_readout_done(self, job_id: int, summary) -> None:
        if job_id != self.readout_jobs.latest or self.window.runner.running:
            return
        if summary is None:  # the model worker was busy with another job: try again shortly
            self.schedule_readout()
            return
        self.window.regularization_panel.set_readout(summary.text)

    @Slot(int, str)
    def _on_readout_failed(self, job_id: int, message: str) -> None:
        if job_id == self.readout_jobs.latest and not self.window.runner.running:
            self.window.regularization_panel.set_readout(
                f"Could not count the trainable layers: {message}", "error"
            )
