"""`workbench tune`: a tuning study (Optuna) over a config, in this process; several processes may share one.

The config is a run config, optionally with a "tune" block (core/config/tune.py); the flags
override that block. Exit codes as `workbench train`: 0 the study ran (at least one trial
complete), 1 no trial completed or the study failed, 2 bad input (config, ranges, storage,
a study created for another config), 130 stopped (the study folder is complete; run the same
command again to resume).
"""

from __future__ import annotations

import argparse
import json
import sys

from workbench.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    ctrl_c_stops,
    err,
    positive_int,
    print_problems,
)
from workbench.core.base.events import Message, RunFailed
from workbench.core.base.problems import ConfigError, Problem
from workbench.core.config import tune as tune_config
from workbench.core.runs import studies
from workbench.core.runs.studies import NO_TRIAL_CAN_TRAIN


def add_tune_command(sub) -> None:
    tune = sub.add_parser("tune", help="search learning rate, dropout, batch size, ... with Optuna: many runs "
                                       "of one config, one line per trial")
    tune.add_argument("config", help="path to a run config .json (optionally with a \"tune\" block of ranges)")
    tune.add_argument("--trials", type=positive_int, metavar="N",
                      help="trials in the whole study, over every process that joins it (default 20)")
    tune.add_argument("--timeout", type=float, metavar="S", help="start no trial after S seconds (this process)")
    tune.add_argument("--folds", type=positive_int, metavar="K",
                      help="k-fold cross-validation per trial: its value is the mean over K folds")
    tune.add_argument("--search", metavar="P1,P2,...",
                      help="parameters to search, with their default ranges unless the config's tune block "
                           f"gives them: {', '.join(tune_config.SEARCHABLE)} (short: "
                           f"{', '.join(tune_config.ALIASES)})")
    tune.add_argument("--sampler", choices=tune_config.SAMPLERS, help="tpe (default, seeded) or grid")
    tune.add_argument("--pruner", choices=tune_config.PRUNERS, help="median (default) or none")
    tune.add_argument("--seed", type=int, help="the sampler's seed (default 0)")
    tune.add_argument("--dropout-rates", metavar="R1,R2,...",
                      help="the dropout preset: a grid over these rates (and --dropout-kinds), k folds each")
    tune.add_argument("--dropout-kinds", default="", metavar="K1,K2,...",
                      help="with --dropout-rates: the kinds to try (default: the config's)")
    tune.add_argument("--storage", metavar="URL",
                      help="an Optuna database URL (sqlite:///path.db, postgresql://user@host/db) shared by "
                           "several processes or machines (default: a SQLite file in the study folder)")
    tune.add_argument("--study", metavar="NAME", help="the study's name: give the same one to resume a study or "
                                                      "to join it from another process (default: a fresh name)")
    tune.add_argument("--heartbeat", type=positive_int, metavar="S",
                      help="seconds between a process's heartbeats; its trials are failed and queued again "
                           "after two missed ones (default 10)")
    tune.add_argument("--runs-dir", help="where run folders and the study folder go (default: the GUI's runs folder)")
    tune.set_defaults(func=cmd_tune)


def load_tune(args: argparse.Namespace) -> tune_config.TuneConfig | None:
    """The study the config file and the flags describe; None (its problems printed) when it cannot run."""
    try:
        with open(args.config, encoding="utf-8-sig") as fh:
            tune = tune_config.TuneConfig.from_json(fh.read())
    except FileNotFoundError:
        err(f"error: config file not found: {args.config}")
        return None
    except (OSError, ValueError) as exc:  # ConfigError is a ValueError
        problems = exc.problems if isinstance(exc, ConfigError) else [Problem("", str(exc))]
        print_problems(f"error: cannot use config {args.config}:", problems)
        return None
    try:
        apply_flags(tune, args)
    except ValueError as exc:
        err(f"error: {exc}")
        return None
    problems = tune_config.validate_tune(tune)
    if problems:
        print_problems(f"error: the study over {args.config} has problems:", problems)
        return None
    return tune


