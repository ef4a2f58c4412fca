"""The run report: one self-contained HTML file, rendered by a real headless Chromium.

Chromium comes from the distribution's packages (`apt-get install chromium`; workbench.sh
installs it for the tests). The screenshot must show a page, not a blank one.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from core_helpers import tiny_config
from fixture_images import write_image_tree
from PIL import Image

from workbench import cli
from workbench.core.analysis.report import REPORT_FILE, write_report
from workbench.core.base.events import RunFinished
from workbench.core.runs.store import RunError
from workbench.core.train import run as training

SCREENSHOT_TIMEOUT = 120


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report")
    config = tiny_config(write_image_tree(root / "data"), epochs=2)
    result = training.run(config, lambda event: None, runs_dir=root / "runs")
    assert isinstance(result, RunFinished), result
    return Path(result.run_dir)


@pytest.fixture(scope="module")
def report(trained):
    return write_report(trained)


def test_the_report_has_every_section_and_needs_nothing_outside_it(trained, report):
    assert Path(report.path) == trained / REPORT_FILE and report.size_bytes > 10_000
    assert report.sections[:3] == ("Summary", "Configuration", "Training curves")
    for section in ("Confusion matrix", "Per-class scores", "Most confident mistakes", "Environment"):
        assert section in report.sections
    text = Path(report.path).read_text(encoding="utf-8")
    images = re.findall(r"<img [^>]*src='([^']*)'", text)
    assert len(images) >= 3 and all(src.startswith("data:image/png;base64,") for src in images)
    assert not re.search(r"(src|href)=['\"](https?:|file:|/)", text)  # self-contained
    assert "MobileNetV2" in text and "tensorflow" in text and "precision" in text


def test_the_report_renders_in_headless_chromium(report, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Chromium is not installed (apt-get install chromium; workbench.sh test installs it)")
    shot = tmp_path / "report.png"
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,1800",
               f"--screenshot={shot}", Path(report.path).as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=SCREENSHOT_TIMEOUT,
                          env={**os.environ, "HOME": str(tmp_path)})
    assert shot.is_file(), done.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape[:2] == (1800, 1200)
    colours = len(np.unique(pixels.reshape(-1, 3), axis=0))
    assert colours > 500, f"the screenshot looks blank: {colours} colours"  # text, curves, heat maps
    # The header's dark blue and the page's light grey are both there: the style sheet applied.
    assert (np.abs(pixels.astype(int) - (30, 58, 138)).sum(axis=2) < 10).mean() > 0.02
    if os.environ.get("WORKBENCH_KEEP_SCREENSHOT"):
        shutil.copy(shot, os.environ["WORKBENCH_KEEP_SCREENSHOT"])


def test_a_run_without_a_model_still_gets_a_report(trained, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(trained, copy, ignore=shutil.ignore_patterns("*.keras"))
    result = write_report(copy, tmp_path / "out.html")
    assert "Training curves" in result.sections and "Confusion matrix" not in result.sections
    assert any("no trained model" in note for note in result.notes)
    with pytest.raises(RunError, match="not found"):
        write_report(tmp_path / "nope")


def test_cli_report_writes_the_file_it_names(trained, tmp_path, capsys):
    out = tmp_path / "mine.html"
    assert cli.main(["report", str(trained), "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out and out.stat().st_size > 10_000
    assert cli.main(["report", "nope", "--runs-dir", str(tmp_path)]) == 2
