"""Training on several worker processes (MultiWorkerMirroredStrategy) with Keras 3: what it needs.

`workbench train` on each machine of a TF_CONFIG cluster trains one model together
(docs/cluster.md). Under the pinned TensorFlow 2.21 / Keras 3.15 three things stood in the
way; each is measured in docs/measured.md ("Multi-worker training under Keras 3"):

- Keras's TensorFlow trainer reduces the first distributed batch with
  `strategy.reduce("MEAN", (x, y))` to build the model: under MultiWorkerMirroredStrategy
  that nested value reaches the collective code, which cannot convert it ("Attempt to convert
  a value (PerReplica:...)", keras-team/keras#20585). It only needs the batch's shapes: one
  replica's part gives them.
- It reduces each step's scalar logs with `strategy.reduce("MEAN", v, axis=0)`, which fails
  on a scalar ("Invalid reduction dimension 0 for input with 0 dimensions"). A scalar is
  reduced with axis=None.
- At a dataset's end the strategy gives some replicas an empty batch, and oneDNN's CPU
  Conv2D returns its *input* for an empty batch (shape [0, 32, 32, 3] instead of
  [0, 16, 16, 16]): the next layer fails. Worker processes therefore start TensorFlow with
  TF_ENABLE_ONEDNN_OPTS=0 (`devices.before_tensorflow_import`); `check_empty_batches` refuses
  a run, in words, where that did not happen.

`install_keras_fixes` patches the two Keras functions for multi-worker strategies only; every
other strategy goes through Keras's own code unchanged. The workers must run the same
collective operations in the same order, so anything a worker decides alone (stopping, when
to checkpoint) is agreed first (`any_worker`) or made the same on all (ModelSaver.every_epoch).
TensorFlow is imported inside functions only.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

_installed = False


def is_multi_worker(strategy: Any) -> bool:
    """True for a MultiWorkerMirroredStrategy that spans more than one worker."""
    extended = getattr(strategy, "extended", None)
    return type(strategy).__name__ in ("CollectiveAllReduceStrategy", "MultiWorkerMirroredStrategy") and int(
        getattr(extended, "_num_workers", 1)) > 1


def install_keras_fixes() -> bool:
    """Make Keras 3's fit/evaluate work under MultiWorkerMirroredStrategy (once per process).

    False when this Keras has not the functions patched (a newer one): then nothing changes.
    """
    global _installed
    if _installed:
        return True
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer

    original_reduce = getattr(trainer, "reduce_per_replica", None)
    original_build = getattr(trainer.TensorFlowTrainer, "_maybe_symbolic_build", None)
    if original_reduce is None or original_build is None:
        return False

    def reduce_per_replica(values, strategy, reduction="auto"):
        if not (is_multi_worker(strategy) and reduction in ("auto", "mean")):
            return original_reduce(values, strategy, reduction)

        def one(value):
            if isinstance(value, tf.distribute.DistributedValues):
                rank = strategy.experimental_local_results(value)[0].shape.rank
            else:
                rank = getattr(getattr(value, "shape", None), "rank", 0)
            return strategy.reduce("MEAN", value, axis=0 if rank else None)

        return tf.nest.map_structure(one, values)

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = getattr(self, "_distribute_strategy", None)
        if strategy is None or iterator is None or not is_multi_worker(strategy):
            return original_build(self, iterator=iterator, data_batch=data_batch)
        for _, _, batches in iterator:
            data_batch = tf.nest.map_structure(
                lambda v: strategy.experimental_local_results(v)[0]
                if isinstance(v, tf.distribute.DistributedValues) else v, next(batches))
            break
        return original_build(self, iterator=None, data_batch=data_batch)

    trainer.reduce_per_replica = reduce_per_replica
    trainer.TensorFlowTrainer._maybe_symbolic_build = maybe_symbolic_build
    _installed = True
    return True


class EmptyBatchBug(RuntimeError):
    """This process's TensorFlow computes convolutions of empty batches wrongly (oneDNN on CPU)."""


def check_empty_batches() -> None:
    """Raise EmptyBatchBug, in words, when a Conv2D of an empty batch gives a wrong shape."""
    import tensorflow as tf

    with tf.device("/cpu:0"):
        out = tf.nn.conv2d(tf.zeros((0, 8, 8, 3)), tf.zeros((3, 3, 3, 4)), 2, "SAME")
    if tuple(out.shape) != (0, 4, 4, 4):
        raise EmptyBatchBug(
            "Multi-worker training cannot run in this process: TensorFlow's oneDNN convolutions give "
            "empty batches (which the strategy hands to some workers at the end of the data) a wrong "
            "shape. Start the worker with TF_ENABLE_ONEDNN_OPTS=0 in its environment "
            "(`workbench train` sets it itself when TF_CONFIG names a cluster).")


def any_worker(strategy: Any, flag: bool) -> bool:
    """Whether `flag` is set on any worker: one small collective, so every worker must call it in step."""
    import tensorflow as tf

    total = strategy.reduce("SUM", tf.constant(1.0 if flag else 0.0), axis=None)
    return float(total) > 0


START_TIMEOUT_ENV = "WORKBENCH_CLUSTER_START_TIMEOUT"
START_TIMEOUT = 600.0  # seconds a worker waits for the others to start


def start_timeout() -> float:
    try:
        value = float(os.environ.get(START_TIMEOUT_ENV, "") or START_TIMEOUT)
    except ValueError:
        return START_TIMEOUT
    return value if value > 0 else START_TIMEOUT


@contextlib.contextmanager
def start_watchdog(record_outcome: Callable[[str], Callable[[], None]], seconds: float | None = None,
                   ) -> Iterator[None]:
    """Bound the wait for the other workers while the strategy starts; past it, end this process.

    TensorFlow's cluster start-up has no time limit on the task that leads the coordination
    service (measured: worker 0 alone waited for ever), and it waits in C++ holding the GIL, so
    no Python thread or signal handler runs until it returns (docs/measured.md). So the outcome
    is written first: `record_outcome(text)` records the failure (the run's summary) and returns
    a function that takes it back; faulthandler's C-level timer ends the process with status 1
    when the wait outlasts `seconds`; a start that succeeds in time takes the record back.
    Outside a cluster this does nothing.
    """
    import faulthandler

    from workbench.core.engine.devices import worker_role

    if not worker_role()[0]:
        yield
        return
    seconds = start_timeout() if seconds is None else seconds
    text = (f"The other workers of the cluster did not start within {seconds:g} s "
            f"({START_TIMEOUT_ENV}): check TF_CONFIG, the ports and that every worker was started")
    take_back = record_outcome(text)
    print(f"Waiting up to {seconds:g} s for the other workers of the cluster to start", file=sys.stderr,
          flush=True)
    with open(os.devnull, "w") as quiet:  # the C-level timer's traceback would only be noise here
        faulthandler.dump_traceback_later(seconds, exit=True, file=quiet)
        try:
            yield
        finally:
            faulthandler.cancel_dump_traceback_later()
    take_back()
