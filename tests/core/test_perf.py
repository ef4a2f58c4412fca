"""Fast paths (mixed precision, XLA switch), the input-wait warning, devices and strategy choice."""

import json
import threading

import keras
import pytest
from core_helpers import tiny_config

from workbench.core.base.events import Message, RunFailed
from workbench.core.config.run import RunConfig
from workbench.core.config.validate import validate
from workbench.core.engine import devices, perf
from workbench.core.train import run as training

# ---- config ------------------------------------------------------------------------------

def test_new_fields_round_trip_and_validate():
    config = RunConfig().replace(**{"training.mixed_precision": "bfloat16", "training.jit_compile": "on"})
    assert RunConfig.from_json(config.to_json()) == config
    bad = RunConfig().replace(**{"training.mixed_precision": "half", "training.jit_compile": "yes"})
    fields = {p.field for p in validate(bad, check_paths=False)}
    assert {"training.mixed_precision", "training.jit_compile"} <= fields
    assert RunConfig().training.mixed_precision == "off" and RunConfig().training.jit_compile == "auto"


# ---- mixed precision -----------------------------------------------------------------------

def test_precision_policy_is_set_inside_and_restored_after_even_on_error():
    before = keras.mixed_precision.global_policy().name
    with perf.precision_policy("float16") as name:
        assert name == keras.mixed_precision.global_policy().name == "mixed_float16"
    assert keras.mixed_precision.global_policy().name == before
    with pytest.raises(RuntimeError), perf.precision_policy("bfloat16"):
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
        raise RuntimeError("boom")
    assert keras.mixed_precision.global_policy().name == before


def test_under_mixed_precision_the_model_computes_in_16_bit_but_outputs_float32():
    from workbench.core.engine import model as model_lib

    config = tiny_config("unused", epochs=1)
    with perf.precision_policy("bfloat16"):
        built = model_lib.build_model(config, 3)
    dense = [layer for layer in built.layers if layer.name != "predictions" and layer.weights]
    assert any(layer.dtype_policy.compute_dtype == "bfloat16" for layer in dense)
    assert built.get_layer("predictions").dtype_policy.compute_dtype == "float32"
    assert built.output.dtype == "float32"
    assert all(w.dtype == "float32" for w in built.trainable_weights)


def test_a_run_uses_the_policy_and_jit_setting_and_restores_the_policy(image_tree, tmp_path, monkeypatch):
    """Stopped at compile (bfloat16 on a CPU is slow): the policy and XLA switch reach it, and the policy is restored."""
    seen = {}

    def spy(self, *args, **kwargs):
        seen["jit_compile"] = kwargs.get("jit_compile")
        seen["policy"] = keras.mixed_precision.global_policy().name
        seen["output"] = self.output.dtype
        raise RuntimeError("enough: compiled")

    monkeypatch.setattr(keras.Model, "compile", spy)
    config = tiny_config(image_tree, epochs=1, **{"training.mixed_precision": "bfloat16", "training.jit_compile": "off"})
    events = []
    result = training.run(config, events.append, threading.Event(), runs_dir=tmp_path)
    assert isinstance(result, RunFailed) and "enough: compiled" in result.error, result
    assert seen == {"jit_compile": False, "policy": "mixed_bfloat16", "output": "float32"}
    assert keras.mixed_precision.global_policy().name == "float32"
    assert any(isinstance(e, Message) and "Mixed precision" in e.text for e in events)


def test_jit_choices_map_to_model_compile_arguments():
    assert perf.jit_compile_argument("on") is True
    assert perf.jit_compile_argument("off") is False
    assert perf.jit_compile_argument("auto") == "auto"


# ---- input wait ---------------------------------------------------------------------------

def test_input_wait_warning_fires_only_past_the_limit():
    steps = [0.10] * 20
    assert perf.input_wait_share(steps, [0.0] * 19) == 0.0
    assert perf.input_wait_warning(steps, [0.02] * 19) == ""  # ~16 %
    text = perf.input_wait_warning(steps, [0.08] * 19)  # ~43 %
    assert "waited for images" in text and "memory" in text
    assert perf.input_wait_warning([0.1] * 3, [1.0] * 3) == ""  # too few steps to judge
    assert perf.input_wait_share([], []) == 0.0


