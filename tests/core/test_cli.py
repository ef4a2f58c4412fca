"""The headless CLI: exit codes and what it prints."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from workbench import cli
from workbench.core.config.run import RunConfig, save_config
from workbench.core.engine import checkpoint, saving
from workbench.core.runs.store import load_run, read_metrics


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


# ---- exit codes of a real `python -m workbench train` process -----------------------------------

REPO = Path(__file__).resolve().parents[2]


def start_train(config_path, runs, log):
    return subprocess.Popen([sys.executable, "-m", "workbench", "train", str(config_path), "--runs-dir", str(runs)],
                            cwd=REPO, stdout=log, stderr=subprocess.STDOUT)


def wait_for_first_epoch(child, runs, log_path, timeout=240):
    """The run folder once its first epoch is in metrics.csv (the run is then well inside training)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and child.poll() is None:
        found = [p.parent for p in runs.glob("*/metrics.csv")]
        if found and read_metrics(found[0]):
            return found[0]
        time.sleep(0.02)
    raise AssertionError(f"no epoch finished (exit code {child.poll()}):\n{log_path.read_text()}")


def test_a_diverged_run_exits_1(image_tree, tmp_path):
    path = write_config(tmp_path, image_tree, **{
        "training.epochs": 5, "training.learning_rate": 10.0, "training.optimizer": "sgd", "training.momentum": 0.99,
        "freeze.policy": "none"})
    runs = tmp_path / "runs"
    done = subprocess.run([sys.executable, "-m", "workbench", "train", str(path), "--runs-dir", str(runs)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "error: Training diverged" in done.stderr and "Traceback" not in done.stderr
    (run,) = runs.iterdir()
    assert load_run(run).summary["status"] == "diverged"


def test_a_run_that_fails_mid_way_exits_1_and_keeps_its_folder(make_image_tree, tmp_path):
    data = make_image_tree(per_class=12)
    path = write_config(tmp_path, data, **{"training.epochs": 30})
    runs, log_path = tmp_path / "runs", tmp_path / "child.log"
    with open(log_path, "wb") as log:
        child = start_train(path, runs, log)
        try:
            run = wait_for_first_epoch(child, runs, log_path)
            data.rename(tmp_path / "moved-away")  # a real fault: the next epoch finds no image
            child.wait(240)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    printed = log_path.read_text()
    assert child.returncode == 1, printed
    assert "moved, deleted or unmounted" in printed and "Traceback" not in printed
    summary = load_run(run).summary
    assert summary["status"] == "failed" and len(read_metrics(run)) < 30


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])  # Ctrl-C; timeout, Slurm, Kubernetes
def test_ctrl_c_stops_the_run_keeps_its_work_and_exits_130(image_tree, tmp_path, signum):
    path = write_config(tmp_path, image_tree, **{"training.epochs": 200})
    runs, log_path = tmp_path / "runs", tmp_path / "child.log"
    with open(log_path, "wb") as log:
        child = start_train(path, runs, log)
        try:
            run = wait_for_first_epoch(child, runs, log_path)
            child.send_signal(signum)
            child.wait(120)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    printed = log_path.read_text()
    assert child.returncode == 130, printed
    assert "Stopping after this batch" in printed and "Run stopped (stopped)" in printed
    assert "Traceback" not in printed and "KeyboardInterrupt" not in printed
    record = load_run(run)
    done = record.summary["epochs_done"]
    assert record.summary["status"] == "stopped" and 1 <= done < 200
    assert [m["epoch"] for m in record.metrics] == list(range(1, done + 1))
    assert record.has_model and checkpoint.read_state(run / "checkpoint.keras")["epochs_done"] == done
    model = saving.load_model(run / "model.keras")  # the work kept is a model that loads and predicts
    assert model.predict(np.zeros((1, 32, 32, 3), "float32"), verbose=0).shape == (1, 3)
