"""Images on disk -> checked lists -> tf.data pipelines.

A dataset is a folder with one sub-folder per class. `scan_folder` opens every
candidate file with Pillow (content, not extension, decides) and reports what it
left out in plain words; `split_items` holds back a stratified validation part;
`make_dataset` streams the files through Pillow into batches. Pillow decodes
everything (CMYK JPEG, 16-bit PNG, palettes, EXIF rotation) the same way in the
scan, in training and in prediction, and releases the GIL while it works, so a
thread pool and tf.data's parallel map both use every core.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.config import AugmentConfig, DataConfig, Problem

# Pillow format names we train on; MPO is how Pillow names many camera JPEGs.
SUPPORTED_FORMATS = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG", "BMP": "BMP", "GIF": "GIF"}
# Files with these endings are opened and checked; anything else in a class folder is ignored.
IMAGE_EXTENSIONS = frozenset(
    ".jpg .jpeg .jpe .jfif .png .bmp .dib .gif .tif .tiff .webp .heic .heif .avif "
    ".ico .ppm .pgm .pbm .pnm .tga .jp2 .j2k .psd .svg".split()
)
ItemList = tuple[tuple[str, int], ...]

_TOO_FEW_CLASSES = "training needs at least two classes (sub-folders) with usable images"


# ---- decoding (shared by scan, training and prediction) ----------------------

def load_image(path: str | os.PathLike, image_size: int | None = None) -> np.ndarray:
    """Decode one file to an RGB uint8 array, resized to image_size x image_size when given.

    Raises on unreadable files. Prediction must use this too, so that a model
    sees images exactly as it did in training.
    """
    from PIL import Image, ImageOps

    with Image.open(path) as img:
        if image_size and img.format in ("JPEG", "MPO"):
            img.draft("RGB", (image_size, image_size))  # decode at 1/2..1/8 scale: faster, less memory
        img.load()
        if img.getexif().get(0x0112, 1) != 1:  # EXIF orientation: show it as a viewer would
            img = ImageOps.exif_transpose(img)
        img = _to_rgb(img)
        if image_size and img.size != (image_size, image_size):
            img = img.resize((image_size, image_size), Image.Resampling.BILINEAR, reducing_gap=3.0)
        return np.asarray(img, dtype=np.uint8)


def _to_rgb(img: Any) -> Any:
    """RGB whatever the mode; 16/32-bit greys are scaled, not clipped as Pillow's convert does."""
    from PIL import Image

    if img.mode == "RGB":
        return img
    if img.mode.startswith("I") or img.mode == "F":
        a = np.asarray(img, dtype=np.float64)
        if img.mode != "F" or a.max() > 255:
            a = a / 257.0  # 0..65535 -> 0..255
        grey = np.clip(np.rint(a), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")  # avoids Pillow's palette-transparency warning
    return img.convert("RGB")


# ---- scanning -----------------------------------------------------------------

@dataclass(frozen=True)
class ScanReport:
    """What a folder holds: usable images per class, and everything left out, in words."""

    root: str
    class_names: tuple[str, ...]
    items: ItemList  # (path, label index into class_names), in a stable order
    counts: dict[str, int]
    problems: tuple[Problem, ...] = ()
    blocking: tuple[Problem, ...] = ()  # the problems (also in `problems`) that make training impossible
    ignored_files: int = 0  # non-image files inside class folders

    @property
    def warnings(self) -> tuple[Problem, ...]:
        """Problems that only left something out; training can still go ahead."""
        return tuple(p for p in self.problems if p not in self.blocking)

    def summary(self) -> str:
        lines = [f"{self.root}: {len(self.items)} usable images in {len(self.class_names)} classes"]
        width = max((len(n) for n in self.class_names), default=0)
        lines += [f"  {name:<{width}}  {self.counts[name]}" for name in self.class_names]
        if self.blocking:
            lines.append(f"Cannot train ({len(self.blocking)}):")
            lines += [f"  - {p.message}" for p in self.blocking]
        if self.warnings:
            lines.append(f"Left out ({len(self.warnings)}):")
            lines += [f"  - {p.message}" for p in self.warnings]
        return "\n".join(lines)


def blocking_problems(report: ScanReport) -> tuple[Problem, ...]:
    """The problems that make training impossible (the rest are warnings)."""
    return report.blocking


# Above this many pixels a PNG is checked chunk by chunk (CRCs, through to its end) instead of
# decoded: decoding an 8000x8000 PNG takes ~183 MiB per scanning thread for an image that
# training then reads shrunk anyway.
VERIFY_ONLY_PIXELS = 16_000_000


def check_image(path: str | os.PathLike) -> str | None:
    """Why this file cannot be used, in words, or None when it decodes as a supported image."""
    from PIL import Image, UnidentifiedImageError

    try:
        if os.path.getsize(path) == 0:
            return "the file is empty (0 bytes)"
        with Image.open(path) as img:
            kind = SUPPORTED_FORMATS.get(img.format or "")
            if kind is None:
                return f"{img.format} images are not supported (use JPEG, PNG, BMP or GIF)"
            if kind == "JPEG":
                img.draft("RGB", (1, 1))  # smallest scale: still reads every byte, so truncation shows
            if img.format == "PNG" and img.width * img.height > VERIFY_ONLY_PIXELS:
                img.verify()  # every chunk's checksum, no pixels: a truncated file still shows
            else:
                img.load()  # a GIF loads its first frame
        return None
    except UnidentifiedImageError:
        return "not an image (its contents are not JPEG, PNG, BMP or GIF, whatever its name says)"
    except Image.DecompressionBombError:
        return "the image is too large to load safely"
    except PermissionError:
        return "cannot read the file (permission denied)"
    except FileNotFoundError:
        return "the file disappeared during the scan"
    except OSError as exc:
        if "truncated" in str(exc).lower():
            return "the file is incomplete (truncated); it may have been cut off while copying"
        return f"the file is damaged ({exc})"
    except Exception as exc:  # Pillow raises many kinds on broken data
        return f"the file is damaged ({type(exc).__name__}: {exc})"


def scan_folder(
    path: str | os.PathLike,
    *,
    field: str = "data.folder",
    progress: Callable[[int, int], None] | None = None,
) -> ScanReport:
    """Find the classes and usable images under a folder-per-class tree.

    Never raises for bad content: everything left out becomes a Problem. `progress(done, total)`
    is called from this thread while files are checked.
    """
    root = Path(path)
    problems: list[Problem] = []
    blocking: list[Problem] = []

    def block(message: str) -> None:
        problem = Problem(field, message)
        problems.append(problem)
        blocking.append(problem)

    if not root.is_dir():
        block(f"folder not found: {root}")
        return ScanReport(str(root), (), (), {}, tuple(problems), tuple(blocking))

    folders, stray_images = [], 0
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            folders.append(entry.name)
        elif is_image_name(entry.name):
            stray_images += 1

    candidates: list[tuple[str, str]] = []  # (class, path)
    ignored = 0
    for name in folders:
        for file in walk_files(root / name):
            if is_image_name(file):
                candidates.append((name, file))
            else:
                ignored += 1

    reasons = check_all([p for _, p in candidates], progress)

    usable: dict[str, list[str]] = {name: [] for name in folders}
    for (name, file), reason in zip(candidates, reasons, strict=True):
        if reason is None:
            usable[name].append(file)
        else:
            problems.append(Problem(field, f"{os.path.relpath(file, root)}: {reason}"))
    if ignored:
        problems.append(Problem(field, f"{ignored} file(s) that are not images (by their names) were ignored"))
    if stray_images:
        problems.append(Problem(
            field, f"{stray_images} image(s) directly in {root} belong to no class sub-folder and were left out"))
    for name in folders:
        if not usable[name]:
            problems.append(Problem(field, f"class '{name}' has no usable images and was left out"))

    class_names = tuple(n for n in folders if usable[n])
    if not folders:
        block(f"{root} has no sub-folders: put the images of each class in a sub-folder named after it")
    elif len(class_names) < 2:
        block(f"{_TOO_FEW_CLASSES}; found {len(class_names)}")
    items = tuple((p, label) for label, n in enumerate(class_names) for p in usable[n])
    counts = {n: len(usable[n]) for n in class_names}
    return ScanReport(str(root), class_names, items, counts, tuple(problems), tuple(blocking), ignored)


def is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def walk_files(folder: Path) -> list[str]:
    """Every non-hidden file below folder (recursive), sorted so scans repeat exactly."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [os.path.join(dirpath, f) for f in sorted(filenames) if not f.startswith(".")]
    return sorted(found)


def check_all(paths: list[str], progress: Callable[[int, int], None] | None) -> list[str | None]:
    """check_image over a thread pool (Pillow decodes without the GIL); results in input order."""
    if not paths:
        return []
    workers = min(32, 2 * (os.cpu_count() or 1), len(paths))
    results: list[str | None] = []
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="scan") as pool:
        for reason in pool.map(check_image, paths, chunksize=16):
            results.append(reason)
            if progress is not None and (len(results) % 64 == 0 or len(results) == len(paths)):
                progress(len(results), len(paths))
    return results


# ---- splitting ----------------------------------------------------------------

def split_items(
    items: Sequence[tuple[str, int]], validation_fraction: float, seed: int
) -> tuple[ItemList, ItemList]:
    """(train, validation), stratified: each class keeps about the fraction for validation.

    A class with two or more images always gives at least one to validation and keeps at
    least one for training. Same inputs and seed, same split; both parts keep input order.
    """
    rng = np.random.default_rng(seed)
    by_class: dict[int, list[int]] = {}
    for index, (_, label) in enumerate(items):
        by_class.setdefault(label, []).append(index)
    val_indices: set[int] = set()
    for label in sorted(by_class):
        indices = by_class[label]
        n = len(indices)
        if validation_fraction <= 0 or n < 2:
            continue
        n_val = min(max(round(n * validation_fraction), 1), n - 1)
        val_indices.update(rng.permutation(indices)[:n_val].tolist())
    train = tuple(tuple(it) for i, it in enumerate(items) if i not in val_indices)
    val = tuple(tuple(it) for i, it in enumerate(items) if i in val_indices)
    return train, val


def kfold_split(
    items: Sequence[tuple[str, int]], folds: int, fold: int, seed: int
) -> tuple[ItemList, ItemList]:
    """(train, validation) for fold `fold` (0-based) of a stratified `folds`-fold split.

    Each class is shuffled with `seed` and dealt round-robin into the folds, the deal
    carrying on from one class to the next, so folds differ in size by at most one image
    and a class with at least `folds` images is in every fold. The folds are disjoint and
    together hold every image; same inputs and seed, same folds; both parts keep input order.
    """
    if folds < 2 or not 0 <= fold < folds:
        raise ValueError(f"fold {fold} of {folds}: need folds >= 2 and 0 <= fold < folds")
    rng = np.random.default_rng(seed)
    by_class: dict[int, list[int]] = {}
    for index, (_, label) in enumerate(items):
        by_class.setdefault(label, []).append(index)
    val_indices: set[int] = set()
    dealt = 0
    for label in sorted(by_class):
        for position, index in enumerate(rng.permutation(by_class[label]).tolist()):
            if (dealt + position) % folds == fold:
                val_indices.add(index)
        dealt += len(by_class[label])
    train = tuple(tuple(it) for i, it in enumerate(items) if i not in val_indices)
    val = tuple(tuple(it) for i, it in enumerate(items) if i in val_indices)
    return train, val


def split_for(data: DataConfig, items: Sequence[tuple[str, int]], seed: int) -> tuple[ItemList, ItemList]:
    """The (train, validation) split a run's data config asks for: its k-fold part, or the fraction."""
    if data.folds >= 2:
        return kfold_split(items, data.folds, data.fold, seed)
    return split_items(items, data.validation_split, seed)


def _too_few_for_folds(report: ScanReport, folds: int) -> list[Problem]:
    return [
        Problem("data.folds", f"class '{name}' has {count} usable image(s): {folds}-fold "
                              f"cross-validation needs at least {folds} per class")
        for name, count in report.counts.items()
        if count < folds
    ]


# ---- tf.data ------------------------------------------------------------------

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

    def add(self) -> None:
        with self._lock:
            self._count += 1

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
):
    """A tf.data.Dataset of (float32 images [B,S,S,3] in 0..255, one-hot float32 labels [B,C]).

    Files stream from disk (memory does not grow with the number of images) unless `cache`
    keeps the decoded images (as uint8). A file that cannot be read is skipped and noted in
    `skip_counter`. Training data is reshuffled every epoch from `seed`; augmentation runs
    only when `training` is true and `augment.enabled`.
    """
    import tensorflow as tf

    shuffle = training if shuffle is None else shuffle
    autotune = tf.data.AUTOTUNE
    paths = [os.fsencode(p) for p, _ in items]  # bytes survive any file name
    labels = np.array([label for _, label in items], dtype=np.int32)
    ds = tf.data.Dataset.from_tensor_slices((tf.constant(paths, tf.string, shape=[len(paths)]), labels))
    n = max(len(items), 1)
    if shuffle and not cache:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)  # shuffles names, not pixels

    def read(path: bytes) -> tuple[np.ndarray, bool]:
        try:
            return load_image(os.fsdecode(path), image_size), True
        except Exception as exc:  # deleted, damaged, permissions: skip, never crash training
            if skip_counter is not None:
                skip_counter.add(os.fsdecode(path), str(exc) or type(exc).__name__)
            return np.zeros((image_size, image_size, 3), np.uint8), False
        finally:
            if read_counter is not None:
                read_counter.add()

    def decode(path, label):
        image, ok = tf.numpy_function(read, [path], [tf.uint8, tf.bool])
        image.set_shape([image_size, image_size, 3])
        ok.set_shape([])
        return image, label, ok

    def was_read(image, label, ok):
        return ok

    def drop_flag(image, label, ok):
        return image, label

    def to_float(images, labels):
        return tf.cast(images, tf.float32), tf.one_hot(labels, num_classes, dtype=tf.float32)

    ds = ds.map(decode, num_parallel_calls=autotune, deterministic=True)
    ds = ds.filter(was_read).map(drop_flag)
    if cache:
        ds = ds.cache()  # uint8: a quarter of the memory of float32
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


