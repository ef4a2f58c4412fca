"""`python -m benchmarks.run gpu` on a machine without a GPU: it says so, exits 0 and writes nothing."""

from __future__ import annotations

import pytest

from benchmarks import run as benchmarks_run
from workbench.core.engine import devices


def test_without_a_gpu_the_check_says_so_and_writes_nothing(tmp_path, monkeypatch, capsys):
    if devices.list_gpus():
        pytest.skip("this machine has a GPU: the check would run for minutes (python -m benchmarks.run gpu)")
    monkeypatch.setattr(benchmarks_run, "OUT", tmp_path / "benchmarks.md")
    monkeypatch.setattr(benchmarks_run, "RESULTS", tmp_path / "benchmarks.json")
    assert "gpu" in benchmarks_run.BENCHMARKS
    assert benchmarks_run.main(["gpu"]) == 0
    out = capsys.readouterr().out
    assert "No GPU found" in out and "gpu: nothing to report" in out
    assert not (tmp_path / "benchmarks.md").exists() and not (tmp_path / "benchmarks.json").exists()
