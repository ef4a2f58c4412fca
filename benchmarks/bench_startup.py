"""Time from launching `python -m workbench` to a painted window, and whether TensorFlow was loaded by then.

Each round starts a fresh process (offscreen Qt, private settings) with
`--quit-when-shown`, which prints the wall-clock time once the shown window's first
paint has been processed and quits.
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


def run(rounds: int = 7) -> dict:
    with tempfile.TemporaryDirectory() as home:
        launch_once(home)  # warm the file cache (and write first-launch settings)
        results = [launch_once(home) for _ in range(rounds)]
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
        ],
    }
