"""The window's process never imports TensorFlow: a whole session (train a tiny run; while a second
run trains, evaluate the first, predict an image with it, export it) in a fresh process driving the
real MainWindow, with real child processes (the training run, the model worker)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def test_a_whole_session_never_imports_tensorflow_into_the_window(tmp_path):
    code = f"import sys; sys.path.insert(0, {str(HERE)!r}); import window_session; window_session.main({str(tmp_path)!r})"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path / "settings"),
           "WORKBENCH_RUNS_DIR": str(tmp_path / "runs"), "WORKBENCH_CACHE_DIR": str(tmp_path / "cache"),
           "WORKBENCH_TRAINING_NICE": "0"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=280, env=env,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-4000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["imported"] == [], f"the window's process imported {seen['imported']}"
    assert seen["evaluated_images"] == 6  # 3 classes x 8 images, a quarter for validation
    assert seen["predicted"] in ("red", "green", "blue")
    assert seen["exported"]
    assert seen["trained_meanwhile"] and seen["still_training"], "the model jobs waited for the training run"
    assert seen["devices"] == "CPU only" or "GPU" in seen["devices"]  # the device probe, in the worker too
