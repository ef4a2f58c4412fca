"""The live count of trainable layers: a debounced background model build, never on the GUI thread."""

from __future__ import annotations

import threading

from ui_helpers import tiny_config

from workbench.ui import main_window
from workbench.ui.tasks import background as jobs


def test_freeze_changes_update_the_trainable_count(make_window, qtbot, image_folder, monkeypatch):
    monkeypatch.setattr(main_window, "READOUT_DELAY_MS", 50)
    built_on = []
    original = jobs.count_trainable

    def spy(config, num_classes, cancel):
        built_on.append(threading.current_thread() is threading.main_thread())
        return original(config, num_classes, cancel)

    monkeypatch.setattr(main_window, "count_trainable", spy)
    window = make_window(tiny_config(image_folder))
    readout = window.regularization_panel.readout

    window.regularization_panel.freeze_policy.setValue("none")
    qtbot.waitUntil(lambda: "layers trainable" in readout.text(), timeout=120_000)
    everything = readout.text()
    n_total = int(everything.split(" of ")[1].split()[0])
    assert everything.startswith(f"{n_total} of {n_total} layers trainable")

    window.regularization_panel.freeze_policy.setValue("top_layers")
    window.regularization_panel.freeze_layers.setValue(5)
    qtbot.waitUntil(lambda: readout.text().startswith("5 of ") or readout.text().startswith("6 of "),
                    timeout=60_000)
    assert built_on and not any(built_on), "the model must be built off the GUI thread"

    window.regularization_panel.freeze_layers.setValue(0)  # invalid for top_layers: no count, a hint
    qtbot.waitUntil(lambda: "Fix the problems" in readout.text(), timeout=5000)
