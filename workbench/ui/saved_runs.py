"""Wires the Runs, Evaluate, Predict and lab tabs to each other and to the window's log.

Apart from main_window.py so the window keeps to the run it trains; `window` is the MainWindow.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Slot

from workbench.core.config.run import RunConfig
from workbench.ui.panels.export import ExportDialog


class SavedRuns(QObject):
    """Slots for what the saved-run tabs and the labs ask of the window."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window

    def connect_views(self) -> None:
        """Connect the tabs' signals once they exist (MainWindow._build_views made them)."""
        w = self.window
        w.tuning.apply_requested.connect(self.apply_config)
        w.tuning.run_requested.connect(self.show_run)
        for panel in w.panels:
            panel.edited.connect(w.tuning.on_config_edited)
        for lab in (w.tuning, w.gan_lab):
            lab.running_changed.connect(self._on_lab_running)
            lab.log_message.connect(self._on_log_message)
        w.runs_panel.runs_changed.connect(self._on_runs_changed)
        w.runs_panel.current_run_changed.connect(self._on_run_selected)
        w.runs_panel.run_again_requested.connect(self.run_again)
        w.runs_panel.evaluate_requested.connect(self.evaluate_run)
        w.runs_panel.export_requested.connect(self.open_export_dialog)
        w.runs_panel.backbone_saved.connect(w.backbone_panel.add_saved_backbone)
        w.runs_panel.log_message.connect(self._on_log_message)
        w.evaluate_panel.export_requested.connect(self.open_export_dialog)
        w.evaluate_panel.image_activated.connect(self._on_image_activated)
        self._on_runs_changed(list(w.runs_panel.records.values()))

    @Slot(object)
    def apply_config(self, config: RunConfig) -> None:
        """The Tuning tab's best trial becomes the config every panel shows."""
        w = self.window
        if w.runner.running:
            return
        w.set_config(config)
        w.tuning.revalidate()

    @Slot(str)
    def show_run(self, run_dir: str) -> None:
        """A trial's run, selected in Runs (the tab re-reads the folder as it comes into view)."""
        w = self.window
        w.views.setCurrentWidget(w.runs_panel)
        w.runs_panel.refresh()
        w.runs_panel.select_runs([run_dir])

    @Slot(bool)
    def _on_lab_running(self, running: bool) -> None:
        self.window.update_controls()

    @Slot(str, str)
    def _on_log_message(self, level: str, text: str) -> None:
        self.window.log.add(level, text)

    @Slot(object)
    def _on_runs_changed(self, records) -> None:
        self.window.evaluate_panel.set_runs(records)
        self.window.predict_panel.set_runs(records)

    @Slot(str)
    def _on_run_selected(self, run_dir: str) -> None:
        self.window.evaluate_panel.set_run(run_dir)
        self.window.predict_panel.set_run(run_dir)

    @Slot(object)
    def run_again(self, config: RunConfig) -> None:
        """Load a saved run's config into the editor, ready to train again."""
        w = self.window
        if w.runner.running:
            return
        w.set_config(config)
        w.settings_dock.show()
        w.log.add("info", f"Loaded the config of run '{config.name or config.backbone.name}': press Train to run it again")
        w.statusBar().showMessage("Loaded the run's config: press Train to run it again", 8000)

    @Slot(str)
    def evaluate_run(self, run_dir: str) -> None:
        self.window.views.setCurrentWidget(self.window.evaluate_panel)
        self.window.evaluate_panel.evaluate(run_dir)

    @Slot(str, str)
    def _on_image_activated(self, run_dir: str, path: str) -> None:
        w = self.window
        w.predict_panel.set_run(run_dir)
        w.views.setCurrentWidget(w.predict_panel)
        w.predict_panel.add_paths([path])

    @Slot(str)
    def open_export_dialog(self, run_dir: str) -> ExportDialog:
        """The Export dialog for a run (one at a time; an export in progress keeps its dialog)."""
        w = self.window
        dialog = w.export_dialog
        if dialog is not None and dialog.busy:
            dialog.show()
            dialog.raise_()
            return dialog
        if dialog is not None:
            dialog.deleteLater()
        record = w.runs_panel.records.get(run_dir)
        title = Path(run_dir).name
        if record is not None and record.config is not None and record.config.name:
            title = f"{record.config.name} ({title})"
        dialog = ExportDialog(run_dir, title, w.model_pool, w.model_cancel, w)
        dialog.exported.connect(self._on_exported)
        dialog.export_failed.connect(self._on_export_failed)
        w.export_dialog = dialog
        dialog.open()
        return dialog

    @Slot(object)
    def _on_exported(self, result) -> None:
        if result.ok:
            self.window.log.add("success", f"Exported {result.format} ({result.size_text}): {result.path}; "
                                           f"largest difference from the original {result.max_abs_diff:.2g}")
        else:
            self.window.log.add("error", f"Export as {result.format} failed: {result.error}")

    @Slot(str)
    def _on_export_failed(self, message: str) -> None:
        self.window.log.add("error", f"Export failed: {message}")
