"""Evaluate, Predict and Export on a real (tiny) trained run, each as a background job of the window.

One run is trained per module (MobileNetV2 x0.35, 32 px, 1 epoch: seconds); the panels
must never run Keras on the GUI thread, so every check waits with qtbot.waitUntil.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QDropEvent
from ui_helpers import tiny_config, write_image_folder

from workbench.core.base.events import RunFinished

JOB_TIMEOUT_MS = 120_000  # the first job of a process loads TensorFlow and traces the model


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    from workbench.core.train import run as training

    root = tmp_path_factory.mktemp("trained")
    data = write_image_folder(root / "data", classes=("red", "green", "blue"), per_class=12)
    config = tiny_config(data, epochs=1)
    config.name = "tiny trained"
    config.data.validation_split = 0.25
    result = training.run(config, lambda event: None, runs_dir=root / "runs")
    assert isinstance(result, RunFinished), result
    return Path(result.run_dir)


def test_evaluate_shows_a_matrix_that_counts_every_validation_image(make_window, qtbot, trained_run):
    window = make_window(runs_dir=trained_run.parent)
    panel = window.evaluate_panel
    runs = window.runs_panel
    runs.select_runs([trained_run])
    assert runs.evaluate_action.isEnabled()
    runs.evaluate_action.trigger()
    assert window.views.currentWidget() is panel and panel.busy
    qtbot.waitUntil(lambda: panel.result is not None and not panel.result.saved, timeout=JOB_TIMEOUT_MS)

    summary = json.loads((trained_run / "summary.json").read_text())
    evaluation = panel.evaluation
    assert evaluation.count == summary["val_images"] == 9
    assert panel.matrix.counts.sum() == 9 and panel.matrix.shown_total() == 9
    assert panel.matrix.counts.shape == (3, 3) and len(panel.matrix.texts) == 9
    assert panel.scores.rowCount() == 3 + 1  # one row per class and the macro average
    assert sum(int(panel.scores.item(r, 4).text()) for r in range(3)) == 9
    assert f"top-{evaluation.top_k} accuracy" in panel.summary.text()
    assert panel.gallery.count() == len(evaluation.mistakes) == 9 - int(evaluation.confusion.trace())
    if evaluation.mistakes:
        first = panel.gallery.item(0)
        assert "→" in first.text() and not first.icon().isNull()
    assert (trained_run / "evaluation.json").is_file()

    # A new window (a restart) shows the saved evaluation without running the model again.
    again = make_window(runs_dir=trained_run.parent).evaluate_panel
    qtbot.waitUntil(lambda: again.result is not None, timeout=15_000)
    assert again.result.saved and again.matrix.counts.sum() == 9


def test_predict_shows_top_k_with_monte_carlo_spread_and_grad_cam(make_window, qtbot, trained_run, tmp_path):
    window = make_window(runs_dir=trained_run.parent)
    panel = window.predict_panel
    assert panel.chooser.run_dir() == str(trained_run)
    image = trained_run.parent.parent / "data" / "red" / "000.png"
    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    panel.top_k.setValue(2)
    panel.mc_passes.setValue(5)

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(image)), QUrl.fromLocalFile(str(broken))])
    drop = QDropEvent(QPoint(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    panel.dropEvent(drop)
    assert panel.busy
    qtbot.waitUntil(lambda: panel.result is not None, timeout=JOB_TIMEOUT_MS)

    good, bad = panel.predictions
    assert len(good.top) == 2 and good.top[0][1] >= good.top[1][1]
    assert set(good.std) == {"red", "green", "blue"} and good.entropy is not None
    assert panel.table.rowCount() == 2
    assert panel.table.item(0, 1).text() == good.label
    assert "±" in panel.table.item(0, 2).text()
    assert float(panel.table.item(0, 3).text()) == pytest.approx(good.entropy, abs=1e-3)
    assert not bad.ok and panel.table.item(1, 1).text() == bad.error
    assert panel.topk_table.rowCount() == 2  # the selected (first) image's top-k
    assert panel.topk_table.item(0, 0).text() == good.label

    qtbot.waitUntil(lambda: panel.cam is not None, timeout=JOB_TIMEOUT_MS)
    assert panel.cam.class_name == good.label and panel.cam.overlay.shape[2] == 3
    assert not panel.preview.pixmap().isNull()
    # 32 px through MobileNetV2 leaves a 1x1 feature map: the colour scale shows, and the caption says so.
    assert panel.cam.feature_size == (1, 1) and not panel.cam_view.legend.isHidden()
    assert "only 1×1 cells" in panel.cam_status.text()


def test_evaluate_shows_grad_cam_of_a_selected_mistake(make_window, qtbot, trained_run):
    window = make_window(runs_dir=trained_run.parent)
    panel = window.evaluate_panel
    qtbot.waitUntil(lambda: not panel.busy and panel.status.text() != "Looking for a saved evaluation…",
                    timeout=JOB_TIMEOUT_MS)
    assert panel.evaluate(str(trained_run))
    qtbot.waitUntil(lambda: panel.result is not None and not panel.result.saved, timeout=JOB_TIMEOUT_MS)
    if not panel.gallery.count():
        pytest.skip("the tiny run made no mistakes")
    panel.gallery.setCurrentRow(0)
    qtbot.waitUntil(lambda: panel.cam_view.cam is not None, timeout=JOB_TIMEOUT_MS)
    mistake = panel.evaluation.mistakes[0]
    assert panel.cam_view.cam.class_name == mistake.predicted_label
    assert not panel.cam_view.preview.pixmap().isNull() and not panel.cam_view.legend.isHidden()
    assert "Grad-CAM for" in panel.cam_view.caption.text() and "only 1×1 cells" in panel.cam_view.caption.text()


def test_export_as_keras_shows_the_path_size_and_check(make_window, qtbot, trained_run):
    window = make_window(runs_dir=trained_run.parent)
    window.runs_panel.select_runs([trained_run])
    window.runs_panel.export_action.trigger()
    dialog = window.export_dialog
    assert dialog is not None and dialog.isVisible()
    dialog.set_format("keras")
    assert dialog.start() and dialog.busy
    qtbot.waitUntil(lambda: not dialog.busy, timeout=JOB_TIMEOUT_MS)
    result = dialog.result
    assert result is not None and result.ok, dialog.message.text()
    assert Path(result.path).is_file() and Path(result.path).parent == trained_run / "export" / "keras"
    text = dialog.message.text()
    assert result.path in text and result.size_text in text and "largest difference" in text
    assert "Exported keras" in window.log.text()


def test_export_goes_into_the_folder_the_user_chooses(make_window, qtbot, trained_run, tmp_path):
    window = make_window(runs_dir=trained_run.parent)
    window.runs_panel.select_runs([trained_run])
    window.runs_panel.export_action.trigger()
    dialog = window.export_dialog
    dialog.set_format("keras")
    chosen = tmp_path / "to-ship"
    dialog.folder.setValue(str(chosen))
    assert dialog.target.text() == str(chosen / "model.keras")
    assert dialog.start()
    qtbot.waitUntil(lambda: not dialog.busy, timeout=JOB_TIMEOUT_MS)
    assert dialog.result is not None and dialog.result.ok, dialog.message.text()
    assert Path(dialog.result.path) == chosen / "model.keras" and (chosen / "model.keras").is_file()
    assert (chosen / "labels.txt").is_file()


def test_export_dialog_offers_onnx_and_int8_with_its_input_type(make_window, qtbot, trained_run):
    window = make_window(runs_dir=trained_run.parent)
    window.runs_panel.select_runs([trained_run])
    window.runs_panel.export_action.trigger()
    dialog = window.export_dialog
    dialog.set_format("onnx")
    assert dialog.int8_io.isHidden()
    assert dialog.target.text().endswith("model.onnx")
    dialog.set_format("tflite-int8")
    assert not dialog.int8_io.isHidden()
    dialog.int8_io.setCurrentIndex(dialog.int8_io.findData("uint8"))
    assert dialog.start()
    qtbot.waitUntil(lambda: not dialog.busy, timeout=JOB_TIMEOUT_MS)
    result = dialog.result
    assert result is not None and result.int8_io == "uint8", dialog.message.text()
    text = dialog.message.text()
    assert "accuracy" in text and "float TFLite" in text and "uint8" in text


def test_report_action_writes_the_html_report_on_a_model_job(make_window, qtbot, trained_run):
    window = make_window(runs_dir=trained_run.parent)
    panel = window.runs_panel
    panel.select_runs([trained_run])
    assert panel.report_action.isEnabled()
    panel.report_action.open_when_done = False
    with qtbot.waitSignal(panel.report_action.report_written, timeout=JOB_TIMEOUT_MS) as written:
        panel.report_action.trigger()
    path = Path(written.args[0].path)
    assert path == trained_run / "report.html" and "data:image/png;base64," in path.read_text()
    assert "Report written" in window.log.text()


def test_evaluate_on_a_test_folder_keeps_test_figures_apart_and_refuses_other_classes(make_window, qtbot,
                                                                                      trained_run, tmp_path):
    from workbench.ui.panels.runs import COLUMNS

    window = make_window(runs_dir=trained_run.parent)
    panel = window.evaluate_panel
    panel.set_run(str(trained_run))
    panel.on.setCurrentIndex(panel.on.findData("test"))
    assert panel.split == "test" and not panel.test_folder.isHidden()

    other = write_image_folder(tmp_path / "other", classes=("red", "violet"), per_class=2)
    panel.test_folder.setValue(str(other))
    assert panel.evaluate()
    qtbot.waitUntil(lambda: not panel.busy, timeout=JOB_TIMEOUT_MS)
    assert "classes differ" in panel.status.text() and "violet" in panel.status.text(), panel.status.text()
    assert panel.evaluation is None

    test_folder = write_image_folder(tmp_path / "test", classes=("red", "green", "blue"), per_class=3)
    panel.test_folder.setValue(str(test_folder))
    assert panel.evaluate()
    qtbot.waitUntil(lambda: panel.result is not None and not panel.result.saved, timeout=JOB_TIMEOUT_MS)
    evaluation = panel.evaluation
    assert evaluation.split == "test" and evaluation.count == 9 and evaluation.source == str(test_folder)
    assert f"9 test images from {test_folder}" in panel.summary.text()
    assert "balanced accuracy" in panel.summary.text() and "macro-F1" in panel.summary.text()
    summary = json.loads((trained_run / "summary.json").read_text())
    assert summary["test"]["images"] == 9 and summary["val_images"] == 9  # apart from the validation figures
    assert json.loads((trained_run / "evaluation-test.json").read_text())["split"] == "test"

    window.runs_panel.refresh()
    row = window.runs_panel.row_of(str(trained_run))
    cell = window.runs_panel.table.item(row, COLUMNS.index("Test acc")).text()
    assert cell == f"{evaluation.accuracy:.3f}"
