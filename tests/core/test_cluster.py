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
BUNDLED = REPO / "resources" / "backbones" / "mobilenetv2-0.35-64px-fashion6.weights.h5"
pytestmark = pytest.mark.slow  # each test starts TensorFlow processes that wait for each other


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
    """Two workers of one TF_CONFIG cluster on loopback, each with its own --runs-dir and log.

    `train_args` follow `workbench train` (a config, or --resume RUN); `launch` numbers the logs of
    successive clusters in one test folder.
    """

    def __init__(self, tmp_path: Path, train_args: list[str], cache: Path, workers: int = 2, launch: int = 0):
        ports = free_ports(workers)
        self.tmp_path, self.train_args, self.cache, self.launch = tmp_path, train_args, cache, launch
        self.children, self.logs = [], []
        for index in range(workers):
            env = dict(os.environ, PYTHONUNBUFFERED="1", WORKBENCH_CACHE_DIR=str(cache),
                       WORKBENCH_COLLECTIVE_TIMEOUT="60", WORKBENCH_CLUSTER_START_TIMEOUT="120",
                       TMPDIR=str(self.scratch(index)),
                       TF_CONFIG=json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                                             "task": {"type": "worker", "index": index}}))
            log = open(self.log(index), "wb")  # noqa: SIM115 - closed in stop()
            self.logs.append(log)
            self.children.append(subprocess.Popen(
                [sys.executable, "-m", "workbench", "train", *train_args, "--runs-dir", str(self.runs(index))],
                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT))

    def restart(self, train_args: list[str]) -> Cluster:
        """A new cluster of as many workers, on new ports, in the same folders (this one must have ended)."""
        return Cluster(self.tmp_path, train_args, self.cache, len(self.children), self.launch + 1)

    def log(self, index: int) -> Path:
        return self.tmp_path / f"worker{index}-{self.launch}.log"

    def runs(self, index: int) -> Path:
        return self.tmp_path / f"runs{index}"

    def scratch(self, index: int) -> Path:
        path = self.tmp_path / f"tmp{index}"
        path.mkdir(exist_ok=True)
        return path

    def text(self, index: int) -> str:
        return self.log(index).read_text(errors="replace")

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


class Clusters:
    """Starts clusters in one test folder and kills, at the end, any worker still alive."""

    def __init__(self, tmp_path: Path):
        self.tmp_path, self.made = tmp_path, []

    def __call__(self, config, workers: int = 2) -> Cluster:
        path = self.tmp_path / "cfg.json"
        save_config(config, path)
        self.made.append(Cluster(self.tmp_path, [str(path)], self.tmp_path / "cache", workers))
        return self.made[-1]

    def restart(self, cluster: Cluster, train_args: list[str]) -> Cluster:
        self.made.append(cluster.restart(train_args))
        return self.made[-1]

    def stop(self) -> None:
        for cluster in self.made:
            cluster.stop()


@pytest.fixture
def cluster_of(tmp_path):
    clusters = Clusters(tmp_path)
    yield clusters
    clusters.stop()


def epoch_lines(text: str) -> list[list[float]]:
    """The numbers of each "Epoch N/M  accuracy ...  val_loss ..." line, without the seconds."""
    rows = []
    for line in text.splitlines():
        if line.startswith("Epoch "):
            words = line.split("(")[0].split()
            rows.append([float(w) for w in words[3::2]])
    return rows


def assert_only_the_chief_kept_a_run_folder(cluster: Cluster) -> Path:
    """The chief's one run folder (files only); worker 1 wrote nothing to its --runs-dir and removed its scratch."""
    (run,) = [p for p in cluster.runs(0).iterdir() if p.is_dir()]
    assert sorted(p.name for p in run.iterdir()) == sorted(p.name for p in run.iterdir() if p.is_file())
    assert not cluster.runs(1).exists() or not any(cluster.runs(1).iterdir())
    assert not any(cluster.scratch(1).iterdir())
    return run


