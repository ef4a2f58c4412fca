"""Transfer against zero-init: the two configs of a comparison, and why a config cannot be compared.

The GUI's "Compare with zero-init" and `workbench compare` both train these two configs.
"""

from __future__ import annotations

from workbench.core.config.derived import is_pretrained
from workbench.core.config.run import RunConfig
from workbench.core.config.validate import validate

TRANSFER_SUFFIX = " (transfer)"
ZERO_SUFFIX = " (zero-init)"


def comparison_configs(config: RunConfig) -> tuple[RunConfig, RunConfig]:
    """The two configs: as configured, and zero transfer (same architecture, random weights)."""
    base = config.name.strip() or config.backbone.name
    transfer = config.replace(name=f"{base}{TRANSFER_SUFFIX}")
    zero = config.replace(**{"name": f"{base}{ZERO_SUFFIX}", "backbone.transfer": "zero",
                             "backbone.weights": "none"})
    return transfer, zero


def why_not_comparable(config: RunConfig) -> str:
    """Why the config cannot be compared with zero-init, or "" when it can."""
    if not is_pretrained(config.backbone):
        return ("The backbone already starts from random weights (zero transfer): choose ImageNet or a "
                "weights file (the Backbone panel, or backbone.weights) to compare transfer with zero-init.")
    problems = validate(comparison_configs(config)[1], check_paths=False)
    if problems:
        return "The zero-init run's settings have a problem: " + "; ".join(str(p) for p in problems[:3])
    return ""
