"""`workbench lr-find CONFIG.json`: the learning-rate range test, headless, with its suggestion."""

from __future__ import annotations

import argparse

from workbench.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    ctrl_c_stops,
    err,
    positive_int,
)


def add_lr_find_command(sub) -> None:
    lr_find = sub.add_parser("lr-find", help="find a learning rate: train a fresh copy of the config's model with a "
                                             "growing rate and suggest one (the config and runs are not changed)")
    lr_find.add_argument("config", help="path to a config .json")
    lr_find.add_argument("--plot-csv", metavar="OUT", help="also write the curve as CSV (step, learning_rate, loss, "
                                                           "smoothed_loss)")
    lr_find.add_argument("--steps", type=positive_int, default=100, metavar="N",
                         help="batches at most (default 100)")
    lr_find.set_defaults(func=cmd_lr_find)


def cmd_lr_find(args: argparse.Namespace) -> int:
    from workbench.cli.training import load_checked
    from workbench.core.base.events import BatchEnd, Message, RunFailed
    from workbench.core.train.lr_find import find_lr

    if args.steps < 3:
        err("error: --steps needs at least 3 batches")
        return EXIT_BAD_INPUT
    config = load_checked(args.config)
    if config is None:
        return EXIT_BAD_INPUT

    def show(event) -> None:
        if isinstance(event, Message) and event.level in ("warning", "error"):
            err(f"{event.level}: {event.text}")
        elif isinstance(event, BatchEnd) and (event.batch + 1) % 10 == 0:
            print(f"  step {event.batch + 1:>4}  rate {event.logs['learning_rate']:.3g}  "
                  f"loss {event.logs['smoothed']:.4g}", flush=True)

    with ctrl_c_stops("Stopping the learning-rate test…") as stop:
        result = find_lr(config, show, stop, steps=args.steps)
    if isinstance(result, RunFailed):
        err(f"error: {result.error}")
        if result.details and result.kind == "invalid":
            err(result.details)
        return EXIT_BAD_INPUT if result.kind == "invalid" else EXIT_FAILED
    if args.plot_csv:
        try:
            result.write_csv(args.plot_csv)
        except OSError as exc:
            err(f"error: cannot write {args.plot_csv}: {exc}")
            return EXIT_FAILED
        print(f"Curve: {args.plot_csv}")
    if result.ended == "stopped" and not result.suggestion:
        return EXIT_INTERRUPTED
    print(f"{len(result.losses)} steps, {result.ended}")
    if not result.suggestion:
        err("error: too few steps for a suggestion")
        return EXIT_FAILED
    print(f"Suggested learning rate: {result.suggestion:.3g} ({result.rule}); "
          f"a tenth of the lowest-loss rate: {result.min_over_10:.3g}")
    print(f'Use it: "training": {{"learning_rate": {float(f"{result.suggestion:.3g}")}}}')
    return EXIT_INTERRUPTED if result.ended == "stopped" else EXIT_OK
