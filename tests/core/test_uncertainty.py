"""Active learning's ranking (core/analysis/uncertainty.py) and the fix-the-data review (review.py),
on the session's tiny trained run (MobileNetV2 x0.35 with a dropout head, 1 epoch), and the CLI."""

import csv
import math

import keras
import numpy as np
import pytest
from fixture_images import write_image_tree
from test_evaluation import train_tiny_run

from workbench import cli
from workbench.core.analysis.predict import RunModel, load_run_model
from workbench.core.analysis.review import review_images, sort_reviews
from workbench.core.analysis.uncertainty import NO_DROPOUT_NOTE, rank_unlabelled
from workbench.core.engine import dropout
from workbench.core.runs.store import RunError


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    return train_tiny_run(tmp_path_factory)  # the same run test_evaluation.py uses: never edit its data


@pytest.fixture(scope="module")
def run(trained_run):
    return load_run_model(trained_run)


@pytest.fixture
def unlabelled(tmp_path):
    """Nine images of the run's classes in one folder (and a sub-folder), plus two broken files."""
    folder = write_image_tree(tmp_path / "unlabelled", per_class=3, seed=9)
    (folder / "notes.jpg").write_text("not a picture")
    (folder / "red" / "cut.png").write_bytes((folder / "red" / "000.png").read_bytes()[:120])
    return folder


def test_mutual_information_on_hand_made_passes():
    sure_and_agreeing = np.array([[[1.0, 0.0]], [[1.0, 0.0]]])
    sure_but_disagreeing = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])
    unsure_and_agreeing = np.array([[[0.5, 0.5]], [[0.5, 0.5]]])
    assert dropout.mutual_information(sure_and_agreeing)[0] == pytest.approx(0.0, abs=1e-6)
    assert dropout.mutual_information(sure_but_disagreeing)[0] == pytest.approx(math.log(2), abs=1e-6)
    assert dropout.mutual_information(unsure_and_agreeing)[0] == pytest.approx(0.0, abs=1e-6)
    assert dropout.entropy(unsure_and_agreeing.mean(axis=0))[0] == pytest.approx(math.log(2))


def test_rank_by_entropy_and_bald_skips_broken_images_and_writes_csv(trained_run, run, unlabelled, tmp_path):
    ranking = rank_unlabelled(run, unlabelled, mc=8, top=5)
    assert ranking.ranked == 9 and len(ranking.images) == 5 and ranking.mc_passes == 8
    assert sorted(p.rsplit("/", 1)[-1] for p, _ in ranking.broken) == ["cut.png", "notes.jpg"]
    assert "2 image(s) could not be read" in ranking.broken_text()
    entropies = [r.entropy for r in ranking.images]
    assert entropies == sorted(entropies, reverse=True)
    assert all(r.mutual_info >= 0 and 0 <= r.entropy <= math.log(3) + 1e-6 for r in ranking.images)
    assert all(r.guess in run.class_names and sum(r.probabilities) == pytest.approx(1, abs=1e-4)
               for r in ranking.images)
    assert ranking.dataset == run.config.data.folder and not ranking.notes

    by_bald = rank_unlabelled(run, unlabelled, mc=8, top=9, by="bald")
    assert by_bald.by == "bald" and len(by_bald.images) == 9
    assert any(r.mutual_info > 0 for r in by_bald.images)  # the head's dropout makes the passes differ
    assert [r.mutual_info for r in by_bald.images] == sorted((r.mutual_info for r in by_bald.images), reverse=True)

    out = tmp_path / "ranking.csv"
    assert cli.main(["rank", str(trained_run), str(unlabelled), "--mc", "4", "--top", "3", "--by", "bald",
                     "--csv", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 3 and rows[0]["rank"] == "1" and {"p_red", "p_green", "p_blue", "bald"} <= set(rows[0])
    assert cli.main(["rank", str(trained_run), str(tmp_path / "missing")]) == 2
    assert cli.main(["rank", str(trained_run), str(unlabelled), "--mc", "1"]) == 2


def test_a_model_without_dropout_is_ranked_by_one_pass_and_says_so(unlabelled):
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    ranking = rank_unlabelled(RunModel(model, ("blue", "green", "red"), 32), unlabelled, mc=10, by="bald")
    assert ranking.notes == [NO_DROPOUT_NOTE] and ranking.by == "entropy" and ranking.mc_passes == 1
    assert ranking.ranked == 9 and all(r.mutual_info == 0 for r in ranking.images)


def test_a_folder_without_images_is_bad_input(run, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no images"):
        rank_unlabelled(run, tmp_path / "empty")


def test_review_scores_every_validation_image_and_sorts_the_worst_first(trained_run, run, capsys):
    review = review_images(run, mc_passes=6)
    assert review.dataset == run.config.data.folder and review.mc_passes == 6
    assert len(review.images) == 9  # a quarter of 3 x 12, as training split it
    for r in review.images:
        assert r.loss >= 0 and 0 <= r.confidence <= 1 and r.mutual_info >= 0
        assert r.true_label in review.class_names and r.predicted_label in review.class_names
    gallery = review.gallery(uncertain=2)
    assert {r.path for r in review.images if r.wrong} <= {r.path for r in gallery}
    assert len(gallery) == sum(r.wrong for r in review.images) + min(2, sum(not r.wrong for r in review.images))
    by_loss = sort_reviews(review.images, "loss")
    assert [r.loss for r in by_loss] == sorted((r.loss for r in review.images), reverse=True)
    by_confidence = sort_reviews(review.images, "confidence")
    assert [r.confidence for r in by_confidence] == sorted(r.confidence for r in review.images)

    with pytest.raises(RunError, match="no test set"):
        review_images(run, split="test")  # the run was trained without one

    assert cli.main(["review", str(trained_run), "--mc", "4", "--sort", "entropy", "--uncertain", "3"]) == 0
    out = capsys.readouterr().out
    assert "9 validation images" in out and "data exclude" in out