def test_input_wait_monitor_warns_once_from_batch_timings():
    ticks = iter(x / 10 for x in range(1000))
    emitted = []
    monitor = perf.make_input_wait_monitor(emitted.append, Message, clock=lambda: next(ticks))
    for _epoch in range(2):
        monitor.on_epoch_begin(_epoch)
        for b in range(10):
            monitor.on_train_batch_begin(b)
            monitor.on_train_batch_end(b)
            for _ in range(3):  # the next batch arrives three ticks later: 75 % waiting
                next(ticks)
        monitor.on_epoch_end(_epoch)
    assert len(emitted) == 1 and emitted[0].level == "warning"


def test_input_starved_warning_fires_only_when_most_steps_found_no_batch_ready():
    assert perf.input_starved_warning(2, 10) == ""
    assert "not ready at 8 of 10" in perf.input_starved_warning(8, 10)
    assert perf.input_starved_warning(3, 3) == ""  # too few steps to judge


def test_a_pipeline_slower_than_the_model_is_reported_from_inside_tf_data(tmp_path):
    """Large PNGs (slow to decode) for a tiny model in a real fit: the batch is pulled inside
    the compiled step, so only the decoded-image count can show that steps waited for images."""
    import shutil

    import numpy as np
    from PIL import Image

    from workbench.core.data import pipeline

    picture = np.zeros((1200, 1200, 3), np.uint8)
    picture[::7] = 200
    picture[:, ::5, 1] = 90
    Image.fromarray(picture).save(tmp_path / "big.png")
    items = []
    for i in range(24):
        shutil.copy(tmp_path / "big.png", tmp_path / f"{i}.png")
        items.append((str(tmp_path / f"{i}.png"), i % 2))

    def fit(reads, ds):
        model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.GlobalAveragePooling2D(),
                                  keras.layers.Dense(2, activation="softmax")])
        model.compile(optimizer="adam", loss="categorical_crossentropy")
        emitted = []
        monitor = perf.make_input_wait_monitor(emitted.append, Message, reads=reads, batch_size=4,
                                               images_per_epoch=len(items))
        model.fit(ds, epochs=2, callbacks=[monitor], verbose=0)
        return [m.text for m in emitted]

    reads = pipeline.ReadCounter()
    slow = pipeline.make_dataset(items, 2, 16, 4, training=True, read_counter=reads)
    warned = fit(reads, slow)
    assert len(warned) == 1 and "not ready" in warned[0] and "memory" in warned[0]
    assert reads.count == 2 * len(items)

    reads = pipeline.ReadCounter()
    cached = pipeline.make_dataset(items, 2, 16, 4, training=True, cache=True, read_counter=reads)
    list(cached)  # decoded once: from now on the pipeline reads nothing from disk
    assert fit(reads, cached) == []  # epochs without decoding are not judged


# ---- devices and strategies ------------------------------------------------------------------

def _tf_config(workers: int) -> str:
    return json.dumps({"cluster": {"worker": [f"host{i}:2222" for i in range(workers)]},
                       "task": {"type": "worker", "index": 0}})


@pytest.mark.parametrize(("gpus", "env", "kind"), [
    (0, {}, devices.DEFAULT),
    (1, {}, devices.DEFAULT),
    (2, {}, devices.MIRRORED),
    (8, {"TF_CONFIG": ""}, devices.MIRRORED),
    (0, {"TF_CONFIG": _tf_config(2)}, devices.MULTI_WORKER),
    (4, {"TF_CONFIG": _tf_config(3)}, devices.MULTI_WORKER),
    (2, {"TF_CONFIG": _tf_config(1)}, devices.MIRRORED),  # a one-worker cluster is just this machine
    (0, {"TF_CONFIG": "not json"}, devices.DEFAULT),
])
def test_choose_strategy(gpus, env, kind):
    assert devices.choose_strategy(gpus, env) == kind


