"""Learning-rate schedules in real runs: cosine decay with warm-up across two-phase fine-tuning and a resume.

The rate each epoch ends at is in metrics.csv (the optimizer's own, read at the epoch's end), so
the schedule's shape can be checked against its definition: warm-up to the phase's rate by the
end of the warm-up, down to 0 by the phase's last step, and phase 2 on its own, smaller rate.
A run stopped in phase 2 and resumed must carry on from the optimizer's step in the checkpoint:
if the schedule restarted, the last epoch would end at the phase's full rate instead of 0.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from core_helpers import tiny_config

from workbench.core.base.events import EpochEnd, Message, RunFinished
from workbench.core.engine.schedules import cosine_rate, rate_at
from workbench.core.runs.store import read_metrics
from workbench.core.train import run as training

BUNDLED = Path(__file__).resolve().parents[2] / "resources" / "backbones" / "mobilenetv2-0.35-64px-fashion6.weights.h5"


def test_the_cosine_rate_follows_its_definition_in_each_phase():
    assert [cosine_rate(1.0, p, 4, 2) for p in (0, 1, 2, 3, 4)] == pytest.approx([0, 0.5, 1, 0.5, 0])
    assert cosine_rate(1.0, 9, 4, 0) == 0.0 and cosine_rate(1.0, 0, 4, 0) == 1.0
    config = tiny_config("x", epochs=6, **{"training.two_phase": True, "training.phase1_epochs": 2,
                                           "training.learning_rate": 0.01, "training.finetune_lr_factor": 0.1,
                                           "training.lr_schedule": "cosine", "training.warmup_epochs": 1})
    t = config.training
    assert rate_at(t, 0, 0.5) == pytest.approx(0.005) and rate_at(t, 1, 1.0) == pytest.approx(0.0)
    # Phase 2 starts its own warm-up at a tenth of the rate, then decays over its 4 epochs.
    assert rate_at(t, 2, 0.5) == pytest.approx(0.0005) and rate_at(t, 2, 1.0) == pytest.approx(0.001)
    assert rate_at(t, 4, 0.5) == pytest.approx(0.0005) and rate_at(t, 5, 1.0) == pytest.approx(0.0)


def test_cosine_warms_up_and_decays_in_each_phase_and_continues_after_a_resume(image_tree, tmp_path):
    config = tiny_config(image_tree, epochs=4, **{
        # Phase 1 trains the head on cached features of the bundled backbone (fast); phase 2 fine-tunes.
        "backbone.weights": "file", "backbone.weights_file": str(BUNDLED), "freeze.policy": "top_blocks", "freeze.blocks": 1, "training.two_phase": True,
        "training.phase1_epochs": 2, "training.finetune_lr_factor": 0.1, "training.learning_rate": 1e-3,
        "training.lr_schedule": "cosine", "training.warmup_epochs": 1})
    stop = threading.Event()

    def emit(event):
        if isinstance(event, EpochEnd) and event.epoch == 2:  # the first epoch of phase 2
            stop.set()

    events = []
    stopped = training.run(config, lambda e: (events.append(e), emit(e)), stop, runs_dir=tmp_path / "runs")
    assert isinstance(stopped, RunFinished) and stopped.stopped and stopped.epochs_done == 3, stopped
    assert any(isinstance(e, Message) and e.text.startswith("Computed backbone features") for e in events)
    resumed = training.resume(stopped.run_dir, lambda event: None)
    assert isinstance(resumed, RunFinished) and not resumed.stopped and resumed.epochs_done == 4, resumed

    rates = [row["learning_rate"] for row in read_metrics(Path(stopped.run_dir))]
    assert len(rates) == 4, rates
    # Phase 1: the warm-up ends at the rate with the first epoch; the cosine reaches 0 with the second.
    assert rates[0] == pytest.approx(1e-3, rel=1e-3) and rates[1] == pytest.approx(0.0, abs=1e-9)
    # Phase 2 (a fresh optimizer at a tenth): the same shape; after the resume it still ends at 0.
    assert rates[2] == pytest.approx(1e-4, rel=1e-3) and rates[3] == pytest.approx(0.0, abs=1e-9), rates
