"""Helpers shared by the GUI tests: a generated image folder and a tiny, fast config."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PIL import Image

from workbench.core.base.events import BatchEnd, EpochEnd, Message, RunFinished, RunStarted
from workbench.core.config.run import RunConfig


def write_image_folder(root: Path, classes: tuple[str, ...] = ("circle", "square"), per_class: int = 12,
                       size: int = 32) -> Path:
    """A small folder-per-class dataset of coloured images that differ by class."""
    rng = np.random.default_rng(0)
    for index, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 60, size=(size, size, 3), dtype=np.uint8)
            pixels[..., index % 3] += 150
            Image.fromarray(pixels).save(folder / f"{i:03d}.png")
    return root


def tiny_config(folder: Path, epochs: int = 3) -> RunConfig:
    """MobileNetV2 x0.35 at 32 px from random weights: seconds per run on a laptop CPU."""
    config = RunConfig(name="ui-test")
    config.data.folder = str(folder)
    config.data.image_size = 32
    config.backbone.name = "MobileNetV2"
    config.backbone.width = 0.35
    config.backbone.weights = "none"
    config.freeze.policy = "all"
    config.training.epochs = epochs
    config.training.batch_size = 8
    return config


def fake_run(epochs=3, steps=400, delay=0.0005):
    """A stand-in for core.training.run that emits many batches quickly and obeys stop."""

    def run(config, emit, stop_event, *, pause_event=None, runs_dir=None):
        emit(RunStarted("r", "/tmp/r", epochs, steps, ("a", "b"), 10, 2, 10, 2, 100, 50))
        done = 0
        for epoch in range(epochs):
            for batch in range(steps):
                if stop_event.is_set():
                    result = RunFinished("/tmp/r", True, done, reason="stopped")
                    emit(result)
                    return result
                if pause_event is not None and pause_event.is_set():
                    emit(Message("info", "Paused"))  # as the core's callback says once it waits
                while pause_event is not None and pause_event.is_set() and not stop_event.is_set():
                    time.sleep(0.01)
                emit(BatchEnd(epoch, batch, steps, {"loss": 1.0 / (batch + 1), "accuracy": 0.5}))
                time.sleep(delay)
            emit(EpochEnd(epoch, {"loss": 0.5, "accuracy": 0.6, "val_loss": 0.6, "val_accuracy": 0.5}, 0.1))
            done += 1
        emit(Message("info", "done"))
        result = RunFinished("/tmp/r", False, done)
        emit(result)
        return result

    return run
