"""Find the files in the repository's resources/ folder (demo data, icons, style sheet).

In a source checkout or an editable install they sit next to the package, in
../resources. A wheel can carry a copy inside the package (workbench/resources);
that copy is looked at second.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_CANDIDATES = (_PACKAGE.parent / "resources", _PACKAGE / "resources")


def resources_dir() -> Path:
    """The resources folder; FileNotFoundError naming where it was looked for when missing."""
    for candidate in _CANDIDATES:
        if candidate.is_dir():
            return candidate
    looked = ", ".join(str(c) for c in _CANDIDATES)
    raise FileNotFoundError(
        f"Workbench's resources folder is missing (looked in {looked}); "
        "reinstall Workbench from its source folder (pip install -e .)"
    )


def resource_path(*parts: str) -> Path:
    """Path of a file or folder under resources/, e.g. resource_path("icons", "workbench.svg").

    Raises FileNotFoundError with the full path when it does not exist.
    """
    path = resources_dir().joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"Workbench resource not found: {path}")
    return path
