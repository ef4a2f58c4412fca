"""Prediction latency of a dropped image: in the window's own process (before) vs the model worker (now).

A tiny run is trained once. Each round copies it to a new folder (a run no process has loaded),
then predicts one image with it: first (the model loads) and five more times (the model is
cached), once as the window did before (worker_jobs.predict on this process's thread, TensorFlow
here) and once through the model worker (model_jobs.predict: a child process forked from the
fork server, which the app starts at launch; its device probe and layer count have started
and used the worker by the time a person drops an image, and so they do here).
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

REPEATS = 5


def _timed(fn, *args) -> float:
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


def run(rounds: int = 3) -> dict:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "ui"))
    from ui_helpers import tiny_config, write_image_folder

    from workbench.core.train import run as training
    from workbench.ui.tasks import model_jobs, processes, worker_jobs

    os.environ.setdefault("WORKBENCH_TRAINING_NICE", "0")
    before: list[tuple[float, float]] = []
    after: list[tuple[float, float]] = []
    starts: list[float] = []
    with tempfile.TemporaryDirectory() as root_name:
        root = Path(root_name)
        data = write_image_folder(root / "data", classes=("red", "green", "blue"), per_class=12)
        config = tiny_config(data, epochs=1)
        trained = Path(training.run(config, lambda event: None, runs_dir=root / "runs").run_dir)
        image = str(data / "red" / "000.png")
        for index in range(rounds):
            here = str(shutil.copytree(trained, root / f"copy-{index}-before"))
            there = str(shutil.copytree(trained, root / f"copy-{index}-after"))
            processes.close_model_worker()
            starts.append(_timed(processes.run_in_worker, "describe_devices"))  # as the app's device probe,
            processes.run_in_worker("count_trainable", config, 3)  # and its start-up layer count
            first = (_timed(worker_jobs.predict, here, [image], 3, 0), _timed(model_jobs.predict, there, [image], 3, 0))
            pairs = [(_timed(worker_jobs.predict, here, [image], 3, 0), _timed(model_jobs.predict, there, [image], 3, 0))
                     for _ in range(REPEATS)]  # interleaved: both see the same machine load
            before.append((first[0], statistics.median(b for b, _ in pairs)))
            after.append((first[1], statistics.median(a for _, a in pairs)))
        processes.close_model_worker()

    def ms(values) -> str:
        return f"{1000 * statistics.median(values):.0f} ms"

    first_before, first_after = [f for f, _ in before], [f for f, _ in after]
    repeat_before, repeat_after = [r for _, r in before], [r for _, r in after]
    return {
        "name": "Prediction of a dropped image: the window's process vs the model worker",
        "setup": f"MobileNetV2 x0.35 at 32 px, one image, top-3; {rounds} rounds, each on two copies of the "
                 f"run no process had loaded: the first prediction loads the model, the repeated one is the median of "
                 f"{REPEATS} more with it cached, before and now interleaved. Before: the job's body on a thread of this process (TensorFlow "
                 "loaded here, as the window did). Now: model_jobs.predict through the model worker, started as "
                 "the app's device probe and start-up layer count start and use it.",
        "rows": [
            ("first prediction, before (model loaded in the window's process)", ms(first_before),
             ", ".join(f"{1000 * v:.0f}" for v in first_before) + " ms"),
            ("first prediction, model worker", ms(first_after), ", ".join(f"{1000 * v:.0f}" for v in first_after)
             + " ms"),
            ("repeated prediction, before", ms(repeat_before), "the model cached in the window's process"),
            ("repeated prediction, model worker", ms(repeat_after),
             f"ratio {statistics.median(repeat_after) / statistics.median(repeat_before):.2f} of before; "
             "the pipe adds the pickling of the result"),
            ("model worker start (forked from the fork server, one job)", ms(starts),
             "paid once at launch (device probe), not by a prediction; the first round also waits for the "
             "fork server's TensorFlow import"),
        ],
    }
