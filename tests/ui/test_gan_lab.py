"""The GAN lab tab (issue #9): fill the form, train, watch the plots and samples, pause, stop, FID, sweep."""

from __future__ import annotations

import subprocess
import sys

from fixture_images import write_image_tree
from PySide6.QtCore import Qt

from workbench.core.base.events import GanStep, RunFinished
from workbench.core.runs.gan_sweeps import (
    GanSweepFinished,
    GanSweepResult,
    GanSweepStarted,
    GanTrialDone,
    GanTrialResult,
)


def fill_tiny(lab, folder) -> None:
    """What a person types: a folder, tiny networks, a few hundred steps."""
    lab.set_value("data.folder", str(folder))
    lab.set_value("model.latent_size", 16)
    lab.set_value("model.generator_width", 8)
    lab.set_value("model.discriminator_width", 8)
    lab.set_value("training.batch_size", 16)
    lab.set_value("training.steps", 5000)
    lab.set_value("training.sample_every", 5)
    lab.set_value("evaluation.features", "backbone")
    lab.set_value("evaluation.backbone_weights", "none")
    lab.set_value("evaluation.samples", 20)


def test_the_gan_lab_is_a_tab_and_importing_it_loads_no_tensorflow(make_window):
    code = "import sys, workbench.ui.panels.gan_lab; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["False", "False"], out.stderr
    window = make_window()
    titles = [window.views.tabText(i) for i in range(window.views.count())]
    assert "GAN lab" in titles
    lab = window.gan_lab
    assert not lab.train_button.isEnabled()  # no folder yet
    assert "folder" in lab.problem_label.text()


def test_bad_input_is_marked_and_never_crashes(make_window, tmp_path):
    lab = make_window().gan_lab
    lab.set_value("data.folder", str(tmp_path / "missing"))
    lab.widgets["training.generator_learning_rate"].setText("fast")
    lab.set_value("dropout.rate", 1.5)
    assert not lab.train_button.isEnabled()
    fields = {p.field for p in lab.problems}
    assert {"data.folder", "training.generator_learning_rate", "dropout.rate"} <= fields
    assert lab.widgets["dropout.rate"].property("problem")
    assert not lab.start_training()
    lab.rates_edit.setText("0, 2")
    assert not lab.sweep_button.isEnabled() and not lab.start_sweep()
    assert not lab.open_config(tmp_path / "nope.json") and "Cannot open" in lab.status_label.text()


def test_train_pause_stop_then_fid_from_the_window(make_window, qtbot, tmp_path):
    folder = write_image_tree(tmp_path / "data", per_class=8)
    window = make_window(runs_dir=tmp_path / "runs")
    lab = window.gan_lab
    window.views.setCurrentWidget(lab)
    fill_tiny(lab, folder)
    assert lab.problems == [] and lab.train_button.isEnabled()

    qtbot.mouseClick(lab.train_button, Qt.MouseButton.LeftButton)
    assert lab.running and not window.train_button.isEnabled()  # one model job at a time
    qtbot.waitUntil(lambda: min(lab.points().values()) >= 20 and lab.last_samples is not None
                    and lab.last_samples.step >= 10, timeout=60_000)
    assert lab.samples_image.image is not None and lab.samples_image.image.shape[2] == 3

    # Pause: once the child says "Paused" (every step before it has reached the window by then, the events
    # come in order), no step arrives until Resume; after Resume steps come again.
    said = []
    lab.log_message.connect(lambda level, text: said.append(text))
    qtbot.mouseClick(lab.pause_button, Qt.MouseButton.LeftButton)
    assert lab.pause_button.text() == "Resume"
    qtbot.waitUntil(lambda: "Paused" in said, timeout=30_000)
    qtbot.waitUntil(lambda: lab.status_label.text().startswith("Paused"), timeout=5_000)  # not before
    lab._redraw(force=True)
    at_pause = lab.points()
    qtbot.wait(1500)
    lab._redraw(force=True)
    assert lab.points() == at_pause, "a step ran while paused"
    qtbot.mouseClick(lab.pause_button, Qt.MouseButton.LeftButton)
    assert lab.pause_button.text() == "Pause"

    def stepped_again() -> bool:
        lab._redraw(force=True)
        return "Resumed" in said and lab.points()["d_loss"] > at_pause["d_loss"]

    qtbot.waitUntil(stepped_again, timeout=30_000)
    with qtbot.waitSignal(lab.run_ended, timeout=30_000) as ended:
        qtbot.mouseClick(lab.stop_button, Qt.MouseButton.LeftButton)
        assert lab.stop_button.text() == "Stopping…" and lab.status_label.text().startswith("Stopping")
    assert lab.stop_button.text() == "Stop"
    result = ended.args[0]
    assert isinstance(result, RunFinished) and result.stopped
    run = tmp_path / "runs" / "gan" / result.run_dir.split("/")[-1]
    assert (run / "generator.keras").is_file() and (run / "config.json").is_file()
    assert len(list((run / "samples").glob("step-*.png"))) >= 3
    assert window.train_button.isEnabled() and lab.train_button.isEnabled()

    assert lab.fid_run.value() == result.run_dir
    with qtbot.waitSignal(lab.fid_computed, timeout=60_000) as computed:
        assert lab.compute_fid()
    assert computed.args[0].fid > 0
    assert "MobileNetV2 backbone, random weights" in lab.fid_label.text()
    assert (run / "fid.json").is_file()


