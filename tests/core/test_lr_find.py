"""The learning-rate range test: the suggestion rule on known curves, and real tests on a tiny model."""

from __future__ import annotations

import csv
import threading
from pathlib import Path

import numpy as np
import pytest
from core_helpers import tiny_config

from workbench import cli
from workbench.core.base.events import BatchEnd, RunFailed
from workbench.core.config.run import save_config
from workbench.core.train.lr_find import MIN_OVER_10, STEEPEST, find_lr, rates, smooth, suggest

BUNDLED = Path(__file__).resolve().parents[2] / "resources" / "backbones" / "mobilenetv2-0.35-64px-fashion6.weights.h5"


def test_the_suggestion_is_the_steepest_fall_before_the_lowest_loss():
    lrs = rates(1e-6, 1.0, 61)  # ten steps per decade
    x = np.log10(lrs)
    # A plateau, a fall whose steepest point is at 1e-3, a minimum at 1e-1, then an explosion.
    loss = 2.0 - 1.5 / (1 + np.exp(-(x + 3) * 3)) + np.where(x > -1, (x + 1) ** 2 * 20, 0)
    rate, rule, steepest, min_over_10 = suggest(list(lrs), list(loss))
    assert rule == STEEPEST and rate == steepest and 7e-4 < rate < 1.5e-3
    assert min_over_10 == pytest.approx(lrs[int(np.argmin(loss))] / 10)
    # A curve that only rises has no downhill stretch: a tenth of the lowest point's rate.
    rising = list(np.linspace(1.0, 3.0, 20))
    assert suggest(list(lrs[:20]), rising)[:2] == (pytest.approx(lrs[2] / 10), MIN_OVER_10)
    assert suggest([1e-3, 1e-2], [1.0, 0.5])[0] == 0.0  # too short for any suggestion
    assert smooth([2.0, 2.0, 2.0]) == pytest.approx([2.0, 2.0, 2.0])  # bias-corrected: no pull towards 0
    assert rates(1e-7, 10.0, 9)[[0, 4, 8]] == pytest.approx([1e-7, 1e-3, 10.0])


def _config(folder):
    return tiny_config(folder, **{"backbone.weights": "file", "backbone.weights_file": str(BUNDLED),
                                  "freeze.policy": "all", "training.batch_size": 4})


def test_cli_lr_find_prints_a_suggestion_and_writes_the_curve(image_tree, tmp_path, capsys):
    config_path = tmp_path / "config.json"
    config = _config(image_tree)
    save_config(config, config_path)
    before = config_path.read_text()
    out_csv = tmp_path / "curve.csv"
    code = cli.main(["lr-find", str(config_path), "--steps", "40", "--plot-csv", str(out_csv)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Suggested learning rate:" in out and '"learning_rate":' in out
    with out_csv.open() as f:
        rows = list(csv.DictReader(f))
    assert 3 <= len(rows) <= 40 and list(rows[0]) == ["step", "learning_rate", "loss", "smoothed_loss"]
    lrs = [float(r["learning_rate"]) for r in rows]
    assert lrs == sorted(lrs) and lrs[0] == pytest.approx(1e-7)
    suggested = float(out.split("Suggested learning rate: ")[1].split()[0])
    assert lrs[0] <= suggested <= lrs[-1]
    assert config_path.read_text() == before  # the config is the user's: the test never writes it

    bad = tmp_path / "bad.json"
    save_config(config.replace(**{"training.batch_size": 0}), bad)
    assert cli.main(["lr-find", str(bad)]) == 2
    assert "batch_size" in capsys.readouterr().err


def test_find_lr_stops_when_asked_and_refuses_a_bad_config(image_tree, tmp_path):
    stop, events = threading.Event(), []

    def emit(event):
        events.append(event)
        if isinstance(event, BatchEnd) and event.batch == 4:
            stop.set()

    config = _config(image_tree)
    result = find_lr(config, emit, stop, steps=100)
    assert not isinstance(result, RunFailed), result
    assert result.ended == "stopped" and len(result.losses) == 5 == len(result.smoothed) == len(result.learning_rates)
    steps = [e for e in events if isinstance(e, BatchEnd)]
    assert [e.batch for e in steps] == [0, 1, 2, 3, 4] and steps[-1].logs["learning_rate"] == result.learning_rates[-1]
    assert config == _config(image_tree)  # a copy of the model trained, not the config changed
    assert [p.name for p in tmp_path.iterdir()] == [image_tree.name]  # nothing written beside the data

    refused = find_lr(config.replace(**{"data.folder": str(tmp_path / "missing")}), lambda e: None)
    assert isinstance(refused, RunFailed) and refused.kind == "invalid" and "folder not found" in refused.details
