"""Fast paths for a run: mixed precision, XLA, and noticing a starved input pipeline.

Keras imports happen inside functions: importing this module stays instant.
"""

from __future__ import annotations

import contextlib
import gc
import statistics
import time
from collections.abc import Callable, Iterator, Sequence

from workbench.core.config.run import JIT_CHOICES, PRECISIONS  # noqa: E402,F401 - one list of names

INPUT_WAIT_LIMIT = 0.30  # warn when the model waits for images this share of its step time
STARVED_LIMIT = 0.5  # warn when the next batch was not ready at more than this share of the steps
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
            f"wait {wait_ms:.0f} ms): reading and decoding the images is the bottleneck. {_INPUT_ADVICE}")


_INPUT_ADVICE = ("Turn on 'Keep images in memory' (cache), use smaller images, "
                 "or keep the dataset on a faster disk.")


def input_starved_warning(starved: int, judged: int, limit: float = STARVED_LIMIT, min_steps: int = 4) -> str:
    """A warning when the next batch was not decoded yet at more than `limit` of the steps; else ""."""
    if judged < min_steps or starved <= limit * judged:
        return ""
    return (f"The next batch of images was not ready at {starved} of {judged} training steps: reading and "
            f"decoding the images is the bottleneck, not the model. {_INPUT_ADVICE}")


def make_input_wait_monitor(emit: Callable, message_type: type, clock: Callable[[], float] = time.perf_counter,
                            reads=None, batch_size: int = 0, images_per_epoch: int = 0):
    """A Keras callback that notices when training waits for its images, and warns once per run.

    Keras 3 (TensorFlow backend) pulls the next batch inside the compiled train function,
    so a tf.data stall looks like a longer step. `reads` (dataset.ReadCounter) counts the
    images the training pipeline has decoded: a step that begins while fewer than a batch
    are decoded beyond what the model took is waiting for input. The gaps between steps
    catch host-side stalls (slow callbacks). Both are judged per epoch; an epoch in which
    the pipeline decoded nothing (images cached in memory, features cached) is not judged.
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
            self.starved = self.judged = 0
            self._base = reads.count if reads is not None else 0

        def on_train_batch_begin(self, batch, logs=None):
            now = clock()
            if self._end is not None:
                self.waits.append(now - self._end)
            self._begin = now
            if reads is not None and batch >= 2:  # the first steps trace the model while the pipeline fills
                taken = batch * batch_size
                need = min(batch_size, images_per_epoch - taken)
                if need > 0:
                    self.judged += 1
                    self.starved += reads.count - self._base - taken < need

        def on_train_batch_end(self, batch, logs=None):
            now = clock()
            if self._begin is not None:
                self.steps.append(now - self._begin)
            self._end = now

        def on_epoch_end(self, epoch, logs=None):
            if self.warned:
                return
            text = input_wait_warning(self.steps[1:], self.waits)  # the first step traces the model
            if not text and reads is not None and reads.count > self._base:
                text = input_starved_warning(self.starved, self.judged)
            if text:
                self.warned = True
                emit(message_type("warning", text))

    return InputWaitMonitor()


@contextlib.contextmanager
def run_environment(training, emit: Callable, message_type: type, strategy_kind: str | None = None,
                    on_stuck: Callable[[str], Callable[[], None]] | None = None) -> Iterator:
    """Everything a run does happens inside: the precision policy and the distribution strategy's scope.

    The model is built and compiled (and fit) inside `strategy.scope()`, as tf.distribute
    requires. `training.batch_size` stays the global batch, split across the replicas.
    """
    import keras

    from workbench.core.engine import devices, distributed

    with contextlib.ExitStack() as stack:
        policy = stack.enter_context(precision_policy(training.mixed_precision))  # restores the caller's after
        # A fresh Keras state for each run; first, since it resets the dtype policy and TensorFlow's
        # default graph, where a strategy scope keeps its stack. Its gc.collect() frees the previous
        # run here, at a quiet moment, unless the process collects on one thread of its own choosing
        # (the desktop app, on the GUI thread: ui/garbage.py) and has turned automatic collection off.
        keras.backend.clear_session(free_memory=gc.isenabled())
        keras.mixed_precision.set_global_policy(policy)
        keras.utils.set_random_seed(training.seed)
        # A cluster's workers wait for each other here, bounded: `on_stuck(text)` records the failure first.
        with distributed.start_watchdog(on_stuck or (lambda text: (lambda: None))):
            strategy = devices.make_strategy(strategy_kind)
        if distributed.is_multi_worker(strategy):
            distributed.check_empty_batches()
            if not distributed.install_keras_fixes():
                emit(message_type("warning", "This Keras version is newer than the one Workbench's multi-worker "
                                             "fixes were made for: training may fail (docs/cluster.md)"))
            kind, index, chief = devices.worker_role()
            emit(message_type("info", f"This process is {kind} {index} of the cluster"
                                      + (" (the chief: its run folder is the one to keep)" if chief else "")))
        replicas = int(getattr(strategy, "num_replicas_in_sync", 1))
        if replicas > 1:
            per = training.batch_size / replicas
            emit(message_type("info", f"Training on {replicas} replicas with {type(strategy).__name__}: "
                                      f"each batch of {training.batch_size} is split, {per:g} images per replica"))
        if policy != "float32":
            emit(message_type("info", f"Mixed precision: {policy} (weights and the output layer stay float32)"))
        stack.enter_context(strategy.scope())
        yield strategy
