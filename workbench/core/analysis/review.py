"""Fix the data: a run's labelled images the model gets wrong or is least sure of.

A wrong label in the dataset shows up as a confident mistake (high loss); a poor or ambiguous
image as a high Monte-Carlo-dropout entropy. `review_images` scores every image of the run's
validation split (split as training split it, evaluation.validation_items) or of its test set
(evaluation.test_items) so a person can look at the worst ones first and move or exclude them (data/edits.py). Results are plain values, so the
review can run in a child process.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.analysis.evaluation import test_items, validation_items
from workbench.core.analysis.predict import as_run_model, predict_images
from workbench.core.runs.store import RunError

SORTS = ("loss", "confidence", "entropy")
GALLERY_SHOWS = ("both", "mistakes", "uncertain")
SPLITS = ("validation", "test")  # the test set: the run's test folder or held-out test split


@dataclass(frozen=True)
class ImageReview:
    path: str
    true_label: str
    predicted_label: str
    confidence: float  # the probability of the predicted class
    loss: float  # cross-entropy of the true class: -ln p(true)
    entropy: float  # predictive entropy of the Monte-Carlo mean, nats
    mutual_info: float  # BALD, nats

    @property
    def wrong(self) -> bool:
        return self.true_label != self.predicted_label


@dataclass
class Review:
    run_dir: str
    dataset: str  # the folder the images live in (moves and exclusions go there)
    split: str
    class_names: tuple[str, ...]
    images: list[ImageReview]  # every readable image of the split
    mc_passes: int
    notes: list[str] = field(default_factory=list)

    def gallery(self, uncertain: int = 24, show: str = "both", by: str = "loss") -> list[ImageReview]:
        """The mistakes and the `uncertain` right answers with the highest entropy (`show`: both, or only
        "mistakes" or "uncertain"), worst first by `by`."""
        if show not in GALLERY_SHOWS:
            raise ValueError(f"show one of {', '.join(GALLERY_SHOWS)}, not {show!r}")
        right = sorted((r for r in self.images if not r.wrong), key=lambda r: (-r.entropy, r.path))[:uncertain]
        wrong = [r for r in self.images if r.wrong]
        return sort_reviews({"both": wrong + right, "mistakes": wrong, "uncertain": right}[show], by)


def sort_reviews(items: list[ImageReview], by: str) -> list[ImageReview]:
    """Worst first: highest loss, least confident, or highest entropy."""
    keys = {"loss": lambda r: -r.loss, "confidence": lambda r: r.confidence, "entropy": lambda r: -r.entropy}
    if by not in keys:
        raise ValueError(f"sort by one of {', '.join(SORTS)}, not {by!r}")
    return sorted(items, key=lambda r: (keys[by](r), r.path))


def review_images(source: Any, split: str = "validation", mc_passes: int = 20) -> Review:
    """Score every image of the run's `split` (true and predicted class, loss, entropy, BALD).

    `source` is a run folder or a loaded RunModel. Raises RunError when the run or its data
    cannot be used, ValueError for bad arguments.
    """
    from workbench.core.engine.dropout import has_mc_dropout

    if split not in SPLITS:
        raise ValueError(f"review one of the splits {', '.join(SPLITS)}, not {split!r}")
    run = as_run_model(source)
    if run.config is None:
        raise RunError(f"cannot read the run's config, so its {split} images are unknown")
    d = run.config.data
    if split == "test":
        items, notes, _ = test_items(run.config, run.class_names, summary=run.summary)
        dataset = d.test_folder.strip() or d.folder
    else:
        items, notes = validation_items(run.config, run.class_names, run.summary)
        dataset = d.validation_folder.strip() or d.folder
    passes = mc_passes if mc_passes >= 2 and has_mc_dropout(run.model) else 1
    if passes == 1 and mc_passes >= 2:
        notes.append("the model has no dropout layer: entropy is of a single pass")
    predictions = predict_images(run, [p for p, _ in items], top_k=1, mc_passes=passes)
    images, unreadable = [], 0
    for (path, label), p in zip(items, predictions, strict=True):
        if not p.ok:
            unreadable += 1
            continue
        true_name = run.class_names[label]
        images.append(ImageReview(path, true_name, p.label, p.top[0][1],
                                  -math.log(max(p.probabilities[true_name], 1e-12)),
                                  float(p.entropy or 0.0), float(p.mutual_info or 0.0)))
    if unreadable:
        notes.append(f"{unreadable} image(s) could not be read and were left out")
    return Review(str(run.run_dir or ""), os.fspath(Path(dataset)), split, run.class_names, images, passes, notes)
