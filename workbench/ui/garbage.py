"""Garbage collection on the GUI thread only.

Python's automatic collection runs in whichever thread happens to allocate. On the
training thread it can free a reference cycle that holds a Qt object, destroying that
object outside the GUI thread: the process dies (seen in the test suite, a segmentation
fault while "Garbage-collecting"). So while the app runs, automatic collection is off and
a timer collects on the GUI thread, generation by generation as Python would have.
The core, seeing automatic collection off, leaves collecting to us (perf.run_environment).
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer, Slot

INTERVAL_MS = 100  # often enough that each collection has little to walk (short pauses)


class GuiGarbageCollector(QObject):
    def __init__(self, parent: QObject | None = None, interval_ms: int = INTERVAL_MS):
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.collect)
        self._was_enabled = gc.isenabled()

    def start(self) -> None:
        self._was_enabled = gc.isenabled()
        gc.disable()
        self._timer.start()

    def stop(self) -> None:
        """Back to Python's own collection (after one last collection here)."""
        self._timer.stop()
        gc.collect()
        if self._was_enabled:
            gc.enable()

    @Slot()
    def collect(self) -> None:
        """The oldest generation past its threshold, as the automatic collector would pick.

        The window never imports TensorFlow (its million objects live in the child processes),
        so a full collection here stays short.
        """
        counts, thresholds = gc.get_count(), gc.get_threshold()
        for generation in range(2, -1, -1):
            if counts[generation] > thresholds[generation]:
                gc.collect(generation)
                return
