"""The headless CLI: exit codes and what it prints."""

import json
import subprocess
import sys

from workbench import cli
from workbench.core.config.run import RunConfig, save_config


def write_config(tmp_path, folder, **changes):
    config = RunConfig(name="cli")
    config.data.folder = str(folder)
    config.data.image_size = 32
    config.backbone.width = 0.35
    config.backbone.weights = "none"
    config.training.epochs = 1
    config.training.batch_size = 8
    config = config.replace(**changes)
    path = tmp_path / "run.json"
    save_config(config, path)
    return path


def test_train_runs_and_prints_an_epoch_line(image_tree, tmp_path, capsys):
    path = write_config(tmp_path, image_tree)
    code = cli.main(["train", str(path), "--runs-dir", str(tmp_path / "runs")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Epoch 1/1" in out and "val_accuracy" in out
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "model.keras").is_file()


def test_train_with_a_bad_config_lists_problems_and_exits_2(tmp_path, capsys):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"dropout": {"rate": 1.5}, "data": {"folder": str(tmp_path / "none")}}))
    code = cli.main(["train", str(path), "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2
    assert "dropout.rate" in err and "folder not found" in err
    assert not (tmp_path / "runs").exists()


def test_train_with_unreadable_json_exits_2_without_traceback(tmp_path, capsys):
    path = tmp_path / "bad.json"
    path.write_text("{ this is not json")
    assert cli.main(["train", str(path)]) == 2
    err = capsys.readouterr().err
    assert "not valid JSON" in err and "Traceback" not in err


def test_scan_prints_the_report(image_tree, capsys):
    assert cli.main(["scan", str(image_tree)]) == 0
    out = capsys.readouterr().out
    for name in ("red", "green", "blue"):
        assert name in out


def test_scan_of_a_missing_folder_exits_2(tmp_path, capsys):
    assert cli.main(["scan", str(tmp_path / "nope")]) == 2
    assert "not found" in capsys.readouterr().err


def test_python_dash_m_workbench_dispatches_to_the_cli(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "workbench", "scan", str(tmp_path / "nope")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "not found" in proc.stderr
