"""Checked lists of images -> tf.data pipelines for a run (training and validation).

`prepare_data` scans the dataset (data/scan.py), splits it (data/splits.py) and builds both
pipelines; `make_dataset` streams the files through the same reader as prediction
(data/decode.py: graph_decoder; tf.io inside the graph for plain JPEG, PNG, GIF and BMP, Pillow
for the files the scan marked) into batches, skipping files that became unreadable after the scan.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.base.problems import Problem
from workbench.core.config.run import AugmentConfig, DataConfig
from workbench.core.data.decode import file_routes, graph_decoder, route_choices
from workbench.core.data.scan import ScanReport, scan_folder
from workbench.core.data.splits import class_counts, hold_out_test, kfold_split, split_items


def too_few_for_folds(report: ScanReport, folds: int) -> list[Problem]:
    return [
        Problem("data.folds", f"class '{name}' has {count} usable image(s): {folds}-fold "
                              f"cross-validation needs at least {folds} per class")
        for name, count in report.counts.items()
        if count < folds
    ]



class SkipCounter:
    """Files that could not be read during training (deleted or damaged after the scan).

    tf.data calls `add` from its worker threads; read `count` / `paths` from anywhere.
    Each file counts once however many epochs skip it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reasons: dict[str, str] = {}

    def add(self, path: str, reason: str) -> None:
        with self._lock:
            self._reasons.setdefault(path, reason)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self._reasons)

    @property
    def paths(self) -> list[str]:
        with self._lock:
            return list(self._reasons)

    @property
    def reasons(self) -> dict[str, str]:
        with self._lock:
            return dict(self._reasons)


