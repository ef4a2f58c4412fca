"""Time from launching `python -m workbench` to a painted window, whether TensorFlow was loaded by then,
and how long the window stalls in the seconds after it shows.

Each round starts a fresh process (offscreen Qt, private settings) with
`--quit-when-shown`, which prints the wall-clock time once the shown window's first
paint has been processed and quits. The stall: in a fresh process the real MainWindow shows,
then, as the app does, the fork server starts (TensorFlow loads in its process); a 10 ms timer
on the GUI thread measures each tick's lateness for STALL_WINDOW_S. Before, TensorFlow also
loaded into the window's own process (core/process/tf_preload.py): measured the same way, side by side.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time


def launch_once(home: str) -> tuple[float, bool]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": home, "HOME": home,
           "WORKBENCH_RUNS_DIR": os.path.join(home, "runs")}
    started = time.time()
    out = subprocess.run([sys.executable, "-m", "workbench", "--quit-when-shown"], capture_output=True,
                         text=True, timeout=120, env=env)
    match = re.search(r"shown at ([0-9.]+) tensorflow=(True|False)", out.stdout)
    if out.returncode != 0 or not match:
        raise RuntimeError(f"workbench did not report a shown window:\n{out.stdout}\n{out.stderr}")
    return float(match.group(1)) - started, match.group(2) == "True"


STALL_WINDOW_S = 8.0


def stall_after_show(mode: str) -> float:
    """In this fresh process: the longest lateness (ms) of a 10 ms GUI timer after the window shows,
    while the fork server starts ("now") or TensorFlow also loads here ("before")."""
    from PySide6.QtCore import QElapsedTimer, QTimer
    from PySide6.QtWidgets import QApplication

    from workbench.core.process import tf_preload
    from workbench.ui.app import PRELOAD_DELAY_MS, setup_application, start_fork_server
    from workbench.ui.garbage import GuiGarbageCollector
    from workbench.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    setup_application(app)
    collector = GuiGarbageCollector(app)
    collector.start()
    window = MainWindow()
    window.show()
    clock = QElapsedTimer()
    clock.start()
    last, longest = [clock.nsecsElapsed()], [0.0]

    def tick() -> None:
        now = clock.nsecsElapsed()
        longest[0] = max(longest[0], (now - last[0]) / 1e6 - 10.0)
        last[0] = now

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)
    timer.start()
    QTimer.singleShot(PRELOAD_DELAY_MS, start_fork_server)
    if mode == "before":
        QTimer.singleShot(PRELOAD_DELAY_MS, tf_preload.preload)
    started = clock.elapsed()
    while clock.elapsed() - started < STALL_WINDOW_S * 1000:
        app.processEvents()
        time.sleep(0.001)
    timer.stop()
    window.shutdown()
    return longest[0]


def stall_once(home: str, mode: str) -> float:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": home, "HOME": home,
           "WORKBENCH_RUNS_DIR": os.path.join(home, "runs")}
    out = subprocess.run([sys.executable, "-m", "benchmarks.bench_startup", mode], capture_output=True, text=True,
                         timeout=300, env=env, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def run(rounds: int = 7, stall_rounds: int = 3) -> dict:
    with tempfile.TemporaryDirectory() as home:
        launch_once(home)  # warm the file cache (and write first-launch settings)
        results = [launch_once(home) for _ in range(rounds)]
        stalls: dict[str, list[float]] = {"before": [], "now": []}
        for _ in range(stall_rounds):
            for mode in stalls:
                stalls[mode].append(stall_once(home, mode))
    seconds = [s for s, _ in results]
    tf_loaded = any(t for _, t in results)
    return {
        "name": "Start-up: launch to a painted window",
        "setup": f"`python -m workbench --quit-when-shown` in a fresh process, offscreen, {rounds} rounds after one "
                 "warm-up; measured from just before the launch to the first processed event after show().",
        "rows": [
            ("launch to painted window (median)", f"{statistics.median(seconds):.2f} s",
             f"min {min(seconds):.2f} s, max {max(seconds):.2f} s; target < 1.5 s"),
            ("TensorFlow imported before the window showed", "yes" if tf_loaded else "no", "target: no"),
            (f"longest GUI stall in the {STALL_WINDOW_S:.0f} s after show, now (fork server only; median)",
             f"{statistics.median(stalls['now']):.0f} ms", ", ".join(f"{v:.0f}" for v in stalls["now"]) + " ms; "
             "TensorFlow loads in the fork server's process, never in the window's"),
            ("the same, before (TensorFlow also loaded into the window's process)",
             f"{statistics.median(stalls['before']):.0f} ms", ", ".join(f"{v:.0f}" for v in stalls["before"])
             + f" ms; {stall_rounds} rounds each, alternating fresh processes"),
        ],
    }


if __name__ == "__main__":
    print(round(stall_after_show(sys.argv[1]), 1))
