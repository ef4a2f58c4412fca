"""The GAN lab's engine: a DCGAN with dropout in the discriminator, trained step by step.

`run(config, emit, stop_event)` is the GAN's twin of `training.run`: the GUI worker and
`workbench gan` share it, it never raises for a failed run (the failure becomes a
RunFailed event and return value), and every run leaves a folder:

    <runs>/gan/<id>/config.json      first, so a crashed run can be run again
                    metrics.csv      one row per step: d_loss, g_loss, d_real, d_fake
                    events.jsonl     everything but the steps
                    samples/step-NNNNNN.png   the grid of samples from the fixed noise batch
                    generator.keras  at each checkpoint, at a stop and at the end
                    summary.json     how it ended (and FID, when computed)

Training is a custom step under tf.GradientTape, compiled with tf.function: both
networks see the same batch of real images and of generated ones, each with its own
Adam. A collapse guard stops a run whose discriminator wins outright (its loss near
zero for many steps) or whose samples all become alike (mode collapse), and says so.
TensorFlow is imported inside the functions, never when this module is imported.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import os
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.config import Problem
from workbench.core.events import (
    Event,
    GanEvaluated,
    GanSamples,
    GanStarted,
    GanStep,
    Message,
    RunFailed,
    RunFinished,
)
from workbench.core.gan_config import GanConfig, validate_gan

Emit = Callable[[Event], None]

GAN_RUNS_DIR = "gan"  # inside the runs folder
GENERATOR_FILE = "generator.keras"
SAMPLES_DIR = "samples"
METRICS_COLUMNS = ("step", "d_loss", "g_loss", "d_real", "d_fake", "seconds")
METRICS_FLUSH_S = 1.0

_DISCRIMINATOR_WON_HELP = (
    "The generator learns from the discriminator's mistakes; a discriminator that is always right "
    "gives it nothing to learn from. Try a higher discriminator dropout rate, one-sided label smoothing "
    "(e.g. 0.1), a lower discriminator learning rate, or a narrower discriminator."
)
_MODE_COLLAPSE_HELP = (
    "The generator found a few images that fool the discriminator and now makes only those, whatever "
    "the noise. Try a lower generator learning rate, dropout in the discriminator, or restart with "
    "another seed; the grids in the run folder's samples/ show when it happened."
)


def gan_runs_root(runs_dir: str | os.PathLike | None = None) -> Path:
    """Where GAN runs go: a gan/ folder inside the runs folder, apart from the classifiers' runs."""
    from workbench.core.runs import default_runs_dir

    return (Path(runs_dir) if runs_dir else default_runs_dir()) / GAN_RUNS_DIR


# ---- images ---------------------------------------------------------------------------

@dataclass(frozen=True)
class GanImages:
    paths: tuple[str, ...]
    problems: tuple[Problem, ...]  # blocking: no training
    warnings: tuple[Problem, ...]  # files left out


def find_images(folder: str, class_name: str = "") -> GanImages:
    """The usable images of a folder (all of them, in any sub-folder) or of one class sub-folder.

    Every candidate is opened (content decides, as in the classifier's scan); unusable ones
    are left out with a reason.
    """
    from workbench.core.dataset import check_all, is_image_name, walk_files

    field = "data.class_name" if class_name.strip() else "data.folder"
    root = Path(folder) / class_name if class_name.strip() else Path(folder)
    if not root.is_dir():
        return GanImages((), (Problem(field, f"folder not found: {root}"),), ())
    candidates = [p for p in walk_files(root) if is_image_name(os.path.basename(p))]
    reasons = check_all(candidates, None)
    usable = tuple(p for p, r in zip(candidates, reasons, strict=True) if r is None)
    bad = [(p, r) for p, r in zip(candidates, reasons, strict=True) if r is not None]
    warnings = []
    if bad:
        shown = "; ".join(f"{os.path.relpath(p, root)}: {r}" for p, r in bad[:5])
        warnings.append(Problem(field, f"left out {len(bad)} unusable file(s): {shown}" + (" ..." if len(bad) > 5 else "")))
    problems = []
    if len(usable) < 2:
        problems.append(Problem(field, f"{root} has {len(usable)} usable image(s): a GAN needs at least 2 "
                                       "(and learns well from a few thousand)"))
    return GanImages(usable, tuple(problems), tuple(warnings))


