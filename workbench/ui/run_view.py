"""Shows a training run as it happens: its events go to the curves, the progress bar and the log.

Apart from main_window.py so the window keeps to editing and starting runs; `window` is the
MainWindow whose widgets this updates (the way ui/compare.py drives it).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Slot

from workbench.core.base.events import (
    BatchEnd,
    EpochEnd,
    Event,
    Message,
    RunFailed,
    RunFinished,
    RunStarted,
)
from workbench.core.base.freeze import FreezeSummary
from workbench.core.base.problems import ConfigError
from workbench.core.config.run import RunConfig, load_config
from workbench.ui.resume_dialog import ResumeDialog


def epoch_line(event: EpochEnd, total: int) -> str:
    """One log line per epoch: the metrics that matter, and how long it took."""
    parts = [f"{key} {event.logs[key]:.4f}" for key in ("loss", "accuracy", "val_loss", "val_accuracy")
             if key in event.logs]
    return f"Epoch {event.epoch + 1}/{total}: " + ", ".join(parts) + f" ({event.seconds:.1f} s)"


class RunView(QObject):
    """Reacts to the runner's events and to the run's end (on the GUI thread, as slots)."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.resume_chooser: ResumeDialog | None = None  # File > Resume run…, while open

    @Slot(object)
    def on_event(self, event: Event) -> None:
        w = self.window
        if isinstance(event, BatchEnd):
            w.plots.add_batch(event)
            w.progress.on_batch(event.epoch, event.batch, event.steps)
        elif isinstance(event, EpochEnd):
            w.plots.add_epoch(event)
            w.progress.on_epoch(event.epoch, event.seconds)
            w.log.add("info", epoch_line(event, w.config.training.epochs))
        elif isinstance(event, RunStarted):
            self._on_started(event)
        elif isinstance(event, Message):
            w.log.add(event.level, event.text)
            if event.text == "Paused" and w.runner.paused:  # the batch under way has ended: now it waits
                w.progress.confirm_paused()
                w.statusBar().showMessage("Paused (the run waits between two batches)")
            if event.kind == "phase":
                w.plots.add_marker(event.epoch)
            elif event.kind == "prepare":  # the step before the first batch, instead of a fixed "Preparing…"
                w.progress.time_label.setText(f"{event.text}…")  # the first batch replaces it

    def _on_started(self, event: RunStarted) -> None:
        w = self.window
        w.plots.set_epochs(event.epochs)
        w.progress.started(event.epochs, event.steps_per_epoch)
        if event.initial_epoch:
            self.show_earlier_epochs(event.run_dir, event.initial_epoch)
        counts = FreezeSummary(event.layers_total, event.layers_trainable,
                               event.params_trainable, event.params_frozen)
        w.regularization_panel.set_readout(counts.text)
        w.log.add("info", f"Run folder: {event.run_dir}")
        w.active_run_dir = event.run_dir
        w.runs_panel.set_training(True, event.run_dir)  # the new run shows in the list, running
        w.log.add(
            "info",
            f"{event.train_images} training and {event.val_images} validation images, "
            f"{len(event.class_names)} classes ({', '.join(event.class_names)}), "
            f"{event.steps_per_epoch} batches per epoch",
        )

    def show_earlier_epochs(self, run_dir: str, through_epoch: int) -> None:
        """A resumed run's curves start with the epochs it had done (metrics.csv is small)."""
        from workbench.core.runs.store import read_metrics

        for row in read_metrics(run_dir):
            if row["epoch"] <= through_epoch:
                logs = {k: v for k, v in row.items() if k not in ("epoch", "seconds")}
                self.window.plots.add_epoch(
                    EpochEnd(epoch=row["epoch"] - 1, logs=logs, seconds=row.get("seconds", 0.0))
                )

    @Slot(object)
    def on_finished(self, result: RunFinished | RunFailed) -> None:
        w = self.window
        w.last_result = result
        w.active_run_dir = ""
        w.progress.set_paused(False)
        if isinstance(result, RunFinished):
            self._show_finished(result)
        else:
            w.progress.finish("Failed")
            w.log.add("error", f"{result.error}")
            w.statusBar().showMessage("The run failed", 10000)
            if not w.close_after_run:
                title = "Cannot start training" if result.kind == "invalid" else "Training failed"
                more = f"\n\nThe run folder keeps what was done: {result.run_dir}" if result.run_dir else ""
                w.show_error(title, result.error + more, result.details)
        w.update_controls()  # also re-reads the runs folder: the run's final state is listed
        if result.run_dir:
            w.evaluate_panel.set_run(result.run_dir)
            w.predict_panel.set_run(result.run_dir)
        w.run_ended.emit(result)
        if w.close_after_run:
            QTimer.singleShot(0, w.close)

    def _show_finished(self, result: RunFinished) -> None:
        w = self.window
        if result.stopped:
            text = "Stopped"
        elif result.reason:
            text = f"Finished ({result.reason})"
        else:
            text = "Finished"
        w.progress.finish(text)
        epochs = f"{result.epochs_done} epoch{'s' if result.epochs_done != 1 else ''}"
        w.log.add("success", f"{text} after {epochs}. Saved in {result.run_dir}")
        if result.best:
            best = ", ".join(f"{k} {v:.4f}" for k, v in result.best.items() if k.startswith("val_"))
            epoch = int(result.best.get("epoch", 0))
            if best:
                w.log.add("success", f"Kept the model of epoch {epoch}: {best}")
        w.statusBar().showMessage(f"{text}: {result.run_dir}")

    # ---- resuming a run -------------------------------------------------------------------
    @Slot()
    def resume_dialog(self) -> ResumeDialog:
        """File > Resume run…: the runs by name, status and date (ui/resume_dialog.py), non-modal."""
        from workbench.core.runs.store import default_runs_dir

        w = self.window
        if self.resume_chooser is not None:
            self.resume_chooser.deleteLater()
        self.resume_chooser = ResumeDialog(Path(w.runs_dir) if w.runs_dir else default_runs_dir(), w)
        self.resume_chooser.chosen.connect(self._on_resume_chosen)
        self.resume_chooser.open()
        return self.resume_chooser

    @Slot(str)
    def _on_resume_chosen(self, run_dir: str) -> None:
        self.resume(run_dir)

    def resume(self, run_dir: str | Path) -> bool:
        """Continue a run in its own folder from its last checkpoint, with its own settings.

        The panels show the run's config; the curves show its earlier epochs (from
        metrics.csv) and then continue. The core refuses a finished run, with a dialog.
        """
        from workbench.core.runs.checkpoint_state import read_state
        from workbench.core.runs.store import CHECKPOINT_FILE, CONFIG_FILE

        w = self.window
        if w.runner.running:
            return False
        path = Path(run_dir)
        try:
            config = load_config(path / CONFIG_FILE)
        except ConfigError as exc:
            w.show_error("Cannot resume the run", f"{path} cannot be resumed:\n\n"
                         + "\n".join(f"• {p}" for p in exc.problems))
            return False
        state = read_state(path / CHECKPOINT_FILE)
        w.set_config(RunConfig.from_dict(config.to_dict()))  # the panels' copy; the run keeps the file's
        w.readouts.readout_timer.stop()
        epochs = config.training.epochs
        w.plots.reset(epochs)
        w.progress.preparing(epochs)
        if state:
            w.log.add("info", f"Resuming run {path.name} after epoch {state['epochs_done']} of {epochs}")
        else:
            w.log.add("warning", f"Run {path.name} has no checkpoint: it starts again from the first epoch")
        w.last_result = None
        w.views.setCurrentWidget(w.plots)
        w.runner.start(config, runs_dir=w.runs_dir, resume_from=str(path))
        w.statusBar().showMessage("Training (resumed)…")
        w.update_controls()
        return True
