"""The tuning study's own cost: a study's trials vs the same configs trained one after another with `run`.

One process, side by side: a study (TPE, seeded, no pruner, its SQLite storage in its folder,
heartbeats on) draws and trains `trials` configs, and each trial's config also trains as a plain
`core.train.run.run`, just before or just after the trial by turns (this machine's load moves
by more than the study costs, so runs minutes apart cannot be compared). The ratio is plain time
over study time (1.0: the search machinery costs nothing); the study's time outside `run()`, per
trial, is what opening the study, Optuna's storage, the study folder, the importances and the
events add.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

from benchmarks.bench_training import make_images
from workbench.core.config.run import RunConfig
from workbench.core.config.tune import SearchRange, TuneConfig

SEARCH = {"learning_rate": SearchRange(1e-4, 1e-2, log=True), "dropout_rate": SearchRange(0.0, 0.5)}


def bench_config(folder: Path, epochs: int, size: int) -> RunConfig:
    c = RunConfig(name="bench-tune")
    c.data.folder = str(folder)
    c.data.image_size = size
    c.data.validation_split = 0.2
    c.backbone.name = "MobileNetV2"
    c.backbone.width = 0.35
    c.backbone.weights = "none"
    c.freeze.policy = "none"
    c.training.epochs = epochs
    c.training.batch_size = 16
    return c


def paired_study(base: RunConfig, trials: int, runs: Path) -> dict[str, float]:
    """A study whose every trial is paired with a plain run() of the same config, before it or after it
    by turns, so both see the same load: the study's time is its wall time less the plain runs'."""
    from workbench.core.runs.studies import StudyFinished
    from workbench.core.train.run import run
    from workbench.core.tune.study import run_study

    plain, inside, turn = [0.0], [0.0], [0]

    def timed(target: list[float], config: RunConfig, *args, **kwargs):
        started = time.perf_counter()
        try:
            return run(config, *args, **kwargs)
        finally:
            target[0] += time.perf_counter() - started

    def paired(config: RunConfig, emit, stop, **kwargs):
        twin = config.replace(name=f"plain {config.name}")
        plain_kwargs = {k: v for k, v in kwargs.items() if k != "callbacks"}
        turn[0] += 1
        if turn[0] % 2:
            timed(plain, twin, lambda e: None, threading.Event(), **plain_kwargs)
        outcome = timed(inside, config, emit, stop, **kwargs)
        if not turn[0] % 2:
            timed(plain, twin, lambda e: None, threading.Event(), **plain_kwargs)
        return outcome

    tune = TuneConfig(base, dict(SEARCH), trials=trials, pruner="none", seed=0, study_name="bench")
    started = time.perf_counter()
    finished = run_study(tune, lambda e: None, threading.Event(), runs, train=paired)
    wall = time.perf_counter() - started
    assert isinstance(finished, StudyFinished) and finished.counts["complete"] == trials, finished
    return {"study": wall - plain[0], "plain": plain[0], "inside": inside[0]}


def run(trials: int = 6, epochs: int = 3, size: int = 48) -> dict:
    from workbench.core.train.run import run as train

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        base = bench_config(make_images(root / "data", classes=3, per_class=40, size=size), epochs, size)
        train(base, lambda e: None, threading.Event(), runs_dir=root / "warm-up")  # first tracing, caches
        t = paired_study(base, trials, root / "runs")
    ratio = t["plain"] / t["study"]
    per_trial = (t["study"] - t["inside"]) / trials
    return {
        "name": "Tuning: a study's trials vs the same configs trained one after another",
        "setup": f"MobileNetV2 ×0.35 from random weights, {size} px, every layer training, 96 training + 24 "
                 f"validation images, batch 16, {epochs} epochs a run; a study of {trials} trials (TPE, seed 0, "
                 "no pruner, SQLite storage with heartbeats, the study folder written after each trial) in one "
                 "process, each trial paired with a plain `core.train.run.run` of the same config, before or "
                 "after it by turns, so that both see the same load on this shared machine.",
        "rows": [
            ("study", f"{t['study']:.1f} s", f"{trials} trials, from opening the study to its last files"),
            ("plain runs", f"{t['plain']:.1f} s", f"the same {trials} configs with run()"),
            ("plain / study", f"{ratio:.3f}", "target >= 0.97"),
            ("in run() / study", f"{t['inside'] / t['study']:.4f}", "the study's time spent training its trials"),
            ("cost per trial", f"{per_trial:.2f} s", "study time outside run(): opening the study, storage, "
                                                     "study folder, importances, events"),
        ],
        "ratio": ratio,
        "inside_ratio": t["inside"] / t["study"],
    }


if __name__ == "__main__":  # pragma: no cover
    print(run())
