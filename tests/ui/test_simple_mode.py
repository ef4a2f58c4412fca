"""Simple / Expert: Simple hides all but the essentials without changing the config; the choice is
remembered; Help > Getting started walks through the window, selecting and framing each part."""

from __future__ import annotations

from PySide6.QtCore import Qt

from workbench.ui import settings as keys
from workbench.ui.getting_started import STEPS
from workbench.ui.settings import app_settings


def visible(widget) -> bool:
    return widget.isVisibleTo(widget.window())


def test_simple_shows_the_essentials_and_keeps_the_config(make_window, qtbot):
    window = make_window()
    window.show()
    qtbot.waitExposed(window)
    before = window.config.to_dict()
    mode = window.view_mode
    window.tabs.setCurrentIndex(3)
    assert not mode.simple and visible(window.training_panel.learning_rate)  # Expert by default

    qtbot.mouseClick(mode.switch.simple, Qt.MouseButton.LeftButton)
    assert mode.simple and mode.simple_action.isChecked() and mode.switch.simple.isChecked()
    tabs = [window.tabs.tabText(i) for i in range(window.tabs.count()) if window.tabs.isTabVisible(i)]
    assert tabs == ["Data", "Backbone", "Training"]  # Regularization is left out
    window.tabs.setCurrentIndex(3)
    assert visible(window.training_panel.epochs)
    for hidden in (window.training_panel.learning_rate, window.training_panel.batch_size,
                   window.training_panel.run_name, window.training_panel.seed):
        assert not visible(hidden)
    window.tabs.setCurrentIndex(0)
    assert visible(window.data_panel.folder) and not visible(window.data_panel.image_size)
    window.tabs.setCurrentIndex(1)
    assert visible(window.backbone_panel.table) and not visible(window.backbone_panel.weights_file)
    assert visible(window.train_button) and visible(window.stop_button)
    assert not visible(window.compare_button) and not visible(window.pause_button)
    views = [window.views.tabText(i) for i in range(window.views.count()) if window.views.isTabVisible(i)]
    assert views == ["Training", "Runs", "Evaluate", "Predict"]
    assert not window.log_dock.isVisible()
    assert window.config.to_dict() == before  # hidden, never changed
    assert app_settings().value(keys.VIEW_MODE) == "simple"

    window.view_mode.expert_action.trigger()  # View > Expert
    assert not mode.simple and mode.switch.expert.isChecked()
    window.tabs.setCurrentIndex(3)
    assert visible(window.training_panel.learning_rate) and visible(window.compare_button)
    assert all(window.views.isTabVisible(i) for i in range(window.views.count()))
    assert all(window.tabs.isTabVisible(i) for i in range(window.tabs.count()))
    assert window.log_dock.isVisible()
    assert window.config.to_dict() == before
    assert app_settings().value(keys.VIEW_MODE) == "expert"


def test_the_mode_is_remembered_and_a_hidden_field_with_a_problem_shows(make_window, qtbot):
    app_settings().setValue(keys.VIEW_MODE, "simple")
    window = make_window()
    window.show()
    qtbot.waitExposed(window)
    assert window.view_mode.simple and not window.compare_button.isVisibleTo(window)
    window.tabs.setCurrentIndex(3)
    rate = window.training_panel.learning_rate
    assert not visible(rate)
    window.training_panel.set_value("training.learning_rate", -1.0)  # e.g. from an opened config
    assert window.problems and visible(rate)  # in view, so that it can be fixed
    window.training_panel.set_value("training.learning_rate", 1e-3)
    assert not visible(rate)


def test_getting_started_selects_and_frames_each_part(make_window, qtbot):
    window = make_window()
    window.show()
    qtbot.waitExposed(window)
    guide = window.getting_started
    dialog = guide.start()
    assert dialog.isVisible() and guide.title.text() == STEPS[0].title
    assert window.tabs.currentIndex() == window.panels.index(window.data_panel)
    assert guide.highlight.isVisible() and guide.highlight.target is window.data_panel.folder
    seen = []
    for _ in range(len(STEPS) - 1):
        qtbot.mouseClick(guide.next_button, Qt.MouseButton.LeftButton)
        seen.append((guide.title.text(), guide.highlight.target))
    assert [title for title, _ in seen] == [s.title for s in STEPS[1:]]
    assert seen[2][1] is window.train_button and seen[3][1] is window.plots
    assert window.views.currentWidget() is window.evaluate_panel  # the last step: the results
    assert guide.next_button.text() == "Done"
    qtbot.mouseClick(guide.next_button, Qt.MouseButton.LeftButton)
    assert not dialog.isVisible() and not guide.highlight.isVisible()
    help_actions = [a.text() for a in window.menuBar().actions()[-1].menu().actions()]
    assert "&Getting started…" in help_actions