def make_image_stream(paths: Sequence[str], config: GanConfig, skip_counter=None):
    """An endless tf.data stream of real images in [-1, 1], shuffled each pass, with the classifier's decoding."""
    import tensorflow as tf

    from workbench.core.dataset import make_dataset

    t = config.training
    ds = make_dataset([(p, 0) for p in paths], 1, config.data.image_size, t.batch_size, training=True,
                      seed=t.seed, cache=config.data.cache, skip_counter=skip_counter)

    def scale(images, labels):
        return images / 127.5 - 1.0

    return ds.map(scale, num_parallel_calls=tf.data.AUTOTUNE).repeat().prefetch(tf.data.AUTOTUNE)


def total_steps(config: GanConfig, images: int) -> int:
    t = config.training
    if t.epochs > 0:
        return t.epochs * max(1, math.ceil(images / t.batch_size))
    return t.steps


# ---- the networks -----------------------------------------------------------------------

def _upsamplings(image_size: int) -> int:
    return int(round(math.log2(image_size / 4)))  # 4x4 -> 32x32: 3, -> 64x64: 4


def build_generator(config: GanConfig) -> Any:
    """noise (latent_size) -> image (size, size, 3) in [-1, 1]: dense to 4x4, then stride-2 transposed convolutions."""
    import keras

    m, size, seed = config.model, config.data.image_size, config.training.seed
    ups = _upsamplings(size)
    init = keras.initializers.RandomNormal(0.0, 0.02, seed=seed)
    channels = m.generator_width * 2 ** (ups - 1)
    inputs = keras.Input((m.latent_size,), name="noise")
    x = keras.layers.Dense(4 * 4 * channels, use_bias=False, kernel_initializer=init, name="project")(inputs)
    x = keras.layers.BatchNormalization(name="project_bn")(x)
    x = keras.layers.ReLU(name="project_relu")(x)
    x = keras.layers.Reshape((4, 4, channels), name="to_4x4")(x)
    for i in range(1, ups):
        channels //= 2
        x = keras.layers.Conv2DTranspose(channels, 4, strides=2, padding="same", use_bias=False,
                                         kernel_initializer=init, name=f"up_{i}")(x)
        x = keras.layers.BatchNormalization(name=f"up_{i}_bn")(x)
        x = keras.layers.ReLU(name=f"up_{i}_relu")(x)
    outputs = keras.layers.Conv2DTranspose(3, 4, strides=2, padding="same", activation="tanh",
                                           kernel_initializer=init, dtype="float32", name="image")(x)
    return keras.Model(inputs, outputs, name="generator")


def build_discriminator(config: GanConfig) -> Any:
    """image -> one logit (real vs generated): stride-2 convolutions with LeakyReLU, dropout where configured."""
    import keras

    m, d, size, seed = config.model, config.dropout, config.data.image_size, config.training.seed
    init = keras.initializers.RandomNormal(0.0, 0.02, seed=seed + 1)
    inputs = keras.Input((size, size, 3), name="image")
    x = inputs
    channels = m.discriminator_width
    for i in range(1, _upsamplings(size) + 1):
        x = keras.layers.Conv2D(channels, 4, strides=2, padding="same", kernel_initializer=init, name=f"conv_{i}")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"conv_{i}_lrelu")(x)
        if d.rate > 0 and "after_conv" in d.placement:
            x = keras.layers.Dropout(d.rate, seed=seed + 10 + i, name=f"dropout_conv_{i}")(x)
        channels *= 2
    x = keras.layers.Flatten(name="flatten")(x)
    if d.rate > 0 and "before_output" in d.placement:
        x = keras.layers.Dropout(d.rate, seed=seed + 9, name="dropout_output")(x)
    outputs = keras.layers.Dense(1, kernel_initializer=init, dtype="float32", name="logit")(x)
    return keras.Model(inputs, outputs, name="discriminator")


