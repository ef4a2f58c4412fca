"""Use a run's trained model on new images.

Images are decoded with `decode.decode_files` (the reader the training pipeline maps over its
files: tf.io for plain JPEG, PNG, GIF and BMP, Pillow for the rest), so a file gives the same
pixels as in training, and fed to the model as raw 0..255 float pixels (the model does its own
preprocessing).
An image that cannot be read becomes a Prediction with an `error`, so one bad
file never costs the answers for the others.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.base.images import TRAINED_EXTENSIONS
from workbench.core.config.run import RunConfig
from workbench.core.runs.store import MODEL_FILE, RunError, load_run

# Images decoded and predicted at a time: memory stays flat for any number of files.
CHUNK = 256


@dataclass
class RunModel:
    """A run's model with what is needed to feed it the way training did."""

    model: Any
    class_names: tuple[str, ...]
    image_size: int
    run_dir: Path | None = None
    config: RunConfig | None = None
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Prediction:
    """One image's answer; `error` is set (and the rest empty) when the image could not be read."""

    path: str
    top: tuple[tuple[str, float], ...] = ()  # (label, probability), best first
    probabilities: dict[str, float] = field(default_factory=dict)  # every class
    std: dict[str, float] = field(default_factory=dict)  # MC dropout only: spread of each probability
    entropy: float | None = None  # MC dropout only: predictive entropy in nats
    error: str = ""
    mutual_info: float | None = None  # MC dropout only: BALD, how much the passes disagree (nats)

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def label(self) -> str:
        return self.top[0][0] if self.top else ""


def load_run_model(run_dir: str | os.PathLike) -> RunModel:
    """Load a run's model.keras in safe mode, with its class names. Raises RunError."""
    path = Path(run_dir)
    if not path.is_dir():
        raise RunError(f"run folder not found: {path}")
    model_path = path / MODEL_FILE
    if not model_path.is_file():
        raise RunError(
            f"the run {path.name} has no trained model ({MODEL_FILE}): "
            "it may have failed or been stopped before its first epoch ended"
        )
    # Keras is imported here, not at the top: the window unpickles Predictions without TensorFlow.
    from workbench.core.engine.saving import load_model_file

    record = load_run(path)
    model = load_model_file(model_path)
    names = record.summary.get("class_names")
    if not names and record.config is not None:
        from workbench.core.data.scan import scan_folder  # a run that crashed before its summary

        names = scan_folder(record.config.data.folder).class_names
    outputs = int(model.outputs[0].shape[-1])
    if not names or len(names) != outputs:
        raise RunError(
            f"cannot tell the class names of run {path.name}: its summary.json does not list "
            f"{outputs} classes for the model's {outputs} outputs"
        )
    return RunModel(model, tuple(str(n) for n in names), input_size(model), path, record.config, record.summary)


def input_size(model: Any) -> int:
    """The square image size the model takes."""
    shape = model.inputs[0].shape
    if len(shape) != 4 or shape[1] is None or shape[1] != shape[2]:
        raise RunError(f"the model takes inputs of shape {tuple(shape)}, not square RGB images")
    return int(shape[1])


def expand_paths(paths: Iterable[str | os.PathLike]) -> list[str]:
    """Files stay as they are; a folder becomes its image files (recursively, sorted).

    A folder without images stays in the list, so it is reported rather than silently dropped.
    """
    from workbench.core.base.images import IMAGE_EXTENSIONS

    result: list[str] = []
    for p in paths:
        p = os.fspath(p)
        if not os.path.isdir(p):
            result.append(p)
            continue
        found = []
        for dirpath, dirnames, filenames in os.walk(p):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            found += [
                os.path.join(dirpath, f)
                for f in filenames
                if not f.startswith(".") and os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS
            ]
        result += sorted(found) or [p]
    return result


def read_image(path: str, image_size: int) -> tuple[np.ndarray | None, str]:
    """(RGB uint8 image, "") or (None, why it cannot be read), decoded as training decodes it."""
    return read_all([path], image_size)[0]


def refusal(path: str) -> str:
    """Why a path is not even tried (a folder, a missing file, a format training refuses), or ""."""
    from workbench.core.data.decode import check_image

    if os.path.isdir(path):
        return "a folder with no images in it"
    if not os.path.exists(path):
        return "a broken link (what it points to does not exist)" if os.path.islink(path) else "file not found"
    if os.path.splitext(path)[1].lower() not in TRAINED_EXTENSIONS:
        return check_image(path) or ""  # a TIFF or WebP: refused as training refuses it
    return ""


