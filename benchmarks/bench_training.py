"""Throughput of `training.run` against a plain `model.fit` of the same model and data.

Both use the same tf.data pipelines and the same model builder; the only
difference is Workbench's callbacks (events, stop/pause, divergence guard,
metrics and model files). They alternate in one process so machine noise hits
both alike; the figure is a ratio of medians. A third column runs `training.run`
as the app does, in a child process at a lower priority, its events crossing a pipe.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from workbench.core.base.events import EpochEnd
from workbench.core.config import derived
from workbench.core.config.run import RunConfig


def make_images(root: Path, classes: int, per_class: int, size: int) -> Path:
    rng = np.random.default_rng(0)
    for c in range(classes):
        d = root / f"class{c}"
        d.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            base = np.zeros((size, size, 3), np.uint8)
            base[..., c % 3] = 160
            noise = rng.integers(0, 90, (size, size, 3), dtype=np.uint8)
            Image.fromarray(base + noise).save(d / f"{i}.png")
    return root


def bench_config(folder: Path, epochs: int) -> RunConfig:
    c = RunConfig(name="bench")
    c.data.folder = str(folder)
    c.data.image_size = 96
    c.data.validation_split = 0.2
    c.backbone.name = "MobileNetV2"
    c.backbone.width = 0.35
    c.backbone.weights = "none"
    c.freeze.policy = "none"
    c.training.epochs = epochs
    c.training.batch_size = 32
    return c


def steady_epochs(ends: list[float]) -> list[float]:  # also used on CPU-time marks
    """Seconds of each epoch from the third on, measured from one epoch's end to the next.

    The first epoch traces the model; the second carries Workbench's first checkpoint,
    written as the first epoch ends (so that a crash can resume) and timed from there.
    Throughput is the steady state; a run's one-time costs are not part of it.
    """
    return [b - a for a, b in zip(ends[1:], ends[2:], strict=False)]


def plain_fit_epochs(config: RunConfig) -> list[float]:
    import keras

    from workbench.core.config import backbone_catalogue
    from workbench.core.data import pipeline
    from workbench.core.engine import model as model_lib

    keras.backend.clear_session()
    keras.utils.set_random_seed(config.training.seed)
    data = pipeline.prepare_data(config.data, config.training.batch_size, config.training.seed)
    m = model_lib.build_model(config, len(data.class_names))
    model_lib.apply_freeze(m, config.freeze, backbone_catalogue.get_backbone(config.backbone.name),
                       pretrained=derived.is_pretrained(config.backbone))
    m.compile(optimizer=keras.optimizers.Adam(config.training.learning_rate),
              loss="categorical_crossentropy", metrics=["accuracy"])
    times: list[float] = []
    cpu: list[float] = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter())
            cpu.append(time.process_time())

    history = m.fit(data.train, validation_data=data.val, epochs=config.training.epochs, callbacks=[Timer()],
                    verbose=0)
    return Epochs(steady_epochs(times), steady_epochs(cpu), history.history["val_accuracy"][-1])


@dataclass
class Epochs:
    """One run's steady epochs: wall seconds, this process's CPU seconds (none for a child), last val accuracy."""

    wall: list[float]
    cpu: list[float]
    val_accuracy: float


def workbench_epochs(config: RunConfig, runs_dir: Path, in_child: bool = False) -> Epochs:
    """Epoch times of `training.run`: in this process, or as the app runs it, in a child process
    at a lower priority (core/child_process.py; its events cross a pipe to this one)."""
    from workbench.core.process.child_process import ChildCall
    from workbench.core.train import run as training

    run = ChildCall("workbench.core.train.run:run") if in_child else training.run
    times: list[float] = []
    cpu: list[float] = []
    accuracy: list[float] = []

    def emit(event):
        if isinstance(event, EpochEnd):
            times.append(time.perf_counter())
            cpu.append(time.process_time())
            accuracy.append(event.logs.get("val_accuracy", float("nan")))

    result = run(config, emit, threading.Event(), runs_dir=runs_dir)
    assert not hasattr(result, "error"), result
    return Epochs(steady_epochs(times), [] if in_child else steady_epochs(cpu), accuracy[-1])


def measure(per_class: int, rounds: int, epochs: int, pretrained: bool = False
            ) -> tuple[list[float], list[float], list[float]]:
    """Seconds of each timed epoch (plain, Workbench here, Workbench in a child), alternating."""
    plain, ours, child = measure_runs(per_class, rounds, epochs, pretrained)
    return [t for e in plain for t in e.wall], [t for e in ours for t in e.wall], [t for e in child for t in e.wall]


def measure_runs(per_class: int, rounds: int, epochs: int, pretrained: bool = False
                 ) -> tuple[list[Epochs], list[Epochs], list[Epochs]]:
    """The runs (plain, Workbench here, Workbench in a child), alternating.

    `pretrained`: the backbone's weights come from a file, so its BatchNorm layers stay in
    inference mode while every other layer fine-tunes (no recalibration to do).
    """
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_images(Path(tmp) / "data", classes=4, per_class=per_class, size=96)
        config = bench_config(folder, epochs)
        if pretrained:
            from workbench.core.engine import backbones
            from workbench.core.engine.weights import save_backbone_weights

            config.backbone.weights = "file"
            config.backbone.weights_file = str(save_backbone_weights(
                backbones.build_backbone("MobileNetV2", 96, 0.35), Path(tmp) / "backbone.weights.h5"))
        plain, ours, child = [], [], []
        for _ in range(rounds):
            # Time from one epoch's end to the next: everything either side does per epoch
            # (validation, Workbench's checkpoint and BatchNorm recalibration) counts.
            plain.append(plain_fit_epochs(config))
            ours.append(workbench_epochs(config, Path(tmp) / "runs"))
            child.append(workbench_epochs(config, Path(tmp) / "runs", in_child=True))
    return plain, ours, child


def lower_quartile(values: list[float]) -> float:
    return statistics.quantiles(values, n=4)[0]


def run(rounds: int = 3, epochs: int = 6) -> dict:
    rows = []
    for per_class in (100, 400):
        images = int(per_class * 4 * 0.8)
        runs = measure_runs(per_class, rounds, epochs)
        plain, ours, child = ([t for e in r for t in e.wall] for r in runs)
        p, o, c = statistics.median(plain), statistics.median(ours), statistics.median(child)
        pq, oq, cq = lower_quartile(plain), lower_quartile(ours), lower_quartile(child)
        pc = statistics.median(t for e in runs[0] for t in e.cpu)
        oc = statistics.median(t for e in runs[1] for t in e.cpu)
        accuracy = [", ".join(f"{e.val_accuracy:.2f}" for e in r) for r in runs]
        rows += [
            (f"{images} training images: plain model.fit, s/epoch", f"{p:.3f}",
             f"{images / p:.0f} img/s; fastest quarter {pq:.3f} s; CPU {pc:.3f} s/epoch"),
            (f"{images} training images: Workbench training.run, s/epoch", f"{o:.3f}",
             f"{images / o:.0f} img/s; fastest quarter {oq:.3f} s; CPU {oc:.3f} s/epoch"),
            (f"{images} training images: throughput ratio (Workbench / plain), medians", f"{p / o:.3f}",
             f"target >= 0.95; CPU time per epoch, plain / Workbench: {pc / oc:.3f}"),
            (f"{images} training images: throughput ratio, fastest quarters", f"{pq / oq:.3f}",
             f"{len(plain)} + {len(ours)} epochs"),
            (f"{images} training images: as the app runs it (child process, nice 5), s/epoch", f"{c:.3f}",
             f"{images / c:.0f} img/s; fastest quarter {cq:.3f} s"),
            (f"{images} training images: throughput ratio (app's child process / plain), medians", f"{p / c:.3f}",
             f"fastest quarters {pq / cq:.3f}; target >= 0.95"),
            (f"{images} training images: validation accuracy after {epochs} epochs, plain / Workbench / child",
             f"{statistics.median(e.val_accuracy for e in runs[0]):.2f} / "
             f"{statistics.median(e.val_accuracy for e in runs[1]):.2f} / "
             f"{statistics.median(e.val_accuracy for e in runs[2]):.2f}",
             f"each run: {'; '.join(accuracy)}. Chance is 0.25: without recalibration (plain fit) the moving "
             "BatchNorm statistics lag the weights"),
        ]
    return {
        "name": "Training throughput: training.run (here and in the app's child process) vs plain model.fit",
        "setup": "MobileNetV2 (width 0.35, 96 px, re-initialised, all layers trainable: the case with the most "
                 "per-epoch work, since BatchNorm statistics are recalibrated before each validation, on a "
                 "sixteenth of the training images, 32 to 128), 4 classes, 20 % validation, "
                 f"batch 32, {rounds} alternating rounds x {epochs - 2} timed epochs (epoch end to epoch end, from the "
                 "second epoch's end: the first epoch traces the model and the first checkpoint follows it). "
                 "Workbench's extra cost is per epoch (checkpoint within 2 % of the time, BatchNorm recalibration, "
                 "metrics files). Epoch times on this shared 2-core machine are bimodal "
                 "(whichever other program runs), so the ratio of the fastest quarters and of this process's CPU "
                 "time per epoch are given beside the ratio of medians. The app's child runs at nice 5 (it yields to "
                 "the window), so on this machine it also yields to the other sessions' processes.",
        "rows": rows,
    }