class Gan:
    """Both networks, their optimizers, and the compiled training step."""

    def __init__(self, config: GanConfig):
        import keras
        import tensorflow as tf

        t = config.training
        self.config = config
        self.generator = build_generator(config)
        self.discriminator = build_discriminator(config)
        self.g_optimizer = keras.optimizers.Adam(t.generator_learning_rate, beta_1=t.generator_beta_1)
        self.d_optimizer = keras.optimizers.Adam(t.discriminator_learning_rate, beta_1=t.discriminator_beta_1)
        self.g_optimizer.build(self.generator.trainable_variables)
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.noise = tf.random.Generator.from_seed(t.seed + 2)
        self._real_target = 1.0 - float(t.label_smoothing)  # one-sided: only the real images' targets
        self.train_step = tf.function(self._train_step, reduce_retracing=True)

    def _train_step(self, real):
        import tensorflow as tf

        latent = self.config.model.latent_size
        n = tf.shape(real)[0]
        noise = self.noise.normal([n, latent])
        bce = tf.nn.sigmoid_cross_entropy_with_logits
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = self.generator(noise, training=True)
            real_logits = self.discriminator(real, training=True)  # dropout active
            fake_logits = self.discriminator(fake, training=True)
            d_loss = (tf.reduce_mean(bce(tf.fill(tf.shape(real_logits), self._real_target), real_logits))
                      + tf.reduce_mean(bce(tf.zeros_like(fake_logits), fake_logits)))
            g_loss = tf.reduce_mean(bce(tf.ones_like(fake_logits), fake_logits))
        g_vars = self.generator.trainable_variables
        d_vars = self.discriminator.trainable_variables
        self.g_optimizer.apply_gradients(zip(g_tape.gradient(g_loss, g_vars), g_vars, strict=True))
        self.d_optimizer.apply_gradients(zip(d_tape.gradient(d_loss, d_vars), d_vars, strict=True))
        return (d_loss, g_loss, tf.reduce_mean(tf.sigmoid(real_logits)), tf.reduce_mean(tf.sigmoid(fake_logits)))

    def step(self, real) -> tuple[float, float, float, float]:
        d_loss, g_loss, d_real, d_fake = self.train_step(real)
        return float(d_loss), float(g_loss), float(d_real), float(d_fake)

    def generate(self, noise: np.ndarray, batch: int = 128) -> np.ndarray:
        """Images in [-1, 1] (float32) for a noise batch, in inference mode."""
        out = [np.asarray(self.generator(noise[i:i + batch], training=False)) for i in range(0, len(noise), batch)]
        return np.concatenate(out) if out else np.zeros((0,), np.float32)


def fixed_noise(config: GanConfig) -> np.ndarray:
    t = config.training
    return np.random.default_rng(t.seed).standard_normal((t.samples, config.model.latent_size)).astype(np.float32)


