"""A dropout sweep as a plain value: the rates, kinds and folds to try, and each trial's run config."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from workbench.core.base.problems import Problem
from workbench.core.config.run import DROPOUT_KINDS, RunConfig
from workbench.core.config.validate import validate

MAX_FOLDS = 100


@dataclass
class SweepConfig:
    base: RunConfig
    rates: list[float]
    kinds: list[str] = field(default_factory=list)  # empty: just the base config's kind
    folds: int = 1  # 2 or more: k-fold cross-validation; 0 or 1: the base config's own split

    def kind_list(self) -> list[str]:
        return list(dict.fromkeys(self.kinds)) or [self.base.dropout.kind]

    def rate_list(self) -> list[float]:
        return list(dict.fromkeys(float(r) for r in self.rates))

    def fold_list(self) -> list[int]:
        return list(range(self.folds)) if self.folds >= 2 else [0]

    def trials(self) -> list[Trial]:
        """Every (kind, rate, fold), kinds outermost and folds innermost: a rate's folds run together.

        Rate 0 builds no dropout layer whatever the kind, so it runs for the first kind only.
        """
        kinds = self.kind_list()
        plan = [(k, r, f) for k in kinds for r in self.rate_list() for f in self.fold_list()
                if r > 0 or k == kinds[0]]
        return [Trial(i, k, r, f) for i, (k, r, f) in enumerate(plan)]

    def to_dict(self) -> dict[str, Any]:
        return {"rates": self.rate_list(), "kinds": self.kind_list(), "folds": self.folds,
                "base": self.base.to_dict()}


@dataclass(frozen=True)
class Trial:
    index: int
    kind: str
    rate: float
    fold: int  # 0-based; 0 when the sweep does not cross-validate


def parse_rates(text: str) -> list[float]:
    """"0, 0.2, 0.4" (commas, semicolons or spaces) -> [0.0, 0.2, 0.4]; ValueError worded for a person."""
    parts = [p for p in text.replace(";", ",").replace(" ", ",").split(",") if p.strip()]
    if not parts:
        raise ValueError("enter one or more dropout rates separated by commas, e.g. 0, 0.2, 0.4")
    rates = []
    for part in parts:
        try:
            value = float(part.strip())
        except ValueError:
            raise ValueError(f"'{part.strip()}' is not a number: enter rates like 0, 0.2, 0.4") from None
        if not (math.isfinite(value) and 0.0 <= value < 1.0):
            raise ValueError(f"a rate must be at least 0 and below 1, not {part.strip()}")
        rates.append(value)
    return list(dict.fromkeys(rates))


def parse_kinds(text: str) -> list[str]:
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in DROPOUT_KINDS]
    if unknown:
        raise ValueError(f"unknown dropout kind(s) {', '.join(unknown)}; choose from {', '.join(DROPOUT_KINDS)}")
    return kinds


def trial_name(sweep_id: str, trial: Trial, several_kinds: bool, folds: int) -> str:
    """'sweep 153012 rate 0.3 fold 2' (fold 1-based, as people count); names the trial's run folder."""
    kind = f" {trial.kind}" if several_kinds else ""
    fold = f" fold {trial.fold + 1}" if folds >= 2 else ""
    return f"sweep {sweep_id[-6:]}{kind} rate {trial.rate:g}{fold}"


def trial_config(sweep: SweepConfig, trial: Trial, sweep_id: str = "") -> RunConfig:
    """The base config with the trial's dropout kind and rate (and its fold)."""
    changes: dict[str, Any] = {"dropout.kind": trial.kind, "dropout.rate": trial.rate}
    if sweep.folds >= 2:
        changes.update({"data.folds": sweep.folds, "data.fold": trial.fold})
    if sweep_id:
        changes["name"] = trial_name(sweep_id, trial, len(sweep.kind_list()) > 1, sweep.folds)
    return sweep.base.replace(**changes)


def validate_sweep(sweep: SweepConfig, check_paths: bool = True) -> list[Problem]:
    """Every problem of the sweep and of each trial's config, worded for a person; empty when it can run."""
    problems: list[Problem] = []
    if not sweep.rates:
        problems.append(Problem("sweep.rates", "choose at least one dropout rate"))
    for rate in sweep.rates:
        if not (isinstance(rate, (int, float)) and math.isfinite(rate) and 0.0 <= rate < 1.0):
            problems.append(Problem("sweep.rates", f"a rate must be at least 0 and below 1, not {rate}"))
    for kind in sweep.kinds:
        if kind not in DROPOUT_KINDS:
            problems.append(Problem("sweep.kinds", f"unknown dropout kind '{kind}'; choose from {', '.join(DROPOUT_KINDS)}"))
    if not 0 <= sweep.folds <= MAX_FOLDS:
        problems.append(Problem("sweep.folds", f"must be between 2 and {MAX_FOLDS} (or 1 for no cross-validation)"))
    if problems:
        return problems

    # A fold's index never changes whether a config is valid: check fold 0 of each (kind, rate).
    firsts = [t for t in sweep.trials() if t.fold == 0]
    per_trial = [(t, validate(trial_config(sweep, t), check_paths)) for t in firsts]
    shared = set.intersection(*(set(found) for _, found in per_trial)) if per_trial else set()
    seen: set[Problem] = set()
    for trial, found in per_trial:
        for problem in found:
            if problem in shared:
                if problem not in seen:
                    seen.add(problem)
                    problems.append(problem)
            else:
                problems.append(Problem(problem.field, f"with {trial.kind} at rate {trial.rate:g}: {problem.message}"))
    return problems
