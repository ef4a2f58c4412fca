"""The Dropout lab's pieces: DropBlock's rate ramp, and the stratified k-fold split.

(DropBlock itself, contiguous blocks at about the rate in training and the identity in
inference, is tested in test_model.py.)
"""

import threading
from pathlib import Path

import keras
import numpy as np
import pytest

from workbench.core.base.events import Message, RunFinished
from workbench.core.config.run import RunConfig
from workbench.core.config.validate import validate
from workbench.core.data.pipeline import prepare_data
from workbench.core.data.scan import scan_folder
from workbench.core.data.splits import kfold_split, split_for
from workbench.core.engine.dropout import make_ramp_callback, ramp_rate
from workbench.core.engine.layers import DropBlock2D
from workbench.core.engine.saving import load_model
from workbench.core.train import run as training


def small_model(rate=0.4):
    inputs = keras.Input((6, 6, 2))
    x = DropBlock2D(rate, 2, seed=1, name="block")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))


def rate_of(model) -> float:
    return float(keras.ops.convert_to_numpy(model.get_layer("block").rate))


# ---- the ramp ----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("epoch", "batch", "expected"),
    [(0, 0, 0.0), (1, 0, 0.1), (2, 0, 0.2), (2, 3, 0.4 * 13 / 20), (3, 4, 0.4 * 19 / 20), (4, 0, 0.4), (9, 2, 0.4)],
)
def test_the_ramp_sets_the_rate_expected_at_each_epoch_and_batch(epoch, batch, expected):
    assert ramp_rate(0.4, 4, 5, epoch, batch) == pytest.approx(expected)
    model = small_model()
    ramp = make_ramp_callback(model, 0.4, epochs=4, steps_per_epoch=5)
    ramp.set_model(model)
    ramp.on_epoch_begin(epoch)
    ramp.on_train_batch_begin(batch)
    assert rate_of(model) == pytest.approx(expected)
    ramp.on_epoch_end(epoch)  # a model saved at an epoch's end carries the full rate
    assert rate_of(model) == pytest.approx(0.4)