def to_uint8(images: np.ndarray) -> np.ndarray:
    """[-1, 1] floats -> 0..255 uint8."""
    return np.clip(np.rint((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def sample_grid(images: np.ndarray, gap: int = 2) -> np.ndarray:
    """A near-square grid (uint8, H x W x 3) of images in [-1, 1], `gap` white pixels apart."""
    pixels = to_uint8(images)
    n, h, w = pixels.shape[:3]
    cols = max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / cols))
    grid = np.full((rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap, 3), 255, np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        grid[r * (h + gap): r * (h + gap) + h, c * (w + gap): c * (w + gap) + w] = pixels[i]
    return grid


def diversity(images: np.ndarray) -> float:
    """How different the samples are: the spread across samples of each pixel, averaged (0: all the same)."""
    images = np.asarray(images, np.float32)
    if len(images) < 2:
        return 0.0
    return float(images.std(axis=0).mean())


def save_png(grid: np.ndarray, path: Path) -> None:
    import io

    from PIL import Image

    from workbench.core.files import atomic_write_bytes

    buffer = io.BytesIO()
    Image.fromarray(grid).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())


# ---- the collapse guard ---------------------------------------------------------------------

class CollapseGuard:
    """Watches the losses each step and the samples' diversity at each refresh; `reason` says why it fired."""

    def __init__(self, config: GanConfig):
        self.config = config.guard
        self.reason = ""
        self.low_since = 0  # first step of the current run of discriminator losses below the floor
        self.low_steps = 0
        self.peak = 0.0
        self.peak_step = 0

    def on_step(self, step: int, d_loss: float, g_loss: float) -> None:
        for name, value in (("discriminator", d_loss), ("generator", g_loss)):
            if not math.isfinite(value):
                self.reason = f"Training diverged: the {name}'s loss became {value} at step {step}"
                return
        g = self.config
        if not g.enabled:
            return
        if d_loss < g.d_loss_floor:
            if self.low_steps == 0:
                self.low_since = step
            self.low_steps += 1
            if self.low_steps >= g.d_loss_steps:
                self.reason = (f"Training collapsed: the discriminator won. Its loss stayed below {g.d_loss_floor:g} "
                               f"for {self.low_steps} steps in a row (steps {self.low_since} to {step}), so the "
                               "generator no longer learns anything")
        else:
            self.low_steps = 0

    def on_samples(self, step: int, spread: float) -> None:
        g = self.config
        if step <= 0:
            return  # the untrained generator's spread says nothing
        if spread > self.peak:
            self.peak, self.peak_step = spread, step
            return
        if g.enabled and g.diversity_fraction > 0 and step >= g.min_steps and spread < g.diversity_fraction * self.peak:
            self.reason = (f"Training collapsed (mode collapse): the samples from the fixed noise became alike. "
                           f"Their spread fell to {spread:.3g} at step {step}, below {g.diversity_fraction:.0%} of "
                           f"its peak {self.peak:.3g} at step {self.peak_step}")

    @property
    def help(self) -> str:
        if "discriminator won" in self.reason:
            return _DISCRIMINATOR_WON_HELP
        if "mode collapse" in self.reason:
            return _MODE_COLLAPSE_HELP
        return "A loss became NaN or infinite: try lower learning rates."


# ---- running ---------------------------------------------------------------------------------

def run(
    config: GanConfig,
    emit: Emit,
    stop_event: threading.Event | None = None,
    *,
    pause_event: threading.Event | None = None,
    runs_dir: str | os.PathLike | None = None,
) -> RunFinished | RunFailed:
    """Train a GAN to its last step, a stop request, a collapse or a failure; report everything through `emit`.

    `runs_dir` is the folder the run's folder goes in (default: the runs folder's gan/).
    """
    from workbench.core.runs import RunStore

    stop_event = stop_event or threading.Event()
    problems = validate_gan(config)
    if problems:
        return _fail(emit, None, "The GAN configuration has problems", "\n".join(str(p) for p in problems), "invalid")
    try:
        folder = RunStore(runs_dir if runs_dir is not None else gan_runs_root()).create(
            config if config.name else config.replace(name="gan"))
    except OSError as exc:
        return _fail(emit, None, "Cannot create the run folder", str(exc))

    def record(event: Event) -> None:
        if not isinstance(event, GanStep):  # steps are in metrics.csv
            logged = dataclasses.replace(event, pixels=b"") if isinstance(event, GanSamples) else event
            try:
                folder.append_event(logged)
            except OSError:
                pass
        emit(event)

    try:
        import keras

        keras.backend.clear_session(free_memory=gc.isenabled())  # see perf.run_environment
        keras.utils.set_random_seed(config.training.seed)
        return _train(config, folder, record, stop_event, pause_event)
    except Exception as exc:  # noqa: BLE001 - every failure becomes an event
        name = type(exc).__name__
        if name == "ResourceExhaustedError" or isinstance(exc, MemoryError):
            error, kind = "Out of memory: try a smaller batch size, image size or network widths", "out_of_memory"
        else:
            error, kind = f"GAN training failed: {name}: {exc}".splitlines()[0][:300], "error"
        return _fail(record, folder, error, "".join(traceback.format_exception(exc)), kind)


def _fail(emit: Emit, folder, error: str, details: str, kind: str = "error",
          summary: dict[str, Any] | None = None) -> RunFailed:
    event = RunFailed(error=error, details=details, run_dir=str(folder.path) if folder else "", kind=kind)
    if folder is not None:
        try:
            folder.write_summary({**(summary or {}), "status": "diverged" if kind == "diverged" else "failed",
                                  "error": error, "details": details})
        except OSError:
            pass
    emit(event)
    return event


class _Metrics:
    """metrics.csv, one row per step, appended in small bursts (a write per step would cost an fsync each)."""

    def __init__(self, path: Path):
        from workbench.core.files import atomic_write_text

        self.path = path
        atomic_write_text(path, ",".join(METRICS_COLUMNS) + "\n")
        self.rows: list[str] = []
        self.last_flush = time.monotonic()

    def add(self, values: Sequence[float]) -> None:
        self.rows.append(",".join(repr(float(v)) if i else str(int(v)) for i, v in enumerate(values)))
        if time.monotonic() - self.last_flush > METRICS_FLUSH_S:
            self.flush()

    def flush(self) -> None:
        from workbench.core.files import atomic_append_line

        if self.rows:
            atomic_append_line(self.path, "\n".join(self.rows))
            self.rows = []
        self.last_flush = time.monotonic()


def _train(config: GanConfig, folder, emit: Emit, stop_event: threading.Event,
           pause_event: threading.Event | None) -> RunFinished | RunFailed:
    from workbench.core.dataset import SkipCounter
    from workbench.core.files import atomic_replace_with

    t = config.training
    where = config.data.folder + (f" (class '{config.data.class_name}')" if config.data.class_name.strip() else "")
    emit(Message("info", f"Looking for images in {where}"))
    images = find_images(config.data.folder, config.data.class_name)
    for problem in images.warnings:
        emit(Message("warning", str(problem)))
    if images.problems:
        return _fail(emit, folder, "The images cannot be used for training",
                     "\n".join(str(p) for p in images.problems), "invalid")
    steps = total_steps(config, len(images.paths))
    skipped = SkipCounter()
    stream = iter(make_image_stream(images.paths, config, skipped))  # one iterator for the whole run

    emit(Message("info", f"Building a DCGAN for {config.data.image_size}x{config.data.image_size} images "
                         f"(latent {config.model.latent_size}, widths {config.model.generator_width}/"
                         f"{config.model.discriminator_width}, discriminator dropout {_dropout_text(config)})"))
    gan = Gan(config)
    emit(GanStarted(run_id=folder.id, run_dir=str(folder.path), steps=steps, images=len(images.paths),
                    image_size=config.data.image_size, batch_size=t.batch_size,
                    generator_params=int(gan.generator.count_params()),
                    discriminator_params=int(gan.discriminator.count_params())))

    noise = fixed_noise(config)
    guard = CollapseGuard(config)
    metrics = _Metrics(folder.path / "metrics.csv")
    generator_path = folder.path / GENERATOR_FILE
    last: dict[str, float] = {}
    last_grid_step = -1

    def refresh_samples(step: int) -> None:
        nonlocal last_grid_step
        if step == last_grid_step:
            return
        last_grid_step = step
        generated = gan.generate(noise)
        spread = diversity(generated)
        grid = sample_grid(generated)
        path = folder.path / SAMPLES_DIR / f"step-{step:06d}.png"
        save_png(grid, path)
        emit(GanSamples(step=step, width=grid.shape[1], height=grid.shape[0], pixels=grid.tobytes(),
                        path=str(path), diversity=spread))
        guard.on_samples(step, spread)

    def save_generator() -> None:
        atomic_replace_with(generator_path, gan.generator.save)

    started = time.perf_counter()
    refresh_samples(0)
    done = 0
    stopped = False
    while done < steps:
        if pause_event is not None and pause_event.is_set() and not stop_event.is_set():
            metrics.flush()
            emit(Message("info", "Paused"))
            while pause_event.is_set() and not stop_event.is_set():
                time.sleep(0.05)
            if not stop_event.is_set():
                emit(Message("info", "Resumed"))
        if stop_event.is_set():
            stopped = True
            break
        d_loss, g_loss, d_real, d_fake = gan.step(next(stream))
        done += 1
        last = {"d_loss": d_loss, "g_loss": g_loss, "d_real": d_real, "d_fake": d_fake}
        metrics.add((done, d_loss, g_loss, d_real, d_fake, round(time.perf_counter() - started, 3)))
        emit(GanStep(done, d_loss, g_loss, d_real, d_fake))
        guard.on_step(done, d_loss, g_loss)
        if not guard.reason and (done % t.sample_every == 0 or done % t.checkpoint_every == 0 or done == steps):
            refresh_samples(done)
        if guard.reason:
            break
        if done % t.checkpoint_every == 0 and done < steps:
            save_generator()
    metrics.flush()
    seconds = time.perf_counter() - started

    summary: dict[str, Any] = {
        "kind": "gan",
        "steps_done": done,
        "steps": steps,
        "seconds": round(seconds, 2),
        "last": last,
        "images": len(images.paths),
        "skipped_files": skipped.count,
        "samples": sorted(p.name for p in (folder.path / SAMPLES_DIR).glob("step-*.png")),
    }
    if guard.reason:
        emit(Message("error", guard.reason))
        summary["generator"] = GENERATOR_FILE if generator_path.is_file() else ""
        return _fail(emit, folder, guard.reason, guard.help, "diverged", summary)

    refresh_samples(done)  # the grid of the generator as saved
    save_generator()
    summary["generator"] = GENERATOR_FILE
    best = dict(last)
    if config.evaluation.fid_at_end and not stopped and done > 0:
        evaluated = _evaluate(config, gan, images.paths, done, emit)
        if evaluated is not None:
            best["fid"] = evaluated.fid
            summary["fid"] = evaluated.fid
            summary["fid_network"] = evaluated.network
            summary["inception_score"] = evaluated.inception_score
    reason = "stopped" if stopped else ""
    summary["status"] = "stopped" if stopped else "finished"
    summary["reason"] = reason
    folder.write_summary(summary)
    finished = RunFinished(run_dir=str(folder.path), stopped=stopped, epochs_done=done, best=best, reason=reason)
    emit(finished)
    return finished


def _evaluate(config: GanConfig, gan: Gan, paths: Sequence[str], step: int, emit: Emit) -> GanEvaluated | None:
    from workbench.core import fid

    emit(Message("info", "Computing FID..."))
    try:
        network = fid.open_network(config.evaluation)
        result = fid.evaluate_generator(gan.generator, config, paths, network)
    except fid.FeaturesUnavailable as exc:
        emit(Message("warning", f"FID not computed: {exc}"))
        return None
    event = GanEvaluated(step=step, fid=result.fid, network=result.network,
                         inception_score=result.inception_score, inception_score_std=result.inception_score_std,
                         real_images=result.real_images, generated_images=result.generated_images)
    emit(event)
    return event


def _dropout_text(config: GanConfig) -> str:
    d = config.dropout
    if d.rate <= 0 or not d.placement:
        return "off"
    where = {"after_conv": "after each convolution block", "before_output": "before the output"}
    return f"{d.rate:g} " + " and ".join(where.get(p, p) for p in d.placement)


def load_generator(run_dir: str | os.PathLike) -> Any:
    """A GAN run's generator.keras, loaded in safe mode. Raises FileNotFoundError with a readable message."""
    import keras

    path = Path(run_dir) / GENERATOR_FILE
    if not path.is_file():
        raise FileNotFoundError(f"the GAN run {Path(run_dir).name} has no {GENERATOR_FILE} (it may have "
                                "failed before its first checkpoint)")
    return keras.saving.load_model(path, safe_mode=True, compile=False)
