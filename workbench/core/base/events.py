"""Everything that happens during a run, as small frozen values.

Events hold only plain Python data (str, int, float, tuples, dicts of floats)
so they are cheap to queue across threads, pickle, and write to events.jsonl.
"""

from __future__ import annotations

import base64
import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RunStarted:
    run_id: str
    run_dir: str
    epochs: int
    steps_per_epoch: int
    class_names: tuple[str, ...]
    train_images: int
    val_images: int
    layers_total: int
    layers_trainable: int
    params_trainable: int
    params_frozen: int
    initial_epoch: int = 0


@dataclass(frozen=True)
class BatchEnd:
    epoch: int  # 0-based
    batch: int  # 0-based, within the epoch
    steps: int  # batches per epoch
    logs: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class EpochEnd:
    epoch: int  # 0-based
    logs: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass(frozen=True)
class Message:
    level: str  # "info" | "warning" | "error"
    text: str
    kind: str = ""  # "phase": two-phase fine-tuning switches to phase 2 at `epoch` (the plots mark it);
    # "prepare": the step a run is on before its first batch (scan, build, compile, first step), shown as progress
    epoch: int = -1  # 0-based epoch the message refers to, or -1


@dataclass(frozen=True)
class RunFinished:
    run_dir: str
    stopped: bool  # True when a person pressed Stop (or closed the window)
    epochs_done: int
    best: dict[str, float] = field(default_factory=dict)
    reason: str = ""  # why it ended early: "stopped", "early stopping", "diverged: ..."


@dataclass(frozen=True)
class RunFailed:
    error: str  # one line for a dialog title
    details: str = ""  # traceback or longer explanation
    run_dir: str = ""
    kind: str = "error"  # "invalid" (refused before training), "diverged", "out_of_memory", "error"


# ---- the GAN lab (core/gan.py). A GAN run ends with RunFinished or RunFailed too, where
# RunFinished.epochs_done counts training steps and `best` holds the last losses (and FID).

@dataclass(frozen=True)
class GanStarted:
    run_id: str
    run_dir: str
    steps: int
    images: int
    image_size: int
    batch_size: int
    generator_params: int
    discriminator_params: int


@dataclass(frozen=True)
class GanStep:
    step: int  # steps done, 1-based
    d_loss: float
    g_loss: float
    d_real: float  # the discriminator's mean probability that a real image is real
    d_fake: float  # ... that a generated image is real


@dataclass(frozen=True)
class GanSamples:
    """A grid of samples from the run's fixed noise batch: RGB uint8 pixels, row by row."""

    step: int
    width: int
    height: int
    pixels: bytes = b""  # height * width * 3 bytes; left empty in events.jsonl (the PNG holds them)
    path: str = ""  # the PNG in the run folder
    diversity: float = 0.0  # mean spread of the samples, pixel by pixel (0: every sample the same)

    def array(self):
        """The grid as a numpy array (height, width, 3)."""
        import numpy as np

        return np.frombuffer(self.pixels, dtype=np.uint8).reshape(self.height, self.width, 3)


@dataclass(frozen=True)
class GanEvaluated:
    """FID (and the Inception Score, when the network has a softmax) of a generator."""

    step: int
    fid: float
    network: str  # which network's features were used, in words
    inception_score: float | None = None
    inception_score_std: float | None = None
    real_images: int = 0
    generated_images: int = 0


Event = (RunStarted | BatchEnd | EpochEnd | Message | RunFinished | RunFailed
         | GanStarted | GanStep | GanSamples | GanEvaluated)

EVENT_TYPES = {cls.__name__: cls for cls in (RunStarted, BatchEnd, EpochEnd, Message, RunFinished, RunFailed,
                                             GanStarted, GanStep, GanSamples, GanEvaluated)}


def event_to_dict(event: Event) -> dict[str, Any]:
    data = dataclasses.asdict(event)
    for key, value in data.items():
        if isinstance(value, bytes):  # GanSamples.pixels: JSON has no bytes
            data[key] = base64.b64encode(value).decode("ascii")
    return {"type": type(event).__name__, **data}


def event_from_dict(data: dict[str, Any]) -> Event:
    data = dict(data)
    cls = EVENT_TYPES[data.pop("type")]
    for f in dataclasses.fields(cls):
        if f.name == "class_names" and f.name in data:
            data[f.name] = tuple(data[f.name])
        if f.name == "pixels" and isinstance(data.get(f.name), str):
            data[f.name] = base64.b64decode(data[f.name])
    return cls(**data)
