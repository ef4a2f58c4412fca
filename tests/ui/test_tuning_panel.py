"""The Tuning tab: a scripted study's events through the real TaskRunner fill the table and the
plots, Stop ends it cleanly, Apply best writes the config, problems are marked beside their
fields; and one real tiny study, end to end through the child process."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from PySide6.QtCore import Qt
from ui_helpers import fake_run, tiny_config

from workbench.core.base.events import BatchEnd, EpochEnd, RunStarted
from workbench.core.runs.studies import (
    StudyFinished,
    StudyProgress,
    StudyRecord,
    StudyStarted,
    StudyTrial,
    TrialEnded,
    TrialRunEvent,
    TrialStarted,
    write_study,
)
from workbench.ui.panels import tuning

# state and validation accuracy per epoch of each scripted trial: trial 2 is the best
SCRIPT = (("complete", (0.5, 0.7)), ("pruned", (0.4,)), ("complete", (0.6, 0.9)), ("failed", ()))


def trial_params(tune, number: int) -> dict:
    """A trial's values: the n-th listed value, or a point along the range."""
    params = {}
    for name, r in tune.search.items():
        if r.choices is not None:
            params[name] = r.choices[number % len(r.choices)]
        else:
            params[name] = r.low + (r.high - r.low) * (number + 1) / 5
    return params


def scripted_study(script=SCRIPT, steps=4, wait_for_stop=False, study_dir="/tmp/study-scripted", resumed=0):
    """A stand-in for core/tune/study.run_study: the contract's events, quickly; obeys Stop."""

    def run_study(tune, emit, stop_event, runs_dir=None, *, pause_event=None):
        names = list(tune.search)
        emit(StudyStarted(study_dir, "scripted", "sqlite:///study.db", "val_accuracy", "maximize",
                          tune.trials, names, resumed))
        best = None
        ended = []
        for number, (state, values) in enumerate(script, start=resumed):
            params = trial_params(tune, number)
            emit(TrialStarted(number, params, tune.folds))
            emit(TrialRunEvent(number, 0, RunStarted(f"r{number}", f"/tmp/r{number}", 2, steps, ("a", "b"),
                                                     10, 2, 10, 2, 100, 50)))
            if wait_for_stop:
                deadline = time.monotonic() + 30
                batch = 0
                while not stop_event.is_set() and time.monotonic() < deadline:
                    emit(TrialRunEvent(number, 0, BatchEnd(0, batch % steps, steps, {"loss": 1.0})))
                    batch += 1
                    time.sleep(0.01)
                emit(TrialEnded(number, "failed", None, params, [f"/tmp/r{number}"], 0.5, "stopped"))
                result = StudyFinished("/tmp/study-scripted", True, None, None, {}, "", {"failed": 1}, "stopped")
                emit(result)
                return result
            for epoch, value in enumerate(values):
                for batch in range(steps):
                    emit(TrialRunEvent(number, 0, BatchEnd(epoch, batch, steps, {"loss": 1.0})))
                emit(TrialRunEvent(number, 0, EpochEnd(epoch, {"val_accuracy": value, "val_loss": 1 - value})))
            value = values[-1] if values else None
            emit(TrialEnded(number, state, value, params, [f"/tmp/r{number}"] if values else [], 1.5 + number,
                            "out of memory" if state == "failed" else ""))
            ended.append(state)
            if state == "complete" and (best is None or value > best[1]):
                best = (number, value, params)
            importances = {n: (i + 1) / len(names) for i, n in enumerate(names)} if number >= 2 else {}
            emit(StudyProgress(best[0], best[1], best[2], importances))
        counts = {s: ended.count(s) for s in ("complete", "pruned", "failed")}
        result = StudyFinished("/tmp/study-scripted", False, best[0], best[1], best[2],
                               "/tmp/study-scripted/best_config.json", counts, "trials")
        emit(result)
        return result

    return run_study


@pytest.fixture
def tuning_window(make_window, image_folder, monkeypatch, tmp_path):
    """A window whose Tuning tab runs `scripted_study()` unless a test patches `tuning.TUNE` again."""

    def make(study=None, **kwargs):
        monkeypatch.setattr(tuning, "TUNE", study or scripted_study())
        config = tiny_config(image_folder, epochs=2)
        window = make_window(config, runs_dir=tmp_path / "runs", **kwargs)
        window.show()
        window.views.setCurrentWidget(window.tuning)
        return window

    return make


def tick(panel, name: str, text: str | None = None) -> None:
    panel.form.search_checks[name].setChecked(True)
    if text is not None:
        panel.form.range_edits[name].setText(text)


