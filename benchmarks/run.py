"""Run the benchmarks by hand and write docs/benchmarks.md.

    .venv/bin/python -m benchmarks.run            # all
    .venv/bin/python -m benchmarks.run training   # one

Figures are medians over several rounds, and comparisons are ratios measured
side by side in one process: these machines are noisy.
"""

from __future__ import annotations

import importlib
import platform
import sys
import time
from pathlib import Path

BENCHMARKS = ["training"]
OUT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def machine() -> str:
    import os

    import keras
    import tensorflow as tf

    return (
        f"{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}, GPUs: {len(tf.config.list_physical_devices('GPU'))}"
    )


def render(results: list[dict]) -> str:
    lines = ["# Benchmarks", "", f"Written by `python -m benchmarks.run` on {time.strftime('%Y-%m-%d')}.", "",
             f"Machine: {machine()}", ""]
    for r in results:
        lines += [f"## {r['name']}", "", r["setup"], "", "| measure | value | note |", "|---|---|---|"]
        lines += [f"| {a} | {b} | {c} |" for a, b, c in r["rows"]]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    names = argv or BENCHMARKS
    results = []
    for name in names:
        module = importlib.import_module(f"benchmarks.bench_{name}")
        print(f"running {name} ...", flush=True)
        results.append(module.run())
        print(results[-1])
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(render(results) + "\n")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
