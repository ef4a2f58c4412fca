"""Reliability through the window: a messy folder, setups that cannot train, a fault in a
running training, resuming a run from the File menu, corrupt config files.

(Out of memory reaches the same error dialog; its wording is tested in tests/core/test_reliability.py.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, Qt, Slot
from PySide6.QtWidgets import QFileDialog, QMessageBox
from ui_helpers import tiny_config

from workbench.core.base.events import RunFailed, RunFinished, RunStarted
from workbench.core.runs.store import read_metrics
from workbench.core.train import run as training

RUN_TIMEOUT_MS = 180_000


class Fault:
    """Makes the real training callback raise inside the real `fit` while `armed`."""

    def __init__(self, monkeypatch, exc: BaseException, epoch: int, batch: int):
        self.armed = True
        fault = self

        class Faulty(training.ProgressCallback):
            def on_train_batch_end(self, b, logs=None):
                super().on_train_batch_end(b, logs)
                if fault.armed and (self._epoch, b) == (epoch, batch):
                    raise exc

        monkeypatch.setattr(training, "ProgressCallback", Faulty)


class EpochsAtStart(QObject):
    """Records how many epochs the curves show when a run starts (a resumed run shows its earlier ones)."""

    def __init__(self, window):
        super().__init__()
        self.window = window
        self.seen: list[int] = []
        window.runner.event.connect(self.on_event)  # after the window's own slot

    @Slot(object)
    def on_event(self, event) -> None:
        if isinstance(event, RunStarted):
            self.window.plots.redraw_now()
            self.seen.append(self.window.plots.epoch_points())


def wait_for_scan(qtbot, window, folder) -> None:
    qtbot.waitUntil(lambda: window.scan_report is not None and window.scan_report.root == str(folder),
                    timeout=15000)


def test_a_messy_folder_trains_a_fault_shows_its_details_and_the_run_resumes_from_the_file_menu(
    make_window, qtbot, messier_tree, image_folder, monkeypatch
):
    # The fault is patched into this process, so this run trains on the worker thread itself.
    window = make_window(tiny_config(image_folder, epochs=2), run_fn=training.run)
    window.show()
    window.set_dataset_folder(str(messier_tree))  # as if chosen in the Data panel
    wait_for_scan(qtbot, window, messier_tree)
    listed = [window.data_panel.problems.item(i).text() for i in range(window.data_panel.problems.count())]
    for name, words in [("cat/empty.jpg", "empty"), ("cat/cut.jpg", "truncated"), ("cat/notes.jpg", "not an image"),
                        ("cat/scan.tiff", "not supported"), ("class 'empty'", "no usable images")]:
        assert any(name in item and words in item and item.startswith("Left out") for item in listed), listed
    assert window.problem_label.text() == "Ready: 19 images in 3 classes"
    assert window.train_button.isEnabled()

    # Epoch 1 trains on the messy data; epoch 2 meets an injected fault inside the real fit.
    fault = Fault(monkeypatch, RuntimeError("injected fault: the disk went away"), epoch=1, batch=0)
    with qtbot.waitSignal(window.run_ended, timeout=RUN_TIMEOUT_MS) as ended:
        qtbot.mouseClick(window.train_button, Qt.MouseButton.LeftButton)
    failed = ended.args[0]
    assert isinstance(failed, RunFailed) and failed.kind == "error", failed
    box = window.error_box
    assert box is not None and box.isVisible() and box.windowTitle() == "Training failed"
    assert "injected fault: the disk went away" in box.text() and failed.run_dir in box.text()
    assert "Traceback" in box.detailedText() and "RuntimeError" in box.detailedText()
    assert "Skipping 5 unusable file(s)" in window.log.text()
    run_dir = Path(failed.run_dir)
    assert json.loads((run_dir / "config.json").read_text())["data"]["folder"] == str(messier_tree)
    assert [row["epoch"] for row in read_metrics(run_dir)] == [1]
    box.button(QMessageBox.StandardButton.Ok).click()
    assert not window.runner.running and window.train_button.isEnabled() and window.resume_action.isEnabled()

    # The app is still usable: File > Resume a run… continues the failed run, curves first.
    fault.armed = False
    at_start = EpochsAtStart(window)
    with qtbot.waitSignal(window.run_ended, timeout=RUN_TIMEOUT_MS) as ended:
        window.resume_action.trigger()  # the runs by name, status and date (ui/resume_dialog.py)
        chooser = window.run_view.resume_chooser
        assert chooser.select_run(run_dir)
        chooser.resume_button.click()
        assert window.runner.running and not window.resume_action.isEnabled()
    resumed = ended.args[0]
    assert isinstance(resumed, RunFinished) and not resumed.stopped and resumed.epochs_done == 2, resumed
    assert resumed.run_dir == str(run_dir)
    assert at_start.seen == [1]  # epoch 1, read back from metrics.csv, drawn before training went on
    window.plots.redraw_now()
    assert window.plots.epoch_points() == 2
    assert "Resuming run" in window.log.text() and "Epoch 2/2" in window.log.text()
    assert [row["epoch"] for row in read_metrics(run_dir)] == [1, 2]


def _bad_setup(kind: str, tmp_path: Path, image_folder: Path) -> tuple[Path, str]:
    if kind == "one class":
        root = tmp_path / "one"
        (root / "circle").mkdir(parents=True)
        for f in (image_folder / "circle").iterdir():
            (root / "circle" / f.name).write_bytes(f.read_bytes())
        return root, "at least two classes"
    if kind == "empty class folders":
        for name in ("cats", "dogs"):
            (tmp_path / "empty" / name).mkdir(parents=True)
        return tmp_path / "empty", "found 0"
    if kind == "no sub-folders":
        return image_folder / "circle", "has no sub-folders"
    path = tmp_path / "photos.zip"
    path.write_bytes(b"PK\x03\x04")
    return path, "folder not found"


@pytest.mark.parametrize("kind", ["one class", "empty class folders", "no sub-folders", "a file, not a folder"])
def test_setups_that_cannot_train_disable_train_with_the_reason(make_window, qtbot, tmp_path, image_folder, kind):
    window = make_window(tiny_config(image_folder))
    wait_for_scan(qtbot, window, image_folder)
    assert window.train_button.isEnabled()
    folder, words = _bad_setup(kind, tmp_path, image_folder)
    window.set_dataset_folder(str(folder))
    qtbot.waitUntil(lambda: not window.train_button.isEnabled() and words in window.problem_label.toolTip(),
                    timeout=15000)
    assert window.problem_label.text().startswith("Fix 1 problem to train")
    window.start_training()  # the shortcut cannot sneak past it either
    assert not window.runner.running


@pytest.mark.parametrize(
    "content",
    [b"\x89PNG\r\n\x1a\n\x00\x00", b'{"training": {"epochs": 3', b'{"training": {"learning_rate": 1' + b"0" * 400
     + b"}}", b"[" * 100_000, b'{"data": "everything"}'],
    ids=["binary", "truncated", "a huge number", "deep nesting", "a group replaced by text"],
)
def test_opening_a_corrupt_config_shows_what_is_wrong_and_keeps_the_current_one(
    make_window, qtbot, tmp_path, monkeypatch, content
):
    window = make_window()
    before = window.config
    path = tmp_path / "broken.json"
    path.write_bytes(content)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    window.open_config_action.trigger()
    box = window.error_box
    assert box is not None and box.isVisible() and box.windowTitle() == "Cannot open the config"
    assert str(path) in box.text() and "Traceback" not in box.text() + box.detailedText()
    assert window.config is before
    box.close()


def test_resuming_a_folder_that_is_not_a_run_says_so(make_window, qtbot, tmp_path, monkeypatch):
    window = make_window()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(tmp_path))
    window.resume_action.trigger()
    window.run_view.resume_chooser.other_button.click()  # a folder outside the runs folder
    assert not window.runner.running
    assert window.error_box is not None and window.error_box.windowTitle() == "Cannot resume the run"
    assert "config file not found" in window.error_box.text()
