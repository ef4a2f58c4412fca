"""How responsive the window stays while a run trains on the worker thread.

A 10 ms QTimer runs on the GUI thread of the real MainWindow (offscreen) while
it trains the demo config; each tick's lateness is how long the event loop was
busy. As in the real app, TensorFlow loads on a background thread once the window
shows (core/tf_preload.py); that phase is measured on its own, then the run: the
longest stall and the 99th percentile over the whole run (model building and the
first traced step included) and in steady training.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


_IMPORT_STALL = """
import sys, threading, time
from workbench.core import tf_preload
def load():
    if sys.argv[1] == "preload":
        tf_preload.load_shared_libraries()
    import keras  # noqa: F401
thread = threading.Thread(target=load)
thread.start()
longest, last = 0.0, time.perf_counter()
while thread.is_alive():
    time.sleep(0.001)
    now = time.perf_counter()
    longest, last = max(longest, now - last - 0.001), now
print(round(1000 * longest, 1))
"""


def import_stalls(rounds: int = 3) -> tuple[list[float], list[float]]:
    """Longest pause of a 1 ms loop on the main thread while another thread imports Keras,
    plain and with the shared libraries opened first; alternating fresh processes."""
    import subprocess
    import sys

    plain, preloaded = [], []
    for _ in range(rounds):
        for kind, into in (("plain", plain), ("preload", preloaded)):
            done = subprocess.run([sys.executable, "-c", _IMPORT_STALL, kind], capture_output=True, text=True,
                                  timeout=300, check=True)
            into.append(float(done.stdout.split()[-1]))
    return plain, preloaded


def run(epochs: int = 4) -> dict:
    from PySide6.QtCore import QElapsedTimer, QTimer
    from PySide6.QtWidgets import QApplication

    from workbench.core import tf_preload
    from workbench.core.events import EpochEnd, RunStarted
    from workbench.ui.defaults import first_launch_config
    from workbench.ui.garbage import GuiGarbageCollector
    from workbench.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    collector = GuiGarbageCollector(app)  # as the app does
    collector.start()
    with tempfile.TemporaryDirectory() as runs:
        config = first_launch_config()
        config.training.epochs = epochs
        window = MainWindow(config, runs_dir=runs)
        window.resize(1400, 900)
        window.show()
        stalls: list[tuple[float, str]] = []
        phase = ["preparing"]
        clock = QElapsedTimer()
        clock.start()
        last = [clock.nsecsElapsed()]

        def tick():
            now = clock.nsecsElapsed()
            stalls.append(((now - last[0]) / 1e6 - 10.0, phase[0]))
            last[0] = now

        def on_event(event):
            if isinstance(event, RunStarted):
                phase[0] = "first epoch"
            elif isinstance(event, EpochEnd):
                phase[0] = "steady"

        window.runner.event.connect(on_event)
        timer = QTimer()
        timer.setInterval(10)
        timer.timeout.connect(tick)
        timer.start()
        phase[0] = "loading"
        loading = tf_preload.preload()
        while loading.is_alive():
            app.processEvents()
            time.sleep(0.001)
        phase[0] = "preparing"
        window.start_training()
        started = time.perf_counter()
        while window.runner.running and time.perf_counter() - started < 600:
            app.processEvents()
            time.sleep(0.001)
        timer.stop()
        window.shutdown()
        window.close()
    collector.stop()

    def summary(values):
        values = sorted(max(v, 0.0) for v in values)
        p99 = values[int(0.99 * (len(values) - 1))]
        return f"{max(values):.0f} ms", f"{p99:.1f} ms", len(values)

    plain, preloaded = import_stalls()
    load_ms = [v for v, p in stalls if p == "loading"]
    all_ms = [v for v, p in stalls if p != "loading"]
    steady = [v for v, p in stalls if p == "steady"]
    l_max, l_p99, l_n = summary(load_ms or [0.0])
    a_max, a_p99, a_n = summary(all_ms)
    s_max, s_p99, s_n = summary(steady or [0.0])
    return {
        "name": "GUI responsiveness while training",
        "setup": f"The real MainWindow (offscreen): TensorFlow loads in the background after the window shows, "
                 f"as in the app, then it trains the first-launch demo config for {epochs} epochs; a 10 ms QTimer "
                 "on the GUI thread measures how late each tick fires.",
        "rows": [
            ("import in a thread, plain: longest main-thread pause (median of 3 processes)",
             f"{statistics.median(plain):.0f} ms", "Python's import holds the GIL while the libraries load"),
            ("import in a thread, libraries opened first (tf_preload)", f"{statistics.median(preloaded):.0f} ms",
             f"ratio {statistics.median(preloaded) / statistics.median(plain):.2f} of plain, side by side"),
            ("longest stall while TensorFlow loads in the background (before Train)", l_max,
             f"p99 {l_p99}, {l_n} ticks"),
            ("longest stall, whole run", a_max, f"p99 {a_p99}, {a_n} ticks; target < 100 ms (p99 < 50 ms)"),
            ("longest stall, steady training (after epoch 1)", s_max, f"p99 {s_p99}, {s_n} ticks"),
            ("median lateness", f"{statistics.median(all_ms):.1f} ms", ""),
        ],
    }
