"""`workbench train`, `sweep` and `gan`: the same runs as the GUI's, in this process."""

from __future__ import annotations

import argparse
import sys

from workbench.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    ctrl_c_stops,
    err,
    print_problems,
    resolve_run,
)
from workbench.cli.printers import GanPrinter, ProgressPrinter, SweepPrinter
from workbench.core.base.events import RunFailed
from workbench.core.base.problems import ConfigError
from workbench.core.config.run import RunConfig, load_config
from workbench.core.config.validate import validate
from workbench.core.config.validate import warnings as config_warnings


def load_checked(path: str) -> RunConfig | None:
    """The config at `path` when it loads and validates; else None, its problems printed."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        print_problems(f"error: cannot use config {path}:", exc.problems)
        return None
    problems = validate(config)
    if problems:
        print_problems(f"error: the config {path} has problems:", problems)
        return None
    for caution in config_warnings(config):  # values that run but probably should not, as the GUI shows them
        err(f"warning: {caution}")
    return config


def cmd_train(args: argparse.Namespace) -> int:
    resume_dir = None
    if args.resume:
        if args.config:
            err("error: give a config or --resume RUN, not both (a resumed run keeps its own config)")
            return EXIT_BAD_INPUT
        resume_dir = resolve_run(args.resume, args.runs_dir)
        if resume_dir is None:
            return EXIT_BAD_INPUT
        config_path = str(resume_dir / "config.json")
    elif args.config:
        config_path = args.config
    else:
        err("error: give a config .json to train, or --resume RUN to continue a run")
        return EXIT_BAD_INPUT
    config = load_checked(config_path)
    if config is None:
        return EXIT_BAD_INPUT

    from workbench.core.train import run as training

    printer = ProgressPrinter(sys.stdout)
    with ctrl_c_stops("Stopping after this batch") as stop:
        if resume_dir is not None:
            result = training.run(config, printer, stop, resume_from=resume_dir)
        else:
            result = training.run(config, printer, stop, runs_dir=args.runs_dir)
    if isinstance(result, RunFailed):
        if result.kind == "invalid":
            return EXIT_BAD_INPUT
        return EXIT_FAILED
    return EXIT_INTERRUPTED if result.stopped else EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    """Transfer against zero-init, as the GUI's "Compare with zero-init": two runs, one after the other."""
    from workbench.core.config.comparison import comparison_configs, why_not_comparable
    from workbench.core.runs.listing import best_val_accuracy
    from workbench.core.runs.store import load_run
    from workbench.core.train import run as training

    config = load_checked(args.config)
    if config is None:
        return EXIT_BAD_INPUT
    reason = why_not_comparable(config)
    if reason:
        err(f"error: {reason}")
        return EXIT_BAD_INPUT
    scores = []
    with ctrl_c_stops("Stopping after this batch; the comparison ends") as stop:
        for run_config in comparison_configs(config):
            print(f"== {run_config.name}", flush=True)
            result = training.run(run_config, ProgressPrinter(sys.stdout), stop, runs_dir=args.runs_dir)
            if isinstance(result, RunFailed):
                err(f"The comparison ended: {run_config.name} failed")
                return EXIT_BAD_INPUT if result.kind == "invalid" else EXIT_FAILED
            if result.stopped:
                return EXIT_INTERRUPTED
            scores.append((run_config.name, best_val_accuracy(load_run(result.run_dir)), result.run_dir))
    width = max(len(name) for name, _, _ in scores)
    print("\nBest validation accuracy:")
    for name, best, run_dir in scores:
        print(f"  {name:<{width}}  {'-' if best is None else f'{best:.3f}'}  {run_dir}")
    return EXIT_OK


def cmd_sweep(args: argparse.Namespace) -> int:
    from workbench.core.config import sweep as sweep_config
    from workbench.core.runs import sweeps as sweep_results
    from workbench.core.train import sweep as sweeps

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        return print_problems(f"error: cannot use config {args.config}:", exc.problems)
    try:
        rates = sweep_config.parse_rates(args.rates)
        kinds = sweep_config.parse_kinds(args.kinds)
    except ValueError as exc:
        err(f"error: {exc}")
        return EXIT_BAD_INPUT
    plan = sweep_config.SweepConfig(config, rates, kinds, args.folds)
    problems = sweep_config.validate_sweep(plan)
    if problems:
        return print_problems(f"error: the sweep over {args.config} has problems:", problems)

    printer = SweepPrinter(sys.stdout)
    with ctrl_c_stops("Stopping the sweep after this batch") as stop:
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
    if result.save_error:
        err(f"error: {result.save_error}")
        return EXIT_FAILED
    if result.stopped:
        return EXIT_INTERRUPTED
    return EXIT_OK if best is not None else EXIT_FAILED


def cmd_gan(args: argparse.Namespace) -> int:
    """`workbench gan CONFIG.json`: a DCGAN run (or, with --sweep-rates, one run per dropout rate)."""
    from workbench.core.config.gan import load_gan_config, validate_gan

    try:
        config = load_gan_config(args.config)
    except ConfigError as exc:
        return print_problems(f"error: cannot use GAN config {args.config}:", exc.problems)
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
            err(f"error: {exc}")
            return EXIT_BAD_INPUT
        plan = gan_sweep_config.GanSweepConfig(config, rates)
        problems = gan_sweep_config.validate_gan_sweep(plan)
    else:
        problems = validate_gan(config)
    if problems:
        return print_problems(f"error: the GAN config {args.config} has problems:", problems)

    printer = GanPrinter(sys.stdout)
    with ctrl_c_stops("Stopping after this step") as stop:
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
    if result.save_error:
        err(f"error: {result.save_error}")
        return EXIT_FAILED
    if result.stopped:
        return EXIT_INTERRUPTED
    return EXIT_OK if best is not None else EXIT_FAILED
