"""A training run as a plain value.

The GUI edits a `RunConfig`, the CLI loads one from JSON, and `training.run`
turns one into a trained model. Field names match the labels in the UI.
Nothing here imports TensorFlow, so configs load and validate instantly.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.base.problems import ConfigError, Problem
from workbench.core.config.fields import build_dataclass, set_field

SCHEMA_VERSION = 1


OPTIMIZERS = ("adam", "sgd", "rmsprop")


POOLINGS = ("avg", "max", "flatten")


ACTIVATIONS = ("relu", "gelu", "swish", "tanh", "elu")


DROPOUT_KINDS = ("dropout", "spatial", "gaussian", "alpha", "dropblock")


DROPOUT_PLACEMENTS = ("feature_map", "before_classifier", "after_dense")


WEIGHT_SOURCES = ("imagenet", "file", "none")


TRANSFERS = ("all", "partial", "zero")


TRANSFER_RESTS = ("reinit", "finetune")


FREEZE_POLICIES = ("all", "top_layers", "top_blocks", "none", "custom")


MONITORS = ("val_loss", "val_accuracy", "loss", "accuracy")


PRECISIONS = ("off", "float16", "bfloat16")  # as workbench.core.engine.perf


JIT_CHOICES = ("auto", "on", "off")


CLASS_WEIGHTS = ("off", "balanced", "manual")


LR_SCHEDULES = ("constant", "cosine", "plateau")


@dataclass
class AugmentConfig:
    flip: bool = False
    rotation: float = 0.0  # fraction of a full turn, as keras.layers.RandomRotation
    zoom: float = 0.0
    contrast: float = 0.0

    @property
    def enabled(self) -> bool:
        return self.flip or self.rotation > 0 or self.zoom > 0 or self.contrast > 0


@dataclass
class DataConfig:
    folder: str = ""
    validation_folder: str = ""  # empty: split `folder` with `validation_split`
    validation_split: float = 0.2
    image_size: int = 96
    cache: bool = False  # keep decoded images in memory after the first epoch
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # k-fold cross-validation: with folds >= 2 the folder is split into `folds` stratified
    # parts and part `fold` (0-based) validates, instead of `validation_split`. 0 or 1: off.
    folds: int = 0
    fold: int = 0
    # A held-out test set, never seen by training, keep-best, early stopping or tuning: a folder
    # (same class sub-folders), or this share of each class held out of `folder` (seeded, before
    # the validation split or the k-fold parts are made). Empty folder and 0: no test set.
    test_folder: str = ""
    test_split: float = 0.0


@dataclass
class BackboneConfig:
    name: str = "MobileNetV2"
    weights: str = "imagenet"  # imagenet | file | none (same architecture, re-initialised)
    weights_file: str = ""
    width: float = 1.0  # width multiplier (alpha) for the MobileNets; ignored elsewhere
    # How much of the pretrained network is transferred: "all" (every layer; the freeze
    # policy decides what trains), "partial" (the first `keep_blocks` blocks keep their
    # pretrained weights, frozen; the rest is re-initialised or fine-tuned, as `rest` says),
    # "zero" (same architecture, random weights: the same as weights "none").
    transfer: str = "all"
    keep_blocks: int = 1  # partial only
    rest: str = "reinit"  # partial only: "reinit" | "finetune"


@dataclass
class HeadConfig:
    pooling: str = "avg"
    dense_units: list[int] = field(default_factory=list)
    activation: str = "relu"


@dataclass
class DropoutConfig:
    kind: str = "dropout"
    rate: float = 0.2
    placement: list[str] = field(default_factory=lambda: ["before_classifier"])
    block_size: int = 3  # DropBlock only
    ramp_epochs: int = 0  # DropBlock only: its rate grows linearly from 0 over this many epochs (0: off)


@dataclass
class FreezeConfig:
    policy: str = "all"  # all (feature extraction) | top_layers | top_blocks | none (fine-tune everything)
    layers: int = 0  # trainable top layers, for top_layers
    blocks: int = 0  # trainable top blocks, for top_blocks
    freeze_batchnorm: bool = True  # pretrained BatchNorm stays in inference mode
    trainable_layers: list[str] = field(default_factory=list)  # custom: the backbone layers that train (freeze map)


@dataclass
class TrainingConfig:
    epochs: int = 5
    batch_size: int = 32
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.9  # SGD only
    label_smoothing: float = 0.0
    seed: int = 42
    early_stopping: bool = False
    patience: int = 3
    keep_best: bool = True
    monitor: str = "val_loss"
    divergence_factor: float = 10.0  # stop when the smoothed loss stays this many times above its lowest (or chance level)
    tensorboard: bool = False  # also write TensorBoard logs into the run folder (tensorboard/)
    # Experiment tracking (optional, needs the "mlflow" extra): parameters, per-epoch metrics and the
    # model go to MLflow. An empty URI means a SQLite store beside the run folders (mlflow.db).
    mlflow: bool = False
    mlflow_uri: str = ""
    # Two-phase fine-tuning: `phase1_epochs` with the whole backbone frozen (head only), then
    # the freeze policy's layers unfreeze and training goes on at learning_rate * finetune_lr_factor.
    two_phase: bool = False
    phase1_epochs: int = 1
    finetune_lr_factor: float = 0.1
    # Speed: "float16"/"bfloat16" train in mixed precision (GPUs with tensor cores; bfloat16
    # also on recent CPUs); "off" is float32. XLA: "auto" lets Keras decide (on for GPUs).
    mixed_precision: str = "off"
    jit_compile: str = "auto"
    # Class imbalance: "balanced" weighs each class's loss by images / (classes * its images);
    # "manual" uses `manual_class_weights` (class name -> weight; classes not named weigh 1).
    class_weights: str = "off"
    manual_class_weights: dict[str, float] = field(default_factory=dict)
    # The learning rate over the run: "constant"; "cosine" (linear warm-up over `warmup_epochs`,
    # then cosine decay to 0 by the last epoch; each phase of two-phase fine-tuning has its own);
    # "plateau" (times `plateau_factor` when `monitor` has not improved for `plateau_patience` epochs).
    lr_schedule: str = "constant"
    warmup_epochs: int = 0
    plateau_factor: float = 0.5
    plateau_patience: int = 2


@dataclass
class RunConfig:
    name: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    dropout: DropoutConfig = field(default_factory=DropoutConfig)
    freeze: FreezeConfig = field(default_factory=FreezeConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    schema_version: int = SCHEMA_VERSION

    # ---- JSON round trip -------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @classmethod
    def from_dict(cls, data: Any) -> RunConfig:
        """Build a config from parsed JSON; raise ConfigError listing every bad key or type."""
        problems: list[Problem] = []
        if not isinstance(data, dict):
            raise ConfigError([Problem("", "the config must be a JSON object ({...})")])
        version = data.get("schema_version", SCHEMA_VERSION)
        if not isinstance(version, int) or isinstance(version, bool) or version > SCHEMA_VERSION:
            problems.append(
                Problem(
                    "schema_version",
                    f"this config was written by a newer Workbench (schema {version!r}); "
                    f"this one reads schema {SCHEMA_VERSION} and older",
                )
            )
        config = build_dataclass(cls, data, "", problems)
        if problems:
            raise ConfigError(problems)
        return config

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                [Problem("", f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}")]
            ) from None
        except (ValueError, RecursionError) as exc:  # a number of 4300+ digits, lists nested 1000s deep
            raise ConfigError([Problem("", f"not a usable config: {str(exc)[:120]}")]) from None
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with dotted-path changes, e.g. replace(**{"training.epochs": 3})."""
        copy = RunConfig.from_dict(self.to_dict())
        for path, value in changes.items():
            set_field(copy, path, value)
        return copy


def load_config(path: str | os.PathLike) -> RunConfig:
    """Read a config file; every failure becomes a ConfigError with a readable message."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")  # a byte-order mark, as Notepad writes, is fine
    except FileNotFoundError:
        raise ConfigError([Problem("", f"config file not found: {p}")]) from None
    except (OSError, ValueError) as exc:  # ValueError: undecodable UTF-8, a NUL in the path
        raise ConfigError([Problem("", f"cannot read config file {p}: {exc}")]) from None
    return RunConfig.from_json(text)


def save_config(config: RunConfig, path: str | os.PathLike) -> None:
    from workbench.core.base.files import atomic_write_text

    atomic_write_text(path, config.to_json() + "\n")