def test_sigterm_stops_both_workers_cleanly_and_both_resume_to_one_finished_model(make_image_tree, cluster_of):
    """SIGTERM to one worker (what Slurm, Kubernetes and `timeout` send): both stop at the same batch, keep the
    checkpoint and exit 130; then `--resume` on both (docs/cluster.md) trains the same model to its end, exit 0."""
    cluster = cluster_of(tiny_config(make_image_tree(per_class=8), epochs=3))
    cluster.wait_for(1, "Epoch 1/3", 240)
    cluster.children[1].send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    codes = [cluster.wait(i, 120) for i in (0, 1)]
    assert codes == [130, 130], cluster.text(0) + cluster.text(1)
    assert time.monotonic() - signalled < 120
    assert "SIGTERM: Stopping after this batch" in cluster.text(1)
    assert "Training on 2 replicas" in cluster.text(0)
    assert "the chief" in cluster.text(0) and "not the chief" in cluster.text(1)
    run = assert_only_the_chief_kept_a_run_folder(cluster)
    record = load_run(run)
    assert record.summary["status"] == "stopped" and record.summary["reason"] == "stopped", record.summary
    assert record.summary["epochs_done"] == 1 and record.has_checkpoint and record.has_model

    resumed = cluster_of.restart(cluster, ["--resume", str(run)])
    codes = [resumed.wait(i, 240) for i in (0, 1)]
    assert codes == [0, 0], resumed.text(0) + resumed.text(1)
    assert "Resuming after epoch 1 of 3" in resumed.text(0) + resumed.text(1)
    assert assert_only_the_chief_kept_a_run_folder(resumed) == run
    record = load_run(run)
    assert record.summary["status"] == "finished" and record.summary["epochs_done"] == 3
    assert [m["epoch"] for m in read_metrics(run)] == [1, 2, 3]
    for name in ("config.json", "metrics.csv", "model.keras", "checkpoint.keras", "summary.json"):
        assert (run / name).is_file(), name
    # The workers trained one model: the same losses and accuracies, epoch by epoch.
    first, second = (epoch_lines(c.text(i)) for c, i in ((cluster, 0), (cluster, 1)))
    first, second = first + epoch_lines(resumed.text(0)), second + epoch_lines(resumed.text(1))
    assert len(first) == len(second) == 3
    for a, b in zip(first, second, strict=True):
        assert a == pytest.approx(b, rel=1e-3, abs=1e-4)


def test_a_worker_whose_peer_is_killed_exits_with_a_clear_error(make_image_tree, cluster_of):
    # The whole pretrained backbone frozen: the head trains on cached features (that path under the strategy too),
    # so the first epoch comes soon.
    frozen = {"backbone.weights": "file", "backbone.weights_file": str(BUNDLED), "freeze.policy": "all"}
    cluster = cluster_of(tiny_config(make_image_tree(per_class=8), epochs=200, **frozen))
    cluster.wait_for(0, "Epoch 1/", 240)
    deadline = time.monotonic() + 60  # the first checkpoint is written (atomically) after the epoch's line
    while not list(cluster.runs(0).glob("*/checkpoint.keras")) and time.monotonic() < deadline:
        time.sleep(0.1)
    cluster.children[1].send_signal(signal.SIGKILL)
    killed = time.monotonic()
    code = cluster.wait(0, 120)
    assert code == 1, cluster.text(0)
    assert time.monotonic() - killed < 120
    assert "Another worker of the cluster failed" in cluster.text(0)
    (run,) = [p for p in cluster.runs(0).iterdir() if p.is_dir()]
    summary = load_run(run).summary
    assert summary["status"] == "failed" and (run / "checkpoint.keras").is_file()
    assert "Computed backbone features" in cluster.text(0)  # info lines are printed when output is not a terminal


def test_a_worker_alone_gives_up_waiting_for_the_cluster(make_image_tree, tmp_path, monkeypatch):
    """Worker 0 of a cluster whose other worker never starts: a clear error after the start timeout."""
    monkeypatch.setenv("WORKBENCH_CLUSTER_START_TIMEOUT", "5")
    path = tmp_path / "cfg.json"
    save_config(tiny_config(make_image_tree(per_class=4), epochs=1), path)
    ports = free_ports(2)
    env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                                                "task": {"type": "worker", "index": 0}}))
    try:
        done = subprocess.run([sys.executable, "-m", "workbench", "train", str(path), "--runs-dir",
                               str(tmp_path / "runs")], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired as exc:  # run() killed the child (SIGKILL) before raising
        raise AssertionError(f"a lone worker did not give up: {exc.stdout}") from None
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Waiting up to 5 s for the other workers" in done.stderr
    (run,) = list((tmp_path / "runs").iterdir())
    summary = load_run(run).summary
    assert summary["status"] == "failed" and "did not start within 5 s" in summary["error"], summary
