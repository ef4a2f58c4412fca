"""Facts derived from a RunConfig, computed in one place for training, the freeze map and the window.

No TensorFlow: the window asks these questions while the user edits.
"""

from __future__ import annotations

from workbench.core.config.run import BackboneConfig, FreezeConfig, RunConfig


def effective_transfer(backbone: BackboneConfig) -> str:
    """"all", "partial" or "zero"; weights "none" means zero transfer whatever `transfer` says."""
    if backbone.weights == "none" or backbone.transfer == "zero":
        return "zero"
    return backbone.transfer


def is_pretrained(backbone: BackboneConfig) -> bool:
    """Weights that carry learned features (ImageNet or a file), as opposed to random ones."""
    return effective_transfer(backbone) != "zero"


def partial_transfer(config: RunConfig) -> BackboneConfig | None:
    """The backbone config when only its first blocks transfer (then the freeze policy is not used)."""
    return config.backbone if effective_transfer(config.backbone) == "partial" else None


def freeze_for_phase(config: RunConfig, phase: int = 0) -> FreezeConfig:
    """The freezing in force: phase 1 of two-phase fine-tuning trains the head alone."""
    if phase == 1:
        return FreezeConfig(policy="all", freeze_batchnorm=config.freeze.freeze_batchnorm)
    return config.freeze


def backbone_frozen(config: RunConfig) -> bool:
    """The whole backbone is frozen, so its features can be cached and only the head trains."""
    return config.freeze.policy == "all" and effective_transfer(config.backbone) != "partial"


def structure_only(config: RunConfig) -> RunConfig:
    """The same architecture with no weights to load: for counting and listing layers."""
    return config.replace(**{"backbone.weights": "none", "backbone.weights_file": ""})


def default_run_name(config: RunConfig) -> str:
    """The name of a run left unnamed: its dataset folder and backbone ("flowers MobileNetV2 ×0.35")."""
    import os

    folder = os.path.basename(os.path.normpath(config.data.folder)) if config.data.folder.strip() else "run"
    width = f" ×{config.backbone.width:g}" if config.backbone.width != 1.0 else ""
    return f"{folder} {config.backbone.name}{width}"
