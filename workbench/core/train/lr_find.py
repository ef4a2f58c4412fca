"""The learning-rate range test (Leslie Smith; fastai's lr_find): which rates does this model learn at?

A fresh model built from the config (never a run's, and nothing is written to disk) trains
for up to `steps` batches while the learning rate grows exponentially from `start_lr` to
`end_lr`; the loss is smoothed (an exponential moving average with bias correction, as fastai)
and the test stops once the smoothed loss passes `EXPLODE` times its lowest, or is not a number.

The suggestion is the rate where the smoothed loss falls fastest (the steepest descent of
loss against log10(rate), each slope fitted over a decade of rates, between the first tenth of
the steps and the lowest point): there the
model learns quickest while still well below the rates that blow up. When the curve is too
short or flat for a slope, it falls back to a tenth of the rate with the lowest loss
(`min/10`, the older fastai rule). Both rates are in the result.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench.core.base.events import BatchEnd, Event, Message, RunFailed
from workbench.core.config.run import RunConfig
from workbench.core.config.validate import validate

STEPS = 100
START_LR = 1e-7
END_LR = 10.0
SMOOTHING = 0.98  # weight of the previous average, as fastai
EXPLODE = 4.0  # stop when the smoothed loss is this many times its lowest
SKIP_START = 0.1  # the first tenth of the steps is noise from the fresh head: no suggestion there
SLOPE_WINDOW = 1.0  # decades of rate each slope is measured over

STEEPEST = "steepest descent of the smoothed loss"
MIN_OVER_10 = "a tenth of the rate with the lowest loss"


@dataclass
class LrFindResult:
    learning_rates: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)  # as measured, batch by batch
    smoothed: list[float] = field(default_factory=list)
    suggestion: float = 0.0  # 0: no suggestion (too few steps)
    rule: str = ""  # how the suggestion was chosen (STEEPEST or MIN_OVER_10)
    steepest: float = 0.0
    min_over_10: float = 0.0
    ended: str = ""  # "exploded", "all steps", "stopped"

    def write_csv(self, path: str | os.PathLike) -> None:
        """The curve (step, learning_rate, loss, smoothed_loss), for a plot elsewhere."""
        from workbench.core.base.files import atomic_write_text

        rows = [["step", "learning_rate", "loss", "smoothed_loss"]]
        rows += [[i + 1, f"{r:.6g}", f"{loss:.6g}", f"{s:.6g}"]
                 for i, (r, loss, s) in enumerate(zip(self.learning_rates, self.losses, self.smoothed, strict=True))]
        atomic_write_text(path, "".join(",".join(map(str, row)) + "\n" for row in rows))


def rates(start_lr: float, end_lr: float, steps: int) -> np.ndarray:
    """`steps` learning rates growing exponentially from start_lr to end_lr."""
    return start_lr * (end_lr / start_lr) ** (np.arange(steps) / max(steps - 1, 1))


def smooth(losses: list[float], beta: float = SMOOTHING) -> list[float]:
    """The exponential moving average of the losses, bias-corrected (the first values are not pulled to 0)."""
    average, out = 0.0, []
    for i, loss in enumerate(losses):
        average = beta * average + (1 - beta) * loss
        out.append(average / (1 - beta ** (i + 1)))
    return out


def suggest(learning_rates: list[float], smoothed: list[float]) -> tuple[float, str, float, float]:
    """(suggestion, rule, steepest, min/10) from the smoothed curve; zeros when it is too short."""
    n = len(smoothed)
    if n < 3:
        return 0.0, "", 0.0, 0.0
    values = np.asarray(smoothed, dtype=np.float64)
    lrs = np.asarray(learning_rates, dtype=np.float64)
    first = int(n * SKIP_START)
    lowest = first + int(np.nanargmin(values[first:]))
    min_over_10 = float(lrs[lowest] / 10)
    steepest = 0.0
    if lowest - first >= 3:
        # The slope at each point is a straight line's through the points within half a decade of
        # it: batch-to-batch noise on a flat stretch then no longer passes for a descent.
        x, y = np.log10(lrs[first:lowest + 1]), values[first:lowest + 1]
        slopes = np.full(len(x), np.inf)
        for i, centre in enumerate(x):
            near = np.abs(x - centre) <= SLOPE_WINDOW / 2
            if near.sum() >= 3:
                slopes[i] = np.polyfit(x[near], y[near], 1)[0]
        best = int(np.argmin(slopes))
        if slopes[best] < 0:
            steepest = float(lrs[first + best])
    if steepest > 0:
        return steepest, STEEPEST, steepest, min_over_10
    return min_over_10, MIN_OVER_10, steepest, min_over_10


def find_lr(
    config: RunConfig,
    emit: Callable[[Event], None],
    stop_event: threading.Event | None = None,
    *,
    steps: int = STEPS,
    start_lr: float = START_LR,
    end_lr: float = END_LR,
    runs_dir: Any = None,  # noqa: ARG001 - the task runner passes it to every task; nothing is written
) -> LrFindResult | RunFailed:
    """Run the range test on a fresh model built from `config`; a RunFailed when it cannot run.

    Emits a BatchEnd per step (logs: loss, smoothed, learning_rate) so a plot can follow.
    """
    stop_event = stop_event or threading.Event()
    problems = validate(config)
    if not 0 < start_lr < end_lr or steps < 3:
        problems = [*problems, f"the rates must grow (0 < {start_lr:g} < {end_lr:g}) over at least 3 steps"]
    if problems:
        return _failed(emit, "The configuration has problems", "\n".join(map(str, problems)), "invalid")
    try:
        return _find(config, emit, stop_event, steps, start_lr, end_lr)
    except Exception as exc:  # noqa: BLE001 - a failure is an event, as for runs
        import traceback

        return _failed(emit, f"The learning-rate test failed: {type(exc).__name__}: {exc}".splitlines()[0][:300],
                       "".join(traceback.format_exception(exc)))


def _failed(emit, error: str, details: str, kind: str = "error") -> RunFailed:
    event = RunFailed(error=error, details=details, kind=kind)
    emit(event)
    return event


def _find(config: RunConfig, emit, stop_event: threading.Event, steps: int, start_lr: float,
          end_lr: float) -> LrFindResult | RunFailed:
    from workbench.core.data import pipeline
    from workbench.core.engine import model as model_lib
    from workbench.core.engine import perf
    from workbench.core.engine.compile import class_weights, compile_classifier, make_optimizer

    t = config.training
    with perf.run_environment(t, emit, Message):
        data = pipeline.prepare_data(config.data, t.batch_size, t.seed)
        if data.problems:
            return _failed(emit, "The dataset cannot be used", "\n".join(map(str, data.problems)), "invalid")
        emit(Message("info", f"Learning-rate test: a fresh {config.backbone.name} on {data.train_count} training "
                             f"images, the rate growing from {start_lr:g} to {end_lr:g} over up to {steps} batches"))
        model = model_lib.build_model(config, len(data.class_names))
        model_lib.freeze_for(model, config, phase=1 if t.two_phase else 0)  # the rate the run starts with
        compile_classifier(model, config, make_optimizer(config, learning_rate=start_lr))
        weights = class_weights(config, data.class_names, data.train_counts)
        schedule = rates(start_lr, end_lr, steps)
        result = LrFindResult(ended="all steps")
        lowest = math.inf
        while len(result.losses) < steps and result.ended == "all steps":
            before = len(result.losses)
            for images, labels in data.train:
                step = len(result.losses)
                if step >= steps:
                    break
                if stop_event.is_set():
                    result.ended = "stopped"
                    break
                rate = float(schedule[step])
                model.optimizer.learning_rate = rate
                loss = float(model.train_on_batch(images, labels, class_weight=weights, return_dict=True)["loss"])
                if not math.isfinite(loss):
                    result.ended = "exploded"
                    break
                result.learning_rates.append(rate)
                result.losses.append(loss)
                result.smoothed = smooth(result.losses)
                smoothed = result.smoothed[-1]
                lowest = min(lowest, smoothed)
                emit(BatchEnd(epoch=0, batch=step, steps=steps,
                              logs={"loss": loss, "smoothed": smoothed, "learning_rate": rate}))
                if step > 0 and smoothed > EXPLODE * lowest:
                    result.ended = "exploded"
                    break
            if len(result.losses) == before and result.ended == "all steps":
                return _failed(emit, "No training image could be read", "The dataset's files could not be "
                                                                        "decoded: check the folder")
    result.suggestion, result.rule, result.steepest, result.min_over_10 = suggest(result.learning_rates,
                                                                                   result.smoothed)
    if result.suggestion:
        emit(Message("info", f"Suggested learning rate: {result.suggestion:.3g} ({result.rule})"))
    else:
        emit(Message("warning", "Too few steps for a suggestion: let the test run longer"))
    return result

