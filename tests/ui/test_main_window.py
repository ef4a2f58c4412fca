"""The window opens fast and ready: no TensorFlow at start-up, the demo config valid, panels wired."""

from __future__ import annotations

import subprocess
import sys
import textwrap

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


def test_first_launch_config_is_ready_to_train_offline():
    config = first_launch_config()
    assert config.data.folder == str(resource_path("demo"))
    assert config.backbone.name == "MobileNetV2" and config.backbone.width == 0.35
    assert config.data.image_size <= 96 and 1 <= config.training.epochs <= 10
    assert config.backbone.weights in ("imagenet", "none")


def test_first_launch_uses_imagenet_weights_when_they_are_cached(tmp_path, monkeypatch):
    from workbench.core.config import backbone_catalogue, weights_files

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert first_launch_config().backbone.weights == "none"
    spec = backbone_catalogue.get_backbone("MobileNetV2")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / weights_files.imagenet_file_name(spec, 64, 0.35)).write_bytes(b"cached")
    config = first_launch_config()
    assert config.backbone.weights == "imagenet" and config.freeze.policy == "all"


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
        assert window.config.backbone.weights == "none"
        assert "not downloaded yet" in window.backbone_panel.weights_note.text()


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
