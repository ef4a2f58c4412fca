"""Multi-worker training for real: two `workbench train` processes on 127.0.0.1 with TF_CONFIG (docs/cluster.md).

Each test starts real worker processes on free loopback ports, waits with a deadline and
kills any worker still alive at the end with SIGKILL (a hung worker must not hang the suite).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from core_helpers import tiny_config

from workbench.core.config.run import save_config
from workbench.core.runs.store import load_run, read_metrics

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow  # each test trains with two TensorFlow processes: 30-90 s


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class Cluster:
    """Two workers of one TF_CONFIG cluster on loopback, each with its own --runs-dir and log."""

    def __init__(self, tmp_path: Path, config_path: Path, cache: Path, workers: int = 2):
        ports = free_ports(workers)
        self.tmp_path, self.children, self.logs = tmp_path, [], []
        for index in range(workers):
            env = dict(os.environ, PYTHONUNBUFFERED="1", WORKBENCH_CACHE_DIR=str(cache),
                       WORKBENCH_COLLECTIVE_TIMEOUT="60", WORKBENCH_CLUSTER_START_TIMEOUT="120",
                       TMPDIR=str(self.scratch(index)),
                       TF_CONFIG=json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                                             "task": {"type": "worker", "index": index}}))
            log = open(tmp_path / f"worker{index}.log", "wb")  # noqa: SIM115 - closed in stop()
            self.logs.append(log)
            self.children.append(subprocess.Popen(
                [sys.executable, "-m", "workbench", "train", str(config_path), "--runs-dir", str(self.runs(index))],
                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT))

    def runs(self, index: int) -> Path:
        return self.tmp_path / f"runs{index}"

    def scratch(self, index: int) -> Path:
        path = self.tmp_path / f"tmp{index}"
        path.mkdir(exist_ok=True)
        return path

    def text(self, index: int) -> str:
        return (self.tmp_path / f"worker{index}.log").read_text(errors="replace")

    def wait_for(self, index: int, needle: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.text(index):
                return
            if self.children[index].poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"worker {index} never printed {needle!r}:\n{self.text(index)}")

    def wait(self, index: int, timeout: float) -> int:
        try:
            return self.children[index].wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"worker {index} still running after {timeout} s:\n{self.text(index)}") from None

    def stop(self) -> None:
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGKILL)
                child.wait()
        for log in self.logs:
            log.close()


@pytest.fixture
def cluster_of(tmp_path):
    made = []

    def make(config, workers: int = 2) -> Cluster:
        path = tmp_path / "cfg.json"
        save_config(config, path)
        made.append(Cluster(tmp_path, path, tmp_path / "cache", workers))
        return made[-1]

    yield make
    for cluster in made:
        cluster.stop()


def epoch_lines(text: str) -> list[list[float]]:
    """The numbers of each "Epoch N/M  accuracy ...  val_loss ..." line, without the seconds."""
    rows = []
    for line in text.splitlines():
        if line.startswith("Epoch "):
            words = line.split("(")[0].split()
            rows.append([float(w) for w in words[3::2]])
    return rows


def test_two_workers_train_one_model_and_only_the_chief_keeps_a_run_folder(image_tree, cluster_of, tmp_path):
    started = time.monotonic()
    cluster = cluster_of(tiny_config(image_tree, epochs=2))
    codes = [cluster.wait(i, 240) for i in (0, 1)]
    assert codes == [0, 0], cluster.text(0) + cluster.text(1)
    assert "Training on 2 replicas" in cluster.text(0)
    assert "the chief" in cluster.text(0) and "not the chief" in cluster.text(1)

    (run,) = [p for p in cluster.runs(0).iterdir() if p.is_dir()]
    for name in ("config.json", "metrics.csv", "model.keras", "checkpoint.keras", "summary.json"):
        assert (run / name).is_file(), name
    record = load_run(run)
    assert record.summary["status"] == "finished" and record.summary["epochs_done"] == 2
    assert [m["epoch"] for m in read_metrics(run)] == [1, 2]

    # The workers trained one model: the same losses and accuracies, epoch by epoch.
    first, second = epoch_lines(cluster.text(0)), epoch_lines(cluster.text(1))
    assert len(first) == len(second) == 2
    for a, b in zip(first, second, strict=True):
        assert a == pytest.approx(b, rel=1e-3, abs=1e-4)
    # Worker 1 wrote nothing to its --runs-dir, let alone to the chief's folder, and removed its scratch folder.
    assert not cluster.runs(1).exists() or not any(cluster.runs(1).iterdir())
    assert sorted(p.name for p in run.iterdir()) == sorted(p.name for p in run.iterdir() if p.is_file())
    assert not any(cluster.scratch(1).iterdir())
    assert time.monotonic() - started < 240


def test_a_worker_whose_peer_is_killed_exits_with_a_clear_error(image_tree, cluster_of):
    cluster = cluster_of(tiny_config(image_tree, epochs=200))
    cluster.wait_for(0, "Epoch 2/", 240)
    cluster.children[1].send_signal(signal.SIGKILL)
    killed = time.monotonic()
    code = cluster.wait(0, 120)
    assert code == 1, cluster.text(0)
    assert time.monotonic() - killed < 120
    assert "Another worker of the cluster failed" in cluster.text(0)
    (run,) = [p for p in cluster.runs(0).iterdir() if p.is_dir()]
    summary = load_run(run).summary
    assert summary["status"] == "failed" and (run / "checkpoint.keras").is_file()


@pytest.mark.skip(reason="fails today: the SIGTERM never reaches Workbench's handler in a cluster worker "
                         "(no 'SIGTERM: Stopping' line; training went on until a collective timed out). Suspected: "
                         "TensorFlow's coordination service installs its own SIGTERM (preemption) handler after "
                         "the CLI installed Workbench's. See issue #21 item 3.")
def test_sigterm_to_one_worker_stops_the_whole_cluster_cleanly(image_tree, cluster_of):
    cluster = cluster_of(tiny_config(image_tree, epochs=200))
    cluster.wait_for(0, "Epoch 2/", 240)
    cluster.children[1].send_signal(signal.SIGTERM)  # what Slurm, Kubernetes and `timeout` send
    codes = [cluster.wait(i, 120) for i in (0, 1)]
    assert codes == [130, 130], cluster.text(0) + cluster.text(1)
    assert "SIGTERM: Stopping after this batch" in cluster.text(1)
    (run,) = [p for p in cluster.runs(0).iterdir() if p.is_dir()]
    record = load_run(run)
    assert record.summary["status"] == "stopped" and record.summary["reason"] == "stopped"
    assert record.has_checkpoint and record.has_model


def test_a_worker_alone_gives_up_waiting_for_the_cluster(image_tree, tmp_path, monkeypatch):
    """Worker 0 of a cluster whose other worker never starts: a clear error after the start timeout."""
    monkeypatch.setenv("WORKBENCH_CLUSTER_START_TIMEOUT", "15")
    path = tmp_path / "cfg.json"
    save_config(tiny_config(image_tree, epochs=1), path)
    ports = free_ports(2)
    env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                                                "task": {"type": "worker", "index": 0}}))
    try:
        done = subprocess.run([sys.executable, "-m", "workbench", "train", str(path), "--runs-dir",
                               str(tmp_path / "runs")], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired as exc:  # run() killed the child (SIGKILL) before raising
        raise AssertionError(f"a lone worker did not give up: {exc.stdout}") from None
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Waiting up to 15 s for the other workers" in done.stderr
    (run,) = list((tmp_path / "runs").iterdir())
    summary = load_run(run).summary
    assert summary["status"] == "failed" and "did not start within 15 s" in summary["error"], summary
