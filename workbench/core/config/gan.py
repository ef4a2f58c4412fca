"""A GAN run as a plain value: the GAN lab's twin of config.RunConfig.

The GAN lab edits a `GanConfig`, `workbench gan CONFIG.json` loads one, and
`gan.run` turns one into a trained generator. The JSON round trip, the typed
reading (every bad key or type reported at once) and the readable problems come
from config.py. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.base.problems import ConfigError, Problem
from workbench.core.config.fields import build_dataclass, get_field, set_field

GAN_SCHEMA_VERSION = 1
GAN_KIND = "gan"  # config.json of a GAN run says so, to tell it from a classifier's

IMAGE_SIZES = (32, 64)
GAN_DROPOUT_PLACEMENTS = ("after_conv", "before_output")  # after each convolution block; before the output layer
FEATURE_SOURCES = ("auto", "classifier", "backbone", "inception")
FEATURE_WEIGHTS = ("imagenet", "file", "none")


@dataclass
class GanDataConfig:
    folder: str = ""  # a folder of images, or a folder-per-class tree
    class_name: str = ""  # one class (sub-folder) of a folder-per-class tree; empty: every image
    image_size: int = 32  # 32 or 64
    cache: bool = True  # keep decoded images in memory after the first pass


@dataclass
class GanModelConfig:
    latent_size: int = 100
    generator_width: int = 64  # filters of the generator's last hidden block; doubled toward its start
    discriminator_width: int = 64  # filters of the discriminator's first block; doubled toward its end


@dataclass
class GanDropoutConfig:
    """Dropout in the discriminator only (the generator has none)."""

    rate: float = 0.3
    placement: list[str] = field(default_factory=lambda: ["after_conv"])


@dataclass
class GanTrainingConfig:
    steps: int = 2000
    epochs: int = 0  # > 0: train this many passes over the images instead of `steps`
    batch_size: int = 64
    generator_learning_rate: float = 2e-4
    generator_beta_1: float = 0.5
    discriminator_learning_rate: float = 2e-4
    discriminator_beta_1: float = 0.5
    label_smoothing: float = 0.0  # one-sided: the discriminator's targets for real images are 1 - this
    sample_every: int = 100  # refresh (and save) the grid of samples every this many steps
    checkpoint_every: int = 500  # save generator.keras every this many steps (and at the end)
    samples: int = 64  # images in the grid of samples, from one fixed noise batch
    seed: int = 42


@dataclass
class GanGuardConfig:
    """Stop a run that collapsed, and say why."""

    enabled: bool = True
    d_loss_floor: float = 0.01  # the discriminator wins outright: its loss stays below this ...
    d_loss_steps: int = 200  # ... for this many steps in a row
    diversity_fraction: float = 0.2  # mode collapse: the samples' spread falls below this share of its peak
    min_steps: int = 200  # the diversity check starts after this many steps


@dataclass
class GanEvaluationConfig:
    """Which network's features FID and the Inception Score use; all of them work offline."""

    features: str = "auto"  # auto | classifier | backbone | inception
    classifier_run: str = ""  # a trained classifier's run folder: its penultimate layer
    backbone: str = "MobileNetV2"
    backbone_weights: str = "imagenet"  # imagenet (from the Keras cache) | file | none (random)
    weights_file: str = ""
    samples: int = 500  # real and generated images compared
    fid_at_end: bool = False  # compute FID when training ends (the dropout sweep always does)


