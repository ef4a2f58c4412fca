"""Feature caching: head-only epochs on cached backbone features vs a plain frozen fit.

Both are `training.run` on the same config (backbone frozen, no augmentation); the
plain one has the cache switched off (WORKBENCH_FEATURE_CACHE=off), so the only
difference is whether each epoch runs the backbone. Epoch time is measured from
one epoch's end to the next (the first cached epoch, which computes the features,
is left out, as is the plain run's first, which traces). The accuracies should agree
within noise: the head sees the same features either way.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.bench_training import make_images
from workbench.core.base.events import EpochEnd
from workbench.core.config.run import RunConfig


def bench_config(folder: Path, weights_file: Path, epochs: int, size: int) -> RunConfig:
    c = RunConfig(name="bench-cache")
    c.data.folder = str(folder)
    c.data.image_size = size
    c.data.validation_split = 0.2
    c.backbone.name = "VGG16"  # random VGG16 features are informative even at small sizes
    c.backbone.weights = "file"
    c.backbone.weights_file = str(weights_file)
    c.freeze.policy = "all"
    c.training.epochs = epochs
    c.training.batch_size = 32
    return c


def timed_run(config: RunConfig, runs_dir: Path, cache: bool) -> tuple[list[float], float]:
    from workbench.core.train import run as training

    times: list[float] = []
    last: dict[str, float] = {}

    def emit(event):
        if isinstance(event, EpochEnd):
            times.append(time.perf_counter())
            last.update(event.logs)

    os.environ["WORKBENCH_FEATURE_CACHE"] = "on" if cache else "off"
    try:
        result = training.run(config, emit, threading.Event(), runs_dir=runs_dir)
    finally:
        os.environ.pop("WORKBENCH_FEATURE_CACHE", None)
    assert not hasattr(result, "error"), result
    return [b - a for a, b in zip(times, times[1:], strict=False)], last.get("val_accuracy", float("nan"))


def run(epochs: int = 5, size: int = 64) -> dict:
    import keras

    from workbench.core.engine import backbones, weights

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["WORKBENCH_CACHE_DIR"] = str(Path(tmp) / "cache")
        folder = make_images(Path(tmp) / "data", classes=4, per_class=80, size=size)
        keras.utils.set_random_seed(0)
        weights_file = weights.save_backbone_weights(backbones.build_backbone("VGG16", size),
                                                     Path(tmp) / "vgg16.weights.h5")
        config = bench_config(folder, weights_file, epochs, size)
        plain, plain_acc = timed_run(config, Path(tmp) / "runs", cache=False)
        cached, cached_acc = timed_run(config, Path(tmp) / "runs", cache=True)
        again, again_acc = timed_run(config, Path(tmp) / "runs", cache=True)  # reuses the cache
        os.environ.pop("WORKBENCH_CACHE_DIR", None)
    p, c = statistics.median(plain), statistics.median(cached + again)
    images = 256
    return {
        "name": "Feature caching: head-only epochs on cached features vs a plain frozen fit",
        "setup": f"VGG16 (fixed random weights from a file, {size} px, backbone frozen, no augmentation), "
                 f"{images} training + 64 validation images, batch 32, {epochs} epochs per run; epoch end to "
                 f"epoch end after the first; one plain run, one that builds the cache, one that reuses it",
        "rows": [
            ("plain frozen fit, s/epoch (median)", f"{p:.3f}", f"{images / p:.0f} img/s"),
            ("on cached features, s/epoch (median)", f"{c:.4f}", f"{images / c:.0f} img/s"),
            ("speed-up (plain / cached)", f"{p / c:.1f}x", "target >= 10x"),
            ("final val accuracy: plain / cached / cache reused",
             f"{plain_acc:.3f} / {cached_acc:.3f} / {again_acc:.3f}", "same within noise"),
        ],
    }


if __name__ == "__main__":
    for row in run()["rows"]:
        print(*row, sep="  |  ")
