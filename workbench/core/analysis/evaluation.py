"""How good is a trained run: confusion matrix, per-class scores, and its worst mistakes.

`evaluate_run` rebuilds the run's own validation split (same scan, fraction and
seed as training) so the numbers are on images the model never trained on. The
metrics are plain numpy functions, so scikit-learn stays out of the dependencies.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from workbench.core.analysis.predict import CHUNK, RunModel, load_run_model, read_images
from workbench.core.config.run import RunConfig
from workbench.core.runs.store import RunError

EVALUATION_FILE = "evaluation.json"


class ClassScore(NamedTuple):
    name: str
    precision: float  # of the images predicted as this class, the share that are
    recall: float  # of the images of this class, the share found
    f1: float
    support: int  # images of this class


class Mistake(NamedTuple):
    path: str
    true_label: str
    predicted_label: str
    confidence: float  # the probability the model gave its (wrong) answer


@dataclass
class Evaluation:
    class_names: tuple[str, ...]
    confusion: np.ndarray  # int [true, predicted]
    per_class: list[ClassScore]
    accuracy: float
    top_k: int
    top_k_accuracy: float
    mistakes: list[Mistake]  # most confident first: those are the ones worth a look
    probabilities: np.ndarray  # float [images, classes]
    labels: np.ndarray  # int [images], the true class indices
    paths: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what a person should know (changed data, unreadable files)
    run_dir: str = ""

    @property
    def count(self) -> int:
        return int(len(self.labels))

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_dir": self.run_dir,
            "class_names": list(self.class_names),
            "images": self.count,
            "accuracy": self.accuracy,
            "top_k": self.top_k,
            "top_k_accuracy": self.top_k_accuracy,
            "confusion": self.confusion.tolist(),
            "per_class": [s._asdict() for s in self.per_class],
            "mistakes": [m._asdict() for m in self.mistakes],
            "notes": list(self.notes),
            "predictions": [
                {"path": p, "label": int(y), "probabilities": [round(float(v), 6) for v in row]}
                for p, y, row in zip(self.paths, self.labels, self.probabilities, strict=True)
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evaluation:
        names = tuple(data["class_names"])
        predictions = data.get("predictions", [])
        return cls(
            class_names=names,
            confusion=np.asarray(data["confusion"], dtype=np.int64).reshape(len(names), len(names)),
            per_class=[ClassScore(**s) for s in data["per_class"]],
            accuracy=float(data["accuracy"]),
            top_k=int(data["top_k"]),
            top_k_accuracy=float(data["top_k_accuracy"]),
            mistakes=[Mistake(**m) for m in data["mistakes"]],
            probabilities=np.asarray(
                [p["probabilities"] for p in predictions], dtype=np.float32
            ).reshape(len(predictions), len(names)),
            labels=np.asarray([p["label"] for p in predictions], dtype=np.int64),
            paths=[p["path"] for p in predictions],
            notes=list(data.get("notes", [])),
            run_dir=data.get("run_dir", ""),
        )


# ---- pure metrics -------------------------------------------------------------

def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], n: int) -> np.ndarray:
    """Counts [true class, predicted class] for n classes."""
    t, p = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    if t.shape != p.shape:
        raise ValueError(f"{len(t)} true labels but {len(p)} predictions")
    if t.size and (min(t.min(), p.min()) < 0 or max(t.max(), p.max()) >= n):
        raise ValueError(f"labels must be class indices from 0 to {n - 1}")
    matrix = np.zeros((n, n), dtype=np.int64)
    np.add.at(matrix, (t, p), 1)
    return matrix


def per_class_scores(confusion: np.ndarray, class_names: Sequence[str] | None = None) -> list[ClassScore]:
    """Precision, recall, F1 and support per class; 0 (not an error) where a ratio has nothing to divide."""
    c = np.asarray(confusion, dtype=np.float64)
    names = list(class_names) if class_names is not None else [str(i) for i in range(len(c))]
    hits, predicted, actual = np.diag(c), c.sum(axis=0), c.sum(axis=1)
    scores = []
    for i, name in enumerate(names):
        precision = hits[i] / predicted[i] if predicted[i] else 0.0
        recall = hits[i] / actual[i] if actual[i] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scores.append(ClassScore(name, float(precision), float(recall), float(f1), int(actual[i])))
    return scores


def top_k_accuracy(probabilities: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Share of images whose true class is among the k most probable."""
    if len(labels) == 0:
        return 0.0
    top = np.argsort(-np.asarray(probabilities), axis=1, kind="stable")[:, :k]
    return float(np.mean([label in row for label, row in zip(labels, top, strict=True)]))


