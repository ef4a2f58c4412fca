"""Evaluation: the metrics on hand-computed cases, and evaluate_run on a real trained run."""

from pathlib import Path

import numpy as np
import pytest
from fixture_images import write_image_tree

from workbench import cli
from workbench.core.analysis.evaluation import (
    EVALUATION_FILE,
    confusion_matrix,
    evaluate_predictions,
    evaluate_run,
    load_evaluation,
    per_class_scores,
)
from workbench.core.base.events import RunFinished
from workbench.core.config.run import RunConfig
from workbench.core.data.scan import scan_folder
from workbench.core.data.splits import split_items
from workbench.core.runs.store import RunError
from workbench.core.train import run as training


def tiny_run_config(folder: Path) -> RunConfig:
    config = RunConfig(name="tiny")
    config.data.folder = str(folder)
    config.data.image_size = 32
    config.data.validation_split = 0.25
    config.backbone.width = 0.35
    config.backbone.weights = "none"
    config.freeze.policy = "top_blocks"
    config.freeze.blocks = 1
    config.training.epochs = 1
    config.training.batch_size = 8
    return config


def train_tiny_run(tmp_path_factory) -> Path:
    """One tiny trained run per session: each test module's fixture returns the same folder."""
    root = tmp_path_factory.getbasetemp() / "trained-run"
    existing = sorted(root.glob("runs/*/model.keras"))
    if existing:
        return existing[0].parent
    data = write_image_tree(root / "data")
    result = training.run(tiny_run_config(data), lambda event: None, runs_dir=root / "runs")
    assert isinstance(result, RunFinished), result
    return Path(result.run_dir)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    return train_tiny_run(tmp_path_factory)


# ---- pure metrics -------------------------------------------------------------

def test_confusion_matrix_matches_a_hand_computed_case():
    y_true = [0, 0, 1, 1, 2, 2, 2]
    y_pred = [0, 1, 1, 1, 0, 2, 2]
    matrix = confusion_matrix(y_true, y_pred, 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 2]]
    assert matrix.sum() == len(y_true)
    assert confusion_matrix([], [], 2).tolist() == [[0, 0], [0, 0]]


def test_confusion_matrix_refuses_labels_outside_the_classes():
    with pytest.raises(ValueError, match="class indices"):
        confusion_matrix([0, 3], [0, 1], 3)
    with pytest.raises(ValueError, match="predictions"):
        confusion_matrix([0, 1], [0], 3)


def test_per_class_scores_on_a_hand_computed_case_with_a_class_never_predicted():
    confusion = np.array([[2, 1, 0], [0, 3, 0], [1, 1, 0]])  # class "c" is never predicted
    a, b, c = per_class_scores(confusion, ["a", "b", "c"])
    assert a.name == "a" and a.support == 3
    assert a.precision == pytest.approx(2 / 3) and a.recall == pytest.approx(2 / 3) and a.f1 == pytest.approx(2 / 3)
    assert b.precision == pytest.approx(3 / 5) and b.recall == pytest.approx(1.0)
    assert b.f1 == pytest.approx(2 * 0.6 * 1.0 / 1.6) and b.support == 3
    assert (c.precision, c.recall, c.f1, c.support) == (0.0, 0.0, 0.0, 2)


def test_per_class_scores_of_a_class_without_images_are_zero_not_an_error():
    (_, empty) = per_class_scores(np.array([[4, 0], [0, 0]]))
    assert empty.name == "1" and (empty.precision, empty.recall, empty.f1, empty.support) == (0.0, 0.0, 0.0, 0)


def test_evaluate_predictions_counts_top_k_and_sorts_mistakes_by_confidence():
    probs = np.array([
        [0.7, 0.2, 0.1],  # true 0: right
        [0.1, 0.3, 0.6],  # true 1: wrong (0.6), second in top-2
        [0.9, 0.05, 0.05],  # true 2: wrong (0.9), last
        [0.2, 0.5, 0.3],  # true 1: right
    ])
    ev = evaluate_predictions(probs, [0, 1, 2, 1], ["a", "b", "c"], ["p0", "p1", "p2", "p3"], top_k=2)
    assert ev.accuracy == pytest.approx(0.5)
    assert ev.top_k == 2 and ev.top_k_accuracy == pytest.approx(0.75)
    assert [(m.path, m.true_label, m.predicted_label) for m in ev.mistakes] == [("p2", "c", "a"), ("p1", "b", "c")]
    assert ev.mistakes[0].confidence == pytest.approx(0.9)
    assert ev.confusion.sum() == 4
    assert evaluate_predictions(probs, [0, 1, 2, 1], ["a", "b", "c"], top_k=10).top_k == 3


# ---- a trained run ------------------------------------------------------------

def test_evaluate_run_rebuilds_the_runs_validation_split(trained_run):
    ev = evaluate_run(trained_run)

    config = RunConfig.from_json((trained_run / "config.json").read_text())
    report = scan_folder(config.data.folder)
    _, val = split_items(report.items, config.data.validation_split, config.training.seed)
    assert ev.class_names == ("blue", "green", "red")
    assert ev.paths == [p for p, _ in val]
    assert ev.labels.tolist() == [label for _, label in val]
    assert ev.count == 9 and ev.confusion.sum() == 9 and ev.confusion.shape == (3, 3)
    assert [s.support for s in ev.per_class] == [3, 3, 3]
    assert ev.accuracy == pytest.approx(np.trace(ev.confusion) / 9)
    assert ev.top_k == 3 and ev.top_k_accuracy == 1.0  # 3 of 3 classes
    assert ev.probabilities.shape == (9, 3)
    assert len(ev.mistakes) == 9 - np.trace(ev.confusion)
    assert [m.confidence for m in ev.mistakes] == sorted((m.confidence for m in ev.mistakes), reverse=True)
    assert ev.notes == []

    saved = load_evaluation(trained_run)
    assert (trained_run / EVALUATION_FILE).is_file() and saved is not None
    assert saved.confusion.tolist() == ev.confusion.tolist() and saved.per_class == ev.per_class
    assert saved.paths == ev.paths and np.allclose(saved.probabilities, ev.probabilities, atol=1e-5)


def test_evaluate_run_explains_a_missing_run_or_model(tmp_path):
    with pytest.raises(RunError, match="run folder not found"):
        evaluate_run(tmp_path / "nope")
    (tmp_path / "empty-run").mkdir()
    with pytest.raises(RunError, match="no trained model"):
        evaluate_run(tmp_path / "empty-run")


def test_cli_evaluate_prints_the_scores_and_exits_0(trained_run, capsys):
    code = cli.main(["evaluate", trained_run.name, "--runs-dir", str(trained_run.parent), "--top-k", "2"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Accuracy" in out and "Top-2 accuracy" in out and "Confusion matrix" in out
    assert all(name in out for name in ("blue", "green", "red"))


def test_cli_evaluate_of_a_missing_run_exits_2_without_traceback(tmp_path, capsys):
    assert cli.main(["evaluate", "no-such-run", "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no-such-run" in err and "Traceback" not in err