def test_a_study_fills_the_table_and_plots_and_apply_best_writes_the_config(tuning_window, qtbot):
    window = tuning_window()
    panel = window.tuning
    assert not panel.start_button.isEnabled()  # nothing ticked yet
    tick(panel, "learning_rate")
    assert panel.form.range_edits["learning_rate"].text() == "1e-05 .. 0.01 log"  # pre-filled by default_range
    tick(panel, "dropout_rate", "0.1, 0.3, 0.5")
    assert panel.start_button.isEnabled() and not panel.apply_button.isEnabled()

    with qtbot.waitSignal(panel.study_ended, timeout=30_000) as ended:
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
        assert panel.running and panel.stop_button.isEnabled() and not panel.form.isEnabled()
        assert not window.train_button.isEnabled()  # a study holds the machine
    assert isinstance(ended.args[0], StudyFinished)
    assert not panel.running and window.train_button.isEnabled() and not panel.stop_button.isEnabled()

    header = [panel.table.horizontalHeaderItem(c).text() for c in range(panel.table.columnCount())]
    assert header == ["Trial", "Learning rate", "Dropout rate", "Value", "State", "Duration"]
    rows = panel.table.row_texts()
    assert [(r[0], r[2], r[3], r[4]) for r in rows] == [
        ("0", "0.1", "0.7000", "complete"), ("1", "0.3", "0.4000", "pruned"),
        ("2", "0.5", "0.9000", "complete"), ("3", "0.1", "–", "failed")]
    assert rows[2][5] == "3.5 s"
    assert panel.table.item(2, 0).font().bold() and not panel.table.item(0, 0).font().bold()
    assert panel.table.item(3, 4).toolTip() == "out of memory"

    assert panel.history.points == {0: (0.7, "complete"), 1: (0.4, "pruned"), 2: (0.9, "complete")}
    assert panel.history.best_so_far() == [0.7, 0.7, 0.9]
    assert panel.curves.points() == {(0, 0): 2, (1, 0): 1, (2, 0): 2}  # one line per trial, a point per epoch
    assert panel.importance.importances == {"learning_rate": 0.5, "dropout_rate": 1.0}
    assert list(panel.importance.bars.opts["width"]) == [0.5, 1.0]  # the largest on top
    assert "Best: trial 2, val. accuracy 0.9000" in panel.best_label.text()
    assert "Study finished (all trials done): 2 complete, 1 pruned, 1 failed" in panel.status_label.text()
    assert "Study 'scripted' in /tmp/study-scripted" in window.log.text()
    assert "Trial 3 failed (out of memory)" in window.log.text()

    assert panel.apply_button.isEnabled()
    qtbot.mouseClick(panel.apply_button, Qt.MouseButton.LeftButton)
    assert window.config.dropout.rate == 0.5 and window.config.training.learning_rate == pytest.approx(0.006004)
    assert window.regularization_panel.dropout_rate.text() == "0.5"  # the panels show it
    assert "Applied trial 2's values to the config: Learning rate 0.006004, Dropout rate 0.5" in window.log.text()
    assert window.config.data.image_size == 32 and not window.problems  # the rest is the config as it was

    cell = panel.table.visualItemRect(panel.table.item(0, 1)).center()
    qtbot.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=cell)
    qtbot.mouseDClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=cell)
    assert window.views.currentWidget() is window.runs_panel  # the trial's run, in Runs


def test_stop_ends_the_study_cleanly_and_another_can_start(tuning_window, qtbot):
    window = tuning_window(scripted_study(wait_for_stop=True))
    panel = window.tuning
    tick(panel, "batch_size")
    assert panel.start_study()
    qtbot.waitUntil(lambda: "batch" in panel.status_label.text(), timeout=10_000)
    assert panel.table.row_texts()[0][-2] == "running"
    with qtbot.waitSignal(panel.study_ended, timeout=10_000) as ended:
        qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
        assert not panel.stop_button.isEnabled()  # stopping already
    assert ended.args[0].stopped
    assert panel.status_label.text().startswith("Study stopped: 1 failed")
    assert panel.table.row_texts()[0][-2] == "failed" and not panel.apply_button.isEnabled()
    assert panel.start_button.isEnabled() and window.train_button.isEnabled()

    with qtbot.waitSignal(panel.study_ended, timeout=10_000):
        assert panel.start_study()
        panel.stop_study()


def test_a_joined_study_shows_the_trials_its_folder_recorded_before(tuning_window, qtbot, tmp_path):
    earlier = StudyTrial(0, "complete", 0.65, {"label_smoothing": 0.05}, ["/tmp/r-earlier"], seconds=12.0)
    running = StudyTrial(1, "running", None, {"label_smoothing": 0.1})  # another machine's: its own row later
    write_study(StudyRecord("shared", str(tmp_path), trials=[earlier, running]))
    window = tuning_window(scripted_study(SCRIPT[:1], study_dir=str(tmp_path), resumed=2))
    panel = window.tuning
    tick(panel, "label_smoothing")
    with qtbot.waitSignal(panel.study_ended, timeout=10_000):
        assert panel.start_study()
    rows = panel.table.row_texts()
    assert [r[:4] for r in rows] == [["0", "0.05", "0.6500", "complete"], ["2", "0.12", "0.7000", "complete"]]
    assert rows[0][4] == "12.0 s" and panel.table.run_dirs[0] == ["/tmp/r-earlier"]
    assert sorted(panel.history.points) == [0, 2] and "joining 2 earlier trials" in window.log.text()


