"""Headless Workbench: the same runs as the GUI, from a terminal or a batch job.

Exit codes: 0 success, 1 the run failed or diverged (or an export failed its check, or a sweep's
results table could not be written),
2 bad input (config, dataset, arguments, a missing run or model, unreadable images),
130 stopped with Ctrl-C or SIGTERM (the run folder keeps what was trained; a second signal aborts at once).
A worker of a multi-worker cluster (TF_CONFIG) whose peer fails exits 1 within bounded time (docs/cluster.md).
"""

from __future__ import annotations

import argparse
import sys

from workbench.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    RUN_HELP,
    RUNS_HELP,
    positive_int,
)
from workbench.cli.data import TENSORFLOW_COMMANDS as DATA_TF_COMMANDS
from workbench.cli.data import add_data_commands
from workbench.cli.lr_find import add_lr_find_command
from workbench.cli.models import cmd_evaluate, cmd_export, cmd_predict, cmd_scan
from workbench.cli.runs import add_run_commands
from workbench.cli.training import cmd_compare, cmd_gan, cmd_sweep, cmd_train
from workbench.cli.tuning import add_tune_command
from workbench.core.config.export import FORMATS, INT8_IO

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "main"]


# Commands that load TensorFlow: it is imported first, its native start-up lines left out.
NEEDS_TENSORFLOW = {"train", "evaluate", "predict", "export", "sweep", "gan", "save-backbone", "report",
                    "lr-find", "tune", *DATA_TF_COMMANDS}


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    from workbench.core.base.quiet import import_tensorflow_quietly, quiet_terminal

    quiet_terminal(getattr(args, "verbose", False))  # before TensorFlow is imported (children inherit it)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    if args.command in NEEDS_TENSORFLOW:
        from workbench.core.engine.devices import before_tensorflow_import

        before_tensorflow_import()  # a multi-worker process's settings (TF_CONFIG), read when TensorFlow loads
        import_tensorflow_quietly()
    return args.func(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description="Transfer learning from the command line.")
    parser.add_argument("--verbose", action="store_true",
                        help="let TensorFlow's own log lines (C++ notes and warnings) through to the terminal")
    sub = parser.add_subparsers(dest="command")

    train = sub.add_parser("train", help="train a model from a config file (the JSON the GUI saves)")
    train.add_argument("config", nargs="?", help="path to a config .json")
    train.add_argument("--runs-dir", help="where run folders go (default: the GUI's runs folder)")
    train.add_argument("--resume", metavar="RUN",
                       help="continue a stopped, failed or killed run (a run folder or run id) from its last "
                            "checkpoint, in its own folder and with its own config")
    train.set_defaults(func=cmd_train)

    compare = sub.add_parser("compare", help="train a config with its pretrained backbone, then the same "
                                             "architecture re-initialised (zero-init), and compare them")
    compare.add_argument("config", help="path to a config .json whose backbone starts from ImageNet or a file")
    compare.add_argument("--runs-dir", help="where the two run folders go (default: the GUI's runs folder)")
    compare.set_defaults(func=cmd_compare)

    scan = sub.add_parser("scan", help="check a folder of images (one sub-folder per class)")
    scan.add_argument("folder")
    scan.set_defaults(func=cmd_scan)

    run_help, runs_help = RUN_HELP, RUNS_HELP

    evaluate = sub.add_parser("evaluate", help="score a trained run on its validation images (or its test set)")
    evaluate.add_argument("run", help=run_help)
    evaluate.add_argument("--on", choices=("validation", "test"),
                          help="the run's validation images (default) or its held-out test set (its test split "
                               "or test folder)")
    evaluate.add_argument("--test", metavar="FOLDER",
                          help="score on this folder of test images (the run's class sub-folders) instead")
    evaluate.add_argument("--top-k", type=positive_int, default=3, metavar="K",
                          help="also count an answer right when the true class is among the K most likely (default 3)")
    evaluate.add_argument("--runs-dir", help=runs_help)
    evaluate.set_defaults(func=cmd_evaluate)

    predict = sub.add_parser("predict", help="classify images (files or folders) with a trained run")
    predict.add_argument("run", help=run_help)
    predict.add_argument("images", nargs="+", help="image files or folders of images")
    predict.add_argument("--top-k", type=positive_int, default=3, metavar="K", help="classes to show per image (default 3)")
    predict.add_argument("--mc", type=int, default=0, metavar="T",
                         help="Monte-Carlo dropout: T passes with dropout on, to show the uncertainty (at least 2)")
    predict.add_argument("--runs-dir", help=runs_help)
    predict.set_defaults(func=cmd_predict)

    export = sub.add_parser("export", help="export a trained run's model and check the export")
    export.add_argument("run", help=run_help)
    export.add_argument("--format", required=True, choices=FORMATS,
                        help="tflite-dynamic: weights quantised to 8 bits (about 4x smaller); tflite-int8: "
                             "weights and activations in 8 bits, calibrated on training images; onnx: checked "
                             "in onnxruntime")
    export.add_argument("--int8-io", choices=INT8_IO, default="int8",
                        help="tflite-int8: the type of the input pixels and output scores (default int8)")
    export.add_argument("--out", metavar="DIR", help="folder to export into (default: RUN/export/FORMAT)")
    export.add_argument("--runs-dir", help=runs_help)
    export.set_defaults(func=cmd_export)

    sweep = sub.add_parser("sweep", help="train a config at several dropout rates (and kinds), with k-fold cross-validation")
    sweep.add_argument("config", help="path to a config .json (the base: everything but the dropout rate and kind)")
    sweep.add_argument("--rates", required=True, metavar="R1,R2,...", help="dropout rates to try, e.g. 0,0.2,0.5")
    sweep.add_argument("--kinds", default="", metavar="K1,K2,...",
                       help="dropout kinds to try, e.g. dropout,gaussian (default: the config's kind)")
    sweep.add_argument("--folds", type=positive_int, default=1, metavar="K",
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

    add_lr_find_command(sub)
    add_tune_command(sub)
    add_run_commands(sub)  # runs [rename|rm], save-backbone, report
    add_data_commands(sub)  # rank, review, data move|exclude|undo|log
    return parser


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
