"""CLI parity with the Runs tab (runs, rename, rm, save-backbone), and a quiet terminal.

The quiet-terminal test runs the real CLI in a subprocess, as a person would, and reads its
stderr: no TensorFlow C++ log line (E0000 ... cuInit, oneDNN notes, absl's warning) gets through.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import pytest

from workbench import cli
from workbench.core.base.quiet import is_native_log_line
from workbench.core.config.run import RunConfig
from workbench.core.engine.model import build_model
from workbench.core.runs.store import RunStore

ROOT = Path(__file__).resolve().parents[2]


def make_run(root: Path, name: str, accuracies=(0.5, 0.75), model: bool = False) -> Path:
    config = RunConfig(name=name)
    config.data.image_size = 32
    config.backbone.width = 0.35
    config.backbone.weights = "none"
    folder = RunStore(root).create(config)
    for epoch, acc in enumerate(accuracies, start=1):
        folder.append_metrics(epoch, {"loss": 1.0, "accuracy": acc, "val_loss": 1.0, "val_accuracy": acc})
    if model:
        keras.utils.set_random_seed(0)
        build_model(config, 3).save(folder.model_path)
    folder.write_summary({"status": "finished", "class_names": ["a", "b", "c"], "epochs_done": len(accuracies)})
    return folder.path


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli-runs")
    make_run(root, "first", (0.4, 0.6))
    make_run(root, "second", (0.7, 0.9), model=True)
    return root


def test_runs_lists_status_and_best_accuracy_as_text_and_json(runs_root, capsys):
    assert cli.main(["runs", "--runs-dir", str(runs_root)]) == 0
    out = capsys.readouterr().out
    assert "first" in out and "second" in out and "0.9000" in out and "finished" in out
    assert cli.main(["runs", "--json", "--runs-dir", str(runs_root)]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_name = {r["name"]: r for r in rows}
    assert by_name["second"]["best_val_accuracy"] == pytest.approx(0.9) and by_name["second"]["has_model"]
    assert by_name["first"]["status"] == "finished (no model)"


def test_runs_rename_and_rm_which_refuses_without_yes(tmp_path, capsys):
    run = make_run(tmp_path, "old")
    assert cli.main(["runs", "rename", run.name, "new name", "--runs-dir", str(tmp_path)]) == 0
    assert json.loads((run / "config.json").read_text())["name"] == "new name"
    assert cli.main(["runs", "--runs-dir", str(tmp_path), "rm", run.name]) == 2
    assert "--yes" in capsys.readouterr().err and run.is_dir()
    assert cli.main(["runs", "rm", str(run), "--yes"]) == 0
    assert not run.exists()
    assert cli.main(["runs", "rm", "nope", "--yes", "--runs-dir", str(tmp_path)]) == 2


def test_save_backbone_writes_the_weights_file(runs_root, tmp_path, capsys):
    run = next(p for p in runs_root.iterdir() if p.name.endswith("second"))
    assert cli.main(["save-backbone", str(run), "my backbone", "--runs-dir", str(tmp_path)]) == 0
    saved = tmp_path / "weights" / "my-backbone.weights.h5"
    assert saved.is_file() and str(saved) in capsys.readouterr().out
    first = next(p for p in runs_root.iterdir() if p.name.endswith("first"))
    assert cli.main(["save-backbone", str(first), "x", "--runs-dir", str(tmp_path)]) == 2  # no model


def _export(run: Path, out: Path, *flags: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "WORKBENCH_QUIET_TF")}
    return subprocess.run([sys.executable, "-m", "workbench", *flags, "export", str(run), "--format", "keras",
                           "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_a_cli_command_prints_no_tensorflow_log_lines_unless_verbose(runs_root, tmp_path):
    run = next(p for p in runs_root.iterdir() if p.name.endswith("second"))
    quiet = _export(run, tmp_path / "quiet")
    assert quiet.returncode == 0, quiet.stderr
    noise = [line for line in quiet.stderr.splitlines() if is_native_log_line(line)
             or "cuInit" in line or "oneDNN" in line]
    assert noise == [], noise
    assert "Exported keras" in quiet.stdout
    verbose = _export(run, tmp_path / "verbose", "--verbose")
    assert verbose.returncode == 0, verbose.stderr
    assert any(is_native_log_line(line) for line in verbose.stderr.splitlines()), verbose.stderr[-1000:]
