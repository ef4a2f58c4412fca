"""Compare transfer with zero-init: train the config twice, then overlay both runs' curves.

The first run is the config as it stands (its pretrained weights, "transfer"); the
second is the same config with `backbone.transfer = "zero"`: the same architecture,
re-initialised. They run one after the other on the main window's training worker
(so Stop, Pause and the live curves work as for any run), each leaves a normal run
folder named "<name> (transfer)" or "<name> (zero-init)", and when both are done the
Runs tab shows them selected, their curves overlaid. Stopping either run ends the
comparison; a failed run ends it too (the main window shows why).
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal, Slot

from workbench.core.base.events import RunFailed, RunFinished
from workbench.core.config.comparison import comparison_configs, why_not_comparable
from workbench.core.config.run import RunConfig


class TransferComparison(QObject):
    """Runs the two trainings of a comparison on `window` (a MainWindow) and shows both runs at the end."""

    finished = Signal(list)  # the run folders, in order (one when the first run was stopped or failed)

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.active = False
        self.queue: list[RunConfig] = []
        self.run_dirs: list[str] = []
        self.names: list[str] = []
        window.run_ended.connect(self._on_run_ended)

    @property
    def stage(self) -> int:
        """1 or 2 while comparing (which run trains), else 0."""
        return len(self.run_dirs) + 1 if self.active else 0

    def start(self) -> bool:
        """Start the comparison with the window's config; False (and a message) when it cannot."""
        w = self.window
        if self.active or w.runner.running:
            return False
        if w.revalidate():
            w.statusBar().showMessage("Fix the problems marked in red first", 5000)
            return False
        why = why_not_comparable(w.config)
        if why:
            w.show_error("Cannot compare with zero-init", why)
            return False
        transfer, zero = comparison_configs(w.config)
        self.active, self.queue, self.run_dirs = True, [zero], []
        self.names = [transfer.name, zero.name]
        w.log.add("info", f"Comparing transfer with zero-init: run 1 of 2, '{transfer.name}' (as configured), "
                          f"then '{zero.name}' (the same architecture, re-initialised)")
        w.start_run(transfer)
        self.update_controls()
        return True

    @Slot(object)
    def _on_run_ended(self, result) -> None:
        if not self.active:
            return
        w = self.window
        if getattr(result, "run_dir", ""):
            self.run_dirs.append(result.run_dir)
        closing = getattr(w, "close_after_run", False)
        if isinstance(result, RunFinished) and not result.stopped and self.queue and not closing:
            config = self.queue.pop(0)
            w.log.add("info", f"Comparing transfer with zero-init: run 2 of 2, '{config.name}'")
            w.start_run(config)
            self.update_controls()
            return
        complete = isinstance(result, RunFinished) and not result.stopped and not self.queue
        self.active, self.queue = False, []
        self.update_controls()
        if closing:
            return
        if complete:
            w.log.add("success", "Compared transfer with zero-init: " + self._scores()
                      + " (both runs are selected in the Runs tab)")
        elif isinstance(result, RunFailed):
            w.log.add("error", "The comparison ended: a run failed")
        else:
            w.log.add("info", "The comparison was stopped")
        runs = w.runs_panel
        runs.refresh()
        runs.select_runs(self.run_dirs)
        if self.run_dirs:
            w.views.setCurrentWidget(runs)
        w.refresh_readout()  # the readout shows the last run's counts: count the editor's config again
        self.finished.emit(list(self.run_dirs))

    def _scores(self) -> str:
        from workbench.core.runs.listing import best_val_accuracy

        parts = []
        for run_dir, name in zip(self.run_dirs, self.names, strict=False):
            record = self.window.runs_panel.records.get(run_dir)
            if record is None:
                from workbench.core.runs.store import load_run

                try:
                    record = load_run(run_dir)
                except Exception:  # noqa: BLE001 - a score is only a courtesy here
                    record = None
            best = best_val_accuracy(record) if record is not None else None
            parts.append(f"{name} best validation accuracy {'—' if best is None else f'{best:.3f}'}")
        return ", ".join(parts)

    def update_controls(self) -> None:
        """Enable the Compare button and menu item as Train is, and only for a config with pretrained weights."""
        w = self.window
        why = why_not_comparable(w.config)
        enabled = w.train_button.isEnabled() and not self.active and not why
        tip = why or ("Train this config twice, as configured and with the backbone re-initialised "
                      "(zero transfer), then overlay both runs' curves in the Runs tab")
        for widget in (w.compare_button, w.compare_action):
            widget.setEnabled(enabled)
            widget.setToolTip(tip)
        if self.active:
            w.compare_button.setText(f"Comparing {self.stage}/2…")
        else:
            w.compare_button.setText("Compare with zero-init")
