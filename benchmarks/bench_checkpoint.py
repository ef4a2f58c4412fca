"""What the per-epoch checkpoint (checkpoint.keras: model + optimizer + state) costs.

A realistic transfer-learning epoch (MobileNetV2 at 160 px, backbone frozen, 960
training + 240 validation images, batch 32) with Workbench's normal files against the
same run with no model files at all. Runs alternate in one process; the figure is a
ratio of medians of epoch-end-to-epoch-end times (so the save after an epoch counts).
Also: the time of one checkpoint save, with and without the fix for Keras's attribute
cache (see workbench.core.engine.checkpoint._cache_keras_saving_skipsets).

    .venv/bin/python -m benchmarks.run checkpoint
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from workbench.core.base.events import EpochEnd
from workbench.core.config.run import RunConfig

TRAIN, VAL, SIZE = 960, 240, 160


def make_images(root: Path, classes: int = 3, per_class: int = (TRAIN + VAL) // 3, size: int = SIZE) -> Path:
    rng = np.random.default_rng(0)
    for c in range(classes):
        d = root / f"class{c}"
        d.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            base = np.zeros((size, size, 3), np.uint8)
            base[..., c % 3] = 150
            noise = rng.integers(0, 100, (size, size, 3), dtype=np.uint8)
            Image.fromarray(base + noise).save(d / f"{i}.jpg", quality=90)
    return root


def bench_config(folder: Path, epochs: int) -> RunConfig:
    c = RunConfig(name="bench-checkpoint")
    c.data.folder = str(folder)
    c.data.image_size = SIZE
    c.data.validation_split = VAL / (TRAIN + VAL)
    c.backbone.name = "MobileNetV2"
    c.backbone.width = 1.0
    c.backbone.weights = "none"  # the same computation as ImageNet weights, offline
    c.freeze.policy = "all"
    c.training.epochs = epochs
    c.training.batch_size = 32
    return c


def timed_run(config: RunConfig, runs_dir: Path, save_files: bool):
    """(epoch seconds, between-epoch seconds, checkpoint seconds, checkpoints written) of one run."""
    from workbench.core.engine import callbacks
    from workbench.core.train import run as training

    real = training.ModelSaver
    savers = []
    base = real
    if not save_files:
        class NoFiles(real):
            def on_epoch_end(self, epoch, logs=None):
                pass

            def finish(self, model):
                pass

        base = NoFiles

    class Recorded(base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            savers.append(self)

    training.ModelSaver = Recorded
    budget, callbacks.CHECKPOINT_BUDGET = callbacks.CHECKPOINT_BUDGET, float("inf")  # every epoch, no skipping
    ends: list[tuple[float, float]] = []  # (when EpochEnd arrived, the epoch's own seconds)

    def emit(event):
        if isinstance(event, EpochEnd):
            ends.append((time.perf_counter(), event.seconds))

    try:
        result = training.run(config, emit, threading.Event(), runs_dir=runs_dir)
    finally:
        training.ModelSaver = real
        callbacks.CHECKPOINT_BUDGET = budget
    assert not hasattr(result, "error"), result
    saver = savers[0]
    # Between two EpochEnd events: what follows an epoch (its checkpoint) and the next epoch itself.
    # The next epoch's own time is known, so the rest is the between-epoch cost, robust to noise.
    epochs = [seconds for _, seconds in ends[1:]]
    gaps = [(b - a) - seconds for (a, _), (b, seconds) in zip(ends, ends[1:], strict=False)]
    return epochs, gaps, saver.checkpoint_seconds, saver.checkpoints


def save_times(config: RunConfig, runs_dir: Path, repeats: int = 6) -> tuple[float, float, int]:
    """Median seconds of one checkpoint save without and with the attribute-cache fix; file size."""
    import keras

    from workbench.core.config import backbone_catalogue
    from workbench.core.engine import checkpoint
    from workbench.core.engine import model as model_lib
    from workbench.core.train.run import make_optimizer

    keras.backend.clear_session()
    m = model_lib.build_model(config, 3)
    model_lib.apply_freeze(m, config.freeze, backbone_catalogue.get_backbone("MobileNetV2"), pretrained=False)
    m.compile(optimizer=make_optimizer(config), loss="categorical_crossentropy", metrics=["accuracy"])
    m.fit(np.zeros((4, SIZE, SIZE, 3), "float32"), np.eye(3)[[0, 1, 2, 0]], epochs=1, verbose=0)
    path = runs_dir / "bench.keras"
    plain, cached = [], []
    real = checkpoint._cache_keras_saving_skipsets
    for _ in range(repeats):
        from keras.src.backend.common import global_state

        for kind in ("Operation", "Layer", "Functional", "Sequential", "Metric", "Optimizer", "Loss"):
            global_state.set_global_attribute(f"saving_attr_skiplist_{kind}", None)
        checkpoint._cache_keras_saving_skipsets = lambda: None
        plain.append(checkpoint.save(m, path, {"epochs_done": 1}))
        checkpoint._cache_keras_saving_skipsets = real
        checkpoint.save(m, path, {"epochs_done": 1})  # fills the cache
        cached.append(checkpoint.save(m, path, {"epochs_done": 1}))
    return statistics.median(plain), statistics.median(cached), path.stat().st_size


def run(rounds: int = 2, epochs: int = 4) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_images(Path(tmp) / "data")
        config = bench_config(folder, epochs)
        runs = Path(tmp) / "runs"
        epoch_times, gaps_none, gaps_ckpt, ckpt_seconds, ckpts = [], [], [], 0.0, 0
        for _ in range(rounds):
            e, g, _, _ = timed_run(config, runs, save_files=False)
            epoch_times += e
            gaps_none += g
            e, g, seconds, count = timed_run(config, runs, save_files=True)
            epoch_times += e
            gaps_ckpt += g
            ckpt_seconds += seconds
            ckpts += count
        save_plain, save_cached, size = save_times(config, runs)
    epoch = statistics.median(epoch_times)
    cost = statistics.median(gaps_ckpt) - statistics.median(gaps_none)
    return {
        "name": "Checkpoint every epoch: cost",
        "setup": f"MobileNetV2 (width 1.0, {SIZE} px, backbone frozen), {TRAIN} training + {VAL} validation "
                 f"JPEGs, batch 32, {rounds} alternating rounds x {epochs - 1} timed epochs, with and without "
                 "model files. Cost = the time between epochs with checkpoints minus without (medians), so "
                 "noise in the epochs themselves cancels out.",
        "rows": [
            ("one epoch (training + validation), s (median)", f"{epoch:.2f}", f"{TRAIN / epoch:.0f} img/s"),
            ("between epochs without / with a checkpoint, s (median)",
             f"{statistics.median(gaps_none):.3f} / {statistics.median(gaps_ckpt):.3f}", ""),
            ("checkpoint cost per epoch, s", f"{cost:.3f}",
             f"{cost / epoch:.1%} of an epoch (throughput x{epoch / (epoch + cost):.3f})"),
            ("one checkpoint save inside the runs, s (mean)", f"{ckpt_seconds / max(ckpts, 1):.3f}",
             f"{size / 1e6:.1f} MB file"),
            ("one save without / with the Keras attribute-cache fix, s (median)",
             f"{save_plain:.3f} / {save_cached:.3f}", f"{save_cached / save_plain:.2f}x the time"),
        ],
    }


if __name__ == "__main__":  # pragma: no cover
    print(run())