class ReadCounter:
    """How many images the training pipeline has decoded so far (tf.data's threads count).

    Compared with the images the model has taken, it tells whether the next batch was
    ready when a step began: the only view into a tf.data stall, since Keras pulls the
    batch inside the compiled step.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    def add(self, count: int = 1) -> None:
        with self._lock:
            self._count += int(count)

    @property
    def count(self) -> int:
        with self._lock:
            return self._count


def make_dataset(
    items: Sequence[tuple[str, int]],
    num_classes: int,
    image_size: int,
    batch_size: int,
    *,
    training: bool,
    augment: AugmentConfig | None = None,
    seed: int = 0,
    cache: bool = False,
    shuffle: bool | None = None,
    skip_counter: SkipCounter | None = None,
    read_counter: ReadCounter | None = None,
    pillow_paths: Collection[str] | None = None,
):
    """A tf.data.Dataset of (float32 images [B,S,S,3] in 0..255, one-hot float32 labels [B,C]).

    Files stream from disk (memory does not grow with the number of images) unless `cache`
    keeps the decoded images (as uint8). A file that cannot be read is skipped and noted in
    `skip_counter`. Training data is reshuffled every epoch from `seed`; augmentation runs
    only when `training` is true and `augment.enabled`. `pillow_paths` (the scan's
    `ScanReport.pillow_paths`) are decoded with Pillow, the rest natively; when not given,
    each file's header decides (decode.needs_pillow, the same rule). Each native file's route
    (DCT scale, antialiasing) comes from its header too (decode.file_routes).
    """
    import tensorflow as tf

    shuffle = training if shuffle is None else shuffle
    autotune = tf.data.AUTOTUNE
    paths = [os.fsencode(p) for p, _ in items]  # bytes survive any file name
    labels = np.array([label for _, label in items], dtype=np.int32)
    routes, which = route_choices(file_routes([p for p, _ in items], image_size, pillow_paths))
    names = tf.constant(paths, tf.string, shape=[len(paths)])
    indices = np.arange(len(paths), dtype=np.int64)
    if isinstance(which, int):  # every file takes one route: built alone, no branching per image
        ds = tf.data.Dataset.from_tensor_slices((names, labels, indices))
    else:
        ds = tf.data.Dataset.from_tensor_slices(((names, labels, indices), which))
    n = max(len(items), 1)
    if shuffle and not cache:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)  # shuffles names, not pixels

    # Cached images stay uint8 (a quarter of the memory); streamed ones are float32 from the start.
    pixels = tf.uint8 if cache else tf.float32
    read = graph_decoder(image_size, on_error=None if skip_counter is None else skip_counter.add,
                         dtype=pixels.name, routes=routes)

    if isinstance(which, int):
        def decode(path, label, index):
            image, ok = read(path, which)
            return image, label, ok, index
    else:
        def decode(path_label_index, choice):
            image, ok = read(path_label_index[0], choice)
            return image, path_label_index[1], ok, path_label_index[2]

    def to_float(images, labels):
        return tf.cast(images, tf.float32), tf.one_hot(labels, num_classes, dtype=tf.float32)

    # A native file gone or damaged since the scan raises inside the graph: ignore_errors drops
    # it, and `accounted` tells which ones, once per pass, with no Python per image.
    ds = ds.map(decode, num_parallel_calls=autotune, deterministic=True).ignore_errors()
    # Streamed batches are finished inside the accounting step: a stage fewer per batch.
    ds = accounted(ds, [p for p, _ in items], image_size, batch_size, skip_counter, read_counter,
                   finish=None if cache else to_float)
    if cache:
        ds = ds.unbatch().cache()  # uint8: a quarter of the memory of float32
        if shuffle:
            ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size).map(to_float, num_parallel_calls=autotune, deterministic=True)
    if training and augment is not None and augment.enabled:
        augmenter = _augmenter(augment, seed)

        def augmented(images, labels):
            return augmenter(images), labels

        # One batch at a time: the layers draw from a stateful seed generator, and parallel
        # calls would consume it in a varying order, so a seeded run would not repeat.
        # Prefetching still overlaps augmentation with training.
        ds = ds.map(augmented)
    return ds.prefetch(autotune)


def accounted(ds, paths: Sequence[str], image_size: int, every: int,
              skip_counter: SkipCounter | None, read_counter: ReadCounter | None,
              finish: Callable | None = None):
    """(image, label, ok, index) -> batches of (images, labels) of the files read, noting what each pass skipped.

    `finish(images, labels)`, when given, maps each batch in the same step.

    Batches hold `every` elements less those skipped (a batch is never empty). Per batch,
    a sequential scan marks the indices that came through in a
    bitmap and hands it to Python (one call per batch, none per image) with the count read;
    an end marker appended to the stream closes the pass: every index missing from the bitmap
    is a file that failed to decode, noted with its reason in words (check_image).
    """
    import tensorflow as tf

    from workbench.core.data.decode import check_image

    n = len(paths)
    end = tf.data.Dataset.from_tensors((tf.zeros([image_size, image_size, 3], ds.element_spec[0].dtype),
                                        tf.constant(0, tf.int32),
                                        tf.constant(False), tf.constant(n, tf.int64)))

    def note(seen: np.ndarray, count: np.int64, at_end: bool) -> bool:
        if read_counter is not None and count:
            read_counter.add(int(count))
        if at_end and skip_counter is not None:
            for i in np.flatnonzero(~seen[:n]):
                skip_counter.add(paths[i], check_image(paths[i]) or "TensorFlow could not decode it")
        return True

    def step(seen, batch):
        images, labels, ok, index = batch
        seen = tf.tensor_scatter_nd_update(seen, index[:, None], tf.ones_like(index, tf.bool))
        at_end = tf.reduce_any(tf.equal(index, n))
        done = tf.numpy_function(note, [seen, tf.reduce_sum(tf.cast(index < n, tf.int64)), at_end], tf.bool)
        with tf.control_dependencies([done]):
            seen = tf.where(at_end, tf.zeros_like(seen), seen)
        # Masking copies the whole batch: only when one of its images failed (or at the end marker).
        kept = tf.cond(tf.reduce_all(ok), lambda: (images, labels),
                       lambda: (tf.boolean_mask(images, ok), tf.boolean_mask(labels, ok)))
        return seen, kept if finish is None else finish(*kept)

    def not_empty(images, labels):
        return tf.shape(images)[0] > 0

    # ignore_errors keeps tf.data from fusing the map with the batch, whose copying then ran on one
    # thread: 0.65 of a plain pipeline's images/s at 224 px (docs/measured.md); in parallel it keeps up.
    batches = ds.concatenate(end).batch(every, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return batches.scan(tf.zeros([n + 1], tf.bool), step).filter(not_empty)


def _augmenter(augment: AugmentConfig, seed: int) -> Callable:
    """Keras preprocessing layers run in the input pipeline, so the saved model stays plain."""
    import keras

    layers: list[Any] = []
    if augment.flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if augment.rotation > 0:
        layers.append(keras.layers.RandomRotation(augment.rotation, seed=seed + 1))
    if augment.zoom > 0:
        layers.append(keras.layers.RandomZoom(augment.zoom, seed=seed + 2))
    if augment.contrast > 0:
        layers.append(keras.layers.RandomContrast(augment.contrast, value_range=(0, 255), seed=seed + 3))

    def apply(images):
        for layer in layers:
            images = layer(images, training=True)
        return images

    return apply


@dataclass
class PreparedData:
    class_names: tuple[str, ...]
    train: Any  # tf.data.Dataset, None when `problems` is not empty
    val: Any
    train_count: int
    val_count: int
    steps_per_epoch: int
    problems: tuple[Problem, ...]  # blocking only: when not empty, do not train
    report: ScanReport
    val_report: ScanReport | None = None  # the validation folder's scan, when one is used
    warnings: tuple[Problem, ...] = ()  # files and classes left out, from both scans
    test_count: int = 0  # images held out of `folder` for testing (data.test_split); never trained on
    train_counts: tuple[int, ...] = ()  # training images per class, for class weights


# Scans reused while their folder is unchanged: a sweep's or a tuning study's trials run in one
# process and scan the same folder; the scan decodes every file, the signature only stats them.
_SCANS: dict[tuple[str, str], tuple[str, ScanReport]] = {}
_SCANS_LOCK = threading.Lock()
_SCANS_KEPT = 4


def folder_signature(folder: str | os.PathLike) -> str | None:
    """A hash of every path, size, modification and change time (permissions) under `folder`; None when
    it cannot be read."""
    import hashlib

    digest = hashlib.blake2b(digest_size=16)
    try:
        for dirpath, dirnames, filenames in os.walk(folder, onerror=_raise):
            dirnames.sort()
            for name in sorted(filenames) + dirnames:
                st = os.stat(os.path.join(dirpath, name))
                digest.update(f"{dirpath}/{name}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\n".encode("utf-8", "surrogateescape"))
    except OSError:
        return None
    return digest.hexdigest()


def _raise(error: OSError) -> None:
    raise error


def scan_once(folder: str | os.PathLike, field: str = "data.folder") -> ScanReport:
    """scan_folder, or its earlier report in this process when nothing under `folder` has changed since."""
    key = (os.path.abspath(folder), field)
    signature = folder_signature(folder) if Path(folder).is_dir() else None
    with _SCANS_LOCK:
        kept = _SCANS.get(key)
    if signature is not None and kept is not None and kept[0] == signature:
        return kept[1]
    report = scan_folder(folder, field=field)
    if signature is not None and signature == folder_signature(folder):  # unchanged while it was scanned
        with _SCANS_LOCK:
            _SCANS.pop(key, None)
            _SCANS[key] = (signature, report)
            while len(_SCANS) > _SCANS_KEPT:
                _SCANS.pop(next(iter(_SCANS)))
    return report


def forget_scans() -> None:
    """Drop the kept scans (a benchmark's first trial in a process)."""
    with _SCANS_LOCK:
        _SCANS.clear()


def prepare_data(
    data: DataConfig, batch_size: int, seed: int, skip_counter: SkipCounter | None = None,
    read_counter: ReadCounter | None = None,
) -> PreparedData:
    """Scan, split and build both pipelines for a run; blocking problems come back as values."""
    report = scan_once(data.folder)
    problems = list(report.blocking)
    warnings = list(report.warnings)
    val_report = None
    rest, test_items = hold_out_test(report.items, data, seed)  # the test share never reaches training
    if data.validation_folder.strip():
        val_report = scan_once(data.validation_folder, field="data.validation_folder")
        warnings += val_report.warnings
        train_items, val_items = rest, ()
        if not Path(data.validation_folder).is_dir():
            problems += val_report.blocking
        elif not problems:
            problems += _class_mismatch(report.class_names, val_report.class_names)
            if not problems:
                index = {name: i for i, name in enumerate(report.class_names)}
                val_items = tuple((p, index[val_report.class_names[label]]) for p, label in val_report.items)
    elif data.folds >= 2:
        train_items, val_items = (), ()
        if not problems:
            problems += too_few_for_folds(report, data.folds)
        if not problems:
            train_items, val_items = kfold_split(rest, data.folds, data.fold, seed)
    else:
        train_items, val_items = split_items(rest, data.validation_split, seed)
    if not problems and not val_items:
        field_name = "data.validation_folder" if val_report else "data.validation_split"
        problems.append(Problem(field_name, "no images are left for validation: add images to each class"))

    prepared = PreparedData(
        class_names=report.class_names,
        train=None,
        val=None,
        train_count=len(train_items),
        val_count=len(val_items),
        steps_per_epoch=max(1, math.ceil(len(train_items) / batch_size)),
        problems=tuple(problems),
        report=report,
        val_report=val_report,
        warnings=tuple(warnings),
        test_count=len(test_items),
        train_counts=tuple(class_counts(train_items, len(report.class_names))),
    )
    if problems:
        return prepared
    n = len(report.class_names)
    pillow_paths = report.pillow_paths | (val_report.pillow_paths if val_report else frozenset())
    prepared.train = make_dataset(train_items, n, data.image_size, batch_size, training=True,
                                  augment=data.augment, seed=seed, cache=data.cache,
                                  skip_counter=skip_counter, read_counter=read_counter,
                                  pillow_paths=pillow_paths)
    prepared.val = make_dataset(val_items, n, data.image_size, batch_size, training=False,
                                seed=seed, cache=data.cache, skip_counter=skip_counter,
                                pillow_paths=pillow_paths)
    return prepared


def _class_mismatch(train: Sequence[str], val: Sequence[str]) -> list[Problem]:
    missing, extra = sorted(set(train) - set(val)), sorted(set(val) - set(train))
    if not (missing or extra):
        return []
    parts = []
    if missing:
        parts.append(f"it has no usable images for {', '.join(missing)}")
    if extra:
        parts.append(f"it has classes the training folder lacks: {', '.join(extra)}")
    return [Problem("data.validation_folder",
                    "the validation folder's classes must match the training folder's: " + "; ".join(parts))]
