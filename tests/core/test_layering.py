"""The layering rules, checked: the import contracts hold, and start-up never imports TensorFlow.

The contracts themselves (pyproject.toml, [tool.importlinter]) also run in ./workbench.sh test;
this test keeps them in the suite, so a violation fails wherever the tests run.
"""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import workbench

PACKAGE = Path(workbench.__file__).parent
# Stages whose modules the window and the CLI import at start-up: they must not load TensorFlow.
LIGHT_STAGES = ("base", "config", "data", "runs")


def light_core_modules() -> list[str]:
    return sorted(
        ".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts)
        for stage in LIGHT_STAGES
        for p in (PACKAGE / "core" / stage).glob("*.py")
        if p.stem != "__init__"
    )


def top_level_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_import_contracts_hold():
    lint = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    if not Path(lint).exists():
        pytest.fail("lint-imports is missing: install the test extras (pip install -e '.[test]')")
    out = subprocess.run([lint], capture_output=True, text=True, timeout=300, cwd=PACKAGE.parent)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout


def test_light_stages_the_cli_and_the_window_import_without_tensorflow():
    modules = light_core_modules()
    assert "workbench.core.data.scan" in modules and "workbench.core.config.validate" in modules
    code = (
        "import sys\n"
        f"for m in {modules!r}: __import__(m)\n"
        "import workbench.cli\n"
        "import workbench.ui.app, workbench.ui.main_window\n"
        "print(','.join(m for m in ('tensorflow', 'keras') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"start-up pulled in {out.stdout.strip()}"


def test_keras_is_imported_at_module_level_only_by_the_training_side():
    """engine/, train/ and the fork server's preload may import Keras at the top; nothing else may."""
    allowed = {"engine", "train", "analysis", "tune", "gan", "process"}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).parts
        if len(parts) > 2 and parts[0] == "core" and parts[1] in allowed:
            continue
        assert not top_level_imports(path) & {"tensorflow", "keras"}, path
