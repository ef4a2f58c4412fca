"""How a run, a sweep and a GAN run show in a terminal: a progress bar and a line per epoch."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from workbench.core.base.events import (
    BatchEnd,
    EpochEnd,
    Event,
    Message,
    RunFailed,
    RunFinished,
    RunStarted,
)


class SweepPrinter:
    """A header per trial, the trial's epochs and warnings, and a line when it ends."""

    def __init__(self, out):
        self.out = out
        self.run_printer = ProgressPrinter(out)
        self.total = 0

    def __call__(self, event) -> None:
        from workbench.core.runs import sweeps as sweep_results

        if isinstance(event, sweep_results.SweepStarted):
            self.total = len(event.trials)
            kinds = len({kind for kind, _, _ in event.trials})
            rates = len({rate for _, rate, _ in event.trials})
            grid = f"{kinds} kind{'s' if kinds != 1 else ''}, {rates} rate{'s' if rates != 1 else ''}" + (
                f", {event.folds} folds each" if event.folds >= 2 else "")
            self.run_printer._line(f"Sweep {event.sweep_id}: {self.total} trials ({grid})\n"
                                   f"Sweep folder: {event.sweep_dir}")
        elif isinstance(event, sweep_results.SweepTrialEvent):
            inner = event.event
            if isinstance(inner, RunStarted):
                self.run_printer.epochs = inner.epochs
            elif not isinstance(inner, RunFinished):
                if isinstance(inner, Message) and inner.text.startswith("Sweep trial"):
                    self.run_printer._line(f"\n{inner.text}")
                else:
                    self.run_printer(inner)
        elif isinstance(event, sweep_results.SweepTrialDone):
            t = event.trial
            if t.counts:
                acc = f", val_accuracy {t.val_accuracy:.4f}" if t.val_accuracy is not None else ""
                self.run_printer._line(f"Trial {t.index + 1}/{self.total} done: best val_loss {t.val_loss:.4f}{acc}")
            else:
                self.run_printer._line(f"Trial {t.index + 1}/{self.total} {t.status}" + (f": {t.error}" if t.error else ""))
        elif isinstance(event, Message):
            self.run_printer(event)


class ProgressPrinter:
    """Prints a progress bar (on a terminal) and one line per epoch."""

    def __init__(self, out):
        self.out = out
        self.tty = out.isatty()
        self.epochs = 0
        self.started = time.perf_counter()
        self._last_draw = 0.0

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.epochs = event.epochs
            self.started = time.perf_counter()
            self._line(
                f"Run {event.run_id}: {len(event.class_names)} classes, {event.train_images} training and "
                f"{event.val_images} validation images\nRun folder: {event.run_dir}"
                + (f"\nResuming after epoch {event.initial_epoch} of {event.epochs}" if event.initial_epoch else "")
            )
        elif isinstance(event, BatchEnd):
            now = time.perf_counter()
            if self.tty and (now - self._last_draw > 0.1 or event.batch + 1 == event.steps):
                self._last_draw = now
                self._bar(event)
        elif isinstance(event, EpochEnd):
            metrics = "  ".join(f"{k} {v:.4g}" for k, v in event.logs.items())
            self._line(f"Epoch {event.epoch + 1}/{self.epochs}  {metrics}  ({event.seconds:.1f} s)")
        elif isinstance(event, Message):
            if event.level != "info" or not self.tty or event.kind == "prepare":  # on a terminal: steps, not chatter
                self._line(f"[{event.level}] {event.text}", err=event.level != "info")
        elif isinstance(event, RunFinished):
            best = "  ".join(f"{k} {v:.4g}" for k, v in event.best.items() if k != "epoch")
            status = f"stopped ({event.reason})" if event.reason else "finished"
            self._line(f"Run {status} after {event.epochs_done} epochs. Best: {best or '-'}\nModel: {event.run_dir}")
        elif isinstance(event, RunFailed):
            self._line(f"error: {event.error}", err=True)
            if event.details and "Traceback" not in event.details:
                self._line(event.details, err=True)
            elif event.details:
                self._line("(details in events.jsonl in the run folder)" if event.run_dir else event.details, err=True)

    def _bar(self, event: BatchEnd) -> None:
        width = 30
        done = (event.batch + 1) / max(event.steps, 1)
        filled = int(width * done)
        loss = event.logs.get("loss")
        text = f"\rEpoch {event.epoch + 1}/{self.epochs} [{'=' * filled}{'.' * (width - filled)}] {event.batch + 1}/{event.steps}"
        if loss is not None:
            text += f"  loss {loss:.4f}"
        self.out.write(text)
        self.out.flush()

    def _line(self, text: str, err: bool = False) -> None:
        if self.tty:
            self.out.write("\r\033[K")
        (sys.stderr if err else self.out).write(text + "\n")
        (sys.stderr if err else self.out).flush()


