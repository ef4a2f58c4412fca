"""The held-out test set: which images it holds, that training never sees them, and its settings.

Pure Python (no model): the split functions, validate() on the new fields, and the figures
that keep test results apart from validation ones.
"""

from __future__ import annotations

import numpy as np
from core_helpers import tiny_config
from fixture_images import write_image_tree

from workbench import cli
from workbench.core.analysis.evaluation import balanced_accuracy, confusion_matrix, macro_f1
from workbench.core.config.run import DataConfig
from workbench.core.config.validate import imbalance_warning, validate
from workbench.core.config.validate import warnings as config_warnings
from workbench.core.data.splits import hold_out_test, split_for


def _items(per_class=(20, 10, 5)):
    return [(f"c{label}/{i:03d}.png", label) for label, n in enumerate(per_class) for i in range(n)]


def _fields(problems):
    return {p.field for p in problems}


def test_the_test_share_is_stratified_stable_for_a_seed_and_never_in_training_or_validation():
    items = _items()
    data = DataConfig(folder="x", test_split=0.2, validation_split=0.25)
    rest, test = hold_out_test(items, data, seed=42)
    assert sorted(rest + test) == sorted(items) and not set(rest) & set(test)
    assert [sum(1 for _, y in test if y == c) for c in range(3)] == [4, 2, 1]  # a fifth of each class
    assert hold_out_test(items, data, seed=42)[1] == test  # same seed, same test set
    assert hold_out_test(items, data, seed=7)[1] != test

    # The validation split, the k-fold settings and the fold never move the test set, and they
    # never hand a test image to training or validation.
    for changes in ({"validation_split": 0.1}, {"validation_split": 0.4}, {"folds": 3, "fold": 0},
                    {"folds": 3, "fold": 2}, {"folds": 5, "fold": 4}):
        other = DataConfig(folder="x", test_split=0.2, **{"validation_split": 0.25, **changes})
        assert hold_out_test(items, other, seed=42)[1] == test, changes
        train, val = split_for(other, items, seed=42)
        assert not (set(train) | set(val)) & set(test), changes
        assert sorted(train + val + test) == sorted(items), changes

    # Fixing the data (an image excluded, another moved to a class) keeps the rest of the test set:
    # a retrained run must not train on the old run's test images.
    edited = [it for it in items if it != ("c0/003.png", 0)] + [("c1/moved.png", 1)]
    _, after = hold_out_test(edited, data, seed=42)
    assert len(set(test) - set(after)) <= 2, (test, after)

    # No test split, or a separate test folder: nothing is held out of the training folder.
    assert hold_out_test(items, DataConfig(folder="x"), 42) == (tuple(items), ())
    assert hold_out_test(items, DataConfig(folder="x", test_folder="t", test_split=0.2), 42)[1] == ()


def test_validate_refuses_unusable_test_class_weight_and_schedule_settings(image_tree, tmp_path):
    def problems(**changes):
        return validate(tiny_config(image_tree, **changes))

    assert problems() == []
    assert "data.test_split" in _fields(problems(**{"data.test_split": 1.0}))
    assert "data.test_split" in _fields(problems(**{"data.test_split": -0.1}))
    too_much = problems(**{"data.test_split": 0.5, "data.validation_split": 0.5})
    assert any("together" in p.message for p in too_much if p.field == "data.test_split")
    assert problems(**{"data.test_split": 0.3, "data.validation_split": 0.3}) == []
    both = problems(**{"data.test_split": 0.2, "data.test_folder": str(image_tree)})
    assert any("not both" in p.message for p in both)
    assert "data.test_folder" in _fields(problems(**{"data.test_folder": str(tmp_path / "nowhere")}))
    same = problems(**{"data.test_folder": str(image_tree)})
    assert any("is the training folder" in p.message for p in same)
    other = write_image_tree(tmp_path / "other", classes=("red", "violet"), per_class=1)
    assert any("it has violet, which the training folder lacks" in p.message
               for p in problems(**{"data.test_folder": str(other)}))
    subset = write_image_tree(tmp_path / "subset", classes=("red",), per_class=1)
    assert problems(**{"data.test_folder": str(subset)}) == []  # fewer classes: a note when evaluating

    assert "training.class_weights" in _fields(problems(**{"training.class_weights": "heavy"}))
    assert "training.manual_class_weights" in _fields(problems(**{"training.class_weights": "manual"}))
    bad_weight = problems(**{"training.class_weights": "manual", "training.manual_class_weights": {"red": 0.0}})
    assert any("'red'" in p.message and "above 0" in p.message for p in bad_weight)
    unknown = problems(**{"training.class_weights": "manual", "training.manual_class_weights": {"cat": 2.0}})
    assert any("no class folder named 'cat'" in p.message for p in unknown)
    assert problems(**{"training.class_weights": "manual", "training.manual_class_weights": {"red": 3.0}}) == []

    assert "training.lr_schedule" in _fields(problems(**{"training.lr_schedule": "step"}))
    long_warmup = problems(**{"training.lr_schedule": "cosine", "training.warmup_epochs": 2})
    assert any("shorter than the run" in p.message for p in long_warmup)
    assert problems(**{"training.lr_schedule": "cosine", "training.warmup_epochs": 1}) == []
    per_phase = problems(**{"training.lr_schedule": "cosine", "training.warmup_epochs": 1, "training.epochs": 3,
                            "training.two_phase": True, "training.phase1_epochs": 1})
    assert any("shorter phase" in p.message for p in per_phase)
    assert "training.plateau_factor" in _fields(problems(**{"training.lr_schedule": "plateau",
                                                            "training.plateau_factor": 1.0}))
    assert "training.plateau_patience" in _fields(problems(**{"training.lr_schedule": "plateau",
                                                              "training.plateau_patience": 0}))


def test_an_imbalanced_folder_is_warned_about_with_its_ratio(make_image_tree, capsys):
    assert imbalance_warning({"a": 30, "b": 10}).startswith("the classes are imbalanced: 'a' has 30 images, 3.0")
    assert imbalance_warning({"a": 20, "b": 10}) == ""
    assert imbalance_warning({"a": 30, "b": 0}) == ""  # an empty class is the scan's problem, not a ratio
    assert "class weights are on" in imbalance_warning({"a": 30, "b": 10}, "balanced")

    folder = make_image_tree("skewed", classes=("red", "green"), per_class=4)
    make_image_tree("skewed", classes=("red",), per_class=16)  # red now has 16, green 4
    found = [p for p in config_warnings(tiny_config(folder)) if p.field == "data.folder"]
    assert len(found) == 1 and "'red' has 16 images, 4.0 times the 4 of 'green'" in found[0].message
    assert cli.main(["scan", str(folder)]) == 0  # a warning, not bad input
    assert "warning: the classes are imbalanced: 'red' has 16 images" in capsys.readouterr().err


def test_balanced_accuracy_and_macro_f1_weigh_every_class_the_same():
    # 90 images of class 0, 10 of class 1; the model always says 0: 90 % accurate, but it never finds class 1.
    truth, guess = np.array([0] * 90 + [1] * 10), np.zeros(100, dtype=int)
    matrix = confusion_matrix(truth, guess, 2)
    assert balanced_accuracy(matrix) == 0.5
    assert abs(macro_f1(matrix) - (2 * 0.9 / 1.9) / 2) < 1e-9  # class 0's F1, and 0 for class 1
    perfect = confusion_matrix([0, 1, 2], [0, 1, 2], 4)  # class 3 has no images and no predictions
    assert balanced_accuracy(perfect) == 1.0 and macro_f1(perfect) == 1.0
