"""Seeded, stratified splits: a held-out test share, the validation fraction and k-fold parts.

The test share is taken first, from its own random stream, so it stays the same for a seed
whatever the validation split or the k-fold settings; validation and the folds split the rest.
"""

from __future__ import annotations

import hashlib
import os
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


TEST_SEED_OFFSET = 7919  # the test share draws from its own stream, apart from the validation split's


def hold_out_test(items: Sequence[tuple[str, int]], data: DataConfig, seed: int) -> tuple[ItemList, ItemList]:
    """(the rest, test): the config's test share of each class, held out of `folder`.

    Empty when the run has no test split (or a separate test folder). Depends only on the
    items, `data.test_split` and the seed.
    """
    if data.test_folder.strip() or data.test_split <= 0:
        return tuple(tuple(it) for it in items), ()
    return stable_split(items, data.test_split, seed + TEST_SEED_OFFSET)


def stable_split(items: Sequence[tuple[str, int]], fraction: float, seed: int) -> tuple[ItemList, ItemList]:
    """(rest, held out), stratified like `split_items`, but each class held out in the order of a
    seeded hash of the file's name rather than of its position in the list.

    Why: the Fix data and Label tabs move, exclude and add files. With a permutation of positions
    one edit reshuffles most of a class's held-out images, so a retrained run would train on the old
    run's test images; here an edit changes at most the one image at the edge of the share.
    """
    by_class: dict[int, list[int]] = {}
    for index, (_, label) in enumerate(items):
        by_class.setdefault(label, []).append(index)
    held: set[int] = set()
    for indices in by_class.values():
        n = len(indices)
        if fraction <= 0 or n < 2:
            continue
        n_held = min(max(round(n * fraction), 1), n - 1)
        order = sorted(indices, key=lambda i: (_name_hash(items[i][0], seed), i))
        held.update(order[:n_held])
    rest = tuple(tuple(it) for i, it in enumerate(items) if i not in held)
    out = tuple(tuple(it) for i, it in enumerate(items) if i in held)
    return rest, out


def _name_hash(path: str, seed: int) -> bytes:
    return hashlib.blake2b(f"{seed}:{os.path.basename(path)}".encode(), digest_size=8).digest()


def split_for(data: DataConfig, items: Sequence[tuple[str, int]], seed: int) -> tuple[ItemList, ItemList]:
    """The (train, validation) split a run's data config asks for, after the test share is held out:
    its k-fold part, or the fraction."""
    rest, _ = hold_out_test(items, data, seed)
    if data.folds >= 2:
        return kfold_split(rest, data.folds, data.fold, seed)
    return split_items(rest, data.validation_split, seed)


def class_counts(items: Sequence[tuple[str, int]], classes: int) -> list[int]:
    """Images per class index."""
    counts = [0] * classes
    for _, label in items:
        counts[label] += 1
    return counts

