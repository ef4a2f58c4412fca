"""Start the desktop app: the QApplication, its look, the window, and the automation flags."""

from __future__ import annotations

import argparse
import os
import sys

from PySide6.QtCore import QObject, QTimer, Slot
from PySide6.QtWidgets import QApplication

from workbench.core.base.events import RunFailed
from workbench.resources import resource_path
from workbench.ui.garbage import GuiGarbageCollector
from workbench.ui.main_window import MainWindow, app_icon
from workbench.ui.settings import APPLICATION, ORGANIZATION
from workbench.ui.tasks import processes

SCREENSHOT_DELAY_MS = 700  # let the last curve points and progress text paint
PRELOAD_DELAY_MS = 200  # after the first paint: the window shows at once, the fork server starts behind it


def setup_application(app: QApplication) -> None:
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("Workbench")
    app.setDesktopFileName("workbench")
    app.setWindowIcon(app_icon())
    app.setStyle("Fusion")
    app.setPalette(app.style().standardPalette())  # light, matching the white plots
    try:
        app.setStyleSheet(resource_path("style.qss").read_text(encoding="utf-8"))
    except FileNotFoundError:
        pass  # plain Fusion still works; problems then show only in tooltips


def failure_line(result: RunFailed) -> str:
    """One line for the terminal: what went wrong and where the details are (never a traceback)."""
    error = result.error.strip().splitlines()[0] if result.error.strip() else "the run failed"
    if result.run_dir:
        return f"workbench: {error} (details in {result.run_dir}/events.jsonl)"
    return f"workbench: {error}"


class Automation(QObject):
    """--train-on-start, --quit-after-run, --screenshot: for demos, tests and screenshots."""

    def __init__(self, window: MainWindow, app: QApplication, options: argparse.Namespace):
        super().__init__(window)
        self.window, self.app, self.options = window, app, options
        self.exit_code = 0
        window.run_ended.connect(self._on_run_ended)

    @Slot()
    def start_training(self) -> None:
        if self.window.problems:
            for problem in self.window.problems:
                print(f"workbench: {problem}", file=sys.stderr)
            if self.options.quit_after_run:
                self.app.exit(2)
            return
        self.window.start_training()

    @Slot(object)
    def _on_run_ended(self, result) -> None:
        if isinstance(result, RunFailed):
            self.exit_code = 1
            print(failure_line(result), file=sys.stderr)
        else:
            print(f"workbench: run saved in {result.run_dir}", file=sys.stderr)
        QTimer.singleShot(SCREENSHOT_DELAY_MS, self.finish)

    @Slot()
    def finish(self) -> None:
        if self.options.screenshot:
            self.window.plots.redraw_now()
            image = self.window.grab()
            if image.save(self.options.screenshot):
                print(f"workbench: screenshot {image.width()}x{image.height()} saved to {self.options.screenshot}",
                      file=sys.stderr)
            else:
                print(f"workbench: cannot save the screenshot {self.options.screenshot}", file=sys.stderr)
                self.exit_code = self.exit_code or 1
        if self.options.quit_after_run:
            self.app.exit(self.exit_code)


@Slot()
def _report_shown() -> None:
    """--quit-when-shown (the start-up benchmark): wall-clock time and whether TensorFlow was loaded."""
    import time

    print(f"workbench: shown at {time.time():.6f} tensorflow={'tensorflow' in sys.modules}", flush=True)
    QApplication.instance().exit(0)


def start_fork_server() -> None:
    """In the background: the fork server that training runs and the model worker start from; it
    imports TensorFlow in its own process (this one never does: ui/tasks/processes.py)."""
    processes.warm_up()


def run_app(options: argparse.Namespace) -> int:
    # TensorFlow takes (nearly) all of a GPU's memory when it first uses it; this process and each
    # training process share the GPUs, so each takes only what it needs.
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    setup_application(app)
    collector = GuiGarbageCollector(app)  # Python's collection on the GUI thread only
    collector.start()
    window = MainWindow()
    window.show()
    app.aboutToQuit.connect(window.shutdown)  # also ends the model worker
    if options.config and not window.open_config(options.config) and options.quit_after_run:
        window.shutdown()
        return 2
    if options.epochs is not None:
        window.training_panel.set_value("training.epochs", options.epochs)

    if getattr(options, "quit_when_shown", False):
        QTimer.singleShot(0, _report_shown)  # runs once the shown window's first paint has been processed
        return app.exec()
    QTimer.singleShot(PRELOAD_DELAY_MS, start_fork_server)
    automation = Automation(window, app, options)
    if options.train_on_start:
        QTimer.singleShot(0, automation.start_training)
    elif options.screenshot or options.quit_after_run:
        QTimer.singleShot(1500, automation.finish)
    code = app.exec()
    window.shutdown()
    return code