def test_describe_devices():
    assert devices.describe_devices([]) == "CPU only"
    h100 = devices.GpuInfo("NVIDIA H100 80GB HBM3", 81559)
    assert devices.describe_devices([h100]) == "GPU: NVIDIA H100 80GB HBM3 80 GB"
    assert devices.describe_devices([h100, h100]) == "2 GPUs: NVIDIA H100 80GB HBM3 80 GB"
    assert devices.describe_devices([devices.GpuInfo("GPU:0", 0)]) == "GPU: GPU:0"


def test_list_gpus_on_this_machine_names_every_gpu_tensorflow_sees():
    import tensorflow as tf

    gpus = devices.list_gpus()
    seen = tf.config.list_physical_devices("GPU")
    assert len(gpus) == len(seen)  # on a CPU-only machine: none, and the status bar says so
    assert all(isinstance(g, devices.GpuInfo) and g.name.strip() and g.memory_mb >= 0 for g in gpus)
    assert (devices.describe_devices(gpus) == "CPU only") == (not seen)


def test_list_gpus_reads_each_devices_name_and_memory(monkeypatch):
    """The mapping from TensorFlow's device list to GpuInfo, on any machine: two GPUs as TensorFlow
    reports them (one with details, one whose details fail) and the memory limits device_lib gives."""
    import tensorflow as tf
    from tensorflow.python.client import device_lib

    physical = [tf.config.PhysicalDevice(f"/physical_device:GPU:{i}", "GPU") for i in range(2)]

    def details(device):
        if device.name.endswith(":1"):
            raise RuntimeError("no details for this one")
        return {"device_name": "NVIDIA H200"}

    class Local:
        def __init__(self, kind, limit):
            self.device_type, self.memory_limit = kind, limit

    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: physical if kind == "GPU" else [])
    monkeypatch.setattr(tf.config.experimental, "get_device_details", details)
    monkeypatch.setattr(device_lib, "list_local_devices",
                        lambda: [Local("CPU", 0), Local("GPU", 140 * 2**30), Local("GPU", 2**30)])
    gpus = devices.list_gpus()
    assert gpus == [devices.GpuInfo("NVIDIA H200", 140 * 1024), devices.GpuInfo("/physical_device:GPU:1", 1024)]
    assert devices.describe_devices(gpus[:1]) == "GPU: NVIDIA H200 140 GB"


def test_default_strategy_scope_is_a_no_op():
    strategy = devices.make_strategy(devices.DEFAULT)
    assert strategy.num_replicas_in_sync == 1


@pytest.mark.slow  # ~10-40 s: a real one-epoch run
def test_a_run_trains_inside_a_mirrored_strategy(image_tree, tmp_path, monkeypatch):
    """The multi-GPU path on a CPU: MirroredStrategy with one replica builds, compiles and fits in its scope."""
    import tensorflow as tf

    monkeypatch.setattr(devices, "choose_strategy", lambda gpu_count, environ=None: devices.MIRRORED)
    seen = {}
    real_compile = keras.Model.compile

    def spy(self, *args, **kwargs):
        seen["strategy"] = type(tf.distribute.get_strategy()).__name__
        return real_compile(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "compile", spy)
    result = training.run(tiny_config(image_tree, epochs=1), lambda e: None, threading.Event(), runs_dir=tmp_path)
    assert not isinstance(result, RunFailed), result.details
    assert seen["strategy"] == "MirroredStrategy"
    assert not tf.distribute.has_strategy()  # the scope ends with the run


def test_tensorflow_preload_opens_its_libraries_then_imports_and_computes():
    """The window-side preload (core/tf_preload.py) must leave a TensorFlow that works."""
    import subprocess
    import sys

    code = (
        "from workbench.core.process import tf_preload\n"
        "names = tf_preload.load_shared_libraries()\n"
        "thread = tf_preload.preload(); thread.join()\n"
        "import sys; assert 'tensorflow' in sys.modules and 'keras' in sys.modules\n"
        "import tensorflow as tf\n"
        "print(sorted(names), int(tf.reduce_sum(tf.constant([1, 2, 3]))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("6")
    assert "libtensorflow_cc.so.2" in done.stdout and "libtensorflow_framework.so.2" in done.stdout
