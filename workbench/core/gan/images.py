"""The GAN lab's training images: found in a folder (one class or all), streamed with tf.data."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from workbench.core.base.problems import Problem
from workbench.core.config.gan import GanConfig


@dataclass(frozen=True)
class GanImages:
    paths: tuple[str, ...]
    problems: tuple[Problem, ...]  # blocking: no training
    warnings: tuple[Problem, ...]  # files left out


def find_images(folder: str, class_name: str = "") -> GanImages:
    """The usable images of a folder (all of them, in any sub-folder) or of one class sub-folder.

    Every candidate is opened (content decides, as in the classifier's scan); unusable ones
    are left out with a reason.
    """
    from workbench.core.base.images import is_image_name
    from workbench.core.data.scan import check_all, walk_files

    field = "data.class_name" if class_name.strip() else "data.folder"
    root = Path(folder) / class_name if class_name.strip() else Path(folder)
    if not root.is_dir():
        return GanImages((), (Problem(field, f"folder not found: {root}"),), ())
    candidates = [p for p in walk_files(root) if is_image_name(os.path.basename(p))]
    reasons = check_all(candidates, None)
    usable = tuple(p for p, r in zip(candidates, reasons, strict=True) if r is None)
    bad = [(p, r) for p, r in zip(candidates, reasons, strict=True) if r is not None]
    warnings = []
    if bad:
        shown = "; ".join(f"{os.path.relpath(p, root)}: {r}" for p, r in bad[:5])
        warnings.append(Problem(field, f"left out {len(bad)} unusable file(s): {shown}" + (" ..." if len(bad) > 5 else "")))
    problems = []
    if len(usable) < 2:
        problems.append(Problem(field, f"{root} has {len(usable)} usable image(s): a GAN needs at least 2 "
                                       "(and learns well from a few thousand)"))
    return GanImages(usable, tuple(problems), tuple(warnings))


def make_image_stream(paths: Sequence[str], config: GanConfig, skip_counter=None):
    """An endless tf.data stream of real images in [-1, 1], shuffled each pass, with the classifier's decoding."""
    import tensorflow as tf

    from workbench.core.data.pipeline import make_dataset

    t = config.training
    ds = make_dataset([(p, 0) for p in paths], 1, config.data.image_size, t.batch_size, training=True,
                      seed=t.seed, cache=config.data.cache, skip_counter=skip_counter)

    def scale(images, labels):
        return images / 127.5 - 1.0

    return ds.map(scale, num_parallel_calls=tf.data.AUTOTUNE).repeat().prefetch(tf.data.AUTOTUNE)
