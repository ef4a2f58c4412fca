"""Active learning: rank a folder of unlabelled images by how unsure a run's model is of them.

Monte-Carlo dropout (engine/dropout.py) gives each image `mc` predictions. Two scores rank them:
the predictive entropy of their mean (unsure, whatever the reason) and BALD, the mutual information
H[mean p] - mean H[p] (the passes disagree: the model, not the image, is unsure; Houlsby et al.,
2011). Labelling the top images first teaches the model most per label. A model without dropout
gives the same answer every pass: it is ranked by the entropy of that one pass, and says so.
Results are plain values, so the ranking can run in a child process.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.analysis.predict import as_run_model, predict_images
from workbench.core.runs.store import RunError

RANK_BY = ("entropy", "bald")
NO_DROPOUT_NOTE = ("the model has no dropout layer, so Monte-Carlo passes would all be equal: "
                   "images are ranked by the entropy of a single pass (BALD is 0)")


@dataclass(frozen=True)
class RankedImage:
    path: str
    guess: str  # the most probable class
    confidence: float  # its (mean) probability
    entropy: float  # predictive entropy of the mean, nats
    mutual_info: float  # BALD, nats
    probabilities: tuple[float, ...]  # mean probability per class, in the run's class order


@dataclass
class Ranking:
    run_dir: str
    folder: str
    class_names: tuple[str, ...]
    by: str  # what the images were ranked by in the end
    mc_passes: int  # passes made (1 for a model without dropout)
    images: list[RankedImage]  # the top ones, most uncertain first
    ranked: int  # readable images ranked in all
    broken: list[tuple[str, str]] = field(default_factory=list)  # (path, why it was skipped)
    notes: list[str] = field(default_factory=list)
    dataset: str = ""  # the run's dataset folder: where labelled images go

    def broken_text(self, limit: int = 5) -> str:
        """'N image(s) could not be read and were skipped: a (why); b (why) ...', or ""."""
        if not self.broken:
            return ""
        listed = "; ".join(f"{Path(p).name} ({why})" for p, why in self.broken[:limit])
        more = f" and {len(self.broken) - limit} more" if len(self.broken) > limit else ""
        return f"{len(self.broken)} image(s) could not be read and were skipped: {listed}{more}"


def rank_unlabelled(source: Any, folder: str | os.PathLike, mc: int = 20, top: int = 50,
                    by: str = "entropy") -> Ranking:
    """The `top` images of `folder` (recursively) the model is least sure of, by entropy or BALD.

    `source` is a run folder or a loaded RunModel. Broken images are skipped and listed.
    Raises ValueError for bad arguments or a folder without images, RunError for an unusable run.
    """
    from workbench.core.engine.dropout import has_mc_dropout

    if by not in RANK_BY:
        raise ValueError(f"rank by one of {', '.join(RANK_BY)}, not {by!r}")
    if mc < 2:
        raise ValueError("Monte-Carlo dropout needs at least 2 passes")
    if top < 1:
        raise ValueError("show at least 1 image")
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"folder not found: {root}")
    run = as_run_model(source)
    notes = []
    passes = mc
    if not has_mc_dropout(run.model):
        notes.append(NO_DROPOUT_NOTE)
        by, passes = "entropy", 1
    predictions = predict_images(run, [root], top_k=1, mc_passes=passes)
    if len(predictions) == 1 and not predictions[0].ok and Path(predictions[0].path) == root:
        raise ValueError(f"{root} holds no images (looked in its sub-folders too)")
    broken = [(p.path, p.error) for p in predictions if not p.ok]
    ranked = [
        RankedImage(p.path, p.label, p.top[0][1], float(p.entropy or 0.0), float(p.mutual_info or 0.0),
                    tuple(p.probabilities[n] for n in run.class_names))
        for p in predictions if p.ok
    ]
    score = (lambda r: r.entropy) if by == "entropy" else (lambda r: r.mutual_info)
    ranked.sort(key=lambda r: (-score(r), r.path))
    dataset = run.config.data.folder if run.config is not None else ""
    if not ranked:
        notes.append("none of the images could be read")
    return Ranking(str(run.run_dir or ""), str(root), run.class_names, by, passes, ranked[:top], len(ranked),
                   broken, notes, dataset)


def ranking_csv(ranking: Ranking) -> str:
    """The ranking as CSV text: rank, path, guess, confidence, entropy, BALD, one probability per class."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["rank", "path", "guess", "confidence", "entropy", "bald",
                     *(f"p_{n}" for n in ranking.class_names)])
    for i, r in enumerate(ranking.images, 1):
        writer.writerow([i, r.path, r.guess, f"{r.confidence:.6f}", f"{r.entropy:.6f}", f"{r.mutual_info:.6f}",
                         *(f"{p:.6f}" for p in r.probabilities)])
    return out.getvalue()


def write_ranking_csv(ranking: Ranking, path: str | os.PathLike) -> None:
    from workbench.core.base.files import atomic_write_text

    try:
        atomic_write_text(path, ranking_csv(ranking))
    except OSError as exc:
        raise RunError(f"cannot write {path}: {exc.strerror or exc}") from None
