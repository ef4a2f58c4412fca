"""The real app, as a person starts it: `python -m workbench` on an X server, training the demo.

The automation flags make it train one epoch of the default demo config, save a
screenshot of its window and quit. The screenshot is kept in test-artifacts/.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def test_real_window_trains_the_demo_and_takes_a_screenshot(x_display, tmp_path):
    shot = tmp_path / "window.png"
    env = {
        **os.environ,
        "DISPLAY": x_display,
        "QT_QPA_PLATFORM": "xcb",
        "WORKBENCH_RUNS_DIR": str(tmp_path / "runs"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    out = subprocess.run(
        [sys.executable, "-m", "workbench", "--train-on-start", "--epochs", "1", "--quit-after-run",
         "--screenshot", str(shot)],
        env=env, capture_output=True, text=True, timeout=420,
    )
    assert out.returncode == 0, out.stderr[-4000:]

    match = re.search(r"screenshot (\d+)x(\d+)", out.stderr)
    assert match, out.stderr[-2000:]
    window_size = (int(match.group(1)), int(match.group(2)))
    image = Image.open(shot).convert("RGB")
    assert image.size == window_size
    assert image.size[0] >= 1000 and image.size[1] >= 650
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 200, "the screenshot looks blank"

    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "config.json").is_file() and (runs[0] / "metrics.csv").is_file()
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copyfile(shot, ARTIFACTS / "real_window.png")
