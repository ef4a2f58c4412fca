"""Guard against the PySide6 6.12.0 crash: a live plot repainted thousands of times while a thread emits.

6.12.0 dropped a reference to None on every void Qt call and to True on every
Signal.emit; on Python 3.11 the process died with `none_dealloc` after a few
hundred to a thousand repaints (docs/measured.md). This test repaints the real plot
widget 3,000 times, in one process, while a worker thread streams events.
"""

from __future__ import annotations

import sys
import time

from PySide6.QtCore import QObject, QTimer, Slot

from workbench.core.base.events import BatchEnd, EpochEnd, RunFinished
from workbench.core.config.run import RunConfig
from workbench.ui.plots import TrainingPlots
from workbench.ui.tasks.runner import TaskRunner

REPAINTS = 3000


def streaming_run(config, emit, stop_event, *, pause_event=None, runs_dir=None):
    """Emits batch and epoch events as fast as a small model would, until stopped."""
    epoch = 0
    while not stop_event.is_set():
        for batch in range(50):
            if stop_event.is_set():
                break
            emit(BatchEnd(epoch, batch, 50, {"loss": 1.0 / (1 + epoch + batch / 50), "accuracy": 0.5}))
            time.sleep(0.001)
        emit(EpochEnd(epoch, {"loss": 1.0 / (1 + epoch), "accuracy": 0.5, "val_loss": 1.0, "val_accuracy": 0.5}))
        epoch += 1
    result = RunFinished("", True, epoch)
    emit(result)
    return result


class Repainter(QObject):
    """Feeds the plots from the runner and repaints them from a 1 ms timer."""

    def __init__(self, plots: TrainingPlots, runner: TaskRunner):
        super().__init__()
        self.plots, self.runner = plots, runner
        self.repaints = 0
        self.events = 0
        self.timer = QTimer(self)
        self.timer.setInterval(1)
        self.timer.timeout.connect(self.tick)

    @Slot(object)
    def on_event(self, event) -> None:
        self.events += 1
        if isinstance(event, BatchEnd):
            self.plots.add_batch(event)
        elif isinstance(event, EpochEnd):
            self.plots.add_epoch(event)

    @Slot()
    def tick(self) -> None:
        self.plots.redraw_now()
        self.plots.repaint()
        self.repaints += 1
        if self.repaints >= REPAINTS:
            self.timer.stop()
            self.runner.stop()


def test_live_plot_survives_thousands_of_repaints_while_a_thread_emits(qtbot):
    none_refs, true_refs = sys.getrefcount(None), sys.getrefcount(True)
    plots = TrainingPlots()
    qtbot.addWidget(plots)
    plots.resize(480, 240)
    plots.show()
    plots.reset(10_000)
    runner = TaskRunner(fn=streaming_run)
    repainter = Repainter(plots, runner)
    runner.event.connect(repainter.on_event)

    with qtbot.waitSignal(runner.finished, timeout=240_000):
        runner.start(RunConfig())
        repainter.timer.start()
    assert repainter.repaints >= REPAINTS
    assert repainter.events > 20
    assert plots.batch_points() > 20  # the busy GUI thread holds the GIL often: fewer batches get through
    assert not runner.running
    # On an affected PySide6 these counts fall by thousands before the crash; allow ordinary noise.
    assert sys.getrefcount(None) > none_refs - 500
    assert sys.getrefcount(True) > true_refs - 500