def evaluate_predictions(
    probabilities: Any,
    labels: Any,
    class_names: Sequence[str],
    paths: Sequence[str] | None = None,
    top_k: int = 3,
) -> Evaluation:
    """Every number of an Evaluation from the model's probabilities and the true labels."""
    names = tuple(class_names)
    probs = np.asarray(probabilities, dtype=np.float32).reshape(-1, len(names))
    y = np.asarray(labels, dtype=np.int64).reshape(-1)
    paths = list(paths) if paths is not None else [""] * len(y)
    predicted = probs.argmax(axis=1) if len(y) else np.zeros(0, np.int64)
    confusion = confusion_matrix(y, predicted, len(names))
    k = max(1, min(top_k, len(names)))
    wrong = [i for i in range(len(y)) if predicted[i] != y[i]]
    mistakes = [
        Mistake(paths[i], names[y[i]], names[predicted[i]], float(probs[i, predicted[i]])) for i in wrong
    ]
    mistakes.sort(key=lambda m: m.confidence, reverse=True)
    return Evaluation(
        class_names=names,
        confusion=confusion,
        per_class=per_class_scores(confusion, names),
        accuracy=float(np.mean(predicted == y)) if len(y) else 0.0,
        top_k=k,
        top_k_accuracy=top_k_accuracy(probs, y, k),
        mistakes=mistakes,
        probabilities=probs,
        labels=y,
        paths=paths,
    )


# ---- a run --------------------------------------------------------------------

def validation_items(
    config: RunConfig, class_names: Sequence[str], summary: dict[str, Any] | None = None
) -> tuple[list[tuple[str, int]], list[str]]:
    """The run's validation images as (path, index into class_names), split as training split them.

    Also returns notes for a person: classes the model does not know, and a folder that
    changed since training (then the split moves and some of these images may have been
    trained on). Raises RunError when the data is gone.
    """
    from workbench.core.data.scan import scan_folder
    from workbench.core.data.splits import split_for

    d = config.data
    notes: list[str] = []
    if d.validation_folder.strip():
        if not Path(d.validation_folder).is_dir():
            raise RunError(f"the run's validation folder is gone: {d.validation_folder}")
        report = scan_folder(d.validation_folder, field="data.validation_folder")
        items = report.items
    else:
        if not Path(d.folder).is_dir():
            raise RunError(f"the run's data folder is gone: {d.folder}")
        report = scan_folder(d.folder)
        _, items = split_for(d, report.items, config.training.seed)

    index = {name: i for i, name in enumerate(class_names)}
    result: list[tuple[str, int]] = []
    unknown: dict[str, int] = {}
    for path, label in items:
        name = report.class_names[label]
        if name in index:
            result.append((path, index[name]))
        else:
            unknown[name] = unknown.get(name, 0) + 1
    for name, count in unknown.items():
        notes.append(f"class '{name}' is not one the model knows; its {count} image(s) were left out")
    then = (summary or {}).get("val_images")
    if isinstance(then, int) and then != len(items):
        notes.append(
            f"the data changed since training ({len(items)} validation images now, {then} then): "
            "the split differs, so some of these images may have been used for training"
        )
    if not result:
        raise RunError("the run has no validation images to evaluate on")
    return result, notes


def evaluate_run(
    run_dir: str | os.PathLike | RunModel, *, top_k: int = 3, batch_size: int = 32, save: bool = True
) -> Evaluation:
    """Evaluate a run's model on its own validation split and (with `save`) write evaluation.json.

    `run_dir` may also be a loaded RunModel of a run folder. Raises RunError when the run,
    its model or its data cannot be used.
    """
    run = run_dir if isinstance(run_dir, RunModel) else load_run_model(run_dir)
    run_dir = run.run_dir if isinstance(run_dir, RunModel) else run_dir
    if run.config is None:
        raise RunError(f"cannot read the config of run {Path(run_dir).name}, so its validation split is unknown")
    items, notes = validation_items(run.config, run.class_names, run.summary)
    paths, labels, probs = [], [], []
    unreadable = []
    for start in range(0, len(items), CHUNK):
        chunk = items[start : start + CHUNK]
        images, errors = read_images([p for p, _ in chunk], run.image_size)
        if len(images):
            probs.append(run.model.predict(images, batch_size=batch_size, verbose=0))
        for (path, label), error in zip(chunk, errors, strict=True):
            if error:
                unreadable.append(f"{path}: {error}")
            else:
                paths.append(path)
                labels.append(label)
    if unreadable:
        notes.append(f"{len(unreadable)} validation image(s) could not be read and were left out: "
                     + "; ".join(unreadable[:5]) + (" ..." if len(unreadable) > 5 else ""))
    if not paths:
        raise RunError("none of the run's validation images could be read")
    evaluation = evaluate_predictions(np.concatenate(probs), labels, run.class_names, paths, top_k)
    evaluation.notes = notes
    evaluation.run_dir = str(run.run_dir)
    if save:
        save_evaluation(evaluation, Path(run_dir) / EVALUATION_FILE)
    return evaluation


def save_evaluation(evaluation: Evaluation, path: str | os.PathLike) -> None:
    from workbench.core.base.files import atomic_write_text

    atomic_write_text(path, json.dumps(evaluation.to_dict(), indent=1) + "\n")


def load_evaluation(run_dir: str | os.PathLike) -> Evaluation | None:
    """The run's last saved evaluation, or None when there is none (or it cannot be read)."""
    file = Path(run_dir) / EVALUATION_FILE
    try:
        return Evaluation.from_dict(json.loads(file.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None
