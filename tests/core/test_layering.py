"""The layering rules of DESIGN.md, checked: the core never imports Qt, start-up never imports TF."""

import ast
import subprocess
import sys
from pathlib import Path

import workbench

PACKAGE = Path(workbench.__file__).parent
# layers.py defines Keras layers; importing child_preload.py loads Keras on purpose (the training
# processes' fork server does, core/child_process.py). The app itself imports neither at start-up.
CORE_MODULES = sorted(
    f"workbench.core.{p.stem}" for p in (PACKAGE / "core").glob("*.py")
    if p.stem not in ("__init__", "layers", "child_preload")
)


def imported_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def top_level_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_never_imports_qt():
    for path in (PACKAGE / "core").glob("*.py"):
        assert not imported_names(path) & {"PySide6", "pyqtgraph", "shiboken6"}, path


def test_core_modules_import_without_tensorflow_or_qt():
    code = (
        "import sys\n"
        f"for m in {CORE_MODULES!r}: __import__(m)\n"
        "import workbench.cli\n"
        "bad = [m for m in ('tensorflow', 'keras', 'PySide6', 'pyqtgraph') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"importing the core pulled in {out.stdout.strip()}"


def test_only_layers_module_imports_keras_at_top_level():
    for path in PACKAGE.rglob("*.py"):
        if path.name == "layers.py":
            continue
        assert not top_level_imports(path) & {"tensorflow", "keras"}, path
