"""A GAN dropout sweep as a plain value: the discriminator dropout rates to try."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from workbench.core.base.problems import Problem
from workbench.core.config.gan import GanConfig, validate_gan
from workbench.core.config.sweep import parse_rates  # noqa: F401 - the same rate syntax as the dropout lab


@dataclass
class GanSweepConfig:
    base: GanConfig
    rates: list[float]

    def rate_list(self) -> list[float]:
        return list(dict.fromkeys(float(r) for r in self.rates))


def trial_config(sweep: GanSweepConfig, rate: float, sweep_id: str = "") -> GanConfig:
    """The base config at one discriminator dropout rate, with FID computed at its end."""
    changes: dict[str, Any] = {"dropout.rate": float(rate), "evaluation.fid_at_end": True}
    if rate > 0 and not sweep.base.dropout.placement:
        changes["dropout.placement"] = ["after_conv"]
    if sweep_id:
        changes["name"] = f"gan sweep {sweep_id[-6:]} rate {rate:g}"
    return sweep.base.replace(**changes)


def validate_gan_sweep(sweep: GanSweepConfig, check_paths: bool = True) -> list[Problem]:
    problems: list[Problem] = []
    if not sweep.rates:
        problems.append(Problem("sweep.rates", "choose at least one dropout rate"))
    for rate in sweep.rates:
        if not (isinstance(rate, (int, float)) and math.isfinite(rate) and 0.0 <= rate < 1.0):
            problems.append(Problem("sweep.rates", f"a rate must be at least 0 and below 1, not {rate}"))
    if problems:
        return problems
    seen: set[Problem] = set()
    for rate in sweep.rate_list():
        for problem in validate_gan(trial_config(sweep, rate), check_paths):
            if problem not in seen:
                seen.add(problem)
                problems.append(problem)
    return problems
