"""Commands on a trained run's model: `scan` (a dataset), `evaluate`, `predict`, `export`."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from workbench.cli.common import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, err, resolve_run


def cmd_scan(args: argparse.Namespace) -> int:
    from workbench.core.data import scan

    folder = Path(args.folder)
    if not folder.is_dir():
        err(f"error: folder not found: {folder}")
        return EXIT_BAD_INPUT
    from workbench.core.config.validate import imbalance_warning

    report = scan.scan_folder(folder)
    print(report.summary())
    imbalance = imbalance_warning(report.counts)
    if imbalance:
        err(f"warning: {imbalance}")
    return EXIT_BAD_INPUT if scan.blocking_problems(report) else EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    from workbench.core.analysis.evaluation import evaluate_run
    from workbench.core.runs.store import RunError

    on = "test" if args.test else args.on or "validation"
    if args.test and args.on == "validation":
        err("error: --test FOLDER evaluates on a test set: leave out --on validation")
        return EXIT_BAD_INPUT
    if args.test and not Path(args.test).is_dir():
        err(f"error: test folder not found: {args.test}")
        return EXIT_BAD_INPUT
    run = resolve_run(args.run, args.runs_dir)
    if run is None:
        return EXIT_BAD_INPUT
    try:
        ev = evaluate_run(run, top_k=args.top_k, on=on, test_folder=args.test)
    except RunError as exc:
        err(f"error: {exc}")
        return EXIT_BAD_INPUT
    for note in ev.notes:
        err(f"warning: {note}")
    where = f" from {ev.source}" if ev.source else ""
    print(f"Run {run.name}: {ev.count} {on} images{where}, {len(ev.class_names)} classes")
    print(f"Accuracy           {ev.accuracy:.3f}")
    print(f"Balanced accuracy  {ev.balanced_accuracy:.3f}")
    print(f"Macro-F1           {ev.macro_f1:.3f}")
    print(f"Top-{ev.top_k} accuracy     {ev.top_k_accuracy:.3f}")
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
    saved = "evaluation-test.json (and the test figures in summary.json)" if on == "test" else "evaluation.json"
    print(f"\nSaved {run / saved}")
    return EXIT_OK


def cmd_predict(args: argparse.Namespace) -> int:
    from workbench.core.analysis.predict import load_run_model, predict_images
    from workbench.core.runs.store import RunError

    if args.mc == 1 or args.mc < 0:
        err("error: --mc needs at least 2 passes (or 0 for none)")
        return EXIT_BAD_INPUT
    run = resolve_run(args.run, args.runs_dir)
    if run is None:
        return EXIT_BAD_INPUT
    try:
        model = load_run_model(run)
        predictions = predict_images(model, args.images, top_k=args.top_k, mc_passes=args.mc)
    except (RunError, ValueError) as exc:
        err(f"error: {exc}")
        return EXIT_BAD_INPUT
    width = max(len(n) for n in model.class_names)
    failed = 0
    for p in predictions:
        if not p.ok:
            failed += 1
            err(f"{p.path}: error: {p.error}")
            continue
        print(p.path)
        for label, prob in p.top:
            spread = f" ± {p.std[label]:.3f}" if p.std else ""
            print(f"  {label:<{width}}  {prob:.3f}{spread}")
        if p.entropy is not None:
            print(f"  entropy {p.entropy:.3f} nats (0 = certain, {max_entropy(len(model.class_names)):.3f} = no idea)")
    if failed:
        err(f"{failed} of {len(predictions)} image(s) could not be read")
        return EXIT_BAD_INPUT
    return EXIT_OK


def max_entropy(classes: int) -> float:
    import math

    return math.log(classes)


def cmd_export(args: argparse.Namespace) -> int:
    from workbench.core.analysis.export import export_run
    from workbench.core.runs.store import RunError

    run = resolve_run(args.run, args.runs_dir)
    if run is None:
        return EXIT_BAD_INPUT
    try:
        result = export_run(run, args.format, args.out, int8_io=args.int8_io)
    except (RunError, ValueError) as exc:
        err(f"error: {exc}")
        return EXIT_BAD_INPUT
    if result.error and not result.path:
        err(f"error: {result.error}")
        return EXIT_FAILED
    print(f"Exported {result.format}: {result.path} ({result.size_text})")
    print(f"Labels: {result.labels_path}")
    if result.needs_select_tf_ops:
        print("Note: this TFLite model uses TensorFlow ops (SELECT_TF_OPS): its app needs the Flex delegate")
    verdict = "OK" if result.ok else "FAILED"
    agreement = "" if math.isnan(result.top1_agreement) else f", top-1 agreement {result.top1_agreement:.0%}"
    if result.format == "tflite-int8":
        print(f"Inputs and outputs: {result.int8_io}; size {result.size_text} against "
              f"{result.reference_size_text} for float TFLite")
        print(f"Check on {result.checked_on}: accuracy {result.accuracy:.1%} against the original model's "
              f"{result.reference_accuracy:.1%}{agreement}: {verdict}")
    else:
        print(f"Check on {result.checked_on}: largest difference {result.max_abs_diff:.3g} "
              f"(allowed {result.tolerance:g}){agreement}: {verdict}")
    if not result.ok:
        err(f"error: {result.error}")
        return EXIT_FAILED
    return EXIT_OK
