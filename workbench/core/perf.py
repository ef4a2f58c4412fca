"""Fast paths for a run: mixed precision, XLA, and noticing a starved input pipeline.

Keras imports happen inside functions: importing this module stays instant.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Iterator, Sequence

from workbench.core.config import JIT_CHOICES, PRECISIONS  # noqa: E402,F401 - one list of names

INPUT_WAIT_LIMIT = 0.30  # warn when the model waits for images this share of its step time
POLICY_NAMES = {"off": "float32", "float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}


@contextlib.contextmanager
def precision_policy(precision: str) -> Iterator[str]:
    """Keras's global dtype policy for `precision` inside the block, restored after it.

    Layers built inside compute in float16/bfloat16 and keep float32 weights; the
    classifier's "predictions" layer is built with dtype float32 (model.py), so the
    softmax and the loss stay in float32. Keras 3 wraps the optimizer in a
    LossScaleOptimizer by itself for mixed_float16.
    """
    import keras

    previous = keras.mixed_precision.global_policy().name
    wanted = POLICY_NAMES[precision]
    keras.mixed_precision.set_global_policy(wanted)
    try:
        yield wanted
    finally:
        keras.mixed_precision.set_global_policy(previous)


def jit_compile_argument(choice: str) -> bool | str:
    """The `jit_compile` value for model.compile: "auto" lets Keras decide (XLA on GPU when every layer supports it)."""
    return {"on": True, "off": False}.get(choice, "auto")


def input_wait_share(step_seconds: Sequence[float], wait_seconds: Sequence[float]) -> float:
    """The share of training time spent waiting for the next batch (0 when nothing was measured).

    step_seconds: time inside each training step; wait_seconds: time between one step's
    end and the next one's begin. The first wait of an epoch (iterator start) is left out by the caller.
    """
    total = sum(step_seconds) + sum(wait_seconds)
    return sum(wait_seconds) / total if total > 0 else 0.0


def input_wait_warning(step_seconds: Sequence[float], wait_seconds: Sequence[float],
                       limit: float = INPUT_WAIT_LIMIT, min_steps: int = 5) -> str:
    """A warning for the log when the model waited on images more than `limit` of the time; else ""."""
    if len(step_seconds) < min_steps:
        return ""
    share = input_wait_share(step_seconds, wait_seconds)
    if share <= limit:
        return ""
    step_ms = 1000 * statistics.median(step_seconds)
    wait_ms = 1000 * statistics.median(wait_seconds) if wait_seconds else 0.0
    return (f"Training waited for images {share:.0%} of the time (median step {step_ms:.0f} ms, "
            f"wait {wait_ms:.0f} ms): reading and decoding the images is the bottleneck. "
            "Turn on 'Keep images in memory' (cache), use smaller images, or keep the dataset on a faster disk.")


def make_input_wait_monitor(emit: Callable, message_type: type, clock: Callable[[], float] = time.perf_counter):
    """A Keras callback that times steps and the gaps between them, and warns once per run.

    Keras 3 (TensorFlow backend) pulls the next batch inside the compiled train function,
    so a tf.data pipeline's wait shows up as longer steps; the gaps catch host-side stalls
    (Python input, slow callbacks). The share is taken per epoch.
    """
    import keras

    class InputWaitMonitor(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.steps: list[float] = []
            self.waits: list[float] = []
            self._begin = self._end = None
            self.warned = False

        def on_epoch_begin(self, epoch, logs=None):
            self.steps, self.waits, self._end = [], [], None

        def on_train_batch_begin(self, batch, logs=None):
            now = clock()
            if self._end is not None:
                self.waits.append(now - self._end)
            self._begin = now

        def on_train_batch_end(self, batch, logs=None):
            now = clock()
            if self._begin is not None:
                self.steps.append(now - self._begin)
            self._end = now

        def on_epoch_end(self, epoch, logs=None):
            if self.warned:
                return
            text = input_wait_warning(self.steps[1:], self.waits)  # the first step traces the model
            if text:
                self.warned = True
                emit(message_type("warning", text))

    return InputWaitMonitor()


@contextlib.contextmanager
def run_environment(training, emit: Callable, message_type: type, strategy_kind: str | None = None) -> Iterator:
    """Everything a run does happens inside: the precision policy and the distribution strategy's scope.

    The model is built and compiled (and fit) inside `strategy.scope()`, as tf.distribute
    requires. `training.batch_size` stays the global batch, split across the replicas.
    """
    import keras

    from workbench.core import devices

    with contextlib.ExitStack() as stack:
        policy = stack.enter_context(precision_policy(training.mixed_precision))  # restores the caller's after
        # A fresh Keras state for each run; first, since it resets the dtype policy and TensorFlow's
        # default graph, where a strategy scope keeps its stack.
        keras.backend.clear_session()
        keras.mixed_precision.set_global_policy(policy)
        keras.utils.set_random_seed(training.seed)
        strategy = devices.make_strategy(strategy_kind)
        replicas = int(getattr(strategy, "num_replicas_in_sync", 1))
        if replicas > 1:
            per = training.batch_size / replicas
            emit(message_type("info", f"Training on {replicas} replicas with {type(strategy).__name__}: "
                                      f"each batch of {training.batch_size} is split, {per:g} images per replica"))
        if policy != "float32":
            emit(message_type("info", f"Mixed precision: {policy} (weights and the output layer stay float32)"))
        stack.enter_context(strategy.scope())
        yield strategy
