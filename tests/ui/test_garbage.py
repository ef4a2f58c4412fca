"""Garbage is collected on the GUI thread only, so no Qt object dies on a worker thread."""

from __future__ import annotations

import gc
import threading

from PySide6.QtCore import QObject

from workbench.ui.garbage import GuiGarbageCollector


class Cycle:
    def __init__(self):
        self.me = self
        self.qt = QObject()  # a Qt object held in a reference cycle, as widgets and models are


def test_cycles_made_on_a_worker_thread_are_freed_on_the_gui_thread(qtbot):
    assert not gc.isenabled()  # the autouse fixture runs the GUI-thread collector, as the app does
    freed_on = []

    class Tracked(Cycle):
        def __del__(self):
            freed_on.append(threading.current_thread() is threading.main_thread())

    def worker():
        for _ in range(3000):  # far past generation 0's threshold: automatic collection would run here
            Tracked()

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert freed_on == []  # nothing collected on the worker thread
    qtbot.waitUntil(lambda: len(freed_on) >= 3000, timeout=10_000)
    assert all(freed_on)


def test_stopping_gives_collection_back_to_python(qapp):
    collector = GuiGarbageCollector()
    enabled = gc.isenabled()
    gc.enable()
    try:
        collector.start()
        assert not gc.isenabled()
        collector.stop()
        assert gc.isenabled()
    finally:
        gc.enable() if enabled else gc.disable()
        collector.deleteLater()
