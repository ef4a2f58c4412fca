"""Everything that happens during a run, as small frozen values.

Events hold only plain Python data (str, int, float, tuples, dicts of floats)
so they are cheap to queue across threads, pickle, and write to events.jsonl.
"""

from __future__ import annotations

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
    kind: str = ""  # "phase": two-phase fine-tuning switches to phase 2 at `epoch` (the plots mark it)
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


Event = RunStarted | BatchEnd | EpochEnd | Message | RunFinished | RunFailed

EVENT_TYPES = {cls.__name__: cls for cls in (RunStarted, BatchEnd, EpochEnd, Message, RunFinished, RunFailed)}


def event_to_dict(event: Event) -> dict[str, Any]:
    return {"type": type(event).__name__, **dataclasses.asdict(event)}


def event_from_dict(data: dict[str, Any]) -> Event:
    data = dict(data)
    cls = EVENT_TYPES[data.pop("type")]
    for f in dataclasses.fields(cls):
        if f.name == "class_names" and f.name in data:
            data[f.name] = tuple(data[f.name])
    return cls(**data)
