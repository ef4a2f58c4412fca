"""The data loop's tabs on a real (tiny) trained run: Fix data (sort, move, exclude, undo) and Label
(rank unlabelled images, number keys move files into the dataset, undo, a class mismatch, Retrain).

One run is trained per module (MobileNetV2 x0.35 with its dropout head, 32 px, 1 epoch) on a
dataset of this module's own, which the tests edit and always put back.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from ui_helpers import fake_run, tiny_config, write_image_folder

from workbench.core.base.events import RunFinished
from workbench.core.data.edits import EDIT_LOG
from workbench.ui.panels.fix_data import PATH, SHOW_KINDS, SORT_BY

JOB_TIMEOUT_MS = 120_000  # the first job of a process starts the model worker and loads the model


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    from workbench.core.train import run as training

    root = tmp_path_factory.mktemp("loop")
    data = write_image_folder(root / "data", classes=("red", "green", "blue"), per_class=12)
    config = tiny_config(data, epochs=1)
    config.data.validation_split = 0.25
    result = training.run(config, lambda event: None, runs_dir=root / "runs")
    assert isinstance(result, RunFinished), result
    return Path(result.run_dir)


def dataset_of(run_dir: Path) -> Path:
    return run_dir.parent.parent / "data"


def files_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and p.name != EDIT_LOG}


def shown_window(make_window, qtbot, trained_run, tab, **kwargs):
    window = make_window(tiny_config(dataset_of(trained_run)), runs_dir=trained_run.parent, **kwargs)
    window.views.setCurrentWidget(tab(window))
    window.show()
    window.activateWindow()
    qtbot.waitExposed(window)
    return window


def test_fix_data_sorts_moves_excludes_and_undoes(make_window, qtbot, trained_run):
    window = shown_window(make_window, qtbot, trained_run, lambda w: w.data_loop.fix_data)
    panel, data = window.data_loop.fix_data, dataset_of(trained_run)
    before = files_of(data)
    assert window.views.indexOf(panel) == window.views.indexOf(window.predict_panel) + 1
    assert panel.chooser.set_run_dir(str(trained_run))
    panel.passes.setValue(4)
    assert panel.start_review() and not panel.review_button.isEnabled()
    qtbot.waitUntil(lambda: panel.review is not None, timeout=JOB_TIMEOUT_MS)
    assert len(panel.review.images) == 9 and "9 validation images" in panel.status.text()
    assert panel.gallery.count() == 9  # 9 images: every mistake and every uncertain one is shown

    def column(attribute):
        return [getattr(panel.gallery.item(i).data(PATH + 2), attribute) for i in range(panel.gallery.count())]

    panel.sort_combo.setCurrentIndex(SORT_BY.index("confidence"))
    assert column("confidence") == sorted(column("confidence"))
    panel.sort_combo.setCurrentIndex(SORT_BY.index("entropy"))
    assert column("entropy") == sorted(column("entropy"), reverse=True)
    panel.sort_combo.setCurrentIndex(SORT_BY.index("loss"))
    assert column("loss") == sorted(column("loss"), reverse=True)
    assert not panel.gallery.item(0).icon().isNull()

    panel.gallery.setCurrentRow(0)
    item = panel.gallery.currentItem()
    path, review = item.data(PATH), item.data(PATH + 2)
    target = next(c for c in panel.review.class_names if c != Path(path).parent.name)
    panel.move_combo.setCurrentText(target)
    qtbot.mouseClick(panel.move_button, Qt.MouseButton.LeftButton)
    moved = Path(item.data(PATH))
    assert not os.path.exists(path) and moved.is_file() and moved.parent == data / target
    assert f"now in {target}" in item.text() and "Moved" in panel.status.text()
    assert [json.loads(x)["action"] for x in (data / EDIT_LOG).read_text().splitlines()] == ["move"]
    qtbot.waitUntil(lambda: window.scan_report is not None and window.scan_report.counts[target] == 13,
                    timeout=20_000)  # the data panel rescans

    panel.gallery.setFocus()
    qtbot.keyClick(panel.gallery, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert os.path.exists(path) and item.data(PATH) == path and "now in" not in item.text()
    assert review.true_label in item.text()

    qtbot.mouseClick(panel.exclude_button, Qt.MouseButton.LeftButton)
    excluded = Path(item.data(PATH))
    assert excluded.parts[-3] == "_excluded" and "(excluded)" in item.text()
    qtbot.mouseClick(panel.edits.undo_button, Qt.MouseButton.LeftButton)
    assert files_of(data) == before and not panel.edits.undo_button.isEnabled()

    # An excluded image hidden by the filter and shown again still points at where its file is now.
    row = next((i for i in range(panel.gallery.count()) if not panel.gallery.item(i).data(PATH + 2).wrong), None)
    if row is not None:  # the tiny model got at least one image right: the "mistakes" filter hides it
        panel.gallery.setCurrentRow(row)
        first = panel.gallery.currentItem().data(PATH + 1)
        qtbot.mouseClick(panel.exclude_button, Qt.MouseButton.LeftButton)
        excluded = panel.gallery.currentItem().data(PATH)
        panel.show_combo.setCurrentIndex(SHOW_KINDS.index("mistakes"))
        assert first not in [panel.gallery.item(i).data(PATH + 1) for i in range(panel.gallery.count())]
        panel.show_combo.setCurrentIndex(SHOW_KINDS.index("both"))
        again = next(panel.gallery.item(i) for i in range(panel.gallery.count())
                     if panel.gallery.item(i).data(PATH + 1) == first)
        assert again.data(PATH) == excluded and "(excluded)" in again.text()
        qtbot.mouseClick(panel.edits.undo_button, Qt.MouseButton.LeftButton)
        assert files_of(data) == before


def test_label_ranks_and_number_keys_move_files_undo_puts_them_back(make_window, qtbot, trained_run, tmp_path):
    started = []
    quick = fake_run(epochs=1, steps=2)

    def run_fn(config, *args, **kwargs):
        started.append(config)
        return quick(config, *args, **kwargs)

    window = shown_window(make_window, qtbot, trained_run, lambda w: w.data_loop.label, run_fn=run_fn)
    panel, data = window.data_loop.label, dataset_of(trained_run)
    before = files_of(data)
    unlabelled = write_image_folder(tmp_path / "new", classes=("a", "b", "c"), per_class=2)
    (unlabelled / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    assert panel.chooser.set_run_dir(str(trained_run))
    assert Path(panel.dataset.text()) == data  # the run's dataset, by default
    panel.folder.setText(str(tmp_path / "missing"))
    assert not panel.start_ranking() and "not found" in panel.status.text()
    (tmp_path / "empty").mkdir()
    panel.folder.setText(str(tmp_path / "empty"))
    assert panel.start_ranking()
    qtbot.waitUntil(lambda: "holds no images" in panel.status.text(), timeout=JOB_TIMEOUT_MS)
    assert panel.status.text().startswith("Cannot rank: ") and panel.rank_button.isEnabled()
    panel.folder.setText(str(unlabelled))
    panel.passes.setValue(4)
    panel.top.setValue(5)
    assert panel.start_ranking()
    qtbot.waitUntil(lambda: panel.ranking is not None, timeout=JOB_TIMEOUT_MS)
    ranking = panel.ranking
    assert ranking.ranked == 6 and len(ranking.broken) == 1 and panel.gallery.count() == 5
    assert "1 image(s) could not be read" in panel.status.text() and "broken.png" in panel.status.text()
    assert [b.text() for b in panel.class_buttons] == [f"{i} · {n}" for i, n in enumerate(ranking.class_names, 1)]

    first, second = panel.gallery.item(0), panel.gallery.item(1)
    first_path, second_path = first.data(PATH), second.data(PATH)
    panel.gallery.setCurrentItem(first)
    panel.gallery.setFocus()
    qtbot.keyClick(panel.gallery, Qt.Key.Key_2)  # the second class
    name = ranking.class_names[1]
    assert not os.path.exists(first_path) and Path(first.data(PATH)).parent == data / name
    assert first.text().startswith(f"✓ {name}") and panel.gallery.currentItem() is second
    panel.class_buttons[0].click()
    assert Path(second.data(PATH)).parent == data / ranking.class_names[0]

    qtbot.mouseClick(panel.edits.undo_button, Qt.MouseButton.LeftButton)
    assert os.path.exists(second_path) and not second.text().startswith("✓")
    qtbot.keyClick(panel.gallery, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert os.path.exists(first_path) and files_of(data) == before

    other = write_image_folder(tmp_path / "other", classes=("cat", "dog"), per_class=1)
    panel.dataset.setText(str(other))
    panel.dataset.editingFinished.emit()
    assert "Labelling is off" in panel.status.text() and "cat, dog" in panel.status.text()
    assert not any(b.isEnabled() for b in panel.class_buttons) and not panel.retrain_button.isEnabled()
    panel.gallery.setCurrentItem(first)
    qtbot.keyClick(panel.gallery, Qt.Key.Key_1)
    assert os.path.exists(first_path) and files_of(other) == {"cat/000.png": (other / "cat/000.png").read_bytes(),
                                                               "dog/000.png": (other / "dog/000.png").read_bytes()}

    panel.dataset.setText(str(data))
    panel.dataset.editingFinished.emit()
    assert panel.retrain_button.isEnabled()
    qtbot.mouseClick(panel.retrain_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(started), timeout=10_000)
    assert Path(started[0].data.folder) == data and window.views.currentWidget() is window.plots
    qtbot.waitUntil(lambda: not window.runner.running, timeout=10_000)
