"""The GPU check, `python -m benchmarks.run gpu`: what Workbench gets out of this machine's GPUs.

It reports the GPUs found; images/s of a plain `model.fit` against Workbench's `training.run`
(same model, same tf.data pipeline) in float32, mixed precision (float16) and XLA; plain `fit`
under MirroredStrategy over all GPUs against one GPU (where there are several); and whether the
input pipeline keeps up (images/s decoded from disk against the fastest trained images/s).
Without a GPU it says so and writes nothing (`run()` returns None; the command exits 0).

Bounded: it stops starting measurements after BUDGET_S and lists what it skipped, so that the
whole command (TensorFlow's start, the images, the runs) ends within about 8 minutes on one H200.
`python -m benchmarks.bench_gpu --cpu-trial` runs the same code on the CPU with a tiny model,
to check it works on a machine without a GPU (its figures mean nothing).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from benchmarks.bench_training import steady_epochs
from workbench.core.base.events import EpochEnd, Message, RunFailed
from workbench.core.config.run import RunConfig


@dataclass(frozen=True)
class Plan:
    backbone: str
    width: float
    image_size: int
    images: int  # written to disk, 10 % held out for validation
    classes: int
    batch: int  # per GPU: the global batch is batch x GPUs
    epochs: int  # the first two are not timed (tracing, the first checkpoint)
    budget_s: float  # no measurement starts after this many seconds


# ResNet50 (random weights: nothing is downloaded) at 160 px: tensor cores matter, and an epoch lasts
# seconds on an H200, so the per-epoch costs (checkpoint, validation) show but do not dominate.
GPU_PLAN = Plan("ResNet50", 1.0, 160, 4096, 4, 128, 5, budget_s=270)
CPU_TRIAL = Plan("MobileNetV2", 0.35, 32, 96, 3, 16, 3, budget_s=45)  # two modes fit: the rest shows as skipped
# (label, training.mixed_precision, training.jit_compile), most telling first: the budget may skip the last
MODES = [("float32", "off", "off"), ("mixed float16", "float16", "off"), ("float32 + XLA", "off", "on"),
         ("mixed float16 + XLA", "float16", "on")]


def write_images(root: Path, plan: Plan) -> Path:
    """JPEGs a little larger than the model's input (so each is decoded and resized), smooth with noise."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    side = plan.image_size + plan.image_size // 4
    for i in range(plan.images):
        folder = root / f"class{i % plan.classes}"
        folder.mkdir(parents=True, exist_ok=True)
        field = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
        smooth = np.asarray(Image.fromarray(field).resize((side, side), Image.Resampling.BICUBIC), np.int16)
        noisy = np.clip(smooth + rng.integers(-12, 12, smooth.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(folder / f"{i:05d}.jpg", quality=90)
    return root


def plan_config(plan: Plan, folder: Path, replicas: int, precision: str = "off", jit: str = "off",
                cache: bool = True) -> RunConfig:
    config = RunConfig(name="gpu-check")
    config.data.folder = str(folder)
    config.data.image_size = plan.image_size
    config.data.validation_split = 0.1
    config.data.cache = cache  # decoded once: the timed epochs measure the model, the decode rate is measured apart
    config.backbone.name = plan.backbone
    config.backbone.width = plan.width
    config.backbone.weights = "none"
    config.freeze.policy = "none"
    config.training.epochs = plan.epochs
    config.training.batch_size = plan.batch * replicas
    config.training.mixed_precision = precision
    config.training.jit_compile = jit
    return config


def plain_fit(config: RunConfig, strategy=None) -> tuple[list[float], int]:
    """Steady epoch seconds and training images of a plain model.fit, with the config's precision, XLA
    and pipeline, under `strategy` (Workbench's choice for this machine when None)."""
    import keras

    from workbench.core.data import pipeline
    from workbench.core.engine import devices, perf
    from workbench.core.engine import model as model_lib

    keras.backend.clear_session()
    keras.utils.set_random_seed(config.training.seed)
    strategy = devices.make_strategy() if strategy is None else strategy
    data = pipeline.prepare_data(config.data, config.training.batch_size, config.training.seed)
    times: list[float] = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter())

    with perf.precision_policy(config.training.mixed_precision), strategy.scope():
        model = model_lib.build_model(config, len(data.class_names))
        model.compile(optimizer=keras.optimizers.Adam(config.training.learning_rate),
                      loss="categorical_crossentropy", metrics=["accuracy"],
                      jit_compile=perf.jit_compile_argument(config.training.jit_compile))
        with warnings.catch_warnings():  # the pipeline's length is unknown (it drops unreadable files): not a problem
            warnings.filterwarnings("ignore", message=".*ran out of data.*")
            model.fit(data.train, validation_data=data.val, epochs=config.training.epochs, callbacks=[Timer()],
                      verbose=0, shuffle=False)  # the dataset shuffles itself, as in Workbench's run
    return steady_epochs(times), data.train_count


def workbench_run(config: RunConfig, runs_dir: Path) -> tuple[list[float], list[str]]:
    """Steady epoch seconds of `training.run`, and the warnings it logged (an input-starved run says so)."""
    from workbench.core.train import run as training

    times: list[float] = []
    warnings: list[str] = []

    def emit(event):
        if isinstance(event, EpochEnd):
            times.append(time.perf_counter())
        elif isinstance(event, Message) and event.level == "warning":
            warnings.append(event.text)

    result = training.run(config, emit, threading.Event(), runs_dir=runs_dir)
    if isinstance(result, RunFailed):
        raise RuntimeError(f"{result.error}\n{result.details}")
    return steady_epochs(times), warnings


def decode_rate(plan: Plan, folder: Path) -> float:
    """Images/s the training pipeline decodes and resizes from disk (no cache, no model), after a warm-up pass."""
    from workbench.core.data import pipeline

    config = plan_config(plan, folder, 1, cache=False)
    data = pipeline.prepare_data(config.data, config.training.batch_size, config.training.seed)
    for _ in data.train:  # warms the file cache and traces the pipeline
        pass
    started, count = time.perf_counter(), 0
    for images, _ in data.train:
        count += int(images.shape[0])
    return count / (time.perf_counter() - started)


def measure(plan: Plan, gpus: list) -> dict:
    """Every measurement the budget allows, as a benchmarks.run result."""
    import tensorflow as tf

    from workbench.core.engine import devices

    started = time.monotonic()
    replicas = max(1, len(gpus))
    rows = [("GPUs found", str(len(gpus)), devices.describe_devices(gpus))]
    skipped: list[str] = []

    def in_budget(what: str) -> bool:
        if time.monotonic() - started < plan.budget_s:
            return True
        skipped.append(what)
        return False

    def rate(images: int, seconds: list[float]) -> str:
        return f"{images / statistics.median(seconds):.0f}" if seconds else "-"

    trained: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_images(Path(tmp) / "data", plan)
        rows.append(("images written", str(plan.images), f"{time.monotonic() - started:.0f} s since the start"))
        decoded = decode_rate(plan, folder)
        for label, precision, jit in MODES:
            if not in_budget(label):
                continue
            config = plan_config(plan, folder, replicas, precision, jit)
            plain, count = plain_fit(config)
            ours, warnings = workbench_run(config, Path(tmp) / "runs")
            p, o = statistics.median(plain), statistics.median(ours)
            trained += [count / p, count / o]
            note = f"s/epoch {p:.2f} vs {o:.2f}; ratio {p / o:.2f} (target >= 0.95)"
            rows.append((f"{label}: img/s, plain fit / Workbench", f"{rate(count, plain)} / {rate(count, ours)}",
                         note + ("; Workbench warned: " + " | ".join(warnings) if warnings else "")))
        if len(gpus) > 1 and in_budget("MirroredStrategy vs one GPU"):
            config = plan_config(plan, folder, replicas)
            every, count = plain_fit(config, devices.make_strategy(devices.MIRRORED))
            one, _ = plain_fit(plan_config(plan, folder, 1), tf.distribute.OneDeviceStrategy("/gpu:0"))
            e, s = count / statistics.median(every), count / statistics.median(one)
            rows.append((f"MirroredStrategy over {len(gpus)} GPUs / one GPU, img/s (float32, plain fit)",
                         f"{e:.0f} / {s:.0f}", f"speed-up {e / s:.2f} of {len(gpus)} "
                         f"(per-GPU batch {plan.batch}: global {plan.batch * len(gpus)} vs {plan.batch})"))
    if trained:
        fastest = max(trained)
        rows.append(("input pipeline keeps up", "yes" if decoded >= fastest else "no",
                     f"decoded {decoded:.0f} img/s from disk vs the fastest training {fastest:.0f} img/s; "
                     "if no, keep images in memory (data.cache) or use smaller files"))
    if skipped:
        rows.append(("skipped (time budget)", str(len(skipped)), ", ".join(skipped)))
    rows.append(("total time", f"{time.monotonic() - started:.0f} s", f"budget {plan.budget_s:.0f} s for starting measurements"))
    return {
        "name": "GPU check: plain fit vs Workbench, precision, XLA, several GPUs, input pipeline",
        "setup": f"{plan.backbone} (width {plan.width}, {plan.image_size} px, random weights, every layer training), "
                 f"{plan.images} JPEGs of {plan.image_size + plan.image_size // 4} px in {plan.classes} classes, 10 % "
                 f"for validation, batch {plan.batch} per GPU, {plan.epochs} epochs of which the steady ones from the "
                 "third are timed (epoch end to epoch end, validation included), decoded images kept in memory "
                 "(data.cache) so the model is what is timed; the decode rate is the training pipeline alone, "
                 "from disk. Plain fit and Workbench alternate per mode. `python -m benchmarks.run gpu`.",
        "rows": rows,
    }


def run(plan: Plan = GPU_PLAN, need_gpu: bool = True) -> dict | None:
    """The GPU check's result; None, with a line saying so, on a machine without a GPU."""
    from workbench.core.engine import devices

    gpus = devices.list_gpus()
    if not gpus and need_gpu:
        print("No GPU found: TensorFlow sees none on this machine, so there is nothing to check "
              "(install `workbench[gpu]` and the NVIDIA driver on a machine with GPUs).", flush=True)
        return None
    return measure(plan, gpus)


if __name__ == "__main__":
    if "--cpu-trial" in sys.argv[1:]:
        print(run(CPU_TRIAL, need_gpu=False))
    else:
        print(run())
