"""The data loop from a terminal: `review` (what to fix), `rank` (what to label next) and
`data move|exclude|undo|log` (edits to a dataset folder, logged and undoable as in the GUI)."""

from __future__ import annotations

import argparse
from pathlib import Path

from workbench.cli.common import EXIT_BAD_INPUT, EXIT_OK, RUN_HELP, RUNS_HELP, err, positive_int

# Commands of this module that load TensorFlow (cli/__init__.py imports it first for them).
TENSORFLOW_COMMANDS = {"rank", "review"}


def add_data_commands(sub: argparse._SubParsersAction) -> None:
    rank = sub.add_parser("rank", help="rank a folder of unlabelled images by how unsure a run's model is "
                                       "(Monte-Carlo dropout), to label the most useful ones first")
    rank.add_argument("run", help=RUN_HELP)
    rank.add_argument("folder", help="a folder of unlabelled images (sub-folders included)")
    rank.add_argument("--mc", type=positive_int, default=20, metavar="T",
                      help="Monte-Carlo dropout passes (at least 2; default 20)")
    rank.add_argument("--top", type=positive_int, default=50, metavar="N", help="images to list (default 50)")
    rank.add_argument("--by", choices=("entropy", "bald"), default="entropy",
                      help="entropy: unsure for any reason; bald: the passes disagree (default entropy)")
    rank.add_argument("--csv", metavar="OUT", help="also write the ranking to a CSV file")
    rank.add_argument("--runs-dir", help=RUNS_HELP)
    rank.set_defaults(func=cmd_rank)

    review = sub.add_parser("review", help="list a run's validation (or test) images it gets wrong or is "
                                           "least sure of, to fix the dataset")
    review.add_argument("run", help=RUN_HELP)
    review.add_argument("--test", action="store_true",
                        help="review the run's test set (its test folder or held-out split) instead")
    review.add_argument("--mc", type=positive_int, default=20, metavar="T",
                        help="Monte-Carlo dropout passes for the entropy (default 20)")
    review.add_argument("--sort", choices=("loss", "confidence", "entropy"), default="loss",
                        help="worst first by loss (default), lowest confidence or highest entropy")
    review.add_argument("--uncertain", type=int, default=24, metavar="N",
                        help="also list the N right answers with the highest entropy (default 24)")
    review.add_argument("--runs-dir", help=RUNS_HELP)
    review.set_defaults(func=cmd_review)

    data = sub.add_parser("data", help="move, exclude or label images of a dataset folder; undo; the edit log")
    actions = data.add_subparsers(dest="action", required=True)
    move = actions.add_parser("move", help="move an image into a class folder (labelling it if from outside)")
    move.add_argument("dataset", help="the dataset folder (one sub-folder per class)")
    move.add_argument("image")
    move.add_argument("label", help="the class folder to move it into")
    move.set_defaults(func=cmd_move)
    exclude = actions.add_parser("exclude", help="move an image of the dataset to its _excluded/<class>/ folder")
    exclude.add_argument("dataset")
    exclude.add_argument("image")
    exclude.set_defaults(func=cmd_exclude)
    undo = actions.add_parser("undo", help="put back the file of the newest edit not undone yet")
    undo.add_argument("dataset")
    undo.add_argument("--all", action="store_true", help="undo every edit, newest first")
    undo.set_defaults(func=cmd_undo)
    log = actions.add_parser("log", help="list the dataset's edits (.workbench-edits.jsonl)")
    log.add_argument("dataset")
    log.set_defaults(func=cmd_log)


