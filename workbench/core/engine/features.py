"""Feature caching: with the whole backbone frozen, run it once and train the head on its outputs.

A frozen backbone (freeze policy "all", or phase 1 of two-phase fine-tuning) gives
the same feature map for an image at every epoch, and with augmentation off it sees
the same images. So the backbone's output is computed once per split, stored in
``<cache>/<key>.npz`` and the head alone trains on it: epochs after the first cost
a small fraction of a frozen fit's (docs/measured.md: ~100x). The head model is built
from the full model's own head layers (shared, not copied), so what it learns is
in the full model, which is what the run saves.

The key hashes everything the features depend on: the images (paths, sizes,
modification times), the split settings, the backbone, its width and weights
(a weights file by path, size and modification time), the image size and the split.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from workbench.core.config import derived
from workbench.core.config.run import RunConfig

CACHE_ENV = "WORKBENCH_CACHE_DIR"
FORMAT = 1


def cache_dir() -> Path:
    root = os.environ.get(CACHE_ENV, "").strip()
    return Path(root) if root else Path.home() / ".cache" / "workbench" / "features"


def usable(config: RunConfig) -> bool:
    """Whether the frozen backbone's features can be cached: the same at every epoch (no augmentation),
    from weights that a file or ImageNet fixes (not random ones), and not switched off by
    WORKBENCH_FEATURE_CACHE=off."""

    if os.environ.get("WORKBENCH_FEATURE_CACHE", "").strip().lower() in ("0", "off", "no", "false"):
        return False
    kind = derived.effective_transfer(config.backbone)
    fixed = kind == "all" or (kind == "partial" and config.backbone.rest == "finetune")
    return fixed and not config.data.augment.enabled


def cache_key(config: RunConfig, data: Any, split: str) -> str:
    """A hash of everything the cached features of `split` depend on."""

    d, b = config.data, config.backbone
    files = []
    for report in (data.report, data.val_report):
        for path, label in getattr(report, "items", ()) if report is not None else ():
            try:
                st = os.stat(path)
                files.append([str(path), int(label), st.st_size, st.st_mtime_ns])
            except OSError:
                files.append([str(path), int(label), -1, -1])
    weights_id: list[Any] = [derived.effective_transfer(b), b.weights]
    if derived.effective_transfer(b) == "zero":
        weights_id.append(config.training.seed)  # random weights come from the seed
    elif b.weights == "file":
        try:
            st = os.stat(b.weights_file)
            weights_id += [str(Path(b.weights_file).resolve()), st.st_size, st.st_mtime_ns]
        except OSError:
            weights_id.append(b.weights_file)
    if derived.effective_transfer(b) == "partial":
        weights_id += [b.keep_blocks, b.rest, config.training.seed]
    described = {
        "format": FORMAT,
        "files": files,
        "split": split,
        "split_settings": [d.folder, d.validation_folder, d.validation_split, d.folds, d.fold, config.training.seed,
                           d.test_split, d.test_folder],
        "backbone": [b.name, b.width],
        "weights": weights_id,
        "image_size": d.image_size,
    }
    text = json.dumps(described, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def feature_extractor(model: Any) -> Any:
    """image -> the backbone's output (the feature map the head starts from)."""
    import keras

    layers = model.layers
    end = [layer.name for layer in layers].index("backbone") + 1
    inputs = keras.Input(tuple(model.inputs[0].shape[1:]), name="image")
    x = inputs
    for layer in layers[:end]:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        x = layer(x)
    return keras.Model(inputs, x, name="feature_extractor")


def head_model(model: Any) -> Any:
    """A model from the backbone's output to the predictions, made of the full model's own layers."""
    import keras

    layers = model.layers
    start = [layer.name for layer in layers].index("backbone") + 1
    inputs = keras.Input(tuple(model.get_layer("backbone").output.shape[1:]), name="features")
    # The classifier is one chain (model.py), so its layers after the backbone are the head, in order.
    x = inputs
    for layer in layers[start:]:
        x = layer(x)
    return keras.Model(inputs, x, name="head")


def compute(extractor: Any, dataset: Any) -> tuple[Any, Any]:
    """(features, labels) of one pass over `dataset`, in inference mode."""
    import numpy as np

    feats, labels = [], []
    for images, y in dataset:
        feats.append(np.asarray(extractor(images, training=False)))
        labels.append(np.asarray(y))
    return np.concatenate(feats), np.concatenate(labels)


def load_or_compute(model: Any, config: RunConfig, data: Any, emit: Any) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    """Training and validation features: from the cache when its key matches, else computed and stored."""
    import numpy as np

    from workbench.core.base.events import Message

    extractor = None
    result = []
    for split, dataset in (("train", data.train), ("val", data.val)):
        path = cache_dir() / f"{cache_key(config, data, split)}.npz"
        arrays = None
        if path.is_file():
            try:
                with np.load(path) as f:
                    arrays = (f["features"], f["labels"])
                emit(Message("info", f"Reusing cached backbone features for the {split} images ({path.name})"))
            except (OSError, KeyError, ValueError):
                arrays = None
        if arrays is None:
            extractor = extractor or feature_extractor(model)
            emit(Message("info", f"Computing the frozen backbone's features of the {split} images (once)",
                         kind="prepare"))
            started = time.perf_counter()
            arrays = compute(extractor, dataset)
            emit(Message("info", f"Computed backbone features of {len(arrays[0])} {split} images once "
                                 f"({time.perf_counter() - started:.1f} s); the head trains on them"))
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                # One name per process: workers of a cluster on one machine may store the same key at once.
                tmp = path.with_name(f".{path.stem}.{os.getpid()}.partial.npz")
                np.savez(tmp, features=arrays[0], labels=arrays[1])
                os.replace(tmp, path)
            except OSError as exc:  # a read-only home must not stop the run
                emit(Message("warning", f"Cannot store the feature cache in {path.parent}: {exc}"))
        result.append(arrays)
    return result[0], result[1]


def fit_head(model: Any, config: RunConfig, data: Any, emit: Any, saver: Any, *,
             epochs: int, initial_epoch: int, callbacks: list, **fit: Any) -> Any:
    """Train the head of `model` on cached features; the callbacks see the same epochs as a full fit.

    `saver` (the run's ModelSaver) is told to save `model`, the full classifier, not the head.
    """
    import tensorflow as tf

    from workbench.core.engine.compile import compile_classifier, make_optimizer

    t = config.training
    (x_train, y_train), (x_val, y_val) = load_or_compute(model, config, data, emit)
    head = head_model(model)
    # The full model's optimizer: the head's variables are the full model's trainable ones, so its
    # state (restored from a checkpoint on resume) carries on, and checkpoints of the full model hold it.
    compile_classifier(head, config, model.optimizer or make_optimizer(config), jit=False)
    train = (tf.data.Dataset.from_tensor_slices((x_train, y_train))
             .shuffle(len(x_train), seed=t.seed, reshuffle_each_iteration=True)
             .batch(t.batch_size).prefetch(2))
    val = tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(t.batch_size)
    fit.pop("validation_data", None)
    saver.full_model = model
    try:
        return head.fit(train, validation_data=val, epochs=epochs, initial_epoch=initial_epoch,
                        callbacks=callbacks, **fit)
    finally:
        saver.full_model = None
