"""The learning-rate finder: a dialog that runs the range test and plots loss against rate.

The test (core/train/lr_find.py: find_lr) trains a fresh copy of the config's model in a
child process through a TaskRunner, as runs do; the dialog draws each step as it comes, on a
log axis, marks the suggestion when it ends, and **Use** hands the rate back to the caller
(the Training panel writes it into the config). Nothing of a run is touched.
"""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from workbench.core.base.events import BatchEnd, Message, RunFailed
from workbench.core.config.run import RunConfig
from workbench.ui.plot_export import add_export_menu
from workbench.ui.tasks.runner import LR_FIND, TaskFunction, TaskRunner

RAW_COLOR, SMOOTH_COLOR, MARK_COLOR = "#93c5fd", "#2563eb", "#16a34a"
STEPS = 100  # batches at most, as the CLI's default


class LrFinderDialog(QDialog):
    """Run the range test on a copy of `config`; `rate_chosen` carries the rate when Use is pressed."""

    rate_chosen = Signal(float)

    def __init__(self, config: RunConfig, parent: QWidget | None = None, fn: TaskFunction = LR_FIND,
                 steps: int | None = None):
        super().__init__(parent)
        self.setWindowTitle("Find a learning rate")
        self.setModal(True)
        self.resize(640, 460)
        self.config = RunConfig.from_dict(config.to_dict())  # a copy: later edits do not reach the test
        self.steps = steps or STEPS
        self.result = None  # the LrFindResult (or RunFailed) of the last test
        self.rates: list[float] = []
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self.runner = TaskRunner(self, fn=fn, pausable=False, name="workbench-lr-find",
                                 crash_title="The learning-rate test crashed")
        self.runner.event.connect(self._on_event)
        self.runner.finished.connect(self._on_finished)

        intro = QLabel(f"Trains a fresh copy of this model for up to {self.steps} batches while the learning rate grows "
                       "from 1e-7 to 10, and stops when the loss explodes. A good rate is where the loss falls "
                       "fastest, well before it turns up. Your runs and settings are not changed.")
        intro.setWordWrap(True)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setLogMode(x=True, y=False)
        self.plot.setLabel("bottom", "learning rate (log scale)")
        self.plot.setLabel("left", "training loss")
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.plot.addLegend(offset=(-10, 10))
        self.raw_curve = self.plot.plot(pen=pg.mkPen(RAW_COLOR, width=1), name="loss per batch")
        self.smooth_curve = self.plot.plot(pen=pg.mkPen(SMOOTH_COLOR, width=2.5), name="smoothed")
        self.marker = pg.InfiniteLine(angle=90, pen=pg.mkPen(MARK_COLOR, width=2, style=Qt.PenStyle.DashLine),
                                      label="suggested", labelOpts={"position": 0.9, "color": MARK_COLOR})
        self.marker.setVisible(False)
        self.plot.addItem(self.marker)
        self.export_menu = add_export_menu(self.plot, "learning-rate-test")
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.start_button = QPushButton("Run the test")
        self.start_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(self.stop)
        self.use_button = QPushButton("Use")
        self.use_button.setToolTip("Write the suggested rate into the Learning rate field")
        self.use_button.clicked.connect(self.use)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        buttons.addStretch(1)
        buttons.addWidget(self.use_button)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        self._update_controls()

    @property
    def suggestion(self) -> float:
        return float(getattr(self.result, "suggestion", 0.0) or 0.0)

    def _update_controls(self) -> None:
        running = self.runner.running
        self.start_button.setEnabled(not running)
        self.start_button.setText("Run again" if self.result is not None else "Run the test")
        self.stop_button.setEnabled(running and not self.runner.stopping)
        self.use_button.setEnabled(not running and self.suggestion > 0)

    # ---- the test ---------------------------------------------------------------------------
    @Slot()
    def start(self) -> bool:
        if self.runner.running:
            return False
        self.result = None
        self.rates, self.losses, self.smoothed = [], [], []
        self.raw_curve.setData([], [])
        self.smooth_curve.setData([], [])
        self.marker.setVisible(False)
        self.status.setText("Starting… (the model is built first: a few seconds)")
        self.status.setStyleSheet("color: #2563eb")
        self.runner.start(self.config, steps=self.steps)
        self._update_controls()
        return True

    @Slot()
    def stop(self) -> None:
        self.runner.stop()
        self._update_controls()

    @Slot(object)
    def _on_event(self, event: object) -> None:
        if isinstance(event, BatchEnd):
            self.rates.append(event.logs["learning_rate"])
            self.losses.append(event.logs["loss"])
            self.smoothed.append(event.logs["smoothed"])
            self.raw_curve.setData(self.rates, self.losses)
            self.smooth_curve.setData(self.rates, self.smoothed)
            self.status.setText(f"Step {event.batch + 1} of up to {event.steps}: rate {self.rates[-1]:.3g}, "
                                f"smoothed loss {self.smoothed[-1]:.4g}")
        elif isinstance(event, Message) and event.level in ("warning", "error"):
            self.status.setText(event.text)

    @Slot(object)
    def _on_finished(self, result: object) -> None:
        self.result = result
        if isinstance(result, RunFailed):
            self.status.setText(f"{result.error}\n{result.details}" if result.kind == "invalid" else result.error)
            self.status.setStyleSheet("color: #b91c1c")
        else:
            # Every step, also those the relay coalesced, from the result itself.
            self.rates, self.losses, self.smoothed = list(result.learning_rates), list(result.losses), list(
                result.smoothed)
            self.raw_curve.setData(self.rates, self.losses)
            self.smooth_curve.setData(self.rates, self.smoothed)
            ended = {"exploded": "stopped when the loss exploded", "stopped": "stopped",
                     "all steps": "ran every step"}.get(result.ended, result.ended)
            if self.suggestion > 0:
                self.marker.label.setFormat(f"suggested {self.suggestion:.2g}")
                self.marker.setPos(math.log10(self.suggestion))  # the axis is log10 of the rate
                self.marker.setVisible(True)
                self.status.setText(f"Suggested learning rate: {self.suggestion:.3g} ({result.rule}); "
                                    f"the test {ended} after {len(self.losses)} steps. "
                                    f"Press Use to write it into the config.")
                self.status.setStyleSheet("color: #15803d")
            else:
                self.status.setText(f"No suggestion: the test {ended} after {len(self.losses)} steps, too few "
                                    "for a slope. Run it again and let it go on longer.")
                self.status.setStyleSheet("color: #b45309")
        self._update_controls()

    @Slot()
    def use(self) -> None:
        if self.suggestion > 0:
            self.rate_chosen.emit(float(f"{self.suggestion:.3g}"))
            self.accept()

    def done(self, code: int) -> None:
        """Closing stops a test in progress and waits for its process (it stops within a batch)."""
        if self.runner.running:
            self.runner.shutdown()
        super().done(code)
