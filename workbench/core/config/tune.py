"""A tuning study as a plain value: the base run, the parameters to search and their ranges, the budget.

The study's JSON is a run config with a "tune" block beside its sections:
``{"data": {...}, "training": {...}, ..., "tune": {"trials": 20, "search": {"learning_rate":
{"low": 1e-5, "high": 1e-2, "log": true}}}}``. A plain run config is a study with the default
block (the CLI's flags fill it). Everything not searched comes from the base config.
No Optuna and no TensorFlow here: the window imports it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from workbench.core.base.problems import ConfigError, Problem
from workbench.core.config.run import DROPOUT_KINDS, OPTIMIZERS, RunConfig
from workbench.core.config.sweep import MAX_FOLDS
from workbench.core.config.validate import validate

SEARCHABLE: dict[str, str] = {
    "learning_rate": "Learning rate",
    "batch_size": "Batch size",
    "dropout_rate": "Dropout rate",
    "dropout_kind": "Dropout kind",
    "freeze_depth": "Freeze depth (trainable top blocks or layers)",
    "dense_units": "Head dense units",
    "augmentation": "Augmentation strength",
    "label_smoothing": "Label smoothing",
    "optimizer": "Optimizer",
}


INTEGER_PARAMS = ("batch_size", "freeze_depth", "dense_units")


CATEGORICAL_PARAMS = ("dropout_kind", "optimizer")


# Short names the CLI's --search accepts besides the full ones.
ALIASES = {"lr": "learning_rate", "batch": "batch_size", "dropout": "dropout_rate", "kind": "dropout_kind",
           "freeze": "freeze_depth", "dense": "dense_units", "augment": "augmentation",
           "smoothing": "label_smoothing"}


SAMPLERS = ("tpe", "grid")


PRUNERS = ("median", "none")


METRIC, DIRECTION = "val_accuracy", "maximize"  # a trial's value: its best validation accuracy (mean over folds)


MAX_GRID = 10000  # grid points; a larger grid is a typo (a step far too small)


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")


@dataclass
class SearchRange:
    """A numeric range (low..high, optionally log-scaled or stepped) or, when `choices` is given, a list of values."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {"low": self.low, "high": self.high, "log": self.log, "step": self.step, "choices": self.choices}
        return {k: v for k, v in data.items() if v is not None and v is not False}

    @classmethod
    def from_dict(cls, data: Any, where: str, problems: list[Problem]) -> SearchRange:
        if not isinstance(data, dict):
            problems.append(Problem(where, "must be a range ({\"low\": ..., \"high\": ...}) or {\"choices\": [...]}"))
            return cls()
        known = {"low", "high", "log", "step", "choices"}
        for key in data:
            if key not in known:
                problems.append(Problem(f"{where}.{key}", f"unknown setting '{key}' (known: {', '.join(sorted(known))})"))
        out = cls()
        for key in ("low", "high", "step"):
            value = data.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                problems.append(Problem(f"{where}.{key}", f"must be a number, not {json.dumps(value)[:40]}"))
            else:
                setattr(out, key, value)
        if not isinstance(data.get("log", False), bool):
            problems.append(Problem(f"{where}.log", "must be true or false"))
        else:
            out.log = data.get("log", False)
        choices = data.get("choices")
        if choices is not None and not isinstance(choices, list):
            problems.append(Problem(f"{where}.choices", "must be a list of values"))
        else:
            out.choices = choices
        return out

    def grid_values(self, integer: bool) -> list | None:
        """Every value a grid visits: the choices, or low..high by step; None when the range is continuous."""
        if self.choices is not None:
            return list(dict.fromkeys(self.choices))
        if self.low is None or self.high is None:
            return None
        step = self.step if self.step is not None else (1 if integer else None)
        if step is None or step <= 0 or self.high < self.low:
            return None
        count = int(math.floor((self.high - self.low) / step + 1e-9)) + 1
        if count > MAX_GRID:
            return None
        values = [self.low + i * step for i in range(count)]
        return [int(round(v)) for v in values] if integer else [round(v, 12) for v in values]


