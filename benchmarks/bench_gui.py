"""How responsive the window stays while a run trains on the worker thread.

A 10 ms QTimer runs on the GUI thread of the real MainWindow (offscreen) while
it trains the demo config; each tick's lateness is how long the event loop was
busy. Reported: the longest stall and the 99th percentile, over the whole run
(model building and the first traced step included) and in steady training.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def run(epochs: int = 4) -> dict:
    from PySide6.QtCore import QElapsedTimer, QTimer
    from PySide6.QtWidgets import QApplication

    from workbench.core.events import EpochEnd, RunStarted
    from workbench.ui.defaults import first_launch_config
    from workbench.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
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
        window.start_training()
        started = time.perf_counter()
        while window.runner.running and time.perf_counter() - started < 600:
            app.processEvents()
            time.sleep(0.001)
        timer.stop()
        window.shutdown()
        window.close()

    def summary(values):
        values = sorted(max(v, 0.0) for v in values)
        p99 = values[int(0.99 * (len(values) - 1))]
        return f"{max(values):.0f} ms", f"{p99:.1f} ms", len(values)

    all_ms = [v for v, _ in stalls]
    steady = [v for v, p in stalls if p == "steady"]
    a_max, a_p99, a_n = summary(all_ms)
    s_max, s_p99, s_n = summary(steady or [0.0])
    return {
        "name": "GUI responsiveness while training",
        "setup": f"The real MainWindow (offscreen) training the first-launch demo config for {epochs} epochs; "
                 "a 10 ms QTimer on the GUI thread measures how late each tick fires.",
        "rows": [
            ("longest stall, whole run", a_max, f"p99 {a_p99}, {a_n} ticks; target < 100 ms"),
            ("longest stall, steady training (after epoch 1)", s_max, f"p99 {s_p99}, {s_n} ticks"),
            ("median lateness", f"{statistics.median(all_ms):.1f} ms", ""),
        ],
    }
