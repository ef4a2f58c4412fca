"""How good is a trained run: confusion matrix, per-class scores, and its worst mistakes.

`evaluate_run` rebuilds the run's own validation split (same scan, fraction and
seed as training) so the numbers are on images the model never trained on; `on="test"`
scores its held-out test set instead (the run's test split or test folder, or another
folder of the same classes), kept apart in evaluation-test.json and summary.json's "test".
The metrics are plain numpy functions, so scikit-learn stays out of the dependencies.
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
TEST_EVALUATION_FILE = "evaluation-test.json"  # test figures, never mixed with the validation ones
SPLITS = ("validation", "test")


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
    split: str = "validation"  # or "test"
    source: str = ""  # where the test images came from: a folder, or the run's held-out split

    @property
    def count(self) -> int:
        return int(len(self.labels))

    @property
    def balanced_accuracy(self) -> float:
        return balanced_accuracy(self.confusion)

    @property
    def macro_f1(self) -> float:
        return macro_f1(self.confusion)

    def figures(self) -> dict[str, Any]:
        """The headline numbers, as summary.json keeps them."""
        return {"accuracy": round(self.accuracy, 6), "balanced_accuracy": round(self.balanced_accuracy, 6),
                "macro_f1": round(self.macro_f1, 6), "top_k_accuracy": round(self.top_k_accuracy, 6),
                "images": self.count, "source": self.source}

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_dir": self.run_dir,
            "class_names": list(self.class_names),
            "split": self.split,
            "source": self.source,
            "images": self.count,
            "accuracy": self.accuracy,
            "balanced_accuracy": self.balanced_accuracy,
            "macro_f1": self.macro_f1,
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
            split=data.get("split", "validation"),
            source=data.get("source", ""),
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


def balanced_accuracy(confusion: np.ndarray) -> float:
    """The mean of the recalls of the classes that have images: each class counts the same, however many it has."""
    c = np.asarray(confusion, dtype=np.float64)
    actual = c.sum(axis=1)
    present = actual > 0
    return float(np.mean(np.diag(c)[present] / actual[present])) if present.any() else 0.0


def macro_f1(confusion: np.ndarray) -> float:
    """The mean F1 of the classes that have images or predictions (as scikit-learn's average="macro")."""
    c = np.asarray(confusion, dtype=np.float64)
    present = (c.sum(axis=1) + c.sum(axis=0)) > 0
    scores = [s.f1 for s, p in zip(per_class_scores(c), present, strict=True) if p]
    return float(np.mean(scores)) if scores else 0.0


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


def test_items(
    config: RunConfig, class_names: Sequence[str], test_folder: str | os.PathLike | None = None,
    summary: dict[str, Any] | None = None,
) -> tuple[list[tuple[str, int]], list[str], str]:
    """The test images as (path, index into class_names), notes, and where they came from.

    From `test_folder` when given, else the run's own test folder or held-out test split.
    Raises RunError when the run has no test set, the folder is gone, or it holds classes
    the model does not know (it could never get those right).
    """
    from workbench.core.data.scan import scan_folder
    from workbench.core.data.splits import hold_out_test

    d = config.data
    folder = str(test_folder or d.test_folder or "").strip()
    notes: list[str] = []
    if folder:
        if not Path(folder).is_dir():
            raise RunError(f"test folder not found: {folder}")
        report = scan_folder(folder, field="data.test_folder")
        unknown = [n for n in report.class_names if n not in class_names]
        if unknown:
            raise RunError(f"the test folder's classes differ from the run's: {', '.join(unknown)} "
                           f"{'is' if len(unknown) == 1 else 'are'} not among the classes the model knows "
                           f"({', '.join(class_names)}); give a folder with the same class sub-folders")
        missing = [n for n in class_names if n not in report.class_names]
        if missing:
            notes.append(f"the test folder has no images of {', '.join(missing)}")
        index = {name: i for i, name in enumerate(class_names)}
        items = [(p, index[report.class_names[label]]) for p, label in report.items]
        source = folder
    elif d.test_split > 0:
        if not Path(d.folder).is_dir():
            raise RunError(f"the run's data folder is gone: {d.folder}")
        report = scan_folder(d.folder)
        _, held_out = hold_out_test(report.items, d, config.training.seed)
        index = {name: i for i, name in enumerate(class_names)}
        items = [(p, index[report.class_names[label]]) for p, label in held_out
                 if report.class_names[label] in index]
        then = (summary or {}).get("test_images")
        if isinstance(then, int) and then != len(held_out):
            notes.append(f"the data changed since training ({len(held_out)} test images now, {then} then): "
                         "the split differs, so some of these images may have been used for training")
        source = f"the run's held-out test split ({d.test_split:g} of {d.folder})"
    else:
        raise RunError("the run has no test set: choose a folder of test images (evaluate --test FOLDER), "
                       "or train with a test split (data.test_split; Data: Test split)")
    if not items:
        raise RunError(f"no test images to evaluate on in {source}")
    return items, notes, source


test_items.__test__ = False  # the app's function, not a pytest test, in whichever test module imports it


def evaluate_run(
    run_dir: str | os.PathLike | RunModel, *, top_k: int = 3, batch_size: int = 32, save: bool = True,
    on: str = "validation", test_folder: str | os.PathLike | None = None,
) -> Evaluation:
    """Evaluate a run's model on its own validation split, or (`on="test"`) its test set or `test_folder`.

    With `save`, validation figures go to evaluation.json; test figures to evaluation-test.json
    and to summary.json's "test", apart from the validation ones. `run_dir` may also be a loaded
    RunModel of a run folder. Raises RunError when the run, its model or its data cannot be used.
    """
    if on not in SPLITS:
        raise ValueError(f"on must be one of {SPLITS}, not {on!r}")
    run = run_dir if isinstance(run_dir, RunModel) else load_run_model(run_dir)
    run_dir = run.run_dir if isinstance(run_dir, RunModel) else run_dir
    if run.config is None:
        raise RunError(f"cannot read the config of run {Path(run_dir).name}, so its validation split is unknown")
    if on == "test":
        items, notes, source = test_items(run.config, run.class_names, test_folder, run.summary)
    else:
        (items, notes), source = validation_items(run.config, run.class_names, run.summary), ""
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
        notes.append(f"{len(unreadable)} {on} image(s) could not be read and were left out: "
                     + "; ".join(unreadable[:5]) + (" ..." if len(unreadable) > 5 else ""))
    if not paths:
        raise RunError(f"none of the run's {on} images could be read")
    evaluation = evaluate_predictions(np.concatenate(probs), labels, run.class_names, paths, top_k)
    evaluation.notes = notes
    evaluation.run_dir = str(run.run_dir)
    evaluation.split, evaluation.source = on, source
    if save:
        save_evaluation(evaluation, Path(run_dir) / (TEST_EVALUATION_FILE if on == "test" else EVALUATION_FILE))
        if on == "test":
            _record_test_figures(Path(run_dir), evaluation)
    return evaluation


def _record_test_figures(run_dir: Path, evaluation: Evaluation) -> None:
    """summary.json keeps the test figures under "test", apart from the validation ones."""
    from workbench.core.runs.store import RunFolder, load_run

    summary = load_run(run_dir).summary
    if summary:
        RunFolder(run_dir).write_summary({**summary, "test": evaluation.figures()})


def save_evaluation(evaluation: Evaluation, path: str | os.PathLike) -> None:
    from workbench.core.base.files import atomic_write_text

    atomic_write_text(path, json.dumps(evaluation.to_dict(), indent=1) + "\n")


def load_evaluation(run_dir: str | os.PathLike, on: str = "validation") -> Evaluation | None:
    """The run's last saved evaluation (on validation or test), or None when there is none (or it cannot be read)."""
    file = Path(run_dir) / (TEST_EVALUATION_FILE if on == "test" else EVALUATION_FILE)
    try:
        return Evaluation.from_dict(json.loads(file.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None