# ---- everything a run needs ---------------------------------------------------

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


def prepare_data(
    data: DataConfig, batch_size: int, seed: int, skip_counter: SkipCounter | None = None,
    read_counter: ReadCounter | None = None,
) -> PreparedData:
    """Scan, split and build both pipelines for a run; blocking problems come back as values."""
    report = scan_folder(data.folder)
    problems = list(report.blocking)
    warnings = list(report.warnings)
    val_report = None
    if data.validation_folder.strip():
        val_report = scan_folder(data.validation_folder, field="data.validation_folder")
        warnings += val_report.warnings
        train_items, val_items = report.items, ()
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
            problems += _too_few_for_folds(report, data.folds)
        if not problems:
            train_items, val_items = kfold_split(report.items, data.folds, data.fold, seed)
    else:
        train_items, val_items = split_items(report.items, data.validation_split, seed)
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
    )
    if problems:
        return prepared
    n = len(report.class_names)
    prepared.train = make_dataset(train_items, n, data.image_size, batch_size, training=True,
                                  augment=data.augment, seed=seed, cache=data.cache,
                                  skip_counter=skip_counter, read_counter=read_counter)
    prepared.val = make_dataset(val_items, n, data.image_size, batch_size, training=False,
                                seed=seed, cache=data.cache, skip_counter=skip_counter)
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
