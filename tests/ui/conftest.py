"""GUI tests: offscreen Qt, private settings and runs folders, and no thread left running."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before Qt is imported anywhere

import gc
from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication, QSettings, QThread, QThreadPool
from PySide6.QtWidgets import QMessageBox
from ui_helpers import write_image_folder

from workbench.core.config.run import RunConfig


@pytest.fixture(autouse=True)
def private_settings(tmp_path_factory, monkeypatch):
    """QSettings and run folders go to temporary places, never to the user's."""
    root = tmp_path_factory.mktemp("settings")
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(root))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(root))
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(tmp_path_factory.mktemp("runs")))
    return root


def _running_threads() -> list[str]:
    main = QCoreApplication.instance().thread() if QCoreApplication.instance() else None
    found = []
    for obj in gc.get_objects():
        try:
            if isinstance(obj, QThread) and obj is not main and obj.isRunning():
                found.append(f"QThread {obj.objectName() or obj!r}")
            elif isinstance(obj, QThreadPool) and obj.activeThreadCount() > 0:
                found.append(f"QThreadPool with {obj.activeThreadCount()} active thread(s)")
        except RuntimeError:  # the C++ object is already gone
            continue
    return found


@pytest.fixture(autouse=True)
def gui_garbage_collection(qapp):
    """As in the app: garbage is collected on the GUI thread only (ui/garbage.py), never on a
    worker thread where a Qt object in a cycle would die in the wrong thread."""
    from workbench.ui.garbage import GuiGarbageCollector

    collector = GuiGarbageCollector()
    collector.start()
    yield collector
    collector.stop()
    collector.deleteLater()


@pytest.fixture(autouse=True)
def no_thread_left_running(qapp, gui_garbage_collection):
    """Fail any test that leaves a QThread (or a pool job) running: Qt aborts on those at exit."""
    yield
    left = _running_threads()
    assert not left, f"the test left threads running: {left}"


@pytest.fixture
def make_window(qtbot, monkeypatch):
    """Build MainWindows; at the end stop their runs, wait for their threads and close them.

    The trainable-layer count (a background model build, seconds with TensorFlow) is
    put off for an hour so that tests not about it stay fast; test_readout turns it on.
    """
    from workbench.ui import main_window
    from workbench.ui.main_window import MainWindow

    monkeypatch.setattr(main_window, "READOUT_DELAY_MS", 3_600_000)
    monkeypatch.setattr(main_window, "STARTUP_READOUT_DELAY_MS", 3_600_000)

    windows = []

    # A test that fails mid-run leaves its run going; pytest-qt then closes the window, whose
    # "Stop training?" question would wait forever offscreen. Answer No: the teardown below stops
    # the run. Tests that check the question patch it themselves.
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: QMessageBox.StandardButton.No)

    def make(config: RunConfig | None = None, **kwargs) -> MainWindow:
        window = MainWindow(config, **kwargs)
        qtbot.addWidget(window)
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.shutdown()
        window.close()


@pytest.fixture
def image_folder(tmp_path) -> Path:
    return write_image_folder(tmp_path / "images")
