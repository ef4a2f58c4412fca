"""The data loop's tabs in the window: Fix data (mistakes and uncertain images) and Label (active learning).

Apart from main_window.py so the window only makes this once; `window` is the MainWindow. An edit
of the window's dataset rescans it (the data panel's counts follow), and Retrain trains the run's
config the way the Train button does.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QObject, Slot

from workbench.core.config.run import RunConfig
from workbench.ui.panels.fix_data import FixDataPanel
from workbench.ui.panels.labelling import LabelPanel


class DataLoop(QObject):
    """Makes the two tabs (after Predict) and wires them to the runs list, the dataset scan and Train."""

    def __init__(self, window):
        super().__init__(window)
        self.window = w = window
        self.fix_data = FixDataPanel(w.model_pool, w.model_cancel)
        self.label = LabelPanel(w.model_pool, w.model_cancel)
        after = w.views.indexOf(w.predict_panel) + 1
        w.views.insertTab(after, self.fix_data, "Fix data")
        w.views.insertTab(after + 1, self.label, "Label")
        w.runs_panel.runs_changed.connect(self._on_runs_changed)
        self._on_runs_changed(list(w.runs_panel.records.values()))
        for panel in (self.fix_data, self.label):
            panel.edited.connect(self._on_edited)
        self.label.retrain_requested.connect(self.retrain)

    @Slot(object)
    def _on_runs_changed(self, records) -> None:
        self.fix_data.set_runs(records)
        self.label.set_runs(records)

    @Slot(object)
    def _on_edited(self, edit) -> None:
        """Log the edit; rescan when it changed the dataset the window trains on."""
        w = self.window
        w.log.add("info", edit.describe())
        folder = w.config.data.folder.strip()
        if folder and any(_inside(path, folder) for path in (edit.source, edit.dest)):
            w.readouts.schedule_scan()

    @Slot(object)
    def retrain(self, config: RunConfig) -> None:
        """Put the run's config in the editor and train it, as Train would."""
        w = self.window
        if w.runner.running:
            w.statusBar().showMessage("A run is training: retrain when it has ended", 5000)
            return
        w.set_config(config)
        w.log.add("info", f"Retraining '{config.name or config.backbone.name}' on {config.data.folder}")
        w.start_training()


def _inside(path: str, folder: str) -> bool:
    return os.path.abspath(path).startswith(os.path.abspath(folder) + os.sep)
