"""A dataset folder -> usable images per class, and everything left out, in words."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from workbench.core.base.images import is_image_name
from workbench.core.base.problems import Problem
from workbench.core.data.decode import inspect_image
from workbench.core.data.splits import ItemList

# Images excluded from a dataset (data/edits.py) wait here, inside it, by class: never a class itself.
EXCLUDED_FOLDER = "_excluded"
_TOO_FEW_CLASSES = "training needs at least two classes (sub-folders) with usable images"


@dataclass(frozen=True)
class ScanReport:
    """What a folder holds: usable images per class, and everything left out, in words."""

    root: str
    class_names: tuple[str, ...]
    items: ItemList  # (path, label index into class_names), in a stable order
    counts: dict[str, int]
    problems: tuple[Problem, ...] = ()
    blocking: tuple[Problem, ...] = ()  # the problems (also in `problems`) that make training impossible
    ignored_files: int = 0  # non-image files inside class folders
    # Usable files that tf.io would not decode as Pillow does (CMYK, 16-bit, EXIF-rotated, ...):
    # the pipeline decodes these with Pillow, all others natively (data/decode.py).
    pillow_paths: frozenset[str] = frozenset()

    @property
    def warnings(self) -> tuple[Problem, ...]:
        """Problems that only left something out; training can still go ahead."""
        return tuple(p for p in self.problems if p not in self.blocking)

    def summary(self) -> str:
        lines = [f"{self.root}: {len(self.items)} usable images in {len(self.class_names)} classes"]
        width = max((len(n) for n in self.class_names), default=0)
        lines += [f"  {name:<{width}}  {self.counts[name]}" for name in self.class_names]
        if self.blocking:
            lines.append(f"Cannot train ({len(self.blocking)}):")
            lines += [f"  - {p.message}" for p in self.blocking]
        if self.warnings:
            lines.append(f"Left out ({len(self.warnings)}):")
            lines += [f"  - {p.message}" for p in self.warnings]
        return "\n".join(lines)


def blocking_problems(report: ScanReport) -> tuple[Problem, ...]:
    """The problems that make training impossible (the rest are warnings)."""
    return report.blocking


def scan_folder(
    path: str | os.PathLike,
    *,
    field: str = "data.folder",
    progress: Callable[[int, int], None] | None = None,
) -> ScanReport:
    """Find the classes and usable images under a folder-per-class tree.

    Never raises for bad content: everything left out becomes a Problem. `progress(done, total)`
    is called from this thread while files are checked.
    """
    root = Path(path)
    problems: list[Problem] = []
    blocking: list[Problem] = []

    def block(message: str) -> None:
        problem = Problem(field, message)
        problems.append(problem)
        blocking.append(problem)

    if not root.is_dir():
        block(f"folder not found: {root}")
        return ScanReport(str(root), (), (), {}, tuple(problems), tuple(blocking))

    folders, stray_images = [], 0
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name.startswith(".") or entry.name == EXCLUDED_FOLDER:
            continue
        if entry.is_dir():
            folders.append(entry.name)
        elif is_image_name(entry.name):
            stray_images += 1

    candidates: list[tuple[str, str]] = []  # (class, path)
    ignored = 0
    for name in folders:
        for file in walk_files(root / name):
            if is_image_name(file):
                candidates.append((name, file))
            else:
                ignored += 1

    checked = inspect_all([p for _, p in candidates], progress)

    usable: dict[str, list[str]] = {name: [] for name in folders}
    pillow_paths = set()
    for (name, file), (reason, pillow) in zip(candidates, checked, strict=True):
        if reason is None:
            usable[name].append(file)
            if pillow:
                pillow_paths.add(file)
        else:
            problems.append(Problem(field, f"{os.path.relpath(file, root)}: {reason}"))
    if ignored:
        problems.append(Problem(field, f"{ignored} file(s) that are not images (by their names) were ignored"))
    if stray_images:
        problems.append(Problem(
            field, f"{stray_images} image(s) directly in {root} belong to no class sub-folder and were left out"))
    for name in folders:
        if not usable[name]:
            problems.append(Problem(field, f"class '{name}' has no usable images and was left out"))

    class_names = tuple(n for n in folders if usable[n])
    if not folders:
        block(f"{root} has no sub-folders: put the images of each class in a sub-folder named after it")
    elif len(class_names) < 2:
        block(f"{_TOO_FEW_CLASSES}; found {len(class_names)}")
    items = tuple((p, label) for label, n in enumerate(class_names) for p in usable[n])
    counts = {n: len(usable[n]) for n in class_names}
    return ScanReport(str(root), class_names, items, counts, tuple(problems), tuple(blocking), ignored,
                      frozenset(pillow_paths))


def walk_files(folder: Path) -> list[str]:
    """Every non-hidden file below folder (recursive), sorted so scans repeat exactly."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [os.path.join(dirpath, f) for f in sorted(filenames) if not f.startswith(".")]
    return sorted(found)


def check_all(paths: list[str], progress: Callable[[int, int], None] | None) -> list[str | None]:
    """check_image over a thread pool (Pillow decodes without the GIL); results in input order."""
    return [reason for reason, _ in inspect_all(paths, progress)]


def inspect_all(
    paths: list[str], progress: Callable[[int, int], None] | None
) -> list[tuple[str | None, bool]]:
    """inspect_image (problem, needs Pillow) over a thread pool; results in input order."""
    if not paths:
        return []
    workers = min(32, 2 * (os.cpu_count() or 1), len(paths))
    results: list[tuple[str | None, bool]] = []
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="scan") as pool:
        for result in pool.map(inspect_image, paths, chunksize=16):
            results.append(result)
            if progress is not None and (len(results) % 64 == 0 or len(results) == len(paths)):
                progress(len(results), len(paths))
    return results
