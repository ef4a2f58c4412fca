"""Dataset edits (core/data/edits.py): move, exclude, label, collisions, a read-only folder, undo, the log."""

import contextlib
import json
import os
import subprocess
import sys

import pytest
from fixture_images import write_image_tree

from workbench import cli
from workbench.core.data import edits
from workbench.core.data.edits import EDIT_LOG, EditError
from workbench.core.data.scan import EXCLUDED_FOLDER, scan_folder


@pytest.fixture
def dataset(tmp_path):
    return write_image_tree(tmp_path / "data", per_class=3)


def files_of(root):
    """Every file under root with its bytes, the log left out: what must never be lost."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and p.name != EDIT_LOG}


def log_lines(root):
    return [json.loads(line) for line in (root / EDIT_LOG).read_text().splitlines()]


@contextlib.contextmanager
def read_only(folder):
    """The folder cannot be written: by its mode, or (as root, whom modes do not stop) immutable."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("cannot make a folder read-only here (root, no chattr)")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_move_exclude_and_undo_walk_the_log_back_with_nothing_lost(dataset):
    before = files_of(dataset)
    red = dataset / "red" / "000.png"
    moved = edits.move_to_class(dataset, red, "green")
    assert not red.exists()
    assert moved.renamed and moved.dest == str(dataset / "green" / "000-1.png")  # green/000.png was taken
    assert "renamed 000-1.png" in moved.describe() and "nothing was overwritten" in moved.describe()
    assert (dataset / "green" / "000.png").read_bytes() == before["green/000.png"]

    excluded = edits.exclude(dataset, dataset / "blue" / "001.jpg")
    assert excluded.dest == str(dataset / EXCLUDED_FOLDER / "blue" / "001.jpg")
    report = scan_folder(dataset)
    assert report.class_names == ("blue", "green", "red")  # _excluded is never a class
    assert report.counts == {"blue": 2, "green": 4, "red": 2}
    assert not any(EXCLUDED_FOLDER in p.message for p in report.problems)

    lines = log_lines(dataset)
    assert [(x["action"], x["from"], x["to"]) for x in lines] == [
        ("move", "red/000.png", "green/000-1.png"), ("exclude", "blue/001.jpg", "_excluded/blue/001.jpg")]
    assert lines[0]["renamed"] is True and lines[0]["time"].endswith("+00:00")

    undone = edits.undo_last(dataset)
    assert undone.action == "undo" and undone.dest == str(dataset / "blue" / "001.jpg")
    edits.undo_last(dataset)
    assert files_of(dataset) == before
    assert [x["action"] for x in log_lines(dataset)] == ["move", "exclude", "undo", "undo"]
    with pytest.raises(EditError, match="nothing to undo"):
        edits.undo_last(dataset)


def test_labelling_a_file_from_outside_and_undo_brings_it_back(dataset, tmp_path):
    unlabelled = write_image_tree(tmp_path / "new", classes=("red",), per_class=2, seed=5) / "red"
    image = unlabelled / "001.jpg"
    content = image.read_bytes()
    edit = edits.move_to_class(dataset, image, "blue")
    assert not image.exists() and (dataset / "blue" / "001-1.jpg").read_bytes() == content
    assert log_lines(dataset)[0]["from"] == str(image)  # outside the dataset: absolute
    assert edit.describe().startswith("Labelled 001.jpg")
    edits.undo_last(dataset)
    assert image.read_bytes() == content and not (dataset / "blue" / "001-1.jpg").exists()


def test_undo_never_overwrites_a_file_that_took_the_old_place(dataset):
    old = dataset / "red" / "002.png"
    original = old.read_bytes()
    edits.move_to_class(dataset, old, "blue")
    old.write_bytes(b"a new file with the old name")
    back = edits.undo_last(dataset)
    assert back.renamed and old.read_bytes() == b"a new file with the old name"
    assert (dataset / "red" / "002-1.png").read_bytes() == original


def test_a_file_gone_since_is_dropped_from_undo_with_a_clear_message(dataset):
    edits.move_to_class(dataset, dataset / "red" / "000.png", "blue")
    second = edits.move_to_class(dataset, dataset / "red" / "001.jpg", "blue")
    os.rename(second.dest, dataset / "elsewhere.jpg")  # moved outside Workbench
    with pytest.raises(EditError, match="no longer there"):
        edits.undo_last(dataset)
    edits.undo_last(dataset)  # the edit before it is next
    assert (dataset / "red" / "000.png").exists()


def test_bad_moves_are_refused_with_nothing_moved(dataset, tmp_path):
    before = files_of(dataset)
    with pytest.raises(EditError, match="no class folder 'cat'"):
        edits.move_to_class(dataset, dataset / "red" / "000.png", "cat")
    with pytest.raises(EditError, match="already in class 'red'"):
        edits.move_to_class(dataset, dataset / "red" / "000.png", "red")
    with pytest.raises(EditError, match="file not found"):
        edits.move_to_class(dataset, dataset / "red" / "nope.png", "blue")
    outside = write_image_tree(tmp_path / "other", classes=("red",), per_class=1) / "red" / "000.png"
    with pytest.raises(EditError, match="not inside the dataset"):
        edits.exclude(dataset, outside)
    assert files_of(dataset) == before and not (dataset / EDIT_LOG).exists()


def test_a_read_only_folder_gives_a_clear_error_and_loses_nothing(dataset):
    before = files_of(dataset)
    with read_only(dataset / "blue"):
        with pytest.raises(EditError, match="read-only.*nothing was moved"):
            edits.move_to_class(dataset, dataset / "red" / "000.png", "blue")
        with pytest.raises(EditError, match="read-only.*nothing was moved"):
            edits.move_to_class(dataset, dataset / "blue" / "000.png", "red")  # cannot leave its folder
    assert files_of(dataset) == before
    assert not (dataset / "red" / "000-1.png").exists()


def test_class_mismatch_names_what_differs(dataset):
    assert edits.class_mismatch(dataset, ("blue", "green", "red")) == ""
    message = edits.class_mismatch(dataset, ("blue", "cat", "red"))
    assert "no folder in the dataset: cat" in message and "does not know: green" in message
    (dataset / EXCLUDED_FOLDER).mkdir()
    assert edits.class_mismatch(dataset, ("blue", "green", "red")) == ""


def test_cli_moves_excludes_lists_and_undoes(dataset, capsys):
    assert cli.main(["data", "move", str(dataset), str(dataset / "red" / "000.png"), "blue"]) == 0
    assert cli.main(["data", "exclude", str(dataset), str(dataset / "green" / "001.jpg")]) == 0
    assert cli.main(["data", "log", str(dataset)]) == 0
    out = capsys.readouterr().out
    assert "Moved 000.png" in out and "exclude" in out and "_excluded/green/001.jpg" in out
    assert cli.main(["data", "undo", str(dataset)]) == 0
    assert (dataset / "green" / "001.jpg").exists()
    assert cli.main(["data", "undo", str(dataset), "--all"]) == 0
    assert (dataset / "red" / "000.png").exists()
    assert cli.main(["data", "undo", str(dataset)]) == 2
    assert "nothing to undo" in capsys.readouterr().err
    assert cli.main(["data", "move", str(dataset), str(dataset / "red" / "000.png"), "cat"]) == 2


def test_the_data_commands_do_not_load_tensorflow(dataset):
    code = ("import sys; from workbench import cli; "
            f"rc = cli.main(['data', 'log', {str(dataset)!r}]); "
            "assert 'tensorflow' not in sys.modules, 'tensorflow loaded'; sys.exit(rc)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
