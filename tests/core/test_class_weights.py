"""Class weights, the held-out test set and reduce-on-plateau on one real run.

One run on cached backbone features (the bundled MobileNetV2 weights, the whole backbone
frozen): manual class weights reach the loss on that path, a test split is held out of
training and validation and then scored apart from them (CLI and core), and the plateau
schedule lowers the rate and keeps its counters in the checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from core_helpers import tiny_config

from workbench import cli
from workbench.core.analysis import evaluation
from workbench.core.analysis.evaluation import (
    EVALUATION_FILE,
    TEST_EVALUATION_FILE,
    evaluate_run,
)
from workbench.core.analysis.report import held_out_figures
from workbench.core.base.events import EpochEnd, Message, RunFinished
from workbench.core.config.run import RunConfig
from workbench.core.data.scan import scan_folder
from workbench.core.data.splits import hold_out_test
from workbench.core.engine.compile import class_weights
from workbench.core.runs.checkpoint_state import read_state
from workbench.core.runs.listing import describe, held_out_accuracy
from workbench.core.runs.store import RunError, load_run
from workbench.core.train import run as training

BUNDLED = Path(__file__).resolve().parents[2] / "resources" / "backbones" / "mobilenetv2-0.35-64px-fashion6.weights.h5"


def test_balanced_weights_make_every_class_weigh_the_same_in_all():
    config = tiny_config("x", **{"training.class_weights": "balanced"})
    weights = class_weights(config, ("big", "small", "none"), (30, 10, 0))
    assert weights == {0: 40 / 90, 1: 40 / 30, 2: 1.0}
    assert weights[0] * 30 == pytest.approx(weights[1] * 10)  # both classes weigh 13.3 images in all
    manual = config.replace(**{"training.class_weights": "manual", "training.manual_class_weights": {"small": 4.0}})
    assert class_weights(manual, ("big", "small"), (30, 10)) == {0: 1.0, 1: 4.0}
    assert class_weights(tiny_config("x"), ("big", "small"), (30, 10)) is None


@pytest.fixture(scope="module")
def weighted_run(tmp_path_factory):
    from fixture_images import write_image_tree

    root = tmp_path_factory.mktemp("weighted")
    data = write_image_tree(root / "data", per_class=12)
    config = tiny_config(data, epochs=3, **{
        "backbone.weights": "file", "backbone.weights_file": str(BUNDLED), "freeze.policy": "all",
        "data.test_split": 0.25, "data.validation_split": 0.25,
        "training.class_weights": "manual", "training.manual_class_weights": {"red": 40.0},
        # A rate too small to move the validation loss: the plateau schedule acts after each epoch.
        "training.learning_rate": 1e-7, "training.lr_schedule": "plateau", "training.plateau_patience": 1,
        "training.plateau_factor": 0.5, "training.monitor": "val_loss"})
    events = []
    result = training.run(config, events.append, runs_dir=root / "runs")
    assert isinstance(result, RunFinished), result
    return config, Path(result.run_dir), events


def test_class_weights_reach_the_loss_on_cached_features_and_plateau_lowers_the_rate(weighted_run):
    config, run_dir, events = weighted_run
    texts = [e.text for e in events if isinstance(e, Message)]
    assert any(t.startswith("Computed backbone features") for t in texts)  # the cached-feature path
    assert "Class weights: blue 1, green 1, red 40" in texts
    epochs = [e.logs for e in events if isinstance(e, EpochEnd)]
    # The training loss weighs red images 40 times; the validation loss is plain.
    assert epochs[0]["loss"] > 5 * epochs[0]["val_loss"], epochs[0]

    rates = [logs["learning_rate"] for logs in epochs]
    assert rates[0] == pytest.approx(1e-7) and rates[2] == pytest.approx(rates[1] * 0.5), rates
    assert any("learning rate 1e-07 -> 5e-08" in t for t in texts), texts
    state = read_state(run_dir / "checkpoint.keras")
    assert state["plateau"]["wait"] == 0 and state["plateau"]["best"] > 0  # the counters a resume continues from


def test_the_test_split_stays_out_of_training_and_is_scored_apart(weighted_run, tmp_path, capsys):
    config, run_dir, _ = weighted_run
    summary = load_run(run_dir).summary
    report = scan_folder(config.data.folder)
    _, held_out = hold_out_test(report.items, config.data, config.training.seed)
    assert summary["test_images"] == len(held_out) == 9  # a quarter of each class of 12
    assert summary["train_images"] + summary["val_images"] + summary["test_images"] == 36

    validation = evaluate_run(run_dir)
    test = evaluate_run(run_dir, on="test")
    test_paths = {path for path, _ in held_out}
    assert set(test.paths) == test_paths and not set(validation.paths) & test_paths
    assert test.split == "test" and "held-out test split" in test.source
    assert 0.0 <= test.balanced_accuracy <= 1.0 and 0.0 <= test.macro_f1 <= 1.0

    # Test figures live apart: their own file and summary.json's "test"; evaluation.json stays validation's.
    assert json.loads((run_dir / EVALUATION_FILE).read_text())["split"] == "validation"
    assert json.loads((run_dir / TEST_EVALUATION_FILE).read_text())["images"] == 9
    record = load_run(run_dir)
    assert record.summary["test"]["accuracy"] == pytest.approx(test.accuracy)
    assert record.summary["test"]["balanced_accuracy"] == pytest.approx(test.balanced_accuracy)
    assert held_out_accuracy(record) == pytest.approx(test.accuracy)
    assert f"{test.accuracy:.3f}" in [cell[0] for cell in describe(record)]
    assert "Balanced accuracy" in held_out_figures(record.summary)

    capsys.readouterr()
    assert cli.main(["evaluate", str(run_dir), "--on", "test"]) == 0
    out = capsys.readouterr().out
    assert "9 test images" in out and "Balanced accuracy" in out and "Macro-F1" in out


def test_a_test_folder_with_other_classes_is_refused_clearly(weighted_run, make_image_tree, capsys):
    _, run_dir, _ = weighted_run
    other = make_image_tree("other-classes", classes=("red", "purple"), per_class=2)
    with pytest.raises(RunError, match="classes differ from the run's: purple is not among"):
        evaluate_run(run_dir, on="test", test_folder=other)
    capsys.readouterr()
    assert cli.main(["evaluate", str(run_dir), "--test", str(other)]) == 2
    assert "purple" in capsys.readouterr().err
    assert cli.main(["evaluate", str(run_dir), "--test", str(other / "missing")]) == 2

    subset = make_image_tree("subset", classes=("red", "green"), per_class=2)
    items, notes, source = evaluation.test_items(RunConfig.from_dict(json.loads((run_dir / "config.json").read_text())),
                                      ("blue", "green", "red"), subset)
    assert len(items) == 4 and source == str(subset) and "no images of blue" in notes[0]
