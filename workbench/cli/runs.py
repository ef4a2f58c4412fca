"""`workbench runs` (list, rename, rm), `save-backbone` and `report`: what the Runs tab does.

The listing is the core's (core/runs/listing.py), the one the Runs panel shows.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from workbench.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    RUN_HELP,
    RUNS_HELP,
    err,
    resolve_run,
)


def add_run_commands(sub) -> None:
    """The sub-commands of this module, on the main parser's sub-parsers."""
    runs = sub.add_parser("runs", help="list the runs (status, best validation accuracy); rename or delete one")
    runs.add_argument("--runs-dir", help=RUNS_HELP)
    runs.add_argument("--json", action="store_true", help="print the list as JSON")
    runs.set_defaults(func=cmd_runs_list)
    actions = runs.add_subparsers(dest="runs_command")
    rename = actions.add_parser("rename", help="give a run a new name (its folder keeps its name)")
    rename.add_argument("run", help=RUN_HELP)
    rename.add_argument("name")
    rename.add_argument("--runs-dir", help=RUNS_HELP, default=argparse.SUPPRESS)
    rename.set_defaults(func=cmd_runs_rename)
    remove = actions.add_parser("rm", help="delete a run folder (needs --yes)")
    remove.add_argument("run", help=RUN_HELP)
    remove.add_argument("--yes", action="store_true", help="really delete it: this cannot be undone")
    remove.add_argument("--runs-dir", help=RUNS_HELP, default=argparse.SUPPRESS)
    remove.set_defaults(func=cmd_runs_rm)

    save = sub.add_parser("save-backbone", help="save a run's trained backbone under a name, to transfer from")
    save.add_argument("run", help=RUN_HELP)
    save.add_argument("name", help="the name; the file is RUNS_DIR/weights/NAME.weights.h5")
    save.add_argument("--runs-dir", help=RUNS_HELP)
    save.set_defaults(func=cmd_save_backbone)

    report = sub.add_parser("report", help="write a run's self-contained HTML report")
    report.add_argument("run", help=RUN_HELP)
    report.add_argument("--out", metavar="FILE", help="where to write it (default: RUN/report.html)")
    report.add_argument("--runs-dir", help=RUNS_HELP)
    report.set_defaults(func=cmd_report)


def _root(runs_dir: str | None) -> Path:
    from workbench.core.runs.store import default_runs_dir

    return Path(runs_dir).expanduser() if runs_dir else default_runs_dir()


def cmd_runs_list(args: argparse.Namespace) -> int:
    from workbench.core.runs.listing import best_val_accuracy, list_runs, run_label, run_status

    records = list_runs(_root(args.runs_dir))
    rows = []
    for record in records:
        status, _, why = run_status(record)
        best = best_val_accuracy(record)
        rows.append({"id": record.id, "name": run_label(record), "status": status,
                     "best_val_accuracy": best, "has_model": record.has_model, "path": str(record.path),
                     "backbone": record.config.backbone.name if record.config is not None else "",
                     "problem": record.problem or (why if why != status else "")})
    if args.json:
        print(json.dumps(rows, indent=1))
        return EXIT_OK
    if not rows:
        print(f"No runs in {_root(args.runs_dir)}")
        return EXIT_OK
    width = max(len(r["id"]) for r in rows)
    name_width = min(30, max(4, *(len(r["name"]) for r in rows)))
    print(f"{'run':<{width}}  {'name':<{name_width}}  {'best val acc':>12}  status")
    for r in rows:
        best = f"{r['best_val_accuracy']:.4f}" if r["best_val_accuracy"] is not None else "-"
        print(f"{r['id']:<{width}}  {r['name'][:name_width]:<{name_width}}  {best:>12}  {r['status']}")
    return EXIT_OK


def cmd_runs_rename(args: argparse.Namespace) -> int:
    from workbench.core.base.problems import ConfigError
    from workbench.core.runs.store import rename_run

    run = resolve_run(args.run, args.runs_dir)
    if run is None:
        return EXIT_BAD_INPUT
    if not args.name.strip():
        err("error: the new name is empty")
        return EXIT_BAD_INPUT
    try:
        rename_run(run, args.name.strip())
    except ConfigError as exc:
        err(f"error: cannot read the config of {run.name}: {exc}")
        return EXIT_BAD_INPUT
    except OSError as exc:
        err(f"error: cannot write the config of {run.name}: {exc}")
        return EXIT_FAILED
    print(f"Renamed {run.name} to '{args.name.strip()}'")
    return EXIT_OK


def cmd_runs_rm(args: argparse.Namespace) -> int:
    from workbench.core.runs.store import delete_run

    run = resolve_run(args.run, args.runs_dir)
    if run is None:
        return EXIT_BAD_INPUT
    if not args.yes:
        err(f"error: this deletes {run} (model, curves, exports) and cannot be undone; "
            "add --yes to delete it")
        return EXIT_BAD_INPUT
    try:
        delete_run(run)
    except ValueError as exc:
        err(f"error: {exc}")
        return EXIT_BAD_INPUT
    except OSError as exc:
        err(f"error: cannot delete {run}: {exc}")
        return EXIT_FAILED
    print(f"Deleted {run}")
    return EXIT_OK


def cmd_save_backbone(args: argparse.Namespace) -> int:
    from workbench.core.config.weights_files import WeightsUnavailable
    from workbench.core.engine.weights import save_run_backbone

    run = resolve_run(args.run, args.runs_dir)
    if run is None:
        return EXIT_BAD_INPUT
    try:
        path = save_run_backbone(run, args.name, _root(args.runs_dir))
    except WeightsUnavailable as exc:
        err(f"error: {exc}")
        return EXIT_BAD_INPUT
    except (OSError, ValueError) as exc:
        err(f"error: the backbone could not be saved: {exc}")
        return EXIT_FAILED
    print(f"Saved the backbone of {run.name}: {path}")
    print("Use it as the weights file of a new run (config backbone.weights 'file', or Backbone > Saved)")
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from workbench.core.analysis.report import write_report
    from workbench.core.runs.store import RunError

    run = resolve_run(args.run, args.runs_dir)
    if run is None:
        return EXIT_BAD_INPUT
    try:
        result = write_report(run, args.out)
    except RunError as exc:
        err(f"error: {exc}")
        return EXIT_BAD_INPUT
    for note in result.notes:
        err(f"warning: {note}")
    print(f"Report: {result.path} ({result.size_bytes / 1024:.0f} KB; {', '.join(result.sections)})")
    return EXIT_OK
