"""Configs saved and opened from the window, remembered settings, the launcher, the entry point."""

from __future__ import annotations

import json

import pytest
from PySide6.QtWidgets import QFileDialog, QMessageBox

from workbench.__main__ import main
from workbench.core.config.run import load_config
from workbench.resources import resource_path
from workbench.ui import settings as keys
from workbench.ui.settings import app_settings


def test_save_then_open_a_config(make_window, qtbot, tmp_path, monkeypatch):
    window = make_window()
    window.training_panel.epochs.setValue(9)
    window.regularization_panel.dropout_rate.setValue(0.35)
    target = tmp_path / "my-run"  # the dialog's answer without .json: it is added
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    window.save_config_action.trigger()
    saved = tmp_path / "my-run.json"
    assert load_config(saved).training.epochs == 9  # the same JSON the CLI runs
    assert app_settings().value(keys.LAST_CONFIG) == str(saved)

    other = make_window()
    assert other.config.training.epochs != 9
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(saved), ""))
    other.open_config_action.trigger()
    assert other.config.training.epochs == 9
    assert other.training_panel.epochs.value() == 9
    assert other.regularization_panel.dropout_rate.text() == "0.35"
    assert other.error_box is None


def test_a_broken_config_opens_a_dialog_not_a_traceback(make_window, qtbot, tmp_path):
    window = make_window()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"training": {"epochs": "many", "speed": 3}}))
    before = window.config
    assert window.open_config(bad) is False
    box = window.error_box
    assert box is not None and box.isVisible() and box.icon() == QMessageBox.Icon.Critical
    assert "training.epochs" in box.text() and "speed" in box.text()
    assert window.config is before
    box.close()

    window.open_config(tmp_path / "missing.json")
    assert "not found" in window.error_box.text()
    window.error_box.close()


def test_window_geometry_and_last_folder_are_remembered(make_window, qtbot, image_folder):
    window = make_window()
    window.resize(640, 480)
    window.set_dataset_folder(str(image_folder))
    qtbot.waitUntil(lambda: window.scan_report is not None and window.scan_report.root == str(image_folder),
                    timeout=15000)
    window.close()
    assert app_settings().value(keys.LAST_FOLDER) == str(image_folder)
    again = make_window()
    assert (again.width(), again.height()) == (640, 480)


def test_install_launcher_from_the_menu(make_window, qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    window = make_window()
    window.install_launcher_action.trigger()
    desktop = tmp_path / "share" / "applications" / "workbench.desktop"
    text = desktop.read_text()
    assert "Exec=" in text and "Icon=workbench" in text and "Name=Workbench" in text
    assert (tmp_path / "share" / "icons" / "hicolor" / "scalable" / "apps" / "workbench.svg").is_file()
    assert (tmp_path / "share" / "icons" / "hicolor" / "256x256" / "apps" / "workbench.png").is_file()
    assert window.info_box is not None and "installed" in window.info_box.windowTitle().lower()
    window.info_box.close()


def test_install_launcher_from_the_command_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert main(["--install-launcher"]) == 0
    assert (tmp_path / "applications" / "workbench.desktop").is_file()
    assert "workbench.desktop" in capsys.readouterr().out


def test_sub_commands_go_to_the_cli(monkeypatch):
    import workbench.cli

    seen = []
    monkeypatch.setattr(workbench.cli, "main", lambda argv: seen.append(argv) or 7)
    assert main(["scan", "some/folder"]) == 7
    assert seen == [["scan", "some/folder"]]


def test_about_dialog(make_window):
    window = make_window()
    window.show_about()
    assert "Workbench" in window.info_box.text() and "TensorFlow" in window.info_box.text()
    window.info_box.close()


def test_resources_are_found():
    assert resource_path("icons", "workbench.svg").is_file()
    assert resource_path("workbench.desktop").is_file()
    with pytest.raises(FileNotFoundError, match="no-such-file"):
        resource_path("no-such-file")


def test_tensorboard_button_shows_the_command_for_the_runs_folder(make_window, tmp_path):
    window = make_window(runs_dir=tmp_path / "runs")
    box = window.training_panel.show_tensorboard_command()
    assert f'tensorboard --logdir "{tmp_path / "runs"}"' in box.text()
    box.close()