def test_the_sweep_table_shows_fid_per_rate(make_window, qtbot, tmp_path):
    """The table's plumbing, with a stand-in sweep function that reports made-up FIDs. The real sweep (real
    GAN runs, FID computed, the table written) runs in tests/core/test_gan.py::
    test_cli_gan_sweep_trains_one_real_run_per_rate_and_writes_the_fid_table."""
    from workbench.ui.panels.gan_lab import GanLabPanel

    folder = write_image_tree(tmp_path / "data", per_class=4)

    def fake_sweep(sweep, emit, stop_event, runs_dir):
        emit(GanSweepStarted("s1", str(tmp_path / "s1"), tuple(sweep.rates), 10))
        trials = []
        for i, rate in enumerate(sweep.rate_list()):
            trial = GanTrialResult(i, rate, "finished", f"/runs/{i}", fid=30.0 - 10 * i, network="net", steps_done=10)
            trials.append(trial)
            emit(GanTrialDone(trial))
        emit(GanSweepFinished(str(tmp_path / "s1"), False, len(trials), len(trials)))
        return GanSweepResult("s1", str(tmp_path / "s1"), trials, len(trials))

    window = make_window()
    lab = GanLabPanel(tmp_path / "runs", window.model_pool, window.model_cancel, sweep_fn=fake_sweep)
    qtbot.addWidget(lab)
    fill_tiny(lab, folder)
    lab.rates_edit.setText("0, 0.5")
    with qtbot.waitSignal(lab.running_changed, timeout=10_000, check_params_cb=lambda running: not running):
        assert lab.start_sweep()
    assert lab.table_rows() == [["0", "finished", "30.000", "–", "10", "/runs/0"],
                                ["0.5", "finished", "20.000", "–", "10", "/runs/1"]]
    assert lab.sweep_table.item(1, 2).font().bold() and "Sweep finished" in lab.status_label.text()
    lab.shutdown()


def test_gan_steps_reach_the_plots(make_window, qtbot, tmp_path):
    lab = make_window().gan_lab
    for step in range(1, 31):
        lab._show_event(GanStep(step, 1.0, 0.7, 0.6, 0.4))
    lab._redraw(force=True)
    assert lab.points() == {"d_loss": 30, "g_loss": 30, "d_real": 30, "d_fake": 30}


def test_save_config_writes_the_json_that_workbench_gan_reads(make_window, qtbot, tmp_path, monkeypatch):
    from workbench.core.config.gan import load_gan_config, validate_gan
    from workbench.ui.panels import gan_lab

    folder = write_image_tree(tmp_path / "data", per_class=4)
    lab = make_window().gan_lab
    fill_tiny(lab, folder)
    lab.set_value("dropout.rate", 0.4)
    lab.set_value("training.label_smoothing", 0.1)
    lab.set_value("training.discriminator_beta_1", 0.7)
    asked = []

    def choose(parent, title, start, filters):
        asked.append((title, start, filters))
        return str(tmp_path / "mine"), filters  # no extension typed: .json is added

    monkeypatch.setattr(gan_lab.QFileDialog, "getSaveFileName", staticmethod(choose))
    qtbot.mouseClick(lab.save_button, Qt.MouseButton.LeftButton)
    assert len(asked) == 1 and asked[0][1].endswith("gan.json")
    saved = load_gan_config(tmp_path / "mine.json")
    assert saved == lab.config and validate_gan(saved) == []
    assert (saved.data.folder, saved.model.generator_width, saved.training.steps) == (str(folder), 8, 5000)
    assert (saved.dropout.rate, saved.training.label_smoothing, saved.training.discriminator_beta_1) == (0.4, 0.1, 0.7)

    monkeypatch.setattr(gan_lab.QFileDialog, "getSaveFileName", staticmethod(lambda *a: ("", "")))
    qtbot.mouseClick(lab.save_button, Qt.MouseButton.LeftButton)  # cancelled: nothing written
    assert sorted(p.name for p in tmp_path.glob("*.json")) == ["mine.json"] and not (tmp_path / "mine").exists()
