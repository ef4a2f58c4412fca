"""Jobs of the data loop: review a run's images (Fix data), rank unlabelled ones (Label).

Called the way model_jobs.py calls its jobs: the panels submit these to a QThreadPool through
`BackgroundJobs`; each sends its work to the model worker (processes.run_in_worker; the bodies,
`review` and `rank`, are in worker_jobs.py) and waits. The work itself is in
core/analysis/review.py and uncertainty.py; the results are plain values plus small RGB
thumbnails as numpy arrays, which the GUI turns into icons. No Qt, no TensorFlow here.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench.ui.tasks.processes import run_in_worker

UNCERTAIN_SHOWN = 24  # right answers shown beside the mistakes, the most uncertain first


@dataclass
class ReviewResult:
    review: Any  # core.analysis.review.Review
    thumbnails: dict[str, np.ndarray | None] = field(default_factory=dict)  # path -> thumbnail, for the gallery


@dataclass
class RankingResult:
    ranking: Any  # core.analysis.uncertainty.Ranking
    thumbnails: list[np.ndarray | None] = field(default_factory=list)  # one per ranked image shown


def review(run_dir: str, split: str, mc_passes: int, cancel: threading.Event | None = None) -> ReviewResult:
    """review_images on the run's validation (or test) images, with the gallery's thumbnails."""
    return run_in_worker("review", run_dir, split, mc_passes, cancel=cancel)


def rank(run_dir: str, folder: str, mc: int, top: int, by: str,
         cancel: threading.Event | None = None) -> RankingResult:
    """rank_unlabelled over a folder, with the top images' thumbnails."""
    return run_in_worker("rank", run_dir, folder, mc, top, by, cancel=cancel)
