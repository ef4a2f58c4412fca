"""The state a checkpoint carries (epochs done, best so far), read without Keras.

A checkpoint is a .keras zip; Workbench adds one JSON member to it, so the window can tell
how far a run got without loading the model.
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import Any

STATE_MEMBER = "workbench_state.json"
STATE_VERSION = 1


def read_state(path: str | os.PathLike) -> dict[str, Any] | None:
    """The state stored in a checkpoint, or None when there is no readable checkpoint."""
    try:
        with zipfile.ZipFile(path) as archive:
            data = json.loads(archive.read(STATE_MEMBER).decode("utf-8"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("epochs_done"), int) or data["epochs_done"] < 0:
        return None
    return data
