"""Where the app remembers things between sessions (last folder, last config, window layout)."""

from __future__ import annotations

from PySide6.QtCore import QSettings

ORGANIZATION = "Workbench"
APPLICATION = "Workbench"

LAST_FOLDER = "paths/last_folder"
LAST_CONFIG = "paths/last_config"
GEOMETRY = "window/geometry"
STATE = "window/state"
VIEW_MODE = "view/mode"  # "simple" or "expert" (ui/simple_mode.py)


def app_settings() -> QSettings:
    return QSettings(ORGANIZATION, APPLICATION)
