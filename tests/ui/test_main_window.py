"""The window opens fast and ready: no TensorFlow at start-up, the demo config valid, panels wired."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from PySide6.QtCore import Qt

from workbench.resources import resource_path
from workbench.ui.defaults import first_launch_config
from workbench.ui.weights_cache import imagenet_cached


def test_building_the_window_does_not_import_tensorflow(tmp_path):
    """In a fresh process: build and show the window, let the event loop run, and look at sys.modules."""
    code = textwrap.dedent(
        """
        import os, sys
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        from PySide6.QtCore import QTimer
        from PySide6.QtWidgets import QApplication
        from workbench.ui.app import setup_application
        from workbench.ui.main_window import MainWindow
        app = QApplication([])
        setup_application(app)
        window = MainWindow()
        built = "tensorflow" in sys.modules or "keras" in sys.modules
        window.show()
        QTimer.singleShot(300, app.quit)  # shorter than the delayed layer count, which loads TF off-thread
        app.exec()
        shown = "tensorflow" in sys.modules
        window.shutdown()
        print(built, shown)
        """
    )
    env = {"XDG_CONFIG_HOME": str(tmp_path), "WORKBENCH_RUNS_DIR": str(tmp_path / "runs"), "HOME": str(tmp_path)}
    import os

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, **env})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"], out.stdout + out.stderr


def test_first_launch_config_is_ready_to_train_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # offline: no ImageNet file in the Keras cache
    config = first_launch_config()
    assert config.data.folder == str(resource_path("demo"))
    assert config.backbone.name == "MobileNetV2" and config.backbone.width == 0.35
    assert config.data.image_size <= 96 and 1 <= config.training.epochs <= 10
    assert config.backbone.weights == "file" and Path(config.backbone.weights_file).is_file()
    assert config.freeze.policy == "all"  # features cached: the head trains in seconds


def test_first_launch_uses_imagenet_weights_when_cached_else_the_bundled_backbone(tmp_path, monkeypatch):
    from workbench.core.config import backbone_catalogue, weights_files
    from workbench.core.runs.saved_backbones import bundled_demo_backbone
    from workbench.ui.defaults import weights_note

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    spec = backbone_catalogue.get_backbone("MobileNetV2")
    imagenet_file = weights_files.imagenet_file_name(spec, 64, 0.35)
    config = first_launch_config()
    assert config.backbone.weights == "file" and config.freeze.policy == "all"
    assert config.backbone.weights_file == str(bundled_demo_backbone())
    note = weights_note(config, imagenet_cached(config))
    assert "bundled" in note and "not cached" in note  # which weights, and why
    assert imagenet_file in note and str(tmp_path / "models") in note  # how to get ImageNet's
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / imagenet_file).write_bytes(b"cached")
    config = first_launch_config()
    assert config.backbone.weights == "imagenet" and config.freeze.policy == "all"
    assert "ImageNet" in weights_note(config, imagenet_cached(config))
    assert "cache" in weights_note(config, True)


def test_first_launch_falls_back_to_re_initialised_weights_without_the_bundled_file(tmp_path, monkeypatch):
    from workbench.ui import defaults

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(defaults, "bundled_demo_backbone", lambda: None)
    config = defaults.first_launch_config()
    assert config.backbone.weights == "none" and config.freeze.policy == "none"
    assert "mobilenet_v2_weights" in defaults.weights_note(config, False)


def test_window_opens_ready_on_the_demo(make_window, qtbot):
    window = make_window()
    window.show()
    qtbot.waitUntil(lambda: window.scan_report is not None, timeout=15000)
    assert window.problems == []
    assert window.train_button.isEnabled()
    assert not window.stop_button.isEnabled() and not window.pause_button.isEnabled()
    assert window.data_panel.classes.rowCount() == len(window.scan_report.class_names) >= 2
    assert "Ready" in window.problem_label.text()
    assert window.backbone_panel.table.value() == "MobileNetV2"
    if imagenet_cached(window.config) is False:
        from workbench.core.runs.saved_backbones import bundled_demo_backbone

        assert window.config.backbone.weights == "file"
        assert window.config.backbone.weights_file == str(bundled_demo_backbone())
        note = window.backbone_panel.weights_note.text()
        assert "bundled" in note and "not cached" in note and "ImageNet" in note
        # listed under Saved, and shown as the one in use
        assert window.config.backbone.weights_file in window.backbone_panel.saved_backbone_paths()
        assert window.backbone_panel.saved.currentData() == window.config.backbone.weights_file


def test_panels_edit_the_one_config(make_window, qtbot):
    window = make_window()
    panel = window.training_panel
    panel.epochs.setValue(7)
    assert window.config.training.epochs == 7
    panel.optimizer.setValue("sgd")
    assert window.config.training.optimizer == "sgd" and panel.momentum.isEnabled()
    window.regularization_panel.placement.boxes["feature_map"].setChecked(True)
    assert "feature_map" in window.config.dropout.placement
    window.backbone_panel.table.setValue("ResNet50")
    assert window.config.backbone.name == "ResNet50"
    assert window.config.backbone.width == 1.0  # MobileNet's 0.35 does not exist for ResNet50
    assert not window.backbone_panel.width.isEnabled()
    window.training_panel.rotation.check.setChecked(True)
    assert window.config.data.augment.rotation > 0
    qtbot.keyClicks(window.regularization_panel.dense_units, "256, 64")
    assert window.config.head.dense_units == [256, 64]


def test_bad_dataset_folder_blocks_train(make_window, qtbot, tmp_path):
    window = make_window()
    empty = tmp_path / "empty"
    empty.mkdir()
    window.set_dataset_folder(str(empty))
    qtbot.waitUntil(lambda: window.scan_report is not None and window.scan_report.root == str(empty),
                    timeout=15000)
    assert not window.train_button.isEnabled()
    assert window.data_panel.problems.count() >= 1
    assert window.data_panel.folder.line_edit.property("problem") is True


def test_drop_a_folder_on_the_window(make_window, qtbot, image_folder):
    from PySide6.QtCore import QMimeData, QPoint, QUrl
    from PySide6.QtGui import QDropEvent

    window = make_window()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(image_folder))])
    event = QDropEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    assert window.config.data.folder == str(image_folder)
    qtbot.waitUntil(lambda: window.scan_report is not None and window.scan_report.root == str(image_folder),
                    timeout=15000)
    assert window.data_panel.classes.rowCount() == 2


def test_drop_an_image_on_the_window_predicts_it_in_the_predict_tab(make_window, qtbot, image_folder):
    from PySide6.QtCore import QMimeData, QPoint, QUrl
    from PySide6.QtGui import QDropEvent

    window = make_window()
    image = next(p for p in sorted(image_folder.rglob("*")) if p.is_file())
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(image))])
    event = QDropEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    folder_before = window.config.data.folder
    window.dropEvent(event)
    assert window.views.currentWidget() is window.predict_panel
    assert window.predict_panel.paths == [str(image)]
    assert window.config.data.folder == folder_before  # an image is not a dataset


def test_a_run_on_another_dataset_is_named_after_its_folder_and_backbone(make_window, qtbot, image_folder):
    from ui_helpers import fake_run

    seen = []
    fake = fake_run(epochs=1, steps=2)

    def run_fn(config, emit, stop_event, **kwargs):
        seen.append(config.name)
        return fake(config, emit, stop_event, **kwargs)

    window = make_window(run_fn=run_fn)
    assert window.config.name == "demo"
    window.data_panel.set_value("data.folder", str(image_folder))
    assert window.config.name == ""  # not "demo" on another dataset
    with qtbot.waitSignal(window.run_ended, timeout=20_000):
        window.start_run(window.config)
    assert seen and seen[0].startswith(f"{image_folder.name} {window.config.backbone.name}")