def test_problems_are_marked_beside_their_fields_and_block_start(tuning_window, qtbot):
    window = tuning_window()
    panel, form = window.tuning, window.tuning.form
    assert "choose at least one parameter" in panel.problem_label.text() and panel.problem_label.isVisible()

    tick(panel, "learning_rate", "abc")
    edit = form.range_edits["learning_rate"]
    assert edit.property("problem") and "not a number" in edit.toolTip()
    assert not panel.start_button.isEnabled() and "1 marked in the form" in panel.problem_label.text()
    edit.setText("0.01 .. 0.001")
    assert "the range is empty" in edit.toolTip() and not panel.start_button.isEnabled()
    edit.setText("1e-4 .. 1e-2 log")
    assert not edit.property("problem") and panel.start_button.isEnabled() and not panel.problem_label.isVisible()

    tick(panel, "dropout_kind", "dropout, sideways")
    assert "unknown dropout kind 'sideways'" in form.range_edits["dropout_kind"].toolTip()
    form.range_edits["dropout_kind"].setText("dropout, gaussian")
    form.storage_edit.setText("my-database")
    form.name_edit.setText("two words")
    assert form.storage_edit.property("problem") and "database URL" in form.storage_edit.toolTip()
    assert form.name_edit.property("problem") and not panel.start_button.isEnabled()
    form.sampler_combo.setValue("grid")
    assert "a grid needs a list of values" not in panel.problem_label.text()  # marked at the field instead
    form.storage_edit.setText("")
    form.name_edit.setText("shared-study")
    assert "a grid needs a list of values" in edit.toolTip()  # the log-scaled learning rate has no steps
    form.sampler_combo.setValue("tpe")
    assert panel.start_button.isEnabled()

    window.data_panel.set_value("data.folder", "")  # the window's config: listed above the table
    assert "data.folder" in panel.problem_label.text() and not panel.start_button.isEnabled()
    assert not panel.start_study()


def test_a_run_in_the_window_blocks_the_study_and_a_study_blocks_training(tuning_window, qtbot):
    window = tuning_window(run_fn=fake_run(epochs=50, delay=0.002))
    panel = window.tuning
    tick(panel, "label_smoothing")
    window.start_training()
    assert window.runner.running and not panel.start_button.isEnabled() and not panel.start_study()
    window.stop_training()
    qtbot.waitUntil(lambda: not window.runner.running, timeout=10_000)
    assert panel.start_button.isEnabled()


def test_the_tuning_tab_imports_neither_optuna_nor_tensorflow():
    code = ("import sys\nfrom PySide6.QtWidgets import QApplication\napp = QApplication([])\n"
            "from workbench.core.config.run import RunConfig\nfrom workbench.ui.panels.tuning import TuningPanel\n"
            "panel = TuningPanel(lambda: RunConfig())\npanel.form.use_dropout_preset()\npanel.revalidate()\n"
            "print('optuna' in sys.modules, 'tensorflow' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"], out.stdout


REAL_STUDY_TIMEOUT_MS = 240_000  # the first run in a process imports TensorFlow in the fork server


def test_a_real_tiny_study_end_to_end(make_window, image_folder, tmp_path, qtbot):
    """Two 1-epoch trials of the tiny MobileNet through the real child process: the window process
    itself imports neither Optuna nor TensorFlow (beyond what earlier tests in it did)."""
    before = {name for name in ("optuna", "tensorflow") if name in sys.modules}
    window = make_window(tiny_config(image_folder, epochs=1), runs_dir=tmp_path / "runs")
    window.show()
    panel = window.tuning
    window.views.setCurrentWidget(panel)
    tick(panel, "dropout_rate", "0.1, 0.3")
    panel.form.sampler_combo.setValue("grid")
    panel.form.trials_spin.setValue(2)
    assert panel.start_button.isEnabled(), panel.problem_label.text()

    with qtbot.waitSignal(panel.study_ended, timeout=REAL_STUDY_TIMEOUT_MS) as ended:
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    result = ended.args[0]
    assert isinstance(result, StudyFinished), result
    assert result.counts.get("complete") == 2 and result.best_params["dropout_rate"] in (0.1, 0.3)
    rows = panel.table.row_texts()
    assert sorted(r[1] for r in rows) == ["0.1", "0.3"] and {r[3] for r in rows} == {"complete"}, rows
    assert all(0.0 <= float(r[2]) <= 1.0 for r in rows)
    assert panel.curves.points() == {(0, 0): 1, (1, 0): 1} and len(panel.history.points) == 2

    qtbot.mouseClick(panel.apply_button, Qt.MouseButton.LeftButton)
    assert window.config.dropout.rate == result.best_params["dropout_rate"] and not window.problems

    run_dir = panel.table.run_dirs[0][0]
    panel.table.run_activated.emit(run_dir)  # what a double-click on trial 0 asks
    assert window.views.currentWidget() is window.runs_panel and window.runs_panel.selected_paths() == [run_dir]
    assert not {name for name in ("optuna", "tensorflow") if name in sys.modules} - before
