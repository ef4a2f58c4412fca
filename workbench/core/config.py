"""A training run as a plain value.

The GUI edits a `RunConfig`, the CLI loads one from JSON, and `training.run`
turns one into a trained model. Field names match the labels in the UI.
Nothing here imports TensorFlow, so configs load and validate instantly.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
PRECISIONS = ("off", "float16", "bfloat16")  # as workbench.core.perf
JIT_CHOICES = ("auto", "on", "off")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config or a dataset, worded for a person.

    `field` is the dotted config path (``"training.learning_rate"``) so the UI can
    mark the widget; it is empty for problems that belong to no single field.
    """

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class ConfigError(ValueError):
    """Raised when a config cannot be read at all; carries every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


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
    divergence_factor: float = 10.0  # stop when loss exceeds this many times its first value
    tensorboard: bool = False  # also write TensorBoard logs into the run folder (tensorboard/)
    # Two-phase fine-tuning: `phase1_epochs` with the whole backbone frozen (head only), then
    # the freeze policy's layers unfreeze and training goes on at learning_rate * finetune_lr_factor.
    two_phase: bool = False
    phase1_epochs: int = 1
    finetune_lr_factor: float = 0.1
    # Speed: "float16"/"bfloat16" train in mixed precision (GPUs with tensor cores; bfloat16
    # also on recent CPUs); "off" is float32. XLA: "auto" lets Keras decide (on for GPUs).
    mixed_precision: str = "off"
    jit_compile: str = "auto"


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
    from workbench.core.files import atomic_write_text

    atomic_write_text(path, config.to_json() + "\n")


def get_field(config: Any, path: str) -> Any:
    obj = config
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def set_field(config: Any, path: str, value: Any) -> None:
    *parents, last = path.split(".")
    obj = config
    for part in parents:
        obj = getattr(obj, part)
    if not hasattr(obj, last):
        raise AttributeError(f"no config field {path!r}")
    setattr(obj, last, value)


# ---- typed construction ----------------------------------------------------

def build_dataclass(cls: type, data: dict, prefix: str, problems: list[Problem]) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in known:
            where = f"{prefix}{key}"
            problems.append(
                Problem(where, f"unknown setting '{key}' (known: {', '.join(sorted(known))})")
            )
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        where = f"{prefix}{f.name}"
        value = _coerce(hints[f.name], data[f.name], where, problems)
        if value is not _BAD:
            kwargs[f.name] = value
    return cls(**kwargs)


_BAD = object()


def _type_name(tp: Any) -> str:
    names = {int: "a whole number", float: "a number", str: "text", bool: "true or false"}
    if tp in names:
        return names[tp]
    if typing.get_origin(tp) is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}s"
    return getattr(tp, "__name__", str(tp))


def _coerce(tp: Any, value: Any, where: str, problems: list[Problem]) -> Any:
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            problems.append(Problem(where, "must be a group of settings ({...})"))
            return _BAD
        return build_dataclass(tp, value, where + ".", problems)
    origin = typing.get_origin(tp)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, list):
            problems.append(Problem(where, f"must be {_type_name(tp)}"))
            return _BAD
        items = [_coerce(item_tp, v, where, problems) for v in value]
        return _BAD if any(i is _BAD for i in items) else items
    if origin in (typing.Union, types.UnionType):  # pragma: no cover - no optional fields yet
        return value
    ok = {
        bool: lambda v: isinstance(v, bool),
        int: lambda v: isinstance(v, int) and not isinstance(v, bool),
        float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        str: lambda v: isinstance(v, str),
    }[tp](value)
    if not ok:
        problems.append(Problem(where, f"must be {_type_name(tp)}, not {json.dumps(value)[:40]}"))
        return _BAD
    if tp is float:
        try:
            value = float(value)
        except OverflowError:  # an integer too large for a float (1e309 written out)
            value = math.inf
        if not math.isfinite(value):
            problems.append(Problem(where, "must be a finite number"))
            return _BAD
    return value


# ---- validation -------------------------------------------------------------

def validate(config: RunConfig, check_paths: bool = True) -> list[Problem]:
    """Every problem with the values, worded for a person; empty when the run can start."""
    from workbench.core import backbones  # registry data only, no TensorFlow

    problems: list[Problem] = []

    def bad(path: str, message: str) -> None:
        problems.append(Problem(path, message))

    d, b, h, dr, fr, t = (
        config.data, config.backbone, config.head, config.dropout, config.freeze, config.training
    )

    # data
    if not d.folder.strip():
        bad("data.folder", "choose a folder of images (one sub-folder per class)")
    elif check_paths and not Path(d.folder).is_dir():
        bad("data.folder", f"folder not found: {d.folder}")
    if d.validation_folder.strip():
        if check_paths and not Path(d.validation_folder).is_dir():
            bad("data.validation_folder", f"folder not found: {d.validation_folder}")
    elif d.folds < 2 and not 0.0 < d.validation_split < 1.0:
        bad("data.validation_split", "must be between 0 and 1 (e.g. 0.2 keeps 20 % for validation)")
    problems += _fold_problems(d, check_paths)
    for name in ("rotation", "zoom", "contrast"):
        v = getattr(d.augment, name)
        if not 0.0 <= v < 1.0:
            bad(f"data.augment.{name}", "must be between 0 and 1")

    # backbone
    spec = backbones.BACKBONES.get(b.name)
    if spec is None:
        bad("backbone.name", f"unknown backbone '{b.name}'; choose one of: {', '.join(backbones.BACKBONES)}")
    else:
        if d.image_size < spec.min_size:
            bad("data.image_size", f"{spec.name} needs images of at least {spec.min_size} px (got {d.image_size})")
        if d.image_size > 1024:
            bad("data.image_size", "must be at most 1024 px")
        if b.width not in spec.widths:
            allowed = ", ".join(str(w) for w in spec.widths)
            bad("backbone.width", f"{spec.name} supports width {allowed}")
        if b.weights == "imagenet" and b.transfer != "zero" and not spec.imagenet:
            bad("backbone.weights", f"{spec.name} has no ImageNet weights; choose 'none' or a file")
    if b.weights not in WEIGHT_SOURCES:
        bad("backbone.weights", f"must be one of: {', '.join(WEIGHT_SOURCES)}")
    if b.transfer not in TRANSFERS:
        bad("backbone.transfer", f"must be one of: {', '.join(TRANSFERS)}")
    elif b.transfer == "partial":
        if b.weights == "none":
            bad("backbone.transfer", "partial transfer keeps pretrained blocks: choose ImageNet or a "
                                     "weights file, or 'zero' transfer for random weights")
        if spec is not None and not 1 <= b.keep_blocks < len(spec.blocks):
            bad("backbone.keep_blocks", f"{spec.name} has {len(spec.blocks)} blocks: keep between 1 "
                                        f"and {len(spec.blocks) - 1} of them")
        if b.rest not in TRANSFER_RESTS:
            bad("backbone.rest", f"must be one of: {', '.join(TRANSFER_RESTS)}")
    if b.weights == "file" and b.transfer != "zero":
        if not b.weights_file.strip():
            bad("backbone.weights_file", "choose a weights file (.weights.h5 or .keras)")
        elif check_paths and not Path(b.weights_file).is_file():
            bad("backbone.weights_file", f"weights file not found: {b.weights_file}")

    # head
    if h.pooling not in POOLINGS:
        bad("head.pooling", f"must be one of: {', '.join(POOLINGS)}")
    if h.activation not in ACTIVATIONS:
        bad("head.activation", f"must be one of: {', '.join(ACTIVATIONS)}")
    if any(u < 1 or u > 65536 for u in h.dense_units):
        bad("head.dense_units", "each dense layer needs between 1 and 65536 units")

    # dropout
    if dr.kind not in DROPOUT_KINDS:
        bad("dropout.kind", f"must be one of: {', '.join(DROPOUT_KINDS)}")
    if not 0.0 <= dr.rate < 1.0:
        bad("dropout.rate", "must be at least 0 and below 1 (a rate of 1 would drop everything)")
    for p in dr.placement:
        if p not in DROPOUT_PLACEMENTS:
            bad("dropout.placement", f"unknown placement '{p}'; choose from: {', '.join(DROPOUT_PLACEMENTS)}")
    if dr.kind in ("spatial", "dropblock") and dr.rate > 0 and dr.placement and "feature_map" not in dr.placement:
        bad("dropout.placement", f"{dr.kind} dropout works on feature maps: add the 'feature_map' placement")
    if "after_dense" in dr.placement and not h.dense_units:
        bad("dropout.placement", "'after_dense' needs at least one dense layer in the head")
    if dr.block_size < 1:
        bad("dropout.block_size", "must be at least 1")
    if dr.ramp_epochs < 0:
        bad("dropout.ramp_epochs", "must be 0 (no ramp) or a number of epochs")

    # freeze
    if fr.policy not in FREEZE_POLICIES:
        bad("freeze.policy", f"must be one of: {', '.join(FREEZE_POLICIES)}")
    if fr.policy == "top_layers" and fr.layers < 1:
        bad("freeze.layers", "choose how many top layers to train (at least 1)")
    if fr.policy == "top_blocks":
        if fr.blocks < 1:
            bad("freeze.blocks", "choose how many top blocks to train (at least 1)")
        elif spec is not None and fr.blocks > len(spec.blocks):
            bad("freeze.blocks", f"{spec.name} has {len(spec.blocks)} blocks")
    if fr.policy == "custom" and not fr.trainable_layers:
        bad("freeze.trainable_layers", "choose the backbone layers that train (or the policy 'all' to train "
                                       "the head only)")

    # training
    if not 1 <= t.epochs <= 10000:
        bad("training.epochs", "must be between 1 and 10000")
    if not 1 <= t.batch_size <= 4096:
        bad("training.batch_size", "must be between 1 and 4096")
    if not 0.0 < t.learning_rate <= 10.0:
        bad("training.learning_rate", "must be above 0 (typical: 1e-3 for a new head, 1e-5 for fine-tuning)")
    if t.optimizer not in OPTIMIZERS:
        bad("training.optimizer", f"must be one of: {', '.join(OPTIMIZERS)}")
    if not 0.0 <= t.momentum < 1.0:
        bad("training.momentum", "must be at least 0 and below 1")
    if not 0.0 <= t.label_smoothing < 1.0:
        bad("training.label_smoothing", "must be at least 0 and below 1")
    if t.seed < 0:
        bad("training.seed", "must be 0 or more")
    if t.patience < 1:
        bad("training.patience", "must be at least 1 epoch")
    if t.monitor not in MONITORS:
        bad("training.monitor", f"must be one of: {', '.join(MONITORS)}")
    if t.tensorboard and importlib.util.find_spec("tensorboard") is None:
        bad("training.tensorboard", "TensorBoard logs need the tensorboard package: pip install tensorboard")
    if t.divergence_factor <= 1.0:
        bad("training.divergence_factor", "must be above 1")
    if t.two_phase:
        if not 1 <= t.phase1_epochs < t.epochs:
            bad("training.phase1_epochs", f"the head-only phase needs at least 1 epoch and must leave "
                                          f"some of the {t.epochs} epochs for fine-tuning")
        if fr.policy == "all" and b.transfer != "partial":
            bad("freeze.policy", "two-phase fine-tuning unfreezes layers in its second phase: choose "
                                 "top layers, top blocks or none (fine-tune everything)")
        if not 0.0 < t.finetune_lr_factor <= 10.0:
            bad("training.finetune_lr_factor", "must be above 0 (typical: 0.1, a tenth of the learning rate)")
    if t.mixed_precision not in PRECISIONS:
        bad("training.mixed_precision", f"must be one of: {', '.join(PRECISIONS)}")
    if t.jit_compile not in JIT_CHOICES:
        bad("training.jit_compile", f"must be one of: {', '.join(JIT_CHOICES)}")
    return problems


def _fold_problems(d: DataConfig, check_paths: bool) -> list[Problem]:
    """k-fold settings: a fold that exists, no separate validation folder, enough images per class.

    Images are counted by file name here (instant); the dataset scan checks their contents.
    """
    if d.folds < 0 or d.folds > 100:
        return [Problem("data.folds", "must be between 2 and 100 (or 0 for a plain validation split)")]
    if d.folds < 2:
        return []
    problems = []
    if not 0 <= d.fold < d.folds:
        problems.append(Problem("data.fold", f"must be between 0 and {d.folds - 1}: "
                                             f"the index of the part held out for validation"))
    if d.validation_folder.strip():
        problems.append(Problem("data.folds", "k-fold splits the training folder: leave the validation folder empty"))
    elif check_paths and d.folder.strip() and Path(d.folder).is_dir():
        for name, count in _images_per_class(d.folder).items():
            if 0 < count < d.folds:
                problems.append(Problem(
                    "data.folds", f"class '{name}' has {count} image(s): {d.folds}-fold cross-validation "
                                  f"needs at least {d.folds} per class"))
    return problems


_COUNT_CACHE: dict[str, tuple[tuple, dict[str, int]]] = {}


def _images_per_class(folder: str) -> dict[str, int]:
    """Image files (by name) per class sub-folder; cached until a class folder changes."""
    from workbench.core.dataset import IMAGE_EXTENSIONS

    root = Path(folder)
    try:
        classes = sorted((e for e in os.scandir(root) if e.is_dir() and not e.name.startswith(".")),
                         key=lambda e: e.name)
        key = tuple((e.name, e.stat().st_mtime_ns) for e in classes)
    except OSError:
        return {}
    cached = _COUNT_CACHE.get(str(root))
    if cached is not None and cached[0] == key:
        return cached[1]
    counts = {}
    for entry in classes:
        n = 0
        for _dirpath, dirnames, filenames in os.walk(entry.path):
            dirnames[:] = [x for x in dirnames if not x.startswith(".")]
            n += sum(1 for f in filenames
                     if not f.startswith(".") and os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS)
        counts[entry.name] = n
    _COUNT_CACHE[str(root)] = (key, counts)
    return counts