@dataclass
class GanConfig:
    name: str = ""
    kind: str = GAN_KIND
    data: GanDataConfig = field(default_factory=GanDataConfig)
    model: GanModelConfig = field(default_factory=GanModelConfig)
    dropout: GanDropoutConfig = field(default_factory=GanDropoutConfig)
    training: GanTrainingConfig = field(default_factory=GanTrainingConfig)
    guard: GanGuardConfig = field(default_factory=GanGuardConfig)
    evaluation: GanEvaluationConfig = field(default_factory=GanEvaluationConfig)
    schema_version: int = GAN_SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: Any) -> GanConfig:
        problems: list[Problem] = []
        if not isinstance(data, dict):
            raise ConfigError([Problem("", "the config must be a JSON object ({...})")])
        version = data.get("schema_version", GAN_SCHEMA_VERSION)
        if not isinstance(version, int) or isinstance(version, bool) or version > GAN_SCHEMA_VERSION:
            problems.append(Problem("schema_version", f"this GAN config was written by a newer Workbench "
                                                      f"(schema {version!r}); this one reads schema "
                                                      f"{GAN_SCHEMA_VERSION} and older"))
        if data.get("kind", GAN_KIND) != GAN_KIND:
            problems.append(Problem("kind", f"not a GAN config (kind {data.get('kind')!r}): "
                                            "train classifiers with 'workbench train'"))
        elif "kind" not in data and ("backbone" in data or "head" in data):
            raise ConfigError([Problem("", "this is a classifier's config (it has a backbone and a head), not a "
                                           "GAN config: train it with 'workbench train'")])
        config = build_dataclass(cls, data, "", problems)
        if problems:
            raise ConfigError(problems)
        return config

    @classmethod
    def from_json(cls, text: str) -> GanConfig:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                [Problem("", f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}")]) from None
        except (ValueError, RecursionError) as exc:
            raise ConfigError([Problem("", f"not a usable config: {str(exc)[:120]}")]) from None
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> GanConfig:
        """A copy with dotted-path changes, e.g. replace(**{"dropout.rate": 0.5})."""
        copy = GanConfig.from_dict(self.to_dict())
        for path, value in changes.items():
            set_field(copy, path, value)
        return copy

    def get(self, path: str) -> Any:
        return get_field(self, path)


def load_gan_config(path: str | os.PathLike) -> GanConfig:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError([Problem("", f"config file not found: {p}")]) from None
    except (OSError, ValueError) as exc:
        raise ConfigError([Problem("", f"cannot read config file {p}: {exc}")]) from None
    return GanConfig.from_json(text)


def save_gan_config(config: GanConfig, path: str | os.PathLike) -> None:
    from workbench.core.base.files import atomic_write_text

    atomic_write_text(path, config.to_json() + "\n")


def is_gan_config_file(path: str | os.PathLike) -> bool:
    """Whether a config.json belongs to a GAN run (cheap: reads the JSON, builds nothing)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("kind") == GAN_KIND


def validate_gan(config: GanConfig, check_paths: bool = True) -> list[Problem]:
    """Every problem with the values, worded for a person; empty when the run can start."""
    from workbench.core.config import backbone_catalogue

    problems: list[Problem] = []

    def bad(path: str, message: str) -> None:
        problems.append(Problem(path, message))

    d, m, dr, t, g, e = config.data, config.model, config.dropout, config.training, config.guard, config.evaluation
    if not d.folder.strip():
        bad("data.folder", "choose a folder of images (or a folder with one sub-folder per class)")
    elif check_paths and not Path(d.folder).is_dir():
        bad("data.folder", f"folder not found: {d.folder}")
    elif check_paths and d.class_name.strip() and not (Path(d.folder) / d.class_name).is_dir():
        bad("data.class_name", f"{d.folder} has no class sub-folder '{d.class_name}' (leave it empty for every image)")
    if d.image_size not in IMAGE_SIZES:
        bad("data.image_size", "the DCGAN makes 32x32 or 64x64 images: choose 32 or 64")

    if not 1 <= m.latent_size <= 1024:
        bad("model.latent_size", "must be between 1 and 1024 (typical: 100)")
    for name in ("generator_width", "discriminator_width"):
        if not 4 <= getattr(m, name) <= 1024:
            bad(f"model.{name}", "must be between 4 and 1024 filters (typical: 64)")

    if not (math.isfinite(dr.rate) and 0.0 <= dr.rate < 1.0):
        bad("dropout.rate", "must be at least 0 and below 1 (a rate of 1 would drop everything)")
    for p in dr.placement:
        if p not in GAN_DROPOUT_PLACEMENTS:
            bad("dropout.placement", f"unknown placement '{p}'; choose from: {', '.join(GAN_DROPOUT_PLACEMENTS)}")
    if dr.rate > 0 and not dr.placement:
        bad("dropout.placement", "choose where the discriminator drops units (after each convolution block, "
                                 "before the output) or set the rate to 0")

    if not 1 <= t.steps <= 10_000_000:
        bad("training.steps", "must be between 1 and 10,000,000")
    if not 0 <= t.epochs <= 100_000:
        bad("training.epochs", "must be 0 (train `steps` steps) or a number of passes over the images")
    if not 2 <= t.batch_size <= 4096:
        bad("training.batch_size", "must be between 2 and 4096")
    for net in ("generator", "discriminator"):
        lr, beta = getattr(t, f"{net}_learning_rate"), getattr(t, f"{net}_beta_1")
        if not 0.0 < lr <= 10.0:
            bad(f"training.{net}_learning_rate", "must be above 0 (typical for a DCGAN: 2e-4)")
        if not 0.0 <= beta < 1.0:
            bad(f"training.{net}_beta_1", "must be at least 0 and below 1 (typical for a DCGAN: 0.5)")
    if not 0.0 <= t.label_smoothing < 0.5:
        bad("training.label_smoothing", "must be at least 0 and below 0.5 (typical: 0.1; real targets become 0.9)")
    if t.sample_every < 1:
        bad("training.sample_every", "must be at least 1 step")
    if t.checkpoint_every < 1:
        bad("training.checkpoint_every", "must be at least 1 step")
    if not 1 <= t.samples <= 256:
        bad("training.samples", "the grid shows between 1 and 256 samples")
    if t.seed < 0:
        bad("training.seed", "must be 0 or more")

    if g.d_loss_floor < 0:
        bad("guard.d_loss_floor", "must be 0 or more")
    if g.d_loss_steps < 1:
        bad("guard.d_loss_steps", "must be at least 1 step")
    if not 0.0 <= g.diversity_fraction < 1.0:
        bad("guard.diversity_fraction", "must be at least 0 (off) and below 1")
    if g.min_steps < 0:
        bad("guard.min_steps", "must be 0 or more")

    problems += feature_problems(e, check_paths)
    if e.samples < 10 or e.samples > 50_000:
        bad("evaluation.samples", "FID compares between 10 and 50,000 images of each kind (typical: 500 or more)")
    if e.backbone not in backbone_catalogue.BACKBONES:
        bad("evaluation.backbone", f"unknown backbone '{e.backbone}'; choose one of: {', '.join(backbone_catalogue.BACKBONES)}")
    return problems


def feature_problems(e: GanEvaluationConfig, check_paths: bool = True) -> list[Problem]:
    """Problems of the FID feature source alone (the GAN lab's FID section checks only these)."""
    problems: list[Problem] = []
    if e.features not in FEATURE_SOURCES:
        problems.append(Problem("evaluation.features", f"must be one of: {', '.join(FEATURE_SOURCES)}"))
    if e.features == "classifier":
        if not e.classifier_run.strip():
            problems.append(Problem("evaluation.classifier_run", "choose a trained classifier's run folder"))
        elif check_paths and not (Path(e.classifier_run) / "model.keras").is_file():
            problems.append(Problem("evaluation.classifier_run",
                                    f"no trained classifier (model.keras) in {e.classifier_run}"))
    if e.backbone_weights not in FEATURE_WEIGHTS:
        problems.append(Problem("evaluation.backbone_weights", f"must be one of: {', '.join(FEATURE_WEIGHTS)}"))
    elif e.features == "backbone" and e.backbone_weights == "file":
        if not e.weights_file.strip():
            problems.append(Problem("evaluation.weights_file", "choose a weights file for the backbone"))
        elif check_paths and not Path(e.weights_file).is_file():
            problems.append(Problem("evaluation.weights_file", f"weights file not found: {e.weights_file}"))
    return problems
