"""Install a launcher (menu entry and icon) for the current user, the freedesktop.org way.

The .desktop file goes to $XDG_DATA_HOME/applications (default ~/.local/share/applications),
the icon to $XDG_DATA_HOME/icons/hicolor/<size>/apps. Exec points at the installed
`workbench` gui-script when there is one, else at `python -m workbench` with this interpreter.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from workbench.resources import resource_path

APP_ID = "workbench"


@dataclass(frozen=True)
class LauncherFiles:
    desktop_file: Path
    icons: tuple[Path, ...]
    command: str


def data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def launch_command() -> str:
    """The command line that starts the GUI: the gui-script next to this Python, or `python -m workbench`."""
    script = Path(sys.executable).parent / APP_ID
    if script.is_file() and os.access(script, os.X_OK):
        return shlex.quote(str(script))
    found = shutil.which(APP_ID)
    if found:
        return shlex.quote(found)
    return f"{shlex.quote(sys.executable)} -m workbench"


def desktop_entry(command: str) -> str:
    """resources/workbench.desktop with its Exec line set to `command`."""
    lines = resource_path("workbench.desktop").read_text(encoding="utf-8").splitlines()
    return "\n".join(f"Exec={command}" if line.startswith("Exec=") else line for line in lines) + "\n"


def install_launcher(target: Path | None = None) -> LauncherFiles:
    """Write the .desktop file and the icons for the current user; return where they went."""
    root = target or data_home()
    command = launch_command()
    applications = root / "applications"
    applications.mkdir(parents=True, exist_ok=True)
    desktop_file = applications / f"{APP_ID}.desktop"
    desktop_file.write_text(desktop_entry(command), encoding="utf-8")
    desktop_file.chmod(0o755)

    icons = []
    for source, size in ((resource_path("icons", "workbench.svg"), "scalable"),
                         (resource_path("icons", "workbench.png"), "256x256")):
        folder = root / "icons" / "hicolor" / size / "apps"
        folder.mkdir(parents=True, exist_ok=True)
        icon = folder / f"{APP_ID}{source.suffix}"
        shutil.copyfile(source, icon)
        icons.append(icon)

    # Refresh the menu caches where the tools exist; launchers work without them too.
    for tool in (["update-desktop-database", "-q", str(applications)],
                 ["gtk-update-icon-cache", "-q", "-t", str(root / "icons" / "hicolor")]):
        if shutil.which(tool[0]):
            subprocess.run(tool, check=False, capture_output=True, timeout=30)
    return LauncherFiles(desktop_file, tuple(icons), command)
