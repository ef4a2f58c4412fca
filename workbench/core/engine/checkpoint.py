"""Resumable checkpoints: the whole model with its optimizer state, and where the run was.

`checkpoint.keras` in a run folder is rewritten at epoch ends (every one unless epochs
are so short that checkpoints would cost more than callbacks.CHECKPOINT_BUDGET of the
time; always for the best, the last and a stopped epoch). It is a normal Keras file (loadable with safe_mode=True) with one
extra member, ``workbench_state.json``: the epochs done, the best value so far,
the divergence guard's and early stopping's counters. Model and state live in one
file, so one atomic rename replaces both: a run killed at any moment (power cut,
SIGKILL, a full disk) leaves either the previous checkpoint or the new one, never
a model from one epoch with the epoch count of another. `state.json` mirrors the
state for people and other tools; resuming trusts the copy inside the checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import zipfile
from pathlib import Path
from typing import Any

from workbench.core.base.files import atomic_replace_with, atomic_write_text
from workbench.core.runs.checkpoint_state import STATE_MEMBER, STATE_VERSION, read_state


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used; the message says why, in words."""


def save(model: Any, path: str | os.PathLike, state: dict[str, Any],
         mirror: str | os.PathLike | None = None) -> float:
    """Write model + optimizer + `state` atomically to `path`; the seconds it took.

    `mirror`, when given, receives a readable copy of the state (state.json) afterwards.
    """
    started = time.perf_counter()
    record = {"version": STATE_VERSION, "saved": round(time.time(), 3), **state}
    text = json.dumps(record, indent=2, default=float)

    def write(tmp: str) -> None:
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a") as archive:
            archive.writestr(STATE_MEMBER, text)

    atomic_replace_with(path, write)
    _cache_keras_saving_skipsets()
    if mirror is not None:
        try:
            atomic_write_text(mirror, text + "\n")
        except OSError:
            pass  # the checkpoint itself holds the state; the mirror is a courtesy
    return time.perf_counter() - started


def load(path: str | os.PathLike) -> tuple[Any, dict[str, Any]]:
    """(compiled model with its optimizer state, state) from a checkpoint. Raises CheckpointError.

    Loads in safe mode: a checkpoint that holds code (a Lambda layer) is refused, never run.
    """
    from workbench.core.engine.saving import load_model_file
    from workbench.core.runs.store import RunError

    path = Path(path)
    state = read_state(path)
    if state is None:
        raise CheckpointError(
            f"the checkpoint {path} is damaged or was not written by Workbench "
            "(it holds no training state)"
        )
    try:
        model = load_model_file(path)
    except RunError as exc:
        raise CheckpointError(str(exc)) from None
    if getattr(model, "optimizer", None) is None:
        raise CheckpointError(f"the checkpoint {path} holds no optimizer state, so training cannot continue")
    return model, state


def copy_atomically(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Make `target` the same file as `source` (a hard link when possible, else a copy), atomically."""

    def write(tmp: str) -> None:
        try:
            os.link(source, tmp)
        except OSError:  # another file system, or one without hard links
            shutil.copyfile(source, tmp)

    atomic_replace_with(target, write)


def _cache_keras_saving_skipsets() -> None:
    """Make Keras's per-type attribute cache work: it stores under one key and reads another.

    keras.saving (3.12-3.15) computes, for each object it saves, the attributes of a
    freshly made Layer/Optimizer to skip, and caches them under "saving_attr_skipset_*"
    while looking them up under "saving_attr_skiplist_*". So every save makes ~170 throwaway
    layers: about a third of the time of saving a MobileNetV2. Copying the entries across
    after a save restores the intended cache. The sets depend only on the type name, so
    this changes nothing but the time taken; any surprise here is ignored.
    """
    try:
        from keras.src.backend.common import global_state

        for kind in ("Operation", "Layer", "Functional", "Sequential", "Metric", "Optimizer", "Loss"):
            skipset = global_state.get_global_attribute(f"saving_attr_skipset_{kind}", None)
            if skipset is not None:
                global_state.set_global_attribute(f"saving_attr_skiplist_{kind}", skipset)
    except Exception:  # noqa: BLE001 - an optimisation only
        pass
