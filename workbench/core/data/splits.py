"""Seeded, stratified splits: validation fraction and k-fold parts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from workbench.core.config.run import DataConfig

ItemList = tuple[tuple[str, int], ...]


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

