"""Loading saved models with Workbench's layers registered, in safe mode."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import keras

import workbench.core.engine.layers  # noqa: F401  (registers Preprocess and DropBlock2D for loading)
from workbench.core.runs.store import RunError


def load_model(path: Any, compile: bool = True) -> Any:
    """A saved classifier; safe_mode stays on (no Lambda layers)."""
    return keras.saving.load_model(str(path), compile=compile, safe_mode=True)


def load_model_file(path: str | os.PathLike) -> Any:
    """load_model, with a failure worded for a person. Raises RunError."""
    try:
        return load_model(path)
    except Exception as exc:  # noqa: BLE001 - Keras raises many kinds for a bad file
        raise RunError(_load_problem(Path(path), exc)) from None


def _load_problem(path: Path, exc: Exception) -> str:
    text = str(exc)
    if "safe_mode" in text or "Lambda" in text:
        return (
            f"{path} contains code (a Lambda layer) and was refused: Workbench loads models in safe "
            "mode, which never runs code stored in a model file. Rebuild the model without Lambda "
            "layers (Workbench's own models need none)."
        )
    if "Could not locate" in text or "Unknown layer" in text:
        return f"{path} uses a layer Workbench does not know, so it cannot be loaded: {text.splitlines()[0]}"
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return f"cannot load the model {path}: {first[:300]}"
