"""The multi-GPU path without GPUs: core/train/run.py under MirroredStrategy over two logical CPU devices.

Logical devices must be configured before TensorFlow initialises, so every mode runs in one
fresh subprocess (to save start-up time), each from the bundled pretrained backbone and as
short as it can be and still show what it checks: the whole backbone frozen (cached features),
two-phase (a frozen phase, then fine-tuning), fine-tuning every layer stopped and resumed, and
a dropout sweep trial. The child turns oneDNN off: its CPU Conv2D mishandles the
empty batches a strategy gives a replica at a dataset's end (engine/distributed.py); GPUs do
not use it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUNDLED = REPO / "resources" / "backbones" / "mobilenetv2-0.35-64px-fashion6.weights.h5"

CHILD = r"""
import json, sys, threading, time
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, sys.argv[1])
from core_helpers import tiny_config
from workbench.core.base.events import EpochEnd, Message, RunFinished
from workbench.core.config.sweep import SweepConfig
from workbench.core.engine import devices
from workbench.core.train import run as training
from workbench.core.train import sweep as sweeps

# The real devices.make_strategy (it keeps one strategy for the whole process), over both CPU devices.
real_mirrored = tf.distribute.MirroredStrategy
tf.distribute.MirroredStrategy = lambda *args, **kwargs: real_mirrored(["/cpu:0", "/cpu:1"])
devices.choose_strategy = lambda gpu_count, environ=None: devices.MIRRORED
folder, runs, weights = sys.argv[2], sys.argv[3], sys.argv[4]
report = {}

def one(name, config, stop_after=None, **kw):
    events, stop, started = [], threading.Event(), time.process_time()
    def emit(e):
        events.append(e)
        if stop_after is not None and isinstance(e, EpochEnd) and e.epoch + 1 >= stop_after:
            stop.set()
    result = training.run(config, emit, stop, runs_dir=runs, **kw) if config else training.resume(kw.pop("run_dir"), emit, stop)
    texts = [e.text for e in events if isinstance(e, Message)]
    report[name] = {"finished": isinstance(result, RunFinished), "stopped": getattr(result, "stopped", None),
                    "epochs": [e.epoch for e in events if isinstance(e, EpochEnd)],
                    "replicas": any("Training on 2 replicas with MirroredStrategy" in t for t in texts),
                    "cached": any(t.startswith("Computed backbone features") for t in texts),
                    "phase2": any(t.startswith("Phase 2") for t in texts),
                    "class_weights": any(t.startswith("Class weights:") for t in texts),
                    "error": getattr(result, "error", ""), "run_dir": result.run_dir,
                    "seconds": round(time.process_time() - started, 1)}

# Pretrained weights: a backbone from random weights recalibrates its BatchNorm statistics at each validation,
# which costs several times a tiny run's training under the strategy (that path runs in test_cluster.py).
pretrained = {"backbone.weights": "file", "backbone.weights_file": weights}
# Class weights and the schedules under the strategy too: on cached features and in a full fit.
one("frozen", tiny_config(folder, epochs=2, **pretrained, **{"freeze.policy": "all", "training.class_weights": "balanced",
                                                             "training.lr_schedule": "plateau"}))
one("two_phase", tiny_config(folder, epochs=2, **pretrained, **{"training.two_phase": True,
                                                                  "training.phase1_epochs": 1,
                                                                  "training.lr_schedule": "cosine",
                                                                  "training.class_weights": "manual",
                                                                  "training.manual_class_weights": {"red": 2.0}}))
one("stopped", tiny_config(folder, epochs=2, **pretrained), stop_after=1)  # fine-tuning every layer
one("resumed", None, run_dir=report["stopped"]["run_dir"])
started = time.process_time()
trial = tiny_config(folder, epochs=1, **pretrained, **{"freeze.policy": "all"})  # the head's dropout, on cached features
result = sweeps.run_sweep(SweepConfig(trial, [0.3], [], 1), lambda e: None,
                          threading.Event(), runs)
report["sweep"] = {"trials": len(result.trials), "best": result.best() is not None,
                   "seconds": round(time.process_time() - started, 1)}
print("REPORT " + json.dumps(report))
"""


@pytest.mark.slow  # one subprocess, five short runs on two replicas
def test_every_training_mode_runs_under_mirrored_strategy_on_two_cpu_devices(make_image_tree, tmp_path):
    folder = make_image_tree(per_class=8)  # 18 training images: 3 steps of 8 (4 per replica), the last one short
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="0", WORKBENCH_CACHE_DIR=str(tmp_path / "cache"))
    try:
        done = subprocess.run([sys.executable, "-c", CHILD, str(Path(__file__).parent), str(folder),
                               str(tmp_path / "runs"), str(BUNDLED)],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"timed out:\n{exc.stdout}\n{exc.stderr}") from None
    lines = [line for line in done.stdout.splitlines() if line.startswith("REPORT ")]
    assert done.returncode == 0 and lines, done.stdout[-3000:] + done.stderr[-5000:]
    report = json.loads(lines[-1][len("REPORT "):])
    print({name: value["seconds"] for name, value in report.items()})  # CPU seconds of each mode (pytest -s)
    for name in ("frozen", "two_phase", "resumed"):
        assert report[name]["finished"] and not report[name]["stopped"], (name, report[name]["error"], report)
        assert report[name]["replicas"], (name, report[name])
    assert report["frozen"]["cached"] and report["frozen"]["epochs"] == [0, 1]
    assert report["frozen"]["class_weights"] and report["two_phase"]["class_weights"]
    assert report["two_phase"]["phase2"] and report["two_phase"]["epochs"] == [0, 1]
    assert report["stopped"]["stopped"] and report["stopped"]["epochs"] == [0]
    assert report["stopped"]["replicas"]
    assert report["resumed"]["epochs"] == [1] and report["resumed"]["run_dir"] == report["stopped"]["run_dir"]
    assert report["sweep"]["trials"] == 1 and report["sweep"]["best"]
