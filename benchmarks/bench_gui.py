"""How responsive the window stays while a run trains: in a child process (the app's way), and
on the worker thread of the app's own process (the way before), side by side.

A 10 ms QTimer runs on the GUI thread of the real MainWindow (offscreen) while
it trains the demo config; each tick's lateness is how long the event loop was
busy. As in the real app, the fork server starts once the window shows (TensorFlow loads
in its process, never in the window's; the thread mode, the way before, also loads it into
the window's process with core/tf_preload.py); that phase is measured on its own, then the run: the
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
from workbench.core.process import tf_preload
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


def measure(mode: str, epochs: int) -> list[tuple[float, str]]:
    """In this (fresh) process, as the app starts: each 10 ms tick's lateness on the GUI thread,
    with the phase it fell in, while TensorFlow loads and then over one run."""
    from PySide6.QtCore import QElapsedTimer, QTimer
    from PySide6.QtWidgets import QApplication

    from workbench.core.base.events import EpochEnd, RunStarted
    from workbench.core.process import tf_preload
    from workbench.core.train import run as training
    from workbench.ui.app import PRELOAD_DELAY_MS, start_fork_server
    from workbench.ui.defaults import first_launch_config
    from workbench.ui.garbage import GuiGarbageCollector
    from workbench.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    collector = GuiGarbageCollector(app)  # as the app does
    collector.start()
    config = first_launch_config()
    config.training.epochs = epochs
    # The whole network trains (re-initialised), as the first launch did before the bundled
    # backbone: with a frozen backbone the head trains on cached features in a second, and the
    # window's stalls would be measured under almost no training load.
    config.backbone.weights, config.backbone.weights_file = "none", ""
    config.freeze.policy = "none"
    config.training.learning_rate = 1e-3
    stalls: list[tuple[float, str]] = []
    with tempfile.TemporaryDirectory() as runs:
        window = MainWindow(config, runs_dir=runs, run_fn=None if mode == "child" else training.run)
        window.resize(1400, 900)
        window.show()
        phase = ["loading"]
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
        shown = time.perf_counter()  # the first paint, then the app's pause before loading TensorFlow
        while time.perf_counter() - shown < PRELOAD_DELAY_MS / 1000:
            app.processEvents()
            time.sleep(0.001)
        last[0] = clock.nsecsElapsed()
        timer = QTimer()
        timer.setInterval(10)
        timer.timeout.connect(tick)
        timer.start()
        start_fork_server()  # as the app does: TensorFlow loads in the fork server's process, never here
        if mode == "thread":  # the way before: TensorFlow loaded into this process too
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
    return stalls


def _summary(values):
    values = sorted(max(v, 0.0) for v in values) or [0.0]
    p99 = values[int(0.99 * (len(values) - 1))]
    return max(values), p99, len(values)


MODES = {"child": "child process (the app)", "thread": "thread in the app's process (before)"}


def run(epochs: int = 4, rounds: int = 3) -> dict:
    """Fresh processes, alternating the app's way (a child process per run) and training on the
    worker thread of the app's own process (the way before, where TensorFlow's C++ calls hold
    the window's GIL)."""
    import json
    import subprocess
    import sys

    stalls: dict[str, list[list[tuple[float, str]]]] = {mode: [] for mode in MODES}
    for _ in range(rounds):
        for mode in MODES:
            done = subprocess.run([sys.executable, "-m", "benchmarks.bench_gui", mode, str(epochs)],
                                  capture_output=True, text=True, timeout=900, check=True)
            stalls[mode].append(json.loads(done.stdout.strip().splitlines()[-1]))

    plain, preloaded = import_stalls()
    loading = [v for per_run in stalls["child"] for v, p in per_run if p == "loading"]
    rows = [
        ("import in a thread, plain: longest main-thread pause (median of 3 processes)",
         f"{statistics.median(plain):.0f} ms", "Python's import holds the GIL while the libraries load"),
        ("import in a thread, libraries opened first (tf_preload)", f"{statistics.median(preloaded):.0f} ms",
         f"ratio {statistics.median(preloaded) / statistics.median(plain):.2f} of plain, side by side"),
        ("longest stall after the window shows, before Train (the fork server starting; each launch)",
         ", ".join(f"{_summary([v for v, p in r if p == 'loading'])[0]:.0f} ms" for r in stalls["child"]),
         f"p99 {_summary(loading)[1]:.1f} ms over all launches"),
    ]
    longest = {}
    for mode, per_run in stalls.items():
        whole = [_summary([v for v, p in r if p != "loading"]) for r in per_run]
        steady = [_summary([v for v, p in r if p == "steady"]) for r in per_run]
        longest[mode] = statistics.median(m for m, _, _ in whole)
        rows += [
            (f"{MODES[mode]}: longest stall, whole run (each run)", ", ".join(f"{m:.0f} ms" for m, _, _ in whole),
             "p99 " + ", ".join(f"{p:.1f} ms" for _, p, _ in whole) + "; target < 100 ms (p99 < 50 ms)"),
            (f"{MODES[mode]}: longest stall, steady training (after epoch 1)",
             ", ".join(f"{m:.0f} ms" for m, _, _ in steady), "p99 " + ", ".join(f"{p:.1f} ms" for _, p, _ in steady)),
        ]
    rows.append(("longest stall over a whole run, child process / thread (ratio of medians)",
                 f"{longest['child'] / longest['thread']:.2f}", f"{rounds} runs each, alternating fresh processes"))
    return {
        "name": "GUI responsiveness while training",
        "setup": f"The real MainWindow (offscreen) in a fresh process per run: the fork server starts after the "
                 f"window shows, as in the app (the thread mode also loads TensorFlow into the window), then it trains the first-launch demo config for {epochs} "
                 "epochs; a 10 ms QTimer on the GUI thread measures how late each tick fires. Whole run = from "
                 "pressing Train to the end (model building and the first traced step included).",
        "rows": rows,
    }


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(measure(sys.argv[1], int(sys.argv[2]))))
