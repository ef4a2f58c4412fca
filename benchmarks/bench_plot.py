"""The cost of one live-plot update with 100,000 points per batch curve.

The real TrainingPlots widget (offscreen) holds 100,000 smoothed batch values for
loss and accuracy plus 100 epoch points; each round adds one batch, redraws (setData
on every curve of both plots, as the 20 Hz timer does) and renders the widget.
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

POINTS = 100_000
EPOCHS = 100


def run(rounds: int = 30) -> dict:
    from PySide6.QtWidgets import QApplication

    from workbench.core.base.events import BatchEnd, EpochEnd
    from workbench.ui.plots import TrainingPlots

    app = QApplication.instance() or QApplication([])
    plots = TrainingPlots()
    plots._timer.stop()  # redraws are driven by hand here
    plots.resize(1200, 420)
    plots.show()
    steps = POINTS // EPOCHS
    rng = np.random.default_rng(0)
    plots.reset(EPOCHS)
    for i in range(POINTS):
        epoch, batch = divmod(i, steps)
        noise = rng.random(2)  # noisy, like real batch values (a smooth curve draws far faster)
        plots.add_batch(BatchEnd(epoch=epoch, batch=batch, steps=steps,
                                 logs={"loss": 1.0 / (1 + i / 1000) + 0.3 * noise[0],
                                       "accuracy": min(1.0, i / POINTS) * (0.7 + 0.3 * noise[1])}))
        if batch == steps - 1:
            plots.add_epoch(EpochEnd(epoch=epoch, logs={"loss": 0.5, "accuracy": 0.8, "val_loss": 0.6,
                                                        "val_accuracy": 0.75}, seconds=1.0))
    plots.redraw_now()
    app.processEvents()
    plots.grab()  # first render: caches, fonts
    set_ms, render_ms, total_ms = [], [], []
    for r in range(rounds):
        plots.add_batch(BatchEnd(epoch=EPOCHS - 1, batch=r, steps=steps, logs={"loss": 0.3, "accuracy": 0.9}))
        t0 = time.perf_counter()
        plots.redraw_now()  # setData on the curves that changed
        t1 = time.perf_counter()
        plots.grab()  # paints both plots, as a screen refresh would
        t2 = time.perf_counter()
        set_ms.append(1000 * (t1 - t0))
        render_ms.append(1000 * (t2 - t1))
        total_ms.append(1000 * (t2 - t0))
    assert len(plots._batch["loss"].x) == POINTS + rounds  # (getData() gives the downsampled view)
    plots.close()
    s, rnd, tot = (statistics.median(v) for v in (set_ms, render_ms, total_ms))
    return {
        "name": "Live plot update with 100,000 points per curve",
        "setup": f"workbench.ui.plots.TrainingPlots (offscreen, 1200x420): noisy loss and accuracy batch curves (EMA-smoothed, as in training) of "
                 f"{POINTS:,} points each plus {EPOCHS} epoch points per curve; per round one batch is added, "
                 f"then setData on every curve and one render (widget.grab()); median of {rounds} rounds.",
        "rows": [
            ("setData on all curves (both plots)", f"{s:.1f} ms", "batch curves cut to the view and reduced to a min/max envelope; epoch curves only when they changed"),
            ("render both plots", f"{rnd:.1f} ms", "about 2 points per pixel column; batch curve not antialiased"),
            ("one update (setData + render)", f"{tot:.1f} ms", f"max {max(total_ms):.1f} ms; about half per plot; target < 10 ms"),
        ],
    }