def test_the_ramp_drives_a_real_fit_batch_by_batch():
    model = small_model()
    model.compile("adam", "categorical_crossentropy")
    seen, at_epoch_end = [], []

    class Recorder(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(rate_of(self.model))

        def on_epoch_end(self, epoch, logs=None):
            at_epoch_end.append(rate_of(self.model))

    x = np.ones((4, 6, 6, 2), "float32")
    y = np.eye(2, dtype="float32")[[0, 1, 0, 1]]
    ramp = make_ramp_callback(model, 0.4, epochs=2, steps_per_epoch=2)
    model.fit(x, y, batch_size=2, epochs=3, callbacks=[ramp, Recorder()], verbose=0, shuffle=False)
    np.testing.assert_allclose(seen, [0.0, 0.1, 0.2, 0.3, 0.4, 0.4], atol=1e-6)
    np.testing.assert_allclose(at_epoch_end, [0.4, 0.4, 0.4], atol=1e-6)
    assert rate_of(model) == pytest.approx(0.4)


def small_image_tree(root: Path, per_class: int = 12) -> Path:
    """Three colour classes of noisy 32 px PNGs; like conftest's image_tree, but importable from any
    test module (`from conftest import` finds tests/ui/conftest.py when both folders are collected)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for name, colour in (("blue", (40, 60, 200)), ("green", (40, 180, 60)), ("red", (200, 40, 40))):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = np.clip(np.array(colour) * rng.uniform(0.7, 1.3) + rng.normal(0, 25, (32, 32, 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{i:03d}.png")
    return root


def vgg_config(folder, **changes) -> RunConfig:
    """VGG16 at 32 px from random weights: a run takes ~2 s, and its features are not ~0 as MobileNets' are."""
    config = RunConfig(name="lab")
    config.data.folder = str(folder)
    config.data.image_size = 32
    config.backbone.name = "VGG16"
    config.backbone.weights = "none"
    config.freeze.policy = "all"
    config.training.epochs = 1
    config.training.batch_size = 8
    return config.replace(**changes)


def test_a_run_with_a_ramp_says_so_and_saves_the_full_rate(image_tree, tmp_path):
    config = vgg_config(image_tree, **{"dropout.kind": "dropblock", "dropout.rate": 0.3, "dropout.ramp_epochs": 2,
                                       "dropout.placement": ["feature_map"]})
    events = []
    result = training.run(config, events.append, threading.Event(), runs_dir=tmp_path)
    assert isinstance(result, RunFinished), result
    assert any(isinstance(e, Message) and "ramps up from 0 to 0.3 over 2" in e.text for e in events)
    saved = load_model(Path(result.run_dir) / "model.keras", compile=False)
    block = saved.get_layer("dropout_feature_map")
    assert isinstance(block, DropBlock2D) and float(keras.ops.convert_to_numpy(block.rate)) == pytest.approx(0.3)
    (Path(result.run_dir) / "model.keras").unlink()  # ~60 MB


# ---- k-fold -------------------------------------------------------------------------

def items(counts):
    return [(f"{label}/{i}.png", label) for label, n in enumerate(counts) for i in range(n)]


def test_kfold_parts_are_disjoint_stratified_balanced_and_cover_everything():
    data = items([10, 7, 5])
    folds = [kfold_split(data, 3, k, seed=4) for k in range(3)]
    vals = [set(val) for _, val in folds]
    assert set().union(*vals) == {tuple(i) for i in data}
    assert sum(len(v) for v in vals) == len(data)  # disjoint
    sizes = sorted(len(v) for v in vals)
    assert sizes[-1] - sizes[0] <= 1  # 22 images: 8, 7, 7
    for train, val in folds:
        assert set(train).isdisjoint(val) and len(train) + len(val) == len(data)
        for label, n in enumerate([10, 7, 5]):
            in_val = sum(1 for _, lab in val if lab == label)
            assert n // 3 <= in_val <= -(-n // 3)  # each class spread evenly over the folds
    assert kfold_split(data, 3, 1, seed=4) == folds[1]  # same seed, same folds
    assert kfold_split(data, 3, 1, seed=5) != folds[1]
    with pytest.raises(ValueError):
        kfold_split(data, 3, 3, seed=0)


def test_prepare_data_validates_on_the_chosen_fold(image_tree):
    data = vgg_config(image_tree, **{"data.folds": 3, "data.fold": 2}).data
    prepared = prepare_data(data, 8, seed=1)
    assert not prepared.problems
    assert (prepared.train_count, prepared.val_count) == (24, 12)
    report = scan_folder(image_tree)
    assert split_for(data, report.items, 1) == kfold_split(report.items, 3, 2, 1)


def test_kfold_settings_are_validated(image_tree, tmp_path):
    def problems(**changes):
        return {(p.field, p.message) for p in validate(vgg_config(image_tree, **changes))}

    assert not problems(**{"data.folds": 4, "data.fold": 3, "data.validation_split": 0.0})  # the split is unused
    assert any(f == "data.fold" for f, _ in problems(**{"data.folds": 4, "data.fold": 4}))
    assert any(f == "data.folds" and "validation folder" in m
               for f, m in problems(**{"data.folds": 2, "data.validation_folder": str(image_tree)}))
    too_many = problems(**{"data.folds": 13})
    assert ("data.folds", "class 'red' has 12 image(s): 13-fold cross-validation needs at least 13 per class") in too_many
    assert any(f == "dropout.ramp_epochs" for f, _ in problems(**{"dropout.ramp_epochs": -1}))
    prepared = prepare_data(vgg_config(image_tree, **{"data.folds": 13}).data, 8, seed=1)
    assert any("needs at least 13 per class" in p.message for p in prepared.problems)
