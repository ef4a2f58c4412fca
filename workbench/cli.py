"""Headless Workbench: the same runs as the GUI, from a terminal or a batch job.

Exit codes: 0 success, 1 the run failed or diverged (or an export failed its check),
2 bad input (config, dataset, arguments, a missing run or model, unreadable images),
130 stopped with Ctrl-C (the run folder keeps what was trained).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import time
from collections.abc import Iterator
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
from workbench.core.base.problems import ConfigError
from workbench.core.config.run import load_config
from workbench.core.config.validate import validate

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
    train.add_argument("config", nargs="?", help="path to a config .json")
    train.add_argument("--runs-dir", help="where run folders go (default: the GUI's runs folder)")
    train.add_argument("--resume", metavar="RUN",
                       help="continue a stopped, failed or killed run (a run folder or run id) from its last "
                            "checkpoint, in its own folder and with its own config")
    train.set_defaults(func=cmd_train)

    scan = sub.add_parser("scan", help="check a folder of images (one sub-folder per class)")
    scan.add_argument("folder")
    scan.set_defaults(func=cmd_scan)

    run_help = "a run folder, or a run id in the runs folder"
    runs_help = "where to look for run ids (default: the GUI's runs folder)"

    evaluate = sub.add_parser("evaluate", help="score a trained run on its validation images")
    evaluate.add_argument("run", help=run_help)
    evaluate.add_argument("--top-k", type=_positive_int, default=3, metavar="K",
                          help="also count an answer right when the true class is among the K most likely (default 3)")
    evaluate.add_argument("--runs-dir", help=runs_help)
    evaluate.set_defaults(func=cmd_evaluate)

    predict = sub.add_parser("predict", help="classify images (files or folders) with a trained run")
    predict.add_argument("run", help=run_help)
    predict.add_argument("images", nargs="+", help="image files or folders of images")
    predict.add_argument("--top-k", type=_positive_int, default=3, metavar="K", help="classes to show per image (default 3)")
    predict.add_argument("--mc", type=int, default=0, metavar="T",
                         help="Monte-Carlo dropout: T passes with dropout on, to show the uncertainty (at least 2)")
    predict.add_argument("--runs-dir", help=runs_help)
    predict.set_defaults(func=cmd_predict)

    export = sub.add_parser("export", help="export a trained run's model and check the export")
    export.add_argument("run", help=run_help)
    export.add_argument("--format", required=True, choices=("keras", "savedmodel", "tflite", "tflite-dynamic"),
                        help="tflite-dynamic: weights quantised to 8 bits (about 4x smaller)")
    export.add_argument("--out", metavar="DIR", help="folder to export into (default: RUN/export/FORMAT)")
    export.add_argument("--runs-dir", help=runs_help)
    export.set_defaults(func=cmd_export)

    sweep = sub.add_parser("sweep", help="train a config at several dropout rates (and kinds), with k-fold cross-validation")
    sweep.add_argument("config", help="path to a config .json (the base: everything but the dropout rate and kind)")
    sweep.add_argument("--rates", required=True, metavar="R1,R2,...", help="dropout rates to try, e.g. 0,0.2,0.5")
    sweep.add_argument("--kinds", default="", metavar="K1,K2,...",
                       help="dropout kinds to try, e.g. dropout,gaussian (default: the config's kind)")
    sweep.add_argument("--folds", type=_positive_int, default=1, metavar="K",
                       help="k-fold cross-validation with K folds (default 1: the config's own validation split)")
    sweep.add_argument("--runs-dir", help="where run folders and the sweep folder go (default: the GUI's runs folder)")
    sweep.set_defaults(func=cmd_sweep)

    gan = sub.add_parser("gan", help="train a DCGAN from a GAN config file (the JSON the GAN lab saves)")
    gan.add_argument("config", help="path to a GAN config .json")
    gan.add_argument("--runs-dir", help="where GAN run folders go (default: gan/ in the GUI's runs folder)")
    gan.add_argument("--fid", action="store_true", help="compute FID when training ends (evaluation.fid_at_end)")
    gan.add_argument("--sweep-rates", metavar="R1,R2,...",
                     help="train once per discriminator dropout rate, e.g. 0,0.3,0.5, and print FID per rate")
    gan.set_defaults(func=cmd_gan)
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _resolve_run(run: str, runs_dir: str | None) -> Path | None:
    """A run folder path as given, else a run id under the runs folder; None (with a message) if neither."""
    from workbench.core.runs.store import default_runs_dir

    path = Path(run).expanduser()
    if path.is_dir():
        return path
    root = Path(runs_dir).expanduser() if runs_dir else default_runs_dir()
    if path.name == run and (root / run).is_dir():
        return root / run
    _err(f"error: no run folder {run} (nor a run with that id in {root})")
    return None


@contextlib.contextmanager
def _ctrl_c_stops(saying: str) -> Iterator[threading.Event]:
    """A stop event that Ctrl-C sets (the run ends cleanly and keeps its work); twice aborts."""
    stop = threading.Event()

    def on_sigint(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        _err(f"\n{saying} (press Ctrl-C again to abort)...")
        stop.set()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def _print_problems(header: str, problems) -> int:
    """The problems under a header, on stderr; the bad-input exit code."""
    _err(header)
    for problem in problems:
        _err(f"  - {problem}")
    return EXIT_BAD_INPUT


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def cmd_scan(args: argparse.Namespace) -> int:
    from workbench.core.data import scan

    folder = Path(args.folder)
    if not folder.is_dir():
        _err(f"error: folder not found: {folder}")
        return EXIT_BAD_INPUT
    report = scan.scan_folder(folder)
    print(report.summary())
    return EXIT_BAD_INPUT if scan.blocking_problems(report) else EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    from workbench.core.analysis.evaluation import evaluate_run
    from workbench.core.runs.store import RunError

    run = _resolve_run(args.run, args.runs_dir)
    if run is None:
        return EXIT_BAD_INPUT
    try:
        ev = evaluate_run(run, top_k=args.top_k)
    except RunError as exc:
        _err(f"error: {exc}")
        return EXIT_BAD_INPUT
    for note in ev.notes:
        _err(f"warning: {note}")
    print(f"Run {run.name}: {ev.count} validation images, {len(ev.class_names)} classes")
    print(f"Accuracy        {ev.accuracy:.3f}")
    print(f"Top-{ev.top_k} accuracy  {ev.top_k_accuracy:.3f}")
    width = max(5, *(len(n) for n in ev.class_names))
    print(f"\n{'class':<{width}}  precision  recall     f1  support")
    for s in ev.per_class:
        print(f"{s.name:<{width}}  {s.precision:9.3f}  {s.recall:6.3f}  {s.f1:5.3f}  {s.support:7d}")
    print("\nConfusion matrix (rows: true class, columns: predicted class)")
    cell = max(4, *(len(n) for n in ev.class_names), len(str(ev.confusion.max())))
    print(f"{'':<{width}}  " + " ".join(f"{n:>{cell}}" for n in ev.class_names))
    for name, row in zip(ev.class_names, ev.confusion, strict=True):
        print(f"{name:<{width}}  " + " ".join(f"{v:>{cell}d}" for v in row))
    if ev.mistakes:
        print(f"\nMost confident mistakes ({len(ev.mistakes)} in all):")
        for m in ev.mistakes[:5]:
            print(f"  {m.path}: {m.true_label} taken for {m.predicted_label} ({m.confidence:.1%})")
    print(f"\nSaved {run / 'evaluation.json'}")
    return EXIT_OK


def cmd_predict(args: argparse.Namespace) -> int:
    from workbench.core.analysis.predict import load_run_model, predict_images
    from workbench.core.runs.store import RunError

    if args.mc == 1 or args.mc < 0:
        _err("error: --mc needs at least 2 passes (or 0 for none)")
        return EXIT_BAD_INPUT
    run = _resolve_run(args.run, args.runs_dir)
    if run is None:
        return EXIT_BAD_INPUT
    try:
        model = load_run_model(run)
        predictions = predict_images(model, args.images, top_k=args.top_k, mc_passes=args.mc)
    except (RunError, ValueError) as exc:
        _err(f"error: {exc}")
        return EXIT_BAD_INPUT
    width = max(len(n) for n in model.class_names)
    failed = 0
    for p in predictions:
        if not p.ok:
            failed += 1
            _err(f"{p.path}: error: {p.error}")
            continue
        print(p.path)
        for label, prob in p.top:
            spread = f" ± {p.std[label]:.3f}" if p.std else ""
            print(f"  {label:<{width}}  {prob:.3f}{spread}")
        if p.entropy is not None:
            print(f"  entropy {p.entropy:.3f} nats (0 = certain, {_max_entropy(len(model.class_names)):.3f} = no idea)")
    if failed:
        _err(f"{failed} of {len(predictions)} image(s) could not be read")
        return EXIT_BAD_INPUT
    return EXIT_OK


def _max_entropy(classes: int) -> float:
    import math

    return math.log(classes)


def cmd_export(args: argparse.Namespace) -> int:
    from workbench.core.analysis.export import export_run
    from workbench.core.runs.store import RunError

    run = _resolve_run(args.run, args.runs_dir)
    if run is None:
        return EXIT_BAD_INPUT
    try:
        result = export_run(run, args.format, args.out)
    except (RunError, ValueError) as exc:
        _err(f"error: {exc}")
        return EXIT_BAD_INPUT
    if result.error and not result.path:
        _err(f"error: {result.error}")
        return EXIT_FAILED
    print(f"Exported {result.format}: {result.path} ({result.size_text})")
    print(f"Labels: {result.labels_path}")
    if result.needs_select_tf_ops:
        print("Note: this TFLite model uses TensorFlow ops (SELECT_TF_OPS): its app needs the Flex delegate")
    verdict = "OK" if result.ok else "FAILED"
    print(f"Check on {result.checked_on}: largest difference {result.max_abs_diff:.3g} "
          f"(allowed {result.tolerance:g}): {verdict}")
    if not result.ok:
        _err(f"error: {result.error}")
        return EXIT_FAILED
    return EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    resume_dir = None
    if args.resume:
        if args.config:
            _err("error: give a config or --resume RUN, not both (a resumed run keeps its own config)")
            return EXIT_BAD_INPUT
        resume_dir = _resolve_run(args.resume, args.runs_dir)
        if resume_dir is None:
            return EXIT_BAD_INPUT
        config_path = str(resume_dir / "config.json")
    elif args.config:
        config_path = args.config
    else:
        _err("error: give a config .json to train, or --resume RUN to continue a run")
        return EXIT_BAD_INPUT
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        return _print_problems(f"error: cannot use config {config_path}:", exc.problems)
    problems = validate(config)
    if problems:
        return _print_problems(f"error: the config {config_path} has problems:", problems)

    from workbench.core.train import run as training

    printer = _ProgressPrinter(sys.stdout)
    with _ctrl_c_stops("Stopping after this batch") as stop:
        if resume_dir is not None:
            result = training.run(config, printer, stop, resume_from=resume_dir)
        else:
            result = training.run(config, printer, stop, runs_dir=args.runs_dir)
    if isinstance(result, RunFailed):
        if result.kind == "invalid":
            return EXIT_BAD_INPUT
        return EXIT_FAILED
    return EXIT_INTERRUPTED if result.stopped else EXIT_OK


def cmd_sweep(args: argparse.Namespace) -> int:
    from workbench.core.config import sweep as sweep_config
    from workbench.core.runs import sweeps as sweep_results
    from workbench.core.train import sweep as sweeps

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        return _print_problems(f"error: cannot use config {args.config}:", exc.problems)
    try:
        rates = sweep_config.parse_rates(args.rates)
        kinds = sweep_config.parse_kinds(args.kinds)
    except ValueError as exc:
        _err(f"error: {exc}")
        return EXIT_BAD_INPUT
    plan = sweep_config.SweepConfig(config, rates, kinds, args.folds)
    problems = sweep_config.validate_sweep(plan)
    if problems:
        return _print_problems(f"error: the sweep over {args.config} has problems:", problems)

    printer = _SweepPrinter(sys.stdout)
    with _ctrl_c_stops("Stopping the sweep after this batch") as stop:
        result = sweeps.run_sweep(plan, printer, stop, args.runs_dir)
    if result.problems:
        return EXIT_BAD_INPUT
    print(f"\nSweep {result.sweep_id}: {len(result.trials)} of {result.planned} trials ran"
          + (" (stopped)" if result.stopped else ""))
    print(sweep_results.format_table(result))
    best = result.best()
    if best is not None:
        print(f"Best: {best.kind} at rate {best.rate:g} (mean val_loss {best.val_loss_mean:.4f} "
              f"over {best.folds} fold{'s' if best.folds != 1 else ''})")
    print(f"Sweep folder: {result.sweep_dir}")
    if result.stopped:
        return EXIT_INTERRUPTED
    return EXIT_OK if best is not None else EXIT_FAILED


class _SweepPrinter:
    """A header per trial, the trial's epochs and warnings, and a line when it ends."""

    def __init__(self, out):
        self.out = out
        self.run_printer = _ProgressPrinter(out)
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