@dataclass
class TuneConfig:
    base: RunConfig
    search: dict[str, SearchRange] = field(default_factory=dict)
    trials: int = 20  # the study's trials in all (complete or pruned), shared by every process that joins it
    timeout_s: float = 0.0  # this process's time budget; 0: none
    folds: int = 1  # 2 or more: k-fold cross-validation per trial, its value the mean over the folds
    sampler: str = "tpe"  # "tpe" (seeded) | "grid" (every combination of the ranges' values)
    seed: int = 0
    pruner: str = "median"  # "median" | "none"
    storage: str = ""  # empty: a SQLite file in the study folder; else an Optuna RDB URL
    study_name: str = ""  # empty: a fresh name (the date and time)
    heartbeat_s: int = 10  # a process silent for twice this long has its running trials marked failed

    def to_dict(self) -> dict[str, Any]:
        """The base run config with the "tune" block beside its sections."""
        return {**self.base.to_dict(), "tune": self.tune_block()}

    def tune_block(self) -> dict[str, Any]:
        return {
            "search": {name: r.to_dict() for name, r in self.search.items()},
            "trials": self.trials, "timeout_s": self.timeout_s, "folds": self.folds,
            "sampler": self.sampler, "seed": self.seed, "pruner": self.pruner,
            "storage": self.storage, "study_name": self.study_name, "heartbeat_s": self.heartbeat_s,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: Any) -> TuneConfig:
        """A run config with an optional "tune" block; ConfigError lists every bad key or type."""
        if not isinstance(data, dict):
            raise ConfigError([Problem("", "the config must be a JSON object ({...})")])
        data = dict(data)
        block = data.pop("tune", {})
        problems: list[Problem] = []
        try:
            base = RunConfig.from_dict(data)
        except ConfigError as exc:
            problems += exc.problems
            base = RunConfig()
        if not isinstance(block, dict):
            raise ConfigError(problems + [Problem("tune", "must be a group of settings ({...})")])
        tune = cls(base)
        types = {"trials": int, "timeout_s": float, "folds": int, "sampler": str, "seed": int, "pruner": str,
                 "storage": str, "study_name": str, "heartbeat_s": int}
        for key, value in block.items():
            where = f"tune.{key}"
            if key == "search":
                if not isinstance(value, dict):
                    problems.append(Problem(where, "must map parameter names to ranges"))
                    continue
                tune.search = {str(n): SearchRange.from_dict(r, f"{where}.{n}", problems) for n, r in value.items()}
            elif key in types:
                if not _is_type(value, types[key]):
                    names = {int: "a whole number", float: "a number", str: "text"}
                    problems.append(Problem(where, f"must be {names[types[key]]}, not {json.dumps(value)[:40]}"))
                else:
                    setattr(tune, key, float(value) if types[key] is float else value)
            else:
                known = ", ".join(sorted([*types, "search"]))
                problems.append(Problem(where, f"unknown setting '{key}' (known: {known})"))
        if problems:
            raise ConfigError(problems)
        return tune

    @classmethod
    def from_json(cls, text: str) -> TuneConfig:
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise ConfigError([Problem("", f"not valid JSON: {str(exc)[:120]}")]) from None
        return cls.from_dict(data)


def _is_type(value: Any, tp: type) -> bool:
    if isinstance(value, bool):
        return False
    if tp is float:
        return isinstance(value, (int, float)) and math.isfinite(value)
    return isinstance(value, tp)


def resolve_param(name: str) -> str:
    """A parameter's full name from itself or its short alias ("lr"); ValueError for neither."""
    full = ALIASES.get(name.strip(), name.strip())
    if full not in SEARCHABLE:
        short = ", ".join(f"{a} ({f})" for a, f in ALIASES.items())
        raise ValueError(f"unknown parameter '{name.strip()}': choose from {', '.join(SEARCHABLE)} or the short "
                         f"names {short}")
    return full


def block_count(base: RunConfig) -> int:
    from workbench.core.config import backbone_catalogue

    spec = backbone_catalogue.BACKBONES.get(base.backbone.name)
    return len(spec.blocks) if spec is not None else 1


def default_range(name: str, base: RunConfig) -> SearchRange:
    """The range a person starts from when they tick a parameter."""
    if name == "learning_rate":
        return SearchRange(1e-5, 1e-2, log=True)
    if name == "batch_size":
        return SearchRange(choices=[8, 16, 32, 64])
    if name == "dropout_rate":
        return SearchRange(0.0, 0.6)
    if name == "dropout_kind":
        kinds = ["dropout", "gaussian"]
        return SearchRange(choices=kinds + (["spatial"] if "feature_map" in base.dropout.placement else []))
    if name == "freeze_depth":
        high = 20 if base.freeze.policy == "top_layers" else block_count(base)
        return SearchRange(0, high, step=1)
    if name == "dense_units":
        return SearchRange(choices=[0, 64, 128, 256])
    if name == "augmentation":
        return SearchRange(0.0, 0.3)
    if name == "label_smoothing":
        return SearchRange(0.0, 0.2)
    if name == "optimizer":
        return SearchRange(choices=list(OPTIMIZERS))
    raise ValueError(f"unknown parameter '{name}'")


