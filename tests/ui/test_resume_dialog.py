"""File > Resume run…: the runs by name, status and date, newest first, only resumable ones enabled."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog
from ui_helpers import tiny_config

from workbench.core.config.run import save_config


def make_run(root: Path, run_id: str, name: str, *, status: str | None, epochs_done: int | None,
             epochs: int = 4) -> Path:
    """A run folder as the core leaves it: config.json, maybe summary.json and a checkpoint."""
    folder = root / run_id
    folder.mkdir(parents=True)
    config = tiny_config(root / "data", epochs=epochs)
    config.name = name
    save_config(config, folder / "config.json")
    if status is not None:
        (folder / "summary.json").write_text(json.dumps({"status": status, "epochs_done": epochs_done or 0}))
    if epochs_done is not None:
        with zipfile.ZipFile(folder / "checkpoint.keras", "w") as archive:
            archive.writestr("workbench_state.json", json.dumps({"epochs_done": epochs_done}))
    return folder


def test_the_dialog_lists_runs_newest_first_and_enables_only_resumable_ones(make_window, qtbot, tmp_path):
    runs = tmp_path / "runs"
    stopped = make_run(runs, "20250102-090000-aaaa", "flowers stopped", status="stopped", epochs_done=2)
    make_run(runs, "20250103-090000-bbbb", "flowers finished", status="finished", epochs_done=4)
    make_run(runs, "20250104-090000-cccc", "crashed early", status=None, epochs_done=None)
    killed = make_run(runs, "20250101-090000-dddd", "killed", status=None, epochs_done=1)
    window = make_window(runs_dir=runs)
    window.resume_action.trigger()
    dialog = window.run_view.resume_chooser
    assert dialog is not None and dialog.isVisible()
    table = dialog.table
    names = [table.item(r, 0).text() for r in range(table.rowCount())]
    assert names == ["crashed early", "flowers finished", "flowers stopped", "killed"]  # newest first
    assert table.item(0, 2).text() == "2025-01-04 09:00"
    assert table.item(2, 1).text().startswith("stopped") and table.item(2, 3).text() == "2 of 4"
    assert dialog.resumable_rows() == [2, 3]
    assert "nothing left to train" in table.item(1, 0).toolTip()
    assert "No checkpoint" in table.item(0, 0).toolTip()
    assert dialog.selected_run() == str(stopped)  # the newest resumable run is chosen already
    assert not dialog.select_run(runs / "20250103-090000-bbbb")  # a finished run cannot be chosen

    started = []
    window.run_view.resume = lambda run_dir: started.append(str(run_dir)) or True  # no training here
    assert dialog.select_run(killed)
    qtbot.mouseClick(dialog.resume_button, Qt.MouseButton.LeftButton)
    assert started == [str(killed)] and not dialog.isVisible()


def test_an_empty_runs_folder_says_so_and_resume_is_off(make_window, tmp_path):
    window = make_window(runs_dir=tmp_path / "none")
    dialog = window.run_view.resume_dialog()
    assert dialog.table.rowCount() == 0 and not dialog.empty.isHidden()
    assert not dialog.resume_button.isEnabled()
    dialog.reject()


def test_other_folder_still_picks_a_folder_anywhere(make_window, tmp_path, monkeypatch):
    window = make_window(runs_dir=tmp_path / "runs")
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(tmp_path))
    window.resume_action.trigger()
    window.run_view.resume_chooser.other_button.click()
    assert not window.runner.running
    assert window.error_box is not None and window.error_box.windowTitle() == "Cannot resume the run"