def read_all(paths: Sequence[str], image_size: int) -> list[tuple[np.ndarray | None, str]]:
    """(uint8 image, "") or (None, why not) per path, through the training pipeline's reader."""
    from workbench.core.data.decode import decode_files

    with ThreadPoolExecutor(max_workers=max(1, min(8, len(paths))), thread_name_prefix="read") as pool:
        refused = list(pool.map(refusal, paths))
    tried = [p for p, why in zip(paths, refused, strict=True) if not why]
    decoded = iter(decode_files(tried, image_size))
    return [(None, why) if why else next(decoded) for why in refused]


def read_images(paths: Sequence[str], image_size: int) -> tuple[np.ndarray, list[str]]:
    """Decode as training does (decode.decode_files): float32 [n_readable, S, S, 3] and one error per path."""
    results = read_all(paths, image_size)
    images = [image for image, _ in results if image is not None]
    array = (
        np.stack(images).astype(np.float32)
        if images
        else np.zeros((0, image_size, image_size, 3), np.float32)
    )
    return array, [error for _, error in results]


def predict_images(
    source: Any,
    paths: Iterable[str | os.PathLike],
    *,
    class_names: Sequence[str] | None = None,
    image_size: int | None = None,
    top_k: int = 3,
    mc_passes: int = 0,
    batch_size: int = 32,
) -> list[Prediction]:
    """One Prediction per image, in order (folders expand to their images).

    `source` is a run folder, a RunModel, or a Keras model together with `class_names`
    (and `image_size` when the model does not fix it).
    With `mc_passes` >= 2 the head's dropout stays on for that many passes
    (dropout.mc_predict): probabilities are their mean, and `std` and `entropy` say how
    much the model hesitates, and `mutual_info` how much the passes disagree (BALD).
    Raises RunError for an unusable run.
    """
    run = as_run_model(source, class_names, image_size)
    names = run.class_names
    k = max(1, min(top_k, len(names)))
    files = expand_paths(paths)
    predictions: list[Prediction] = []
    for start in range(0, len(files), CHUNK):
        chunk = files[start : start + CHUNK]
        images, errors = read_images(chunk, run.image_size)
        std = entropy = mutual = None
        if len(images) == 0:
            probs = np.zeros((0, len(names)), np.float32)
        elif mc_passes > 0:
            from workbench.core.engine import dropout

            samples = dropout.mc_samples(run.model, images, passes=mc_passes, batch_size=batch_size)
            probs, std = samples.mean(axis=0), samples.std(axis=0)
            entropy, mutual = dropout.entropy(probs), dropout.mutual_information(samples)
        else:
            probs = run.model.predict(images, batch_size=batch_size, verbose=0)
        row = 0
        for path, error in zip(chunk, errors, strict=True):
            if error:
                predictions.append(Prediction(path=path, error=error))
                continue
            p = np.asarray(probs[row], dtype=np.float64)
            best = np.argsort(-p, kind="stable")[:k]
            predictions.append(
                Prediction(
                    path=path,
                    top=tuple((names[i], float(p[i])) for i in best),
                    probabilities={n: float(v) for n, v in zip(names, p, strict=True)},
                    std={} if std is None else {n: float(v) for n, v in zip(names, std[row], strict=True)},
                    entropy=None if entropy is None else float(entropy[row]),
                    mutual_info=None if mutual is None else float(mutual[row]),
                )
            )
            row += 1
    return predictions


def as_run_model(
    source: Any, class_names: Sequence[str] | None = None, image_size: int | None = None
) -> RunModel:
    """A RunModel from a run folder, a RunModel, or a Keras model plus its class names."""
    if isinstance(source, RunModel):
        return source
    if isinstance(source, (str, os.PathLike)):
        return load_run_model(source)
    if not class_names:
        raise ValueError("predicting with a bare model needs its class_names")
    outputs = int(source.outputs[0].shape[-1])
    if len(class_names) != outputs:
        raise ValueError(f"{len(class_names)} class names for a model with {outputs} outputs")
    return RunModel(source, tuple(class_names), image_size or input_size(source))