def cmd_gan(args: argparse.Namespace) -> int:
    """`workbench gan CONFIG.json`: a DCGAN run (or, with --sweep-rates, one run per dropout rate)."""
    from workbench.core.config.gan import load_gan_config, validate_gan

    try:
        config = load_gan_config(args.config)
    except ConfigError as exc:
        return _print_problems(f"error: cannot use GAN config {args.config}:", exc.problems)
    if args.fid:
        config.evaluation.fid_at_end = True
    plan = None
    if args.sweep_rates is not None:
        from workbench.core.config import gan_sweep as gan_sweep_config
        from workbench.core.gan import sweep as gan_sweep
        from workbench.core.runs import gan_sweeps as gan_sweep_results

        try:
            rates = gan_sweep.parse_rates(args.sweep_rates)
        except ValueError as exc:
            _err(f"error: {exc}")
            return EXIT_BAD_INPUT
        plan = gan_sweep_config.GanSweepConfig(config, rates)
        problems = gan_sweep_config.validate_gan_sweep(plan)
    else:
        problems = validate_gan(config)
    if problems:
        return _print_problems(f"error: the GAN config {args.config} has problems:", problems)

    printer = _GanPrinter(sys.stdout)
    with _ctrl_c_stops("Stopping after this step") as stop:
        if plan is not None:
            from workbench.core.gan import sweep as gan_sweep

            result = gan_sweep.run_gan_sweep(plan, printer, stop, args.runs_dir)
        else:
            from workbench.core.gan import training as gan_training

            outcome = gan_training.run(config, printer, stop, runs_dir=args.runs_dir)
    if plan is None:
        if isinstance(outcome, RunFailed):
            return EXIT_BAD_INPUT if outcome.kind == "invalid" else EXIT_FAILED
        return EXIT_INTERRUPTED if outcome.stopped else EXIT_OK
    if result.problems:
        return EXIT_BAD_INPUT
    print(f"\nGAN sweep {result.sweep_id}: {len(result.trials)} of {result.planned} rates ran"
          + (" (stopped)" if result.stopped else ""))
    print(gan_sweep_results.format_table(result))
    best = result.best()
    if best is not None:
        print(f"Best: discriminator dropout {best.rate:g} (FID {best.fid:.3f}; features: {best.network})")
    print(f"Sweep folder: {result.sweep_dir}")
    if result.stopped:
        return EXIT_INTERRUPTED
    return EXIT_OK if best is not None else EXIT_FAILED


class _GanPrinter:
    """A progress line per sample refresh (a bar on a terminal), FID, and how the run ended."""

    def __init__(self, out):
        self.out = out
        self.lines = _ProgressPrinter(out)
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
