"""Edits to a dataset folder: move an image to another class, exclude it, label it, undo.

Nothing is ever deleted or overwritten: a file only moves, a name taken at the destination gets a
numbered suffix (and the edit says so), and excluded images go to `_excluded/<class>/` inside the
dataset, which the scan never treats as a class (scan.EXCLUDED_FOLDER). Every edit is one line of
`.workbench-edits.jsonl` in the dataset folder (time, action, from, to), so the GUI, the CLI and a
person reading the log see the same history, and `undo_last` walks it back one edit at a time.
No TensorFlow here: the window calls these directly.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from workbench.core.base.files import atomic_append_line
from workbench.core.data.scan import EXCLUDED_FOLDER

EDIT_LOG = ".workbench-edits.jsonl"
READ_ONLY = (errno.EACCES, errno.EROFS, errno.EPERM)
NO_HARD_LINKS = (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EMLINK, errno.ENOSYS)


class EditError(Exception):
    """An edit that could not be made, worded for a person; nothing was lost."""


@dataclass(frozen=True)
class Edit:
    """One line of the log: a file moved from `source` to `dest` (absolute paths here)."""

    time: str
    action: str  # move | exclude | label | undo
    source: str
    dest: str
    renamed: bool = False  # the name was taken at the destination, so it got a suffix
    undoes: int = -1  # undo only: the line number (0-based) of the edit it reverses
    missing: bool = False  # undo only: the file was gone, so nothing moved

    def describe(self) -> str:
        """One sentence for a status line or the terminal."""
        verb = {"move": "Moved", "exclude": "Excluded", "label": "Labelled", "undo": "Put back"}[self.action]
        text = f"{verb} {Path(self.source).name} -> {self.dest}"
        if self.renamed:
            text += f" (a file named {Path(self.source).name} was already there, so it was renamed "\
                    f"{Path(self.dest).name}; nothing was overwritten)"
        return text


# ---- the three edits ----------------------------------------------------------------------------

def class_folders(dataset: str | os.PathLike) -> list[str]:
    """The dataset's class sub-folders by name (not hidden, not the excluded folder), sorted."""
    root = Path(dataset)
    if not root.is_dir():
        return []
    return sorted(e.name for e in os.scandir(root)
                  if e.is_dir() and not e.name.startswith(".") and e.name != EXCLUDED_FOLDER)


def class_mismatch(dataset: str | os.PathLike, class_names: tuple[str, ...] | list[str]) -> str:
    """Why images cannot be filed by these (a run's) classes into this dataset, or "" when they can."""
    folders = set(class_folders(dataset))
    if not Path(dataset).is_dir():
        return f"the dataset folder is gone: {dataset}"
    missing = [n for n in class_names if n not in folders]
    extra = sorted(folders - set(class_names))
    if not missing and not extra:
        return ""
    parts = []
    if missing:
        parts.append(f"the run knows class(es) with no folder in the dataset: {', '.join(missing)}")
    if extra:
        parts.append(f"the dataset has class folder(s) the run does not know: {', '.join(extra)}")
    return ("the run's classes differ from the dataset folder's (" + "; ".join(parts)
            + "): train on this dataset first, or choose the dataset the run was trained on; nothing was moved")


def move_to_class(dataset: str | os.PathLike, path: str | os.PathLike, class_name: str) -> Edit:
    """Move an image into a class folder of the dataset: a "move" from another class, a "label" for an
    image from outside the dataset. Raises EditError."""
    root = Path(dataset).absolute()
    if class_name not in class_folders(root):
        raise EditError(f"there is no class folder '{class_name}' in {root}; nothing was moved")
    source = existing_file(path)
    action = "move" if source.resolve().is_relative_to(root.resolve()) else "label"
    if source.parent.resolve() == (root / class_name).resolve():
        raise EditError(f"{source.name} is already in class '{class_name}'; nothing was moved")
    return record(root, action, source, place(source, root / class_name / source.name))


def exclude(dataset: str | os.PathLike, path: str | os.PathLike) -> Edit:
    """Move an image of the dataset to `_excluded/<class>/` inside it, where the scan never looks."""
    root = Path(dataset).absolute()
    source = existing_file(path)
    try:
        relative = source.resolve().relative_to(root.resolve())
    except ValueError:
        raise EditError(f"{source} is not inside the dataset folder {root}; nothing was moved") from None
    if relative.parts[0] == EXCLUDED_FOLDER:
        raise EditError(f"{source.name} is already excluded; nothing was moved")
    return record(root, "exclude", source, place(source, root / EXCLUDED_FOLDER / relative))


def undo_last(dataset: str | os.PathLike) -> Edit:
    """Reverse the newest edit not yet undone: its file moves back. Raises EditError when there is none.

    If the file was moved or deleted outside Workbench since, the edit is dropped from the undo
    history (logged as such) and EditError says so, so the edit before it can be undone next.
    """
    root = Path(dataset).absolute()
    todo = pending(root)
    if not todo:
        raise EditError(f"nothing to undo in {root}: its edit log lists no edit that is not undone yet")
    index, edit = todo[-1]
    now, back = Path(edit.dest), Path(edit.source)
    if not now.is_file():
        append(root, Edit(stamp(), "undo", edit.dest, edit.source, undoes=index, missing=True))
        raise EditError(f"cannot undo '{edit.describe()}': {now} is no longer there (moved or deleted "
                        "outside Workbench); that edit is dropped from the undo history")
    return record(root, "undo", now, place(now, back), undoes=index)


