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
from pathlib import Path
from typing import Any

from workbench.core.base.events import (
    Event,
    GanEvaluated,
    GanSamples,
    GanStarted,
    GanStep,
    Message,
    RunFailed,
    RunFinished,
)
from workbench.core.config.gan import GanConfig, validate_gan
from workbench.core.gan.images import find_images, make_image_stream
from workbench.core.gan.networks import (
    GENERATOR_FILE,
    Gan,
    diversity,
    fixed_noise,
    sample_grid,
    save_png,
)
from workbench.core.runs.store import gan_runs_root

Emit = Callable[[Event], None]


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


def total_steps(config: GanConfig, images: int) -> int:
    t = config.training
    if t.epochs > 0:
        return t.epochs * max(1, math.ceil(images / t.batch_size))
    return t.steps


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
    from workbench.core.runs.store import RunStore

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
        from workbench.core.base.files import atomic_write_text

        self.path = path
        atomic_write_text(path, ",".join(METRICS_COLUMNS) + "\n")
        self.rows: list[str] = []
        self.last_flush = time.monotonic()

    def add(self, values: Sequence[float]) -> None:
        self.rows.append(",".join(repr(float(v)) if i else str(int(v)) for i, v in enumerate(values)))
        if time.monotonic() - self.last_flush > METRICS_FLUSH_S:
            self.flush()

    def flush(self) -> None:
        from workbench.core.base.files import atomic_append_line

        if self.rows:
            atomic_append_line(self.path, "\n".join(self.rows))
            self.rows = []
        self.last_flush = time.monotonic()


def _train(config: GanConfig, folder, emit: Emit, stop_event: threading.Event,
           pause_event: threading.Event | None) -> RunFinished | RunFailed:
    from workbench.core.base.files import atomic_replace_with
    from workbench.core.data.pipeline import SkipCounter

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
    from workbench.core.gan import fid

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
