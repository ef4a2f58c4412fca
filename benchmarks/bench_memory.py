"""Peak memory of one epoch through make_dataset: 1,000 images vs 20,000 (streaming must not grow).

The images (48x48 PNG, 4 classes) are written once into a temporary folder; each size
runs in its own process, which iterates one training epoch of
`pipeline.make_dataset(..., cache=False)` and reports its peak RSS (ru_maxrss).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

SIZES = (1_000, 20_000)
CLASSES = 4
PIXELS = 48

CHILD = r"""
import json, os, resource, sys, time
from pathlib import Path
from workbench.core.data import pipeline
root, count = Path(sys.argv[1]), int(sys.argv[2])
files = sorted(root.rglob("*.png"))[:count]
classes = sorted({f.parent.name for f in files})
items = [(str(f), classes.index(f.parent.name)) for f in files]
ds = pipeline.make_dataset(items, len(classes), 96, 32, training=True, seed=0)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started, images = time.perf_counter(), 0
for x, y in ds:
    images += int(x.shape[0])
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"images": images, "seconds": seconds, "before_kb": before, "peak_kb": peak}))
"""


def make_images(root: Path, total: int) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(total):
        c = i % CLASSES
        d = root / f"class{c}"
        d.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 255, (PIXELS, PIXELS, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(d / f"{i:05d}.png", compress_level=1)


def measure(root: Path, count: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(root), str(count)], capture_output=True, text=True,
                         timeout=600)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def run() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "images"
        make_images(root, max(SIZES))
        small, large = (measure(root, n) for n in SIZES)
    growth = large["peak_kb"] / small["peak_kb"] - 1
    rows = []
    for n, r in zip(SIZES, (small, large), strict=True):
        rows.append((f"peak RSS, {n:,} images", f"{r['peak_kb'] / 1024:.0f} MB",
                     f"{r['images']} images in {r['seconds']:.1f} s ({r['images'] / r['seconds']:.0f} img/s); "
                     f"{r['before_kb'] / 1024:.0f} MB before iterating"))
    rows.append(("growth, 20,000 vs 1,000 images", f"{growth:+.1%}", "target < 10 %"))
    return {
        "name": "Memory: streaming one epoch of 1,000 vs 20,000 images",
        "setup": f"pipeline.make_dataset over {PIXELS}x{PIXELS} PNGs ({CLASSES} classes), resized to 96 px, batch 32, "
                 "shuffled, no cache; one process per size, peak RSS from ru_maxrss.",
        "rows": rows,
    }