# ---- the log ------------------------------------------------------------------------------------

def history(dataset: str | os.PathLike) -> list[Edit]:
    """Every edit in the log, oldest first (unreadable lines are skipped)."""
    root = Path(dataset).absolute()
    try:
        lines = (root / EDIT_LOG).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise EditError(f"cannot read the edit log {root / EDIT_LOG}: {exc.strerror or exc}") from None
    edits = []
    for line in lines:
        try:
            data = json.loads(line)
            edits.append(Edit(
                time=str(data["time"]), action=str(data["action"]),
                source=str(root / data["from"]), dest=str(root / data["to"]),  # absolute paths stay absolute
                renamed=bool(data.get("renamed", False)), undoes=int(data.get("undoes", -1)),
                missing=bool(data.get("missing", False))))
        except (ValueError, KeyError, TypeError):
            continue
    return edits


def pending(dataset: str | os.PathLike) -> list[tuple[int, Edit]]:
    """(line, edit) of the edits not undone yet, oldest first: what undo_last reverses, newest first."""
    edits = history(dataset)
    undone = {e.undoes for e in edits if e.action == "undo"}
    return [(i, e) for i, e in enumerate(edits) if e.action != "undo" and i not in undone]


def append(root: Path, edit: Edit) -> None:
    line = {"time": edit.time, "action": edit.action, "from": relative(root, edit.source),
            "to": relative(root, edit.dest)}
    if edit.renamed:
        line["renamed"] = True
    if edit.undoes >= 0:
        line["undoes"] = edit.undoes
    if edit.missing:
        line["missing"] = True
    atomic_append_line(root / EDIT_LOG, json.dumps(line, ensure_ascii=False))


def record(root: Path, action: str, source: Path, placed: tuple[Path, bool], undoes: int = -1) -> Edit:
    """Log a move just made; if the log cannot be written, move the file back and raise."""
    dest, renamed = placed
    edit = Edit(stamp(), action, str(source), str(dest), renamed, undoes)
    try:
        append(root, edit)
    except OSError as exc:
        place(dest, source)
        raise EditError(f"cannot write the edit log {root / EDIT_LOG} ({exc.strerror or exc}), so the file "
                        "was moved back; nothing changed") from None
    return edit


def relative(root: Path, path: str) -> str:
    """A path inside the dataset as relative (the folder may move); one outside it stays absolute."""
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return str(Path(path).absolute())


def stamp() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# ---- moving one file without ever overwriting ---------------------------------------------------

def existing_file(path: str | os.PathLike) -> Path:
    source = Path(path).absolute()
    if not source.is_file():
        raise EditError(f"file not found: {source}; nothing was moved")
    return source


def unique_destination(path: Path) -> Path:
    """`path` when it is free, else `name-1.ext`, `name-2.ext`, ... the first free one."""
    candidate, n = path, 0
    while candidate.exists() or candidate.is_symlink():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate


def place(source: Path, dest: Path) -> tuple[Path, bool]:
    """Move source to dest, or to a free name beside it: (where it went, whether it was renamed).

    A hard link then an unlink: the link fails rather than replace a file, and the source stays
    until the new name exists. Across file systems (or where links are refused) the file is
    copied into a new file opened exclusively, then the source removed. Raises EditError.
    """
    where = f"{source.name} to {dest.parent}"
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        while True:
            target = unique_destination(dest)
            try:
                linked = link_or_copy(source, target)
            except FileExistsError:
                continue  # taken since we looked: try the next free name
            break
    except OSError as exc:
        raise EditError(f"cannot move {where}: {reason(exc)}; nothing was moved") from None
    try:
        os.unlink(source)
    except OSError as exc:
        if linked:
            os.unlink(target)  # the second name of the source: the source itself stays
        else:
            remove_copy(target)
        raise EditError(f"cannot move {where}: {reason(exc)} (in {source.parent}); nothing was moved") from None
    return target, target != dest


def link_or_copy(source: Path, target: Path) -> bool:
    """A new name for source at target (True), or a byte-for-byte copy there (False); never replaces."""
    try:
        os.link(source, target)
        return True
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in NO_HARD_LINKS or not os.access(target.parent, os.W_OK):
            raise
    try:
        with open(source, "rb") as src, open(target, "xb") as dst:
            shutil.copyfileobj(src, dst)
        shutil.copystat(source, target)
    except FileExistsError:
        raise
    except OSError:
        remove_copy(target)
        raise
    return False


def remove_copy(target: Path) -> None:
    """Remove a copy this module made (the original still exists), quietly."""
    try:
        os.unlink(target)
    except OSError:
        pass


def reason(exc: OSError) -> str:
    if exc.errno in READ_ONLY:
        return f"the folder is read-only ({exc.strerror})"
    return exc.strerror or str(exc)
