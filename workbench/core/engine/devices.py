"""Which accelerators this machine has, and which tf.distribute strategy a run uses.

`choose_strategy` is a pure function of the GPU count and TF_CONFIG, so the choice
is tested without GPUs; `make_strategy` turns the choice into TensorFlow's own object.
TensorFlow is imported inside functions only.

Batch size under a strategy: `training.batch_size` is the *global* batch. With N
replicas each one computes batch_size / N images per step and the gradients are
averaged, so the learning rate keeps its meaning; raise the batch size with the
number of GPUs to keep each GPU busy.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT, MIRRORED, MULTI_WORKER = "default", "mirrored", "multi_worker"


@dataclass(frozen=True)
class GpuInfo:
    name: str  # e.g. "NVIDIA H100 80GB HBM3", or the device name when TF gives no details
    memory_mb: int  # 0 when unknown


def list_gpus() -> list[GpuInfo]:
    """The GPUs TensorFlow sees (imports TensorFlow: call it off the GUI thread)."""
    import tensorflow as tf

    physical = tf.config.list_physical_devices("GPU")
    if not physical:
        return []
    memory = _memory_limits_mb()
    found = []
    for index, device in enumerate(physical):
        try:
            details = tf.config.experimental.get_device_details(device) or {}
        except Exception:  # noqa: BLE001 - details are optional
            details = {}
        name = str(details.get("device_name") or device.name)
        found.append(GpuInfo(name=name, memory_mb=memory.get(index, 0)))
    return found


def _memory_limits_mb() -> dict[int, int]:
    """Memory TensorFlow can use on each GPU, in MB (get_memory_info gives only current/peak use)."""
    try:
        from tensorflow.python.client import device_lib

        limits = [d.memory_limit for d in device_lib.list_local_devices() if d.device_type == "GPU"]
    except Exception:  # noqa: BLE001 - a figure we can live without
        return {}
    return {i: int(b) // 2**20 for i, b in enumerate(limits)}


def describe_devices(gpus: list[GpuInfo]) -> str:
    """What the status bar shows: "GPU: NVIDIA H100 80 GB", "2 GPUs: ...", or "CPU only"."""
    if not gpus:
        return "CPU only"

    def one(g: GpuInfo) -> str:
        return f"{g.name} {round(g.memory_mb / 1024)} GB" if g.memory_mb else g.name

    if len(gpus) == 1:
        return f"GPU: {one(gpus[0])}"
    names = {one(g) for g in gpus}
    return f"{len(gpus)} GPUs: " + (names.pop() if len(names) == 1 else ", ".join(one(g) for g in gpus))


def choose_strategy(gpu_count: int, environ: Mapping[str, str] | None = None) -> str:
    """DEFAULT, MIRRORED or MULTI_WORKER for this process.

    TF_CONFIG with more than one worker (a cluster, run headless with `workbench train`
    on each machine) -> MULTI_WORKER; several local GPUs -> MIRRORED; else DEFAULT.
    """
    environ = os.environ if environ is None else environ
    if _cluster_workers(environ.get("TF_CONFIG", "")) > 1:
        return MULTI_WORKER
    if gpu_count > 1:
        return MIRRORED
    return DEFAULT


def _cluster_workers(tf_config: str) -> int:
    """How many workers (chief included) a TF_CONFIG names; 0 when unset or unreadable."""
    if not tf_config.strip():
        return 0
    try:
        cluster = json.loads(tf_config).get("cluster", {})
    except (ValueError, AttributeError):
        return 0
    if not isinstance(cluster, dict):
        return 0
    return sum(len(cluster.get(k) or []) for k in ("chief", "worker"))


# One distributing strategy per process and kind, reused by every run the process trains (a sweep's
# trials): a second MirroredStrategy in one process reuses collective instance keys, and its first
# step fails with "Shape mismatch in the collective instance" (docs/measured.md); a second
# MultiWorkerMirroredStrategy cannot be made at all.
_STRATEGIES: dict[str, Any] = {}


def make_strategy(kind: str | None = None):
    """TensorFlow's strategy object for `kind` (chosen from this machine when None)."""
    import tensorflow as tf

    if kind is None:
        kind = choose_strategy(len(tf.config.list_physical_devices("GPU")))
    if kind in (MULTI_WORKER, MIRRORED):
        if kind not in _STRATEGIES:
            _STRATEGIES[kind] = _new_strategy(kind)
        return _STRATEGIES[kind]
    return tf.distribute.get_strategy()  # the default: no distribution, scope() changes nothing


def _new_strategy(kind: str):
    import tensorflow as tf

    if kind == MULTI_WORKER:
        # Every collective gives up after the timeout (DeadlineExceededError) instead of waiting
        # for ever on a worker that died or hangs; TensorFlow's coordination service also ends
        # the collectives of a cluster whose peer stopped sending heartbeats.
        options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=collective_timeout())
        strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
        restore_sigterm_handler()
        return strategy
    return tf.distribute.MirroredStrategy()


def restore_sigterm_handler() -> bool:
    """Give SIGTERM back to the handler this Python process chose; False where it cannot (not the main thread).

    Making a MultiWorkerMirroredStrategy starts TensorFlow's coordination agent, whose preemption
    notifier installs a C-level SIGTERM handler that only sets a flag of its own: the process would
    then ignore SIGTERM (timeout, Slurm, Kubernetes). Python still reports its own handler
    (signal.getsignal), so setting that one again puts it back (docs/measured.md).
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return False
    chosen = signal.getsignal(signal.SIGTERM)
    if chosen is None:  # installed outside Python: nothing of ours to give back
        return False
    signal.signal(signal.SIGTERM, chosen)
    return True


COLLECTIVE_TIMEOUT_ENV = "WORKBENCH_COLLECTIVE_TIMEOUT"
COLLECTIVE_TIMEOUT = 600.0  # seconds a worker waits in one collective for the others (start-up skew included)


def collective_timeout(environ: Mapping[str, str] | None = None) -> float:
    """Seconds one collective may wait for the other workers: WORKBENCH_COLLECTIVE_TIMEOUT, else 600."""
    environ = os.environ if environ is None else environ
    try:
        value = float(environ.get(COLLECTIVE_TIMEOUT_ENV, "") or COLLECTIVE_TIMEOUT)
    except ValueError:
        return COLLECTIVE_TIMEOUT
    return value if value > 0 else COLLECTIVE_TIMEOUT


def worker_role(environ: Mapping[str, str] | None = None) -> tuple[str, int, bool]:
    """(task type, task index, is chief) from TF_CONFIG; ("", 0, True) outside a cluster.

    The chief is the task of type "chief", or worker 0 when the cluster names no chief
    (tf.distribute's own rule). Only the chief's run folder is kept.
    """
    environ = os.environ if environ is None else environ
    if _cluster_workers(environ.get("TF_CONFIG", "")) < 2:
        return "", 0, True
    config = json.loads(environ["TF_CONFIG"])
    task = config.get("task") or {}
    kind, index = str(task.get("type", "worker")), int(task.get("index", 0))
    has_chief = bool((config.get("cluster") or {}).get("chief"))
    return kind, index, kind == "chief" or (not has_chief and kind == "worker" and index == 0)


def before_tensorflow_import(environ: dict[str, str] | None = None) -> None:
    """Settings a process must have before TensorFlow loads, for the strategy it will use.

    A multi-worker process turns oneDNN off (unless told otherwise): its CPU Conv2D returns the
    input for an empty batch, which the strategy gives some replicas (distributed.py).
    """
    environ = os.environ if environ is None else environ
    if _cluster_workers(environ.get("TF_CONFIG", "")) > 1:
        environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
