"""Throughput in the common transfer case: fine-tuning a 'pretrained' backbone, BatchNorm frozen.

The same measurement as bench_training, but the backbone's weights come from a file, so
its BatchNorm layers stay in inference mode and Workbench has no statistics to recalibrate:
what remains is its callbacks, metrics files and checkpoints (within 2 % of the time).
"""

from __future__ import annotations

import statistics

from benchmarks.bench_training import lower_quartile, measure


def run(rounds: int = 3, epochs: int = 6, per_class: int = 400) -> dict:
    images = int(per_class * 4 * 0.8)
    plain, ours, child = measure(per_class, rounds, epochs, pretrained=True)
    p, o, c = statistics.median(plain), statistics.median(ours), statistics.median(child)
    pq, oq, cq = lower_quartile(plain), lower_quartile(ours), lower_quartile(child)
    return {
        "name": "Training throughput when fine-tuning (BatchNorm frozen) vs plain model.fit",
        "setup": f"MobileNetV2 (width 0.35, 96 px) with weights from a file, every layer training except "
                 f"BatchNorm (inference mode, as Workbench does for pretrained weights), 4 classes, {images} "
                 f"training images, batch 32, {rounds} alternating rounds x {epochs - 2} timed epochs (steady "
                 "state, as in the benchmark above).",
        "rows": [
            ("plain model.fit, s/epoch", f"{p:.3f}", f"fastest quarter {pq:.3f} s"),
            ("Workbench training.run, s/epoch", f"{o:.3f}", f"fastest quarter {oq:.3f} s"),
            ("as the app runs it (child process, nice 5), s/epoch", f"{c:.3f}", f"fastest quarter {cq:.3f} s"),
            ("throughput ratio, Workbench / plain (medians)", f"{p / o:.3f}",
             f"fastest quarters {pq / oq:.3f}; target >= 0.95"),
            ("throughput ratio, app's child process / plain (medians)", f"{p / c:.3f}",
             f"fastest quarters {pq / cq:.3f}; target >= 0.95"),
        ],
    }
