"""Backbones saved from runs (under <runs>/weights/) and the ones Workbench ships (resources/backbones/).

Listing them and reading what each came from. The bundled ones are pretrained by
tools/pretrain_demo_backbone.py; resources/backbones/README.md gives their recipe.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

SAVED_BACKBONES_DIR = "weights"  # under the runs folder: backbones saved from runs, by name
BUNDLED_BACKBONES_DIR = "backbones"  # under resources/: backbones that ship with Workbench
# The demo's backbone (MobileNetV2 x0.35 at 64 px, pretrained on Fashion-MNIST classes not in the demo).
DEMO_BACKBONE_FILE = "mobilenetv2-0.35-64px-fashion6.weights.h5"


def write_backbone_info(run: Path, path: Path) -> None:
    """Beside the weights, what they fit and where they came from (saved_backbone_info reads it)."""
    from workbench.core.base.files import atomic_write_text
    from workbench.core.base.problems import ConfigError
    from workbench.core.config.run import load_config
    from workbench.core.runs.store import CONFIG_FILE

    try:
        config = load_config(run / CONFIG_FILE)
    except ConfigError:
        return
    info = {"backbone": config.backbone.name, "width": config.backbone.width,
            "image_size": config.data.image_size, "run": run.name, "run_name": config.name}
    try:
        atomic_write_text(_info_path(path), json.dumps(info, indent=2) + "\n")
    except OSError:
        pass  # the weights are saved; only the description is missing


def _info_path(path: Path) -> Path:
    return path.with_name(path.name[: -len(".weights.h5")] + ".json")


def saved_backbone_info(path: str | os.PathLike) -> dict[str, Any]:
    """What a saved backbone fits ({"backbone", "width", "image_size", "run", "run_name"}); {} when unknown."""
    try:
        info = json.loads(_info_path(Path(path)).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def saved_backbones(runs_dir: str | os.PathLike | None = None) -> list[Path]:
    """Backbones saved from runs (save_run_backbone), newest first."""
    from workbench.core.runs.store import default_runs_dir

    folder = (Path(runs_dir) if runs_dir is not None else default_runs_dir()) / SAVED_BACKBONES_DIR
    if not folder.is_dir():
        return []
    files = [p for p in folder.glob("*.weights.h5") if not p.name.startswith(".")]
    return sorted(files, key=lambda p: p.stat().st_mtime, reverse=True)


def bundled_backbones() -> list[Path]:
    """The backbones that ship with Workbench (resources/backbones/), by name; [] when none are there."""
    from workbench.resources import resource_path

    try:
        folder = resource_path(BUNDLED_BACKBONES_DIR)
    except FileNotFoundError:
        return []
    return sorted(p for p in folder.glob("*.weights.h5") if not p.name.startswith("."))


def bundled_demo_backbone() -> Path | None:
    """The bundled backbone the demo starts from when ImageNet weights are not cached, or None when missing."""
    for path in bundled_backbones():
        if path.name == DEMO_BACKBONE_FILE:
            return path
    return None


def is_bundled_backbone(path: str | os.PathLike) -> bool:
    """Whether `path` is one of the backbones that ship with Workbench."""
    try:
        target = Path(path).resolve()
    except (OSError, ValueError):
        return False
    return any(target == p.resolve() for p in bundled_backbones())


def available_backbones(runs_dir: str | os.PathLike | None = None) -> list[Path]:
    """Every backbone to start from: those saved from runs (newest first), then the bundled ones."""
    return saved_backbones(runs_dir) + bundled_backbones()
