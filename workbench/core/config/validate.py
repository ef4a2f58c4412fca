"""Every problem with a RunConfig, worded for a person and tied to its field."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from workbench.core.base.problems import Problem
from workbench.core.config.run import (
    ACTIVATIONS,
    CLASS_WEIGHTS,
    DROPOUT_KINDS,
    DROPOUT_PLACEMENTS,
    FREEZE_POLICIES,
    JIT_CHOICES,
    LR_SCHEDULES,
    MONITORS,
    OPTIMIZERS,
    POOLINGS,
    PRECISIONS,
    TRANSFER_RESTS,
    TRANSFERS,
    WEIGHT_SOURCES,
    DataConfig,
    RunConfig,
    TrainingConfig,
)

_COUNT_CACHE: dict[str, tuple[tuple, dict[str, int]]] = {}


def validate(config: RunConfig, check_paths: bool = True) -> list[Problem]:
    """Every problem with the values, worded for a person; empty when the run can start."""
    from workbench.core.config import backbone_catalogue

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
    problems += _test_set_problems(d, check_paths)
    for name in ("rotation", "zoom", "contrast"):
        v = getattr(d.augment, name)
        if not 0.0 <= v < 1.0:
            bad(f"data.augment.{name}", "must be between 0 and 1")

    # backbone
    spec = backbone_catalogue.BACKBONES.get(b.name)
    if spec is None:
        bad("backbone.name", f"unknown backbone '{b.name}'; choose one of: {', '.join(backbone_catalogue.BACKBONES)}")
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
    lr_problem = learning_rate_problem(t.learning_rate)
    if lr_problem:
        bad("training.learning_rate", lr_problem)
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
            bad("training.finetune_lr_factor", f"{t.finetune_lr_factor:g} is not a usable factor: it must be above "
                                               f"0 and at most 10 (typical: 0.1, a tenth of the learning rate)")
    if t.mixed_precision not in PRECISIONS:
        bad("training.mixed_precision", f"must be one of: {', '.join(PRECISIONS)}")
    if t.jit_compile not in JIT_CHOICES:
        bad("training.jit_compile", f"must be one of: {', '.join(JIT_CHOICES)}")
    problems += _class_weight_problems(t, d.folder if check_paths else "")
    problems += _schedule_problems(t)
    return problems


LEARNING_RATE_LIMIT = 10.0  # above this every run diverges: refused
LEARNING_RATE_HIGH = 0.1  # above this most runs diverge: a warning, not a refusal
LR_TYPICAL = "typical: 1e-3 for a new head, 1e-4 to 1e-5 for fine-tuning"


def learning_rate_problem(rate: float) -> str:
    """What is wrong with a learning rate that cannot run, worded for the value entered; "" when it can."""
    if rate <= 0.0:
        return f"{rate:g} is not a learning rate: it must be above 0 ({LR_TYPICAL})"
    if rate > LEARNING_RATE_LIMIT:
        return (f"{rate:g} is far too large: with a learning rate above {LEARNING_RATE_LIMIT:g} every run "
                f"diverges ({LR_TYPICAL})")
    return ""


def warnings(config: RunConfig) -> list[Problem]:
    """Values that can run but probably should not: shown beside their field, never blocking Train."""
    found: list[Problem] = []
    t, dr = config.training, config.dropout
    if LEARNING_RATE_HIGH < t.learning_rate <= LEARNING_RATE_LIMIT:
        found.append(Problem("training.learning_rate",
                             f"{t.learning_rate:g} is very high: most runs diverge above {LEARNING_RATE_HIGH:g} "
                             f"({LR_TYPICAL})"))
    if 0.5 < t.label_smoothing < 1.0:
        found.append(Problem("training.label_smoothing",
                             f"{t.label_smoothing:g} smooths the targets so much that the classes blur (0.1 is "
                             f"common)"))
    if t.mlflow and importlib.util.find_spec("mlflow") is None:
        found.append(Problem("training.mlflow", "MLflow is not installed, so this run will not be tracked: "
                                                "pip install 'workbench[mlflow]'"))
    if 0.8 < dr.rate < 1.0:
        found.append(Problem("dropout.rate", f"{dr.rate:g} drops most activations: the model may not learn "
                                             f"(0.2 to 0.5 is common)"))
    folder = config.data.folder
    if folder.strip() and Path(folder).is_dir():
        imbalance = imbalance_warning(_images_per_class(folder), t.class_weights)
        if imbalance:
            found.append(Problem("data.folder", imbalance))
    return found


IMBALANCE_RATIO = 3.0  # the largest class this many times the smallest, or more: a warning


def imbalance_warning(counts: dict[str, int], class_weights: str = "off") -> str:
    """A warning when the largest class has IMBALANCE_RATIO times the images of the smallest; "" when not."""
    present = {name: n for name, n in counts.items() if n > 0}
    if len(present) < 2:
        return ""
    largest, smallest = max(present, key=present.get), min(present, key=present.get)
    ratio = present[largest] / present[smallest]
    if ratio < IMBALANCE_RATIO:
        return ""
    advice = ("class weights are on" if class_weights != "off" else
              "consider class weights (Training: Class weights, 'balanced') or more images of the small classes")
    return (f"the classes are imbalanced: '{largest}' has {present[largest]} images, {ratio:.1f} times "
            f"the {present[smallest]} of '{smallest}'; {advice}")


def _test_set_problems(d: DataConfig, check_paths: bool) -> list[Problem]:
    """A test folder or a test split (not both), a usable fraction, and room left for validation."""
    problems = []
    if not 0.0 <= d.test_split < 1.0:
        problems.append(Problem("data.test_split", "must be at least 0 and below 1 (e.g. 0.1 holds out 10 % "
                                                   "of each class for testing; 0: no test split)"))
    if d.test_folder.strip():
        if d.test_split > 0:
            problems.append(Problem("data.test_split", "choose a test folder or a test split, not both "
                                                       "(set the split to 0 to use the folder)"))
        if check_paths and not Path(d.test_folder).is_dir():
            problems.append(Problem("data.test_folder", f"folder not found: {d.test_folder}"))
        elif d.folder.strip() and _same_folder(d.test_folder, d.folder):
            problems.append(Problem("data.test_folder", "the test folder is the training folder: test images "
                                                        "must be images the model never trains on"))
        elif check_paths and d.folder.strip() and Path(d.folder).is_dir():
            known = _images_per_class(d.folder)
            extra = sorted(set(_images_per_class(d.test_folder)) - set(known))
            if known and extra:
                problems.append(Problem("data.test_folder", f"the test folder's classes must be the training "
                                                            f"folder's: it has {', '.join(extra)}, which the "
                                                            f"training folder lacks"))
    elif (0.0 < d.test_split < 1.0 and not d.validation_folder.strip() and d.folds < 2
          and 0.0 < d.validation_split < 1.0 and d.test_split + d.validation_split >= 1.0):
        problems.append(Problem("data.test_split", f"a test split of {d.test_split:g} and a validation split of "
                                                   f"{d.validation_split:g} leave nothing to train on: together "
                                                   f"they must stay below 1"))
    return problems


def _same_folder(a: str, b: str) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except (OSError, RuntimeError):
        return False


def _class_weight_problems(t: TrainingConfig, folder: str) -> list[Problem]:
    """A known mode; manual weights that are positive numbers for classes the folder has."""
    import math

    if t.class_weights not in CLASS_WEIGHTS:
        return [Problem("training.class_weights", f"must be one of: {', '.join(CLASS_WEIGHTS)}")]
    if t.class_weights != "manual":
        return []
    if not t.manual_class_weights:
        return [Problem("training.manual_class_weights", 'give a weight per class, e.g. {"cat": 2, "dog": 1} '
                                                         "(classes left out weigh 1)")]
    problems = []
    for name, weight in t.manual_class_weights.items():
        if not math.isfinite(weight) or weight <= 0 or weight > 1000:
            problems.append(Problem("training.manual_class_weights",
                                    f"the weight of '{name}' is {weight:g}: each weight must be above 0 and "
                                    f"at most 1000 (1: as usual, 2: counts twice)"))
    known = _images_per_class(folder) if folder.strip() and Path(folder).is_dir() else {}
    unknown = sorted(name for name in t.manual_class_weights if known and name not in known)
    if unknown:
        problems.append(Problem("training.manual_class_weights",
                                f"no class folder named {', '.join(repr(n) for n in unknown)}; the classes "
                                f"are: {', '.join(known)}"))
    return problems


def _schedule_problems(t: TrainingConfig) -> list[Problem]:
    """A known schedule; a warm-up shorter than the run (each phase's, with two-phase); plateau settings."""
    if t.lr_schedule not in LR_SCHEDULES:
        return [Problem("training.lr_schedule", f"must be one of: {', '.join(LR_SCHEDULES)}")]
    problems = []
    if t.lr_schedule == "cosine":
        if t.warmup_epochs < 0:
            problems.append(Problem("training.warmup_epochs", "must be 0 (no warm-up) or a number of epochs"))
        elif t.two_phase and 1 <= t.phase1_epochs < t.epochs:
            shortest = min(t.phase1_epochs, t.epochs - t.phase1_epochs)
            if t.warmup_epochs >= shortest:
                problems.append(Problem("training.warmup_epochs",
                                        f"each phase warms up on its own: the warm-up ({t.warmup_epochs} epochs) "
                                        f"must be shorter than the shorter phase ({shortest} epochs)"))
        elif t.warmup_epochs >= t.epochs:
            problems.append(Problem("training.warmup_epochs",
                                    f"the warm-up ({t.warmup_epochs} epochs) must be shorter than the run "
                                    f"({t.epochs} epochs), or the rate never decays"))
    if t.lr_schedule == "plateau":
        if not 0.0 < t.plateau_factor < 1.0:
            problems.append(Problem("training.plateau_factor", "must be above 0 and below 1 (0.5 halves the "
                                                               "learning rate)"))
        if t.plateau_patience < 1:
            problems.append(Problem("training.plateau_patience", "must be at least 1 epoch"))
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


def _images_per_class(folder: str) -> dict[str, int]:
    """Image files (by name) per class sub-folder; cached until a class folder changes."""
    from workbench.core.base.images import IMAGE_EXTENSIONS

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
