"""Background jobs of transfer learning: list the backbone's layers (freeze map), save a run's backbone.

Like the jobs of model_jobs.py they run on a QThreadPool thread through `BackgroundJobs`,
never on the GUI thread, and hold the Keras lock of jobs.py while Keras works (waited for
in short steps, so quitting never hangs behind them). Results are plain values.
TensorFlow is imported only inside these functions.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from workbench.core.config.run import RunConfig

# The freeze map gives up waiting after this long (a run or another build holds Keras) and is
# asked for again later, so that it never keeps a pool thread for a whole training run.
MAP_LOCK_WAIT_S = 3.0


@dataclass(frozen=True)
class FreezeMap:
    """The backbone's layers with parameters and whether the config trains them."""

    key: tuple  # map_key of the config it was built for
    backbone: str
    blocks: tuple[str, ...]  # block labels, in order
    rows: tuple[Any, ...]  # core.model.LayerRow, in backbone order
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
                     wait_s: float = MAP_LOCK_WAIT_S) -> FreezeMap | None:
    """Build the classifier's structure (no weights loaded), apply the freeze policy, list the layers.

    None when Keras stayed busy for `wait_s` (a training run): the caller asks again later.
    """
    from workbench.ui.tasks.keras_lock import holding_keras

    try:
        with holding_keras(cancel, wait_s=wait_s):
            return _build(config)
    except TimeoutError:
        return None


def _build(config: RunConfig) -> FreezeMap:
    from workbench.core.config import backbone_catalogue, derived
    from workbench.core.config.run import FreezeConfig
    from workbench.core.engine import model as model_lib

    spec = backbone_catalogue.get_backbone(config.backbone.name)
    built = model_lib.build_model(derived.structure_only(config), 2)
    pretrained = derived.is_pretrained(config.backbone)
    partial = derived.partial_transfer(config) is not None
    f = config.freeze
    # Which layers could train at all: everything, less what the BatchNorm rule keeps frozen.
    model_lib.apply_freeze(built, FreezeConfig(policy="none", freeze_batchnorm=f.freeze_batchnorm), spec,
                           pretrained=pretrained)
    locked = frozenset(r.name for r in model_lib.freeze_map(built, spec) if not r.trainable)
    shown, unknown = config, ()
    if f.policy == "custom" and not partial:
        names = {layer.name for layer in built.get_layer("backbone").layers}
        unknown = tuple(n for n in f.trainable_layers if n not in names)
        if unknown:  # listed for another backbone: show what the known names would train
            shown = config.replace(**{"freeze.trainable_layers": [n for n in f.trainable_layers if n in names]})
    summary = model_lib.freeze_for(built, shown)
    return FreezeMap(
        key=map_key(config),
        backbone=spec.name,
        blocks=tuple(label for label, _ in spec.blocks),
        rows=tuple(model_lib.freeze_map(built, spec)),
        locked=locked,
        editable=not partial,
        unknown=unknown,
        summary=summary,
    )


@dataclass
class SavedBackbone:
    path: str
    run_dir: str
    info: dict = field(default_factory=dict)


def save_backbone(run_dir: str, name: str, runs_dir: str, cancel: threading.Event | None = None) -> SavedBackbone:
    """core.weights.save_run_backbone under the Keras lock (it loads the run's model)."""
    from workbench.core.engine.weights import save_run_backbone
    from workbench.core.runs.saved_backbones import saved_backbone_info
    from workbench.ui.tasks.keras_lock import holding_keras

    with holding_keras(cancel):
        path = save_run_backbone(run_dir, name, runs_dir)
    return SavedBackbone(str(path), run_dir, saved_backbone_info(path))
