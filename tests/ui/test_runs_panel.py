"""The Runs panel: saved runs listed from the runs folder (across restarts), curves, rename, delete, run again.

Runs are written the way training writes them (RunStore: config first, then metrics and
summary), without training anything, so these tests need no TensorFlow.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QInputDialog, QMessageBox
from ui_helpers import tiny_config

from workbench.core.base.events import EpochEnd, RunFinished, RunStarted
from workbench.core.config.run import load_config
from workbench.core.runs.store import RunStore
from workbench.ui.panels.runs import COLUMNS


def saved_run(root: Path, name: str, val_accuracy: list[float], *, epochs: int = 5, status: str = "finished",
              dropout: float = 0.2) -> Path:
    config = tiny_config(root / "data", epochs=epochs)
    config.name = name
    config.dropout.rate = dropout
    folder = RunStore(root).create(config)
    for epoch, acc in enumerate(val_accuracy, start=1):
        folder.append_metrics(epoch, {"loss": 1.0 / epoch, "accuracy": acc + 0.05, "val_loss": 1.1 / epoch,
                                      "val_accuracy": acc, "seconds": 1.5})
    folder.write_summary({"status": status, "reason": "", "epochs_done": len(val_accuracy),
                          "seconds": 1.5 * len(val_accuracy), "class_names": ["a", "b"]})
    return folder.path


def cell(panel, run_dir, column: str) -> str:
    return panel.table.item(panel.row_of(run_dir), COLUMNS.index(column)).text()


def test_runs_made_before_the_window_are_listed_and_survive_a_restart(make_window, tmp_path):
    root = tmp_path / "runs"
    first = saved_run(root, "baseline", [0.5, 0.7, 0.65])
    second = saved_run(root, "more dropout", [0.6, 0.8], dropout=0.5, status="stopped")
    broken = root / "20200101-000000-broken"
    broken.mkdir()
    (broken / "config.json").write_text('{"training": {"epochs": "many"}')  # cut short: not JSON

    panel = make_window(runs_dir=root).runs_panel
    assert panel.table.rowCount() == 3
    assert cell(panel, first, "Name") == "baseline"
    assert cell(panel, first, "Backbone") == "MobileNetV2 ×0.35"
    assert cell(panel, first, "Weights") == "re-initialised"
    assert cell(panel, first, "Dropout") == "dropout 0.2" and cell(panel, second, "Dropout") == "dropout 0.5"
    assert cell(panel, first, "Freeze") == "backbone frozen"
    assert cell(panel, first, "Best val acc") == "0.700"
    assert cell(panel, first, "Epochs") == "3/5"
    assert cell(panel, first, "Duration") == "4.5 s"
    assert cell(panel, first, "Status") == "finished (no model)"
    assert cell(panel, second, "Status").startswith("stopped")
    status = panel.table.item(panel.row_of(broken), COLUMNS.index("Status"))
    assert status.text() == "broken" and "not valid JSON" in status.toolTip()

    # Sorting by a column sorts by value, and a broken run never stops the listing.
    panel.table.sortItems(COLUMNS.index("Best val acc"), Qt.SortOrder.DescendingOrder)
    assert panel.table.item(0, COLUMNS.index("Name")).text() == "more dropout"

    # A new window (a restart) reads the same folder, including a run made since.
    third = saved_run(root, "third", [0.9])
    again = make_window(runs_dir=root).runs_panel
    assert {again.table.item(r, 0).data(Qt.ItemDataRole.UserRole) for r in range(3 + 1)} == {
        str(first), str(second), str(broken), str(third)}


def test_one_run_shows_its_curves_and_several_are_overlaid(make_window, qtbot, tmp_path):
    root = tmp_path / "runs"
    a = saved_run(root, "a", [0.5, 0.6, 0.7])
    b = saved_run(root, "b", [0.4, 0.8])
    window = make_window(runs_dir=root)
    window.views.setCurrentWidget(window.runs_panel)
    window.show()
    panel = window.runs_panel
    curves = panel.curves
    assert curves.curve_count() == 0

    table = panel.table
    rect_a = table.visualItemRect(table.item(panel.row_of(a), 1))
    rect_b = table.visualItemRect(table.item(panel.row_of(b), 1))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect_a.center())
    assert panel.selected_paths() == [str(a)]
    assert curves.curve_count("accuracy", "val") == 1 and curves.curve_count("loss", "train") == 1
    x, y = next(c.item.getData() for c in curves.curves if c.metric == "accuracy" and c.kind == "val")
    assert list(x) == [1.0, 2.0, 3.0] and list(y) == [0.5, 0.6, 0.7]

    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier,
                     pos=rect_b.center())
    assert sorted(panel.selected_paths()) == sorted([str(a), str(b)])
    assert curves.curve_count("accuracy", "val") == 2 and curves.curve_count("loss", "val") == 2
    assert sorted(name.split(" · ")[0] for name, _ in curves.legend_entries) == ["a", "b"]
    assert {name for name, _ in curves.legend_entries} == {f"a · {a.name}", f"b · {b.name}"}
    assert len({colour for _, colour in curves.legend_entries}) == 2  # one colour per run
    assert "a" in curves.legend.text() and "b" in curves.legend.text()


def test_rename_writes_the_config_and_keeps_the_folder(make_window, tmp_path, monkeypatch):
    root = tmp_path / "runs"
    run = saved_run(root, "old name", [0.5])
    panel = make_window(runs_dir=root).runs_panel
    panel.select_runs([run])
    monkeypatch.setattr(QInputDialog, "getText", lambda *args, **kwargs: ("  new name ", True))
    panel.rename_action.trigger()
    assert run.is_dir() and load_config(run / "config.json").name == "new name"
    assert cell(panel, run, "Name") == "new name"
    assert panel.selected_paths() == [str(run)]  # still selected after the refresh
    assert not list(run.glob(".config.json*"))  # the atomic write left nothing behind


def test_delete_asks_first_then_removes_the_folder(make_window, tmp_path, monkeypatch):
    root = tmp_path / "runs"
    keep = saved_run(root, "keep", [0.5])
    doomed = saved_run(root, "doomed", [0.5])
    panel = make_window(runs_dir=root).runs_panel
    answers = []

    def answer(*args, **kwargs):
        answers.append(args[2])
        return QMessageBox.StandardButton.No if len(answers) == 1 else QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", answer)
    panel.select_runs([doomed])
    panel.delete_action.trigger()  # answered No
    assert doomed.is_dir() and panel.table.rowCount() == 2
    panel.delete_action.trigger()  # answered Yes
    assert "doomed" in answers[-1] and "cannot be undone" in answers[-1]
    assert not doomed.exists() and keep.is_dir()
    assert panel.table.rowCount() == 1 and panel.row_of(keep) == 0
    assert [p.name for p in root.iterdir()] == [keep.name]  # nothing hidden left behind


def test_run_again_loads_the_runs_config_into_the_editor(make_window, tmp_path):
    root = tmp_path / "runs"
    run = saved_run(root, "to repeat", [0.5], epochs=7, dropout=0.35)
    window = make_window(runs_dir=root)
    assert window.config.training.epochs != 7
    window.runs_panel.select_runs([run])
    assert window.runs_panel.run_again_action.isEnabled()
    window.runs_panel.run_again_action.trigger()
    saved = json.loads((run / "config.json").read_text())
    assert window.config.to_dict() == saved
    assert window.training_panel.epochs.value() == 7
    assert window.training_panel.run_name.text() == "to repeat"
    assert window.config is not window.runs_panel.records[str(run)].config  # a copy: edits stay in the editor


def test_a_run_is_listed_while_it_trains_and_updated_when_it_ends(make_window, qtbot, tmp_path, image_folder):
    root = tmp_path / "runs"

    proceed = threading.Event()

    def run(config, emit, stop_event, *, pause_event=None, runs_dir=None):  # on the worker thread
        folder = RunStore(runs_dir).create(config)
        emit(RunStarted(folder.id, str(folder.path), 1, 1, ("a", "b"), 4, 2, 10, 2, 100, 50))
        proceed.wait(10)
        folder.append_metrics(1, {"loss": 0.5, "accuracy": 0.7, "val_loss": 0.6, "val_accuracy": 0.75})
        emit(EpochEnd(0, {"loss": 0.5, "accuracy": 0.7, "val_loss": 0.6, "val_accuracy": 0.75}, 0.1))
        folder.write_summary({"status": "finished", "epochs_done": 1, "seconds": 0.1})
        return RunFinished(str(folder.path), False, 1)

    window = make_window(tiny_config(image_folder, epochs=1), runs_dir=root, run_fn=run)
    panel = window.runs_panel
    assert panel.table.rowCount() == 0
    qtbot.waitUntil(lambda: window.train_button.isEnabled(), timeout=15_000)
    with qtbot.waitSignal(window.run_ended, timeout=30_000) as ended:
        window.start_training()
        qtbot.waitUntil(lambda: panel.table.rowCount() == 1, timeout=10_000)
        row_status = panel.table.item(0, COLUMNS.index("Status")).text()
        assert row_status == "running"
        panel.select_runs([panel.table.item(0, 0).data(Qt.ItemDataRole.UserRole)])
        assert not panel.delete_action.isEnabled() and not panel.run_again_action.isEnabled()
        assert panel.rename_action.isEnabled()
        proceed.set()
    run_dir = ended.args[0].run_dir
    assert cell(panel, run_dir, "Status").startswith("finished")
    assert cell(panel, run_dir, "Best val acc") == "0.750"


def test_newest_run_comes_first_and_showing_the_tab_reads_the_folder_again(make_window, tmp_path):
    root = tmp_path / "runs"
    old = saved_run(root, "old", [0.5])
    old.rename(old.with_name("20200101-120000-old"))
    new = saved_run(root, "new", [0.5])
    window = make_window(runs_dir=root)
    panel = window.runs_panel
    assert [panel.table.item(r, 1).text() for r in range(2)] == ["new", "old"]
    later = saved_run(root, "made by the CLI meanwhile", [0.5])
    later = later.rename(later.with_name("20991231-000000-cli"))
    window.show()
    window.views.setCurrentWidget(panel)
    assert panel.row_of(later) == 0 and panel.row_of(new) == 1


def test_save_backbone_writes_the_file_and_offers_it_as_a_weights_source(make_window, qtbot, tmp_path, monkeypatch):
    import keras
    import numpy as np

    from workbench.core.config.validate import validate
    from workbench.core.engine.model import build_model
    from workbench.core.engine.saving import load_model

    root = tmp_path / "runs"
    run = saved_run(root, "colours", [0.5, 0.8])
    keras.utils.set_random_seed(3)
    build_model(load_config(run / "config.json"), 2).save(run / "model.keras")  # as training leaves it
    window = make_window(runs_dir=root)
    window.backbone_panel.set_value("backbone.name", "EfficientNetB0")  # another backbone, to be switched back
    panel = window.runs_panel
    panel.refresh()
    panel.select_runs([run])
    assert panel.save_backbone_action.isEnabled()
    asked = []

    def get_text(parent, title, label, mode, default):
        asked.append(default)
        return "my colours", True

    monkeypatch.setattr(QInputDialog, "getText", get_text)
    with qtbot.waitSignal(panel.backbone_saved, timeout=60_000) as saved:
        panel.save_backbone_action.trigger()
    path = Path(saved.args[0])
    assert asked == ["colours"] and path == root / "weights" / "my-colours.weights.h5" and path.is_file()
    assert panel.table.rowCount() == 1  # the weights folder is not listed as a run

    # The Backbone panel lists it; choosing it starts from those weights, on the backbone they fit.
    backbone = window.backbone_panel
    assert str(path) in backbone.saved_backbone_paths()
    index = backbone.saved.findData(str(path))
    assert "MobileNetV2 ×0.35" in backbone.saved.itemText(index)
    backbone.saved.setCurrentIndex(index)
    backbone.saved.activated.emit(index)
    b = window.config.backbone
    assert (b.name, b.width, b.weights, b.weights_file, b.transfer) == ("MobileNetV2", 0.35, "file", str(path), "all")
    assert not [p for p in validate(window.config) if p.field.startswith("backbone.")]
    trained = load_model(run / "model.keras", compile=False).get_layer("backbone").get_weights()
    fresh = build_model(window.config.replace(**{"data.image_size": 32}), 3).get_layer("backbone").get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(trained, fresh, strict=True))

    # A run without a model: a message, never a crash.
    empty = saved_run(root, "no model", [0.4])
    with qtbot.waitSignal(panel.log_message, timeout=30_000, check_params_cb=lambda level, text: level == "error"):
        panel.save_backbone(empty, "nothing")
    assert panel.error_box is not None and "has no model" in panel.error_box.text()


def test_only_runs_are_listed_not_the_gan_sweep_or_saved_backbone_folders(tmp_path):
    from workbench.core.runs.listing import list_runs

    root = tmp_path / "runs"
    run = saved_run(root, "real", [0.5])
    (root / "weights").mkdir()
    (root / "gan" / "20260101-000000-gan").mkdir(parents=True)
    (root / "sweep-20260101-000000").mkdir()
    (root / "sweep-20260101-000000" / "sweep.json").write_text("{}")
    (root / "leftover").mkdir()  # no config.json: listed as damaged, so the user can delete it
    records = {r.path.name: r for r in list_runs(root)}
    assert set(records) == {run.name, "leftover"}
    assert records["leftover"].problem and not records[run.name].problem


def test_a_refresh_reads_again_only_the_runs_whose_files_changed(tmp_path, monkeypatch):
    from workbench.core.runs import listing as runs_module

    root = tmp_path / "runs"
    paths = [saved_run(root, f"r{i}", [0.5, 0.6]) for i in range(5)]
    cache: dict = {}
    read = []
    real = runs_module.load_run
    monkeypatch.setattr(runs_module, "load_run", lambda path: read.append(Path(path).name) or real(path))
    assert len(runs_module.list_runs(root, cache)) == 5 and len(read) == 5
    read.clear()
    assert len(runs_module.list_runs(root, cache)) == 5 and read == []  # nothing changed: nothing read
    from workbench.core.runs.store import RunFolder

    folder = RunFolder(paths[2])
    folder.load_existing_metrics()
    folder.append_metrics(3, {"loss": 0.3, "accuracy": 0.9, "val_loss": 0.4, "val_accuracy": 0.8})
    records = {r.path.name: r for r in runs_module.list_runs(root, cache)}
    assert read == [paths[2].name] and len(records[paths[2].name].metrics) == 3
    import shutil

    shutil.rmtree(paths[0])
    assert len(runs_module.list_runs(root, cache)) == 4 and str(paths[0]) not in cache


def test_two_runs_with_one_name_differ_in_the_overlay_and_names_are_not_squeezed(make_window, tmp_path):
    root = tmp_path / "runs"
    first = saved_run(root, "demo with a long name", [0.5, 0.6])
    second = saved_run(root, "demo with a long name", [0.4, 0.7])
    window = make_window(runs_dir=root)
    window.resize(1024, 700)
    window.views.setCurrentWidget(window.runs_panel)
    window.show()
    panel = window.runs_panel
    panel.refresh()
    panel.curves.show_runs([panel.records[str(first)], panel.records[str(second)]])
    labels = [label for label, _ in panel.curves.legend_entries]
    assert len(set(labels)) == 2 and all(" · " in label for label in labels)
    name_column = COLUMNS.index("Name")
    needed = panel.table.fontMetrics().horizontalAdvance("demo with a long name")
    assert panel.table.columnWidth(name_column) >= needed  # never "demo..." after a refresh
    assert panel.table.height() >= 22 * 6  # more than four rows show