def dropout_preset(base: RunConfig, rates: list[float], kinds: list[str], folds: int) -> TuneConfig:
    """The Dropout lab's one-click sweep as a study: a grid over rate x kind, k folds per trial."""
    kinds = list(dict.fromkeys(kinds)) or [base.dropout.kind]
    rates = list(dict.fromkeys(float(r) for r in rates))
    search = {"dropout_rate": SearchRange(choices=rates)}
    if len(kinds) > 1 or kinds[0] != base.dropout.kind:
        search["dropout_kind"] = SearchRange(choices=kinds)
    return TuneConfig(base, search, trials=len(rates) * len(kinds), folds=folds, sampler="grid", pruner="none")


def trial_config(base: RunConfig, params: dict) -> RunConfig:
    """The base config with a trial's parameters; also what "Apply best" writes into the window's config.

    freeze_depth n trains the top n blocks (the top n layers when the base policy is top_layers);
    0 freezes the whole backbone. dense_units n is one dense layer of n units (0: none).
    Augmentation strength s: flips when s > 0, rotation s / 2 of a turn, zoom and contrast s.
    """
    changes: dict[str, Any] = {}
    for name, value in params.items():
        if name == "learning_rate":
            changes["training.learning_rate"] = float(value)
        elif name == "batch_size":
            changes["training.batch_size"] = int(value)
        elif name == "dropout_rate":
            changes["dropout.rate"] = float(value)
        elif name == "dropout_kind":
            changes["dropout.kind"] = str(value)
        elif name == "freeze_depth":
            depth = int(value)
            if depth <= 0:
                changes["freeze.policy"] = "all"
            elif base.freeze.policy == "top_layers":
                changes["freeze.layers"] = depth
            else:
                changes.update({"freeze.policy": "top_blocks", "freeze.blocks": depth})
        elif name == "dense_units":
            changes["head.dense_units"] = [int(value)] if int(value) > 0 else []
        elif name == "augmentation":
            s = float(value)
            changes.update({"data.augment.flip": s > 0, "data.augment.rotation": s / 2,
                            "data.augment.zoom": s, "data.augment.contrast": s})
        elif name == "label_smoothing":
            changes["training.label_smoothing"] = float(value)
        elif name == "optimizer":
            changes["training.optimizer"] = str(value)
        else:
            raise ValueError(f"unknown parameter '{name}'")
    return base.replace(**changes)


def fold_config(config: RunConfig, folds: int, fold: int) -> RunConfig:
    """A trial's config for one fold: the k-fold split the dropout sweep uses (data.folds, data.fold)."""
    return config.replace(**{"data.folds": folds, "data.fold": fold}) if folds >= 2 else config


def fingerprint(tune: TuneConfig) -> str:
    """What makes two processes the same study: the base config and the search, not the budget.

    The run's name and the dataset's paths are left out, so machines that mount the dataset
    at different paths can share a study.
    """
    base = tune.base.to_dict()
    base.pop("name", None)
    base["data"] = {k: v for k, v in base["data"].items() if k not in ("folder", "validation_folder")}
    data = {"base": base, "search": {n: tune.search[n].to_dict() for n in sorted(tune.search)},
            "folds": tune.folds, "sampler": tune.sampler, "metric": METRIC}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def validate_tune(tune: TuneConfig, check_paths: bool = True) -> list[Problem]:
    """Every problem of the study and of its trials' configs, worded for a person; empty when it can run."""
    problems: list[Problem] = []

    def bad(where: str, message: str) -> None:
        problems.append(Problem(where, message))

    if not tune.search:
        bad("tune.search", "choose at least one parameter to search")
    for name, r in tune.search.items():
        if name not in SEARCHABLE:
            bad(f"tune.search.{name}", f"unknown parameter '{name}'; choose from {', '.join(SEARCHABLE)}")
        else:
            problems += range_problems(name, r, tune.base)
    if tune.trials < 1:
        bad("tune.trials", "must be at least 1")
    if not (math.isfinite(tune.timeout_s) and tune.timeout_s >= 0):
        bad("tune.timeout_s", "must be 0 (no time limit) or a number of seconds")
    if not 0 <= tune.folds <= MAX_FOLDS:
        bad("tune.folds", f"must be between 2 and {MAX_FOLDS} (or 1 for no cross-validation)")
    if tune.sampler not in SAMPLERS:
        bad("tune.sampler", f"must be one of: {', '.join(SAMPLERS)}")
    if tune.pruner not in PRUNERS:
        bad("tune.pruner", f"must be one of: {', '.join(PRUNERS)}")
    if tune.seed < 0:
        bad("tune.seed", "must be 0 or more")
    if tune.heartbeat_s < 1:
        bad("tune.heartbeat_s", "must be at least 1 second")
    if tune.study_name and not _NAME.match(tune.study_name):
        bad("tune.study_name", "use letters, digits, '.', '_' and '-' (at most 80), starting with a letter or digit")
    if tune.storage.strip() and "://" not in tune.storage:
        bad("tune.storage", "must be a database URL such as sqlite:///study.db or postgresql://user@host/db")
    if problems:
        return problems
    if tune.sampler == "grid":
        for name, r in tune.search.items():
            if r.grid_values(name in INTEGER_PARAMS) is None:
                bad(f"tune.search.{name}", "a grid needs a list of values, or a range with a step")
        if problems:
            return problems
    problems += _trial_problems(tune, check_paths)
    return problems