def cmd_rank(args: argparse.Namespace) -> int:
    from workbench.cli.common import resolve_run
    from workbench.core.analysis.uncertainty import rank_unlabelled, write_ranking_csv
    from workbench.core.runs.store import RunError

    if args.mc < 2:
        err("error: --mc needs at least 2 passes")
        return EXIT_BAD_INPUT
    run = resolve_run(args.run, args.runs_dir)
    if run is None:
        return EXIT_BAD_INPUT
    try:
        ranking = rank_unlabelled(run, args.folder, mc=args.mc, top=args.top, by=args.by)
        if args.csv:
            write_ranking_csv(ranking, args.csv)
    except (RunError, ValueError) as exc:
        err(f"error: {exc}")
        return EXIT_BAD_INPUT
    for note in ranking.notes:
        err(f"note: {note}")
    if ranking.broken:
        err(f"warning: {ranking.broken_text(limit=len(ranking.broken))}")
    if not ranking.images:
        return EXIT_BAD_INPUT
    print(f"{len(ranking.images)} of {ranking.ranked} image(s), least sure first (by {ranking.by}, "
          f"{ranking.mc_passes} pass{'es' if ranking.mc_passes != 1 else ''}):")
    width = max(len(n) for n in ranking.class_names)
    print(f"{'rank':>4}  {'guess':<{width}}  conf.  entropy  BALD    path")
    for i, r in enumerate(ranking.images, 1):
        print(f"{i:>4}  {r.guess:<{width}}  {r.confidence:5.2f}  {r.entropy:7.3f}  {r.mutual_info:6.3f}  {r.path}")
    if args.csv:
        print(f"Wrote {args.csv}")
    if ranking.dataset:
        print(f"Label one with: workbench data move {ranking.dataset} IMAGE CLASS")
    return EXIT_OK


def cmd_review(args: argparse.Namespace) -> int:
    from workbench.cli.common import resolve_run
    from workbench.core.analysis.review import review_images
    from workbench.core.runs.store import RunError

    run = resolve_run(args.run, args.runs_dir)
    if run is None:
        return EXIT_BAD_INPUT
    try:
        review = review_images(run, split="test" if args.test else "validation", mc_passes=args.mc)
    except (RunError, ValueError) as exc:
        err(f"error: {exc}")
        return EXIT_BAD_INPUT
    for note in review.notes:
        err(f"note: {note}")
    shown = review.gallery(max(0, args.uncertain), by=args.sort)
    wrong = sum(r.wrong for r in review.images)
    print(f"Run {run.name}: {len(review.images)} {review.split} images, {wrong} wrong; "
          f"{len(shown)} listed, worst first by {args.sort}")
    width = max(len(n) for n in review.class_names)
    print(f"{'true':<{width}}  {'predicted':<{width}}  conf.   loss  entropy  path")
    for r in shown:
        mark = "x" if r.wrong else " "
        print(f"{r.true_label:<{width}}  {r.predicted_label:<{width}}{mark} {r.confidence:5.2f}  {r.loss:5.2f}  "
              f"{r.entropy:7.3f}  {r.path}")
    print(f"Fix one with: workbench data move {review.dataset} IMAGE CLASS  (or data exclude {review.dataset} IMAGE)")
    return EXIT_OK


def cmd_move(args: argparse.Namespace) -> int:
    from workbench.core.data import edits

    return _edit(lambda: edits.move_to_class(args.dataset, args.image, args.label))


def cmd_exclude(args: argparse.Namespace) -> int:
    from workbench.core.data import edits

    return _edit(lambda: edits.exclude(args.dataset, args.image))


def cmd_undo(args: argparse.Namespace) -> int:
    from workbench.core.data import edits

    if not Path(args.dataset).is_dir():
        err(f"error: folder not found: {args.dataset}")
        return EXIT_BAD_INPUT
    code = _edit(lambda: edits.undo_last(args.dataset))
    while args.all and code == EXIT_OK and edits.pending(args.dataset):
        code = _edit(lambda: edits.undo_last(args.dataset))
    return code


def cmd_log(args: argparse.Namespace) -> int:
    from workbench.core.data import edits

    if not Path(args.dataset).is_dir():
        err(f"error: folder not found: {args.dataset}")
        return EXIT_BAD_INPUT
    try:
        entries = edits.history(args.dataset)
    except edits.EditError as exc:
        err(f"error: {exc}")
        return EXIT_BAD_INPUT
    undone = {e.undoes for e in entries if e.action == "undo"}
    root = Path(args.dataset).absolute()
    for i, e in enumerate(entries):
        state = " (undone)" if i in undone else ""
        print(f"{e.time}  {e.action:<7}  {edits.relative(root, e.source)} -> {edits.relative(root, e.dest)}{state}")
    if not entries:
        print(f"No edits logged in {args.dataset}")
    return EXIT_OK


def _edit(make) -> int:
    from workbench.core.data.edits import EditError

    try:
        edit = make()
    except EditError as exc:
        err(f"error: {exc}")
        return EXIT_BAD_INPUT
    print(edit.describe())
    return EXIT_OK
