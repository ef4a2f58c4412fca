"""A wheel built from the repository carries the app: resources/ as package data, and it starts.

The wheel is built from a copy of the source (so no build/ folder is left in the checkout),
without build isolation (the test extra installs setuptools), and installed with --no-deps
into a folder put first on PYTHONPATH: .venv's TensorFlow, PySide6 and friends are used as
they are, nothing is downloaded. Then `python -m workbench --quit-when-shown` starts the
window from the installed copy, offscreen. About 20 seconds.
"""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("workbench", "resources", "pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "LICENSE")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
        elif path.is_file():
            shutil.copy2(path, src / name)
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                           "--no-index", str(src), "-w", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (found,) = out.glob("workbench-*.whl")
    return found


def test_the_wheel_carries_the_resources_as_package_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {str(p.relative_to(ROOT)).replace("resources/", "workbench/resources/", 1)
                for p in (ROOT / "resources").rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert expected and expected <= names, sorted(expected - names)[:10]
    assert {"workbench/resources/style.qss", "workbench/__main__.py", "workbench/resources.py"} <= names
    assert any(n.startswith("workbench/resources/demo/") and n.endswith((".png", ".jpg")) for n in names)
    assert any(n.startswith("workbench/resources/icons/") for n in names)
    assert not any(n.startswith(("tests/", "resources/")) for n in names)


def test_the_app_starts_from_an_install_of_the_wheel(wheel, tmp_path):
    target = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target",
                           str(target), str(wheel)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    probe = ("import workbench, workbench.resources as r; "
             "print(workbench.__file__); print(r.resources_dir()); print(r.resource_path('style.qss'))")
    env = {**os.environ, "PYTHONPATH": str(target), "QT_QPA_PLATFORM": "offscreen",
           "WORKBENCH_RUNS_DIR": str(tmp_path / "runs"), "HOME": str(tmp_path / "home")}
    outside = tmp_path / "elsewhere"  # not the checkout: the source tree must not be importable
    outside.mkdir()
    found = subprocess.run([sys.executable, "-c", probe], cwd=outside, env=env, capture_output=True,
                           text=True, timeout=120)
    assert found.returncode == 0, found.stderr[-2000:]
    lines = found.stdout.split()
    assert lines[0].startswith(str(target)) and lines[1] == str(target / "workbench" / "resources")
    started = subprocess.run([sys.executable, "-m", "workbench", "--quit-when-shown"], cwd=outside, env=env,
                             capture_output=True, text=True, timeout=180)
    assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-2000:]
    assert "shown" in started.stdout.lower(), started.stdout
