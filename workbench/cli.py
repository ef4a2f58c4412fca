"""Headless Workbench: the same runs as the GUI, from a terminal or a batch job.

Exit codes: 0 success, 1 the run failed or diverged, 2 bad input (config, dataset,
arguments), 130 stopped with Ctrl-C (the run folder keeps what was trained).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path

from workbench.core.config import ConfigError, load_config, validate
from workbench.core.events import (
    BatchEnd,
    EpochEnd,
    Event,
    Message,
    RunFailed,
    RunFinished,
    RunStarted,
)

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    return args.func(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description="Transfer learning from the command line.")
    sub = parser.add_subparsers(dest="command")

    train = sub.add_parser("train", help="train a model from a config file (the JSON the GUI saves)")
    train.add_argument("config", help="path to a config .json")
    train.add_argument("--runs-dir", help="where run folders go (default: the GUI's runs folder)")
    train.set_defaults(func=cmd_train)

    scan = sub.add_parser("scan", help="check a folder of images (one sub-folder per class)")
    scan.add_argument("folder")
    scan.set_defaults(func=cmd_scan)
    return parser


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def cmd_scan(args: argparse.Namespace) -> int:
    from workbench.core import dataset

    folder = Path(args.folder)
    if not folder.is_dir():
        _err(f"error: folder not found: {folder}")
        return EXIT_BAD_INPUT
    report = dataset.scan_folder(folder)
    print(report.summary())
    return EXIT_BAD_INPUT if dataset.blocking_problems(report) else EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        _err(f"error: cannot use config {args.config}:")
        for problem in exc.problems:
            _err(f"  - {problem}")
        return EXIT_BAD_INPUT
    problems = validate(config)
    if problems:
        _err(f"error: the config {args.config} has problems:")
        for problem in problems:
            _err(f"  - {problem}")
        return EXIT_BAD_INPUT

    from workbench.core import training

    stop = threading.Event()
    printer = _ProgressPrinter(sys.stdout)

    def on_sigint(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        _err("\nStopping after this batch (press Ctrl-C again to abort)...")
        stop.set()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        result = training.run(config, printer, stop, runs_dir=args.runs_dir)
    finally:
        signal.signal(signal.SIGINT, previous)
    if isinstance(result, RunFailed):
        if result.kind == "invalid":
            return EXIT_BAD_INPUT
        return EXIT_FAILED
    return EXIT_INTERRUPTED if result.stopped else EXIT_OK


class _ProgressPrinter:
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
            if event.level != "info" or not self.tty:
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