def range_problems(name: str, r: SearchRange, base: RunConfig) -> list[Problem]:
    """What is wrong with one parameter's range; empty when a study can draw from it."""
    where = f"tune.search.{name}"
    if r.choices is not None:
        if not r.choices:
            return [Problem(where, "the list of values is empty: give at least one")]
        return [Problem(where, m) for m in (_value_problem(name, v, base) for v in r.choices) if m]
    if name in CATEGORICAL_PARAMS:
        return [Problem(where, "give a list of values to choose from (\"choices\")")]
    if r.low is None or r.high is None:
        return [Problem(where, "give a low and a high value (or a list of values)")]
    if r.low > r.high:
        return [Problem(where, f"the range is empty: low {r.low:g} is above high {r.high:g}")]
    found = [m for m in (_value_problem(name, r.low, base), _value_problem(name, r.high, base)) if m]
    if r.log and r.low <= 0:
        found.append(f"a log scale needs a low value above 0, not {r.low:g}")
    if r.log and r.step is not None:
        found.append("a range is either log-scaled or stepped, not both")
    if r.step is not None and r.step <= 0:
        found.append(f"the step must be above 0, not {r.step:g}")
    if name in INTEGER_PARAMS and any(v is not None and float(v) != int(v) for v in (r.low, r.high, r.step)):
        found.append("this parameter takes whole numbers")
    return [Problem(where, m) for m in dict.fromkeys(found)]


def _value_problem(name: str, value: Any, base: RunConfig) -> str:
    if name == "dropout_kind":
        return "" if value in DROPOUT_KINDS else f"unknown dropout kind {value!r}; choose from {', '.join(DROPOUT_KINDS)}"
    if name == "optimizer":
        return "" if value in OPTIMIZERS else f"unknown optimizer {value!r}; choose from {', '.join(OPTIMIZERS)}"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return f"{json.dumps(value)[:40]} is not a number"
    if name in INTEGER_PARAMS and float(value) != int(value):
        return f"{value:g} is not a whole number"
    limits = {"learning_rate": (0.0, 10.0, False), "batch_size": (1, 4096, True), "dropout_rate": (0.0, 1.0, False),
              "freeze_depth": (0, block_count(base) if base.freeze.policy != "top_layers" else 100000, True),
              "dense_units": (0, 65536, True), "augmentation": (0.0, 1.0, False), "label_smoothing": (0.0, 1.0, False)}
    low, high, closed = limits[name]
    if name == "learning_rate" and value <= 0:
        return f"{value:g} is not a learning rate: it must be above 0"
    if value < low or value > high or (not closed and value == high):
        return f"{value:g} is out of range: it must be {'between' if closed else 'at least'} {low:g} and " \
               f"{'' if closed else 'below '}{high:g}"
    return ""


def corner_params(tune: TuneConfig) -> list[dict[str, Any]]:
    """Trials worth checking before a study starts: every parameter at its lowest, then at its highest
    value, and each listed value of a parameter with the others at their lowest."""
    def pick(r: SearchRange, last: bool) -> Any:
        if r.choices is not None:
            return r.choices[-1] if last else r.choices[0]
        return r.high if last else r.low

    lows = {n: pick(r, False) for n, r in tune.search.items()}
    found = [lows, {n: pick(r, True) for n, r in tune.search.items()}]
    for name, r in tune.search.items():
        found += [{**lows, name: value} for value in (r.choices or [])[1:-1]]
    return found


def _trial_problems(tune: TuneConfig, check_paths: bool) -> list[Problem]:
    """The base config's problems, and those a trial at the ends of the ranges (or any listed value) would have."""
    problems = validate(fold_config(tune.base, tune.folds, 0), check_paths)
    seen = set(problems)
    for params in corner_params(tune):
        for problem in validate(fold_config(trial_config(tune.base, params), tune.folds, 0), check_paths):
            if problem not in seen:
                seen.add(problem)
                words = ", ".join(f"{n} {v}" for n, v in params.items())
                problems.append(Problem(problem.field, f"with {words}: {problem.message}"))
    return problems


def study_name_problem(name: str) -> str:
    return "" if _NAME.match(name) else (
        "a study name uses letters, digits, '.', '_' and '-' (at most 80), starting with a letter or digit")