class GanPrinter:
    """A progress line per sample refresh (a bar on a terminal), FID, and how the run ended."""

    def __init__(self, out):
        self.out = out
        self.lines = ProgressPrinter(out)
        self.steps = 0
        self.last = None
        self._last_draw = 0.0

    def __call__(self, event) -> None:
        from workbench.core.base.events import GanEvaluated, GanSamples, GanStarted, GanStep
        from workbench.core.runs.gan_sweeps import GanSweepStarted, GanTrialDone, GanTrialEvent

        if isinstance(event, GanTrialEvent):
            if isinstance(event.event, Message) and event.event.text.startswith("Sweep trial"):
                self.lines._line(f"\n{event.event.text}")
            elif not isinstance(event.event, (RunFinished, RunFailed)):
                self(event.event)
            elif isinstance(event.event, RunFailed):
                self.lines._line(f"error: {event.event.error}", err=True)
            return
        if isinstance(event, GanSweepStarted):
            self.lines._line(f"GAN sweep {event.sweep_id}: discriminator dropout "
                             f"{', '.join(f'{r:g}' for r in event.rates)}\nSweep folder: {event.sweep_dir}")
        elif isinstance(event, GanTrialDone):
            t = event.trial
            fid = f": FID {t.fid:.3f}" if t.fid is not None else (f": {t.error}" if t.error else "")
            self.lines._line(f"Rate {t.rate:g} {t.status}{fid}")
        elif isinstance(event, GanStarted):
            self.steps = event.steps
            self.lines._line(f"GAN run {event.run_id}: {event.images} images at {event.image_size} px, "
                             f"{event.steps} steps of {event.batch_size}; generator {event.generator_params:,} and "
                             f"discriminator {event.discriminator_params:,} parameters\nRun folder: {event.run_dir}")
        elif isinstance(event, GanStep):
            self.last = event
            now = time.perf_counter()
            if self.lines.tty and (now - self._last_draw > 0.1 or event.step == self.steps):
                self._last_draw = now
                self.out.write(f"\rStep {event.step}/{self.steps}  {self._losses(event)}")
                self.out.flush()
        elif isinstance(event, GanSamples):
            if event.step > 0:
                losses = f"  {self._losses(self.last)}" if self.last is not None else ""
                self.lines._line(f"Step {event.step}/{self.steps}{losses}  sample spread {event.diversity:.3f}")
        elif isinstance(event, GanEvaluated):
            score = "" if event.inception_score is None else f", Inception Score {event.inception_score:.3f}"
            self.lines._line(f"FID {event.fid:.3f}{score} ({event.real_images} real vs {event.generated_images} "
                             f"generated images; features: {event.network})")
        elif isinstance(event, RunFinished):
            status = f"stopped ({event.reason})" if event.reason else "finished"
            self.lines._line(f"GAN run {status} after {event.epochs_done} steps. Generator: "
                             f"{Path(event.run_dir) / 'generator.keras'}")
        else:
            self.lines(event)

    @staticmethod
    def _losses(e) -> str:
        return f"d_loss {e.d_loss:.4f}  g_loss {e.g_loss:.4f}  D(real) {e.d_real:.3f}  D(fake) {e.d_fake:.3f}"
