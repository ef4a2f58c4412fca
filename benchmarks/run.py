"""Run the benchmarks by hand and write docs/benchmarks.md.

    .venv/bin/python -m benchmarks.run            # all
    .venv/bin/python -m benchmarks.run training   # one

Figures are medians over several rounds, and comparisons are ratios measured
side by side in one process: these machines are noisy.
"""

from __future__ import annotations

import importlib
import json
import platform
import sys
import time
from pathlib import Path

BENCHMARKS = ["training", "finetune", "gui", "checkpoint", "plot", "startup", "memory", "feature_cache", "pipeline",
              "active_learning", "model_worker", "gpu", "first_batch", "tuning"]
OUT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
RESULTS = OUT.with_suffix(".json")  # every benchmark's latest result, so one can be re-run alone


def machine() -> str:
    import os

    import keras
    import tensorflow as tf

    return (
        f"{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}, GPUs: {len(tf.config.list_physical_devices('GPU'))}"
    )


def render(results: dict[str, dict]) -> str:
    lines = ["# Benchmarks", "", "Written by `python -m benchmarks.run`; each section says when and where it ran.", ""]
    for name in BENCHMARKS:
        if name not in results:
            continue
        r = results[name]
        lines += [f"## {r['name']}", "", f"*{r['date']}; {r['machine']}*", "", r["setup"], "",
                  "| measure | value | note |", "|---|---|---|"]
        lines += [f"| {a} | {b} | {c} |" for a, b, c in r["rows"]]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    names = argv or BENCHMARKS
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    skipped: set[str] = set()
    for name in names:
        module = importlib.import_module(f"benchmarks.bench_{name}")
        print(f"running {name} ...", flush=True)
        result = module.run()
        if result is None:  # nothing to measure here (the GPU check without a GPU): keep the last figures
            print(f"{name}: nothing to report on this machine", flush=True)
            skipped.add(name)
            continue
        result.update(date=time.strftime("%Y-%m-%d %H:%M"), machine=machine())
        results[name] = result
        print(result, flush=True)
        OUT.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        OUT.write_text(render(results) + "\n")
    print(f"wrote {OUT}" if set(names) - skipped else "nothing written")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
