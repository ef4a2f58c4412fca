"""Background jobs of transfer learning: list the backbone's layers (freeze map), save a run's backbone.

Like the jobs of model_jobs.py they run on a QThreadPool thread through `BackgroundJobs`,
never on the GUI thread, and send their Keras work to the model worker (processes.run_in_worker;
the bodies are in worker_jobs.py). Results are plain values. Qt-free: the worker imports it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from workbench.core.config.run import RunConfig
from workbench.core.process.model_worker import WorkerBusy
from workbench.ui.tasks.processes import run_in_worker

# The freeze map gives up waiting after this long (the model worker runs a long job) and is
# asked for again later, so that it never keeps a pool thread for a whole export.
MAP_WAIT_S = 3.0


@dataclass(frozen=True)
class FreezeMap:
    """The backbone's layers with parameters and whether the config trains them."""

    key: tuple  # map_key of the config it was built for
    backbone: str
    blocks: tuple[str, ...]  # block labels, in order
    rows: tuple[Any, ...]  # core.base.freeze.LayerRow, in backbone order
    locked: frozenset[str] = frozenset()  # layers no choice trains (pretrained BatchNorm kept frozen)
    editable: bool = True  # False with partial transfer: the kept blocks decide, not the freeze policy
    unknown: tuple[str, ...] = ()  # names in freeze.trainable_layers that this backbone lacks
    summary: Any = None  # core.model.FreezeSummary of the whole classifier (the readout's numbers)

    @property
    def trainable(self) -> list[str]:
        return [r.name for r in self.rows if r.trainable]

    def with_trainable(self, names: set[str], key: tuple) -> FreezeMap:
        """The same layers with `names` trainable (locked ones stay frozen): what "custom" makes of them."""
        import dataclasses

        rows = tuple(dataclasses.replace(r, trainable=r.name in names and r.name not in self.locked)
                     for r in self.rows)
        return dataclasses.replace(self, key=key, rows=rows, unknown=(), summary=None)


def structure_key(config: RunConfig) -> tuple:
    """What the layers themselves depend on."""
    b = config.backbone
    return (b.name, float(b.width), int(config.data.image_size))


def map_key(config: RunConfig) -> tuple:
    """Everything the freeze map depends on: the structure, the transfer and the freeze policy."""
    from workbench.core.config.derived import effective_transfer

    b, f = config.backbone, config.freeze
    kind = effective_transfer(b)
    partial = (b.keep_blocks, b.rest) if kind == "partial" else ()
    return (*structure_key(config), kind, partial, f.policy, f.layers, f.blocks, f.freeze_batchnorm,
            tuple(f.trainable_layers) if f.policy == "custom" else ())


def build_freeze_map(config: RunConfig, cancel: threading.Event | None = None,
                     wait_s: float = MAP_WAIT_S) -> FreezeMap | None:
    """The freeze map of `config`, built in the model worker (worker_jobs.freeze_map).

    None when the worker stayed busy for `wait_s` (an evaluation, an export): the caller asks again later.
    """
    try:
        return run_in_worker("freeze_map", config, cancel=cancel, wait_s=wait_s)
    except WorkerBusy:
        return None


@dataclass
class SavedBackbone:
    path: str
    run_dir: str
    info: dict = field(default_factory=dict)


def save_backbone(run_dir: str, name: str, runs_dir: str, cancel: threading.Event | None = None) -> SavedBackbone:
    """core.weights.save_run_backbone in the model worker (it loads the run's model)."""
    from workbench.core.runs.saved_backbones import saved_backbone_info

    path = run_in_worker("save_backbone", run_dir, name, runs_dir, cancel=cancel)
    return SavedBackbone(path, run_dir, saved_backbone_info(path))