def apply_flags(tune: tune_config.TuneConfig, args: argparse.Namespace) -> None:
    if args.dropout_rates is not None:
        from workbench.core.config.sweep import parse_kinds, parse_rates

        preset = tune_config.dropout_preset(tune.base, parse_rates(args.dropout_rates),
                                            parse_kinds(args.dropout_kinds), args.folds or 1)
        tune.search, tune.trials, tune.sampler, tune.pruner = preset.search, preset.trials, "grid", "none"
    if args.search:
        names = [tune_config.resolve_param(n) for n in args.search.split(",") if n.strip()]
        tune.search = {n: tune.search.get(n) or tune_config.default_range(n, tune.base) for n in names}
    for flag, attr in (("trials", "trials"), ("timeout", "timeout_s"), ("folds", "folds"), ("sampler", "sampler"),
                       ("pruner", "pruner"), ("seed", "seed"), ("storage", "storage"), ("study", "study_name"),
                       ("heartbeat", "heartbeat_s")):
        value = getattr(args, flag)
        if value is not None:
            setattr(tune, attr, value)


def cmd_tune(args: argparse.Namespace) -> int:
    tune = load_tune(args)
    if tune is None:
        return EXIT_BAD_INPUT

    from workbench.core.tune.study import run_study

    printer = StudyPrinter(sys.stdout)
    with ctrl_c_stops("Stopping the study after this batch") as stop:
        result = run_study(tune, printer, stop, args.runs_dir)
    if isinstance(result, RunFailed):
        return EXIT_BAD_INPUT if result.kind == "invalid" else EXIT_FAILED
    if result.stopped:
        return EXIT_INTERRUPTED
    if result.reason == NO_TRIAL_CAN_TRAIN:  # the dataset cannot be used (as `train` exits 2)
        return EXIT_BAD_INPUT
    return EXIT_OK if result.counts.get("complete", 0) else EXIT_FAILED


class StudyPrinter:
    """A header, one line per trial as it ends, errors on stderr, and the best trial at the end."""

    def __init__(self, out):
        self.out = out
        self.folds = 1

    def line(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def __call__(self, event) -> None:
        if isinstance(event, studies.StudyStarted):
            joined = f", joining {event.resumed_trials} earlier trial(s)" if event.resumed_trials else ""
            self.line(f"Study {event.study_name}: {event.trials_planned} trials over {', '.join(event.params)}, "
                      f"maximizing {event.metric}{joined}\nStudy folder: {event.study_dir}\n"
                      f"Storage: {event.storage}")
        elif isinstance(event, studies.TrialStarted):
            self.folds = event.folds
        elif isinstance(event, studies.TrialEnded):
            self.line(studies.format_trial(event, self.folds))
        elif isinstance(event, studies.TrialRunEvent):
            inner = event.event
            if isinstance(inner, Message) and inner.level == "error":
                err(f"trial {event.number}: {inner.text}")
            elif isinstance(inner, RunFailed) and inner.kind != "diverged":  # diverged: the trial's line says so
                err(f"trial {event.number}: {inner.error}" + (f"\n  {inner.details}" if inner.details else ""))
        elif isinstance(event, studies.StudyFinished):
            counts = ", ".join(f"{n} {s}" for s, n in event.counts.items() if n)
            self.line(f"\nStudy ended ({event.reason}): {counts or 'no trials'}")
            if event.best_number is not None:
                self.line(f"Best: trial {event.best_number}, val_accuracy {event.best_value:.4f}, "
                          f"{json.dumps(event.best_params)}\nBest config: {event.best_config_path}")
        elif isinstance(event, RunFailed):  # the study could not start, or ended with an error
            err(f"error: {event.error}" + (f"\n{event.details}" if event.details else ""))
        elif isinstance(event, Message) and event.level == "error":
            err(f"error: {event.text}")
        elif isinstance(event, Message):
            self.line(event.text)
