"""Transfer learning in depth: kinds of transfer (all, partial, zero) and two-phase fine-tuning."""

import csv
import threading
from pathlib import Path

import keras
import numpy as np
import pytest

from workbench.core.base.events import EpochEnd, Message, RunFinished, RunStarted
from workbench.core.config import backbone_catalogue
from workbench.core.config.derived import effective_transfer, is_pretrained
from workbench.core.config.run import RunConfig
from workbench.core.config.validate import validate
from workbench.core.engine import backbones
from workbench.core.engine.model import apply_freeze, build_model, transferred_rest
from workbench.core.engine.weights import save_backbone_weights
from workbench.core.train import run as training


def tiny_config(**changes) -> RunConfig:
    config = RunConfig(name="transfer")
    config.data.folder = "/nonexistent"
    config.data.image_size = 32
    config.backbone.name = "MobileNetV2"
    config.backbone.width = 0.35
    config.backbone.weights = "none"
    config.training.batch_size = 8
    return config.replace(**changes)


@pytest.fixture(scope="module")
def source_file(tmp_path_factory):
    """A weights file of a (random, but fixed) MobileNetV2 0.35 backbone: the 'pretrained' source."""
    keras.utils.set_random_seed(1)
    source = build_model(tiny_config(), 3)
    path = save_backbone_weights(source, tmp_path_factory.mktemp("w") / "source.weights.h5")
    return path, {layer.name: layer.get_weights() for layer in source.get_layer("backbone").layers if layer.weights}


def _same(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def _bns(layers):
    return [layer for layer in layers if isinstance(layer, keras.layers.BatchNormalization)]


@pytest.mark.parametrize("kind", ["all", "partial_reinit", "partial_finetune", "zero"])
def test_each_kind_of_transfer_keeps_or_replaces_the_expected_weights(source_file, kind):
    path, source = source_file
    transfer, _, rest = kind.partition("_")
    config = tiny_config(**{"backbone.weights": "file", "backbone.weights_file": str(path),
                            "backbone.transfer": transfer, "backbone.keep_blocks": 3,
                            "backbone.rest": rest or "reinit"})
    assert validate(config, check_paths=False) == [] or [p.field for p in validate(config, check_paths=False)] == [
        "data.folder"]
    keras.utils.set_random_seed(2)
    model = build_model(config, 3)
    backbone = model.get_layer("backbone")
    spec = backbone_catalogue.get_backbone("MobileNetV2")
    rest_ids = {id(layer) for layer in transferred_rest(backbone, spec, 3)}
    kept = [layer for layer in backbone.layers if layer.weights and id(layer) not in rest_ids]
    later = [layer for layer in backbone.layers if layer.weights and id(layer) in rest_ids]
    assert kept and later

    def equal(layers):
        return [_same(layer.get_weights(), source[layer.name]) for layer in layers]

    if kind in ("all", "partial_finetune"):
        assert all(equal(kept)) and all(equal(later))
    elif kind == "partial_reinit":
        assert all(equal(kept))
        convs = [layer for layer in later if not isinstance(layer, keras.layers.BatchNormalization)]
        assert not any(equal(convs))
        assert {bn.momentum for bn in _bns(later)} == {0.9} and {bn.momentum for bn in _bns(kept)} == {0.999}
    else:  # zero: random weights everywhere, like weights "none"
        assert not is_pretrained(config.backbone)
        convs = [layer for layer in kept + later if not isinstance(layer, keras.layers.BatchNormalization)]
        assert not any(equal(convs))

    # Partial transfer trains the rest and freezes the kept blocks, whatever the policy.
    summary = apply_freeze(model, config.freeze, spec, pretrained=is_pretrained(config.backbone),
                           transfer=config.backbone if transfer == "partial" else None)
    if transfer == "partial":
        assert not any(layer.trainable_weights for layer in kept)
        convs = [layer for layer in later if not isinstance(layer, keras.layers.BatchNormalization)]
        assert all(layer.trainable_weights for layer in convs)
        # Re-initialised BatchNorm learns its statistics; fine-tuned pretrained BatchNorm stays frozen.
        assert all(bn.trainable for bn in _bns(later)) == (rest == "reinit")
        assert summary.params_trainable > 0


def test_zero_transfer_is_weights_none_and_partial_needs_pretrained_weights():
    assert effective_transfer(tiny_config().backbone) == "zero"
    assert effective_transfer(tiny_config(**{"backbone.weights": "imagenet", "backbone.transfer": "zero"}).backbone) \
        == "zero"
    assert effective_transfer(tiny_config(**{"backbone.weights": "imagenet"}).backbone) == "all"
    fields = {p.field for p in validate(tiny_config(**{"backbone.transfer": "partial"}), check_paths=False)}
    assert "backbone.transfer" in fields
    # zero transfer needs no weights file even when the source says "file"
    fields = {p.field for p in validate(tiny_config(**{"backbone.weights": "file", "backbone.transfer": "zero"}),
                                        check_paths=False)}
    assert "backbone.weights_file" not in fields
    bad = tiny_config(**{"backbone.weights": "imagenet", "backbone.transfer": "partial", "backbone.keep_blocks": 99,
                         "backbone.rest": "x"})
    assert {"backbone.keep_blocks", "backbone.rest"} <= {p.field for p in validate(bad, check_paths=False)}
    two = tiny_config(**{"training.two_phase": True, "training.epochs": 2, "training.phase1_epochs": 2})
    assert {"training.phase1_epochs", "freeze.policy"} <= {p.field for p in validate(two, check_paths=False)}


def test_two_phase_unfreezes_at_the_switch_lowers_the_rate_and_continues_the_epochs(
        image_tree, tmp_path, vgg_weights):
    # Phase 1 trains the head on cached features, phase 2 the full model: both paths, one run.
    config = _vgg_config(image_tree, vgg_weights, **{
        "training.epochs": 3, "training.two_phase": True, "training.phase1_epochs": 1,
        "training.learning_rate": 1e-3, "training.finetune_lr_factor": 0.1,
        "freeze.policy": "top_layers", "freeze.layers": 4,
    })
    assert [p for p in validate(config)] == []
    events = []
    result = training.run(config, events.append, threading.Event(), runs_dir=tmp_path)
    assert isinstance(result, RunFinished), result
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    assert [e.epoch for e in epochs] == [0, 1, 2]
    rates = [e.logs["learning_rate"] for e in epochs]
    assert rates[0] == pytest.approx(1e-3) and rates[1] == pytest.approx(1e-4) and rates[2] == pytest.approx(1e-4)
    assert any(isinstance(e, Message) and e.text.startswith("Computed backbone features") for e in events)
    phase = [e for e in events if isinstance(e, Message) and e.kind == "phase"]
    assert len(phase) == 1 and phase[0].epoch == 1
    started = next(e for e in events if isinstance(e, RunStarted))
    # Phase 1 trains the head only (one Dense layer); phase 2 adds the top 4 backbone layers.
    assert started.layers_trainable == 1
    assert "5 of" in phase[0].text
    # The metrics file holds all epochs, numbered on across the phases.
    rows = list(csv.DictReader((Path(result.run_dir) / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]



def test_a_two_phase_run_stopped_at_the_switch_resumes_into_phase_2(image_tree, tmp_path, vgg_weights):
    """The checkpoint written at the switch holds phase 1's freezing: the resumed run must still fine-tune."""
    config = _vgg_config(image_tree, vgg_weights, **{
        "training.epochs": 2, "training.two_phase": True, "training.phase1_epochs": 1,
        "freeze.policy": "top_layers", "freeze.layers": 4})
    stop, first = threading.Event(), []

    def emit(event):
        first.append(event)
        if isinstance(event, EpochEnd):
            stop.set()

    result = training.run(config, emit, stop, runs_dir=tmp_path)
    assert isinstance(result, RunFinished) and result.stopped and result.epochs_done == 1, result
    assert not any(isinstance(e, Message) and e.kind == "phase" for e in first)
    events = []
    resumed = training.resume(result.run_dir, events.append)
    assert isinstance(resumed, RunFinished) and resumed.epochs_done == 2, resumed
    phase = [e for e in events if isinstance(e, Message) and e.kind == "phase"]
    assert len(phase) == 1 and phase[0].epoch == 1 and "5 of" in phase[0].text
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    assert [e.epoch for e in epochs] == [1] and epochs[0].logs["learning_rate"] == pytest.approx(1e-4)

# ---- feature caching ----------------------------------------------------------------------

def _vgg_config(folder, source, **changes) -> RunConfig:
    """VGG16 at 32 px: non-degenerate features from a random (but fixed, file-loaded) backbone."""
    return tiny_config(**{
        "data.folder": str(folder), "data.validation_split": 0.25, "backbone.name": "VGG16",
        "backbone.width": 1.0, "backbone.weights": "file", "backbone.weights_file": str(source),
        "freeze.policy": "all", "training.epochs": 2, **changes})


@pytest.fixture(scope="module")
def vgg_weights(tmp_path_factory):
    keras.utils.set_random_seed(3)
    path = tmp_path_factory.mktemp("vgg") / "vgg.weights.h5"
    save_backbone_weights(backbones.build_backbone("VGG16", 32, 1.0), path)
    return path


def test_feature_cache_is_reused_rebuilt_on_a_new_size_and_the_saved_model_is_the_trained_head(
        image_tree, tmp_path, vgg_weights, monkeypatch):
    from workbench.core.engine import features
    from workbench.core.engine.saving import load_model

    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    config = _vgg_config(image_tree, vgg_weights)

    def run(config):
        events = []
        result = training.run(config, events.append, threading.Event(), runs_dir=tmp_path / "runs")
        assert isinstance(result, RunFinished), result
        texts = [e.text for e in events if isinstance(e, Message)]
        return result, texts, [e for e in events if isinstance(e, EpochEnd)]

    first, texts, epochs = run(config)
    assert any(t.startswith("Computed backbone features") for t in texts)
    assert not any(t.startswith("Reusing") for t in texts)
    assert [e.epoch for e in epochs] == [0, 1]
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2  # train and val

    second, texts, _ = run(config)
    assert sum(t.startswith("Reusing cached backbone features") for t in texts) == 2
    assert not any(t.startswith("Computed") for t in texts)

    _, texts, _ = run(config.replace(**{"data.image_size": 40}))
    assert sum(t.startswith("Computed backbone features") for t in texts) == 2
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 4

    # The saved full model is head(backbone(x)) with the trained head.
    model = load_model(Path(second.run_dir) / "model.keras", compile=False)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (4, 32, 32, 3)).astype("float32")
    full = np.asarray(model(x, training=False))
    split = np.asarray(features.head_model(model)(features.feature_extractor(model)(x, training=False)))
    np.testing.assert_allclose(full, split, rtol=1e-5, atol=1e-6)
    fresh = build_model(config, 3)
    assert not np.allclose(np.asarray(fresh(x, training=False)), full, atol=1e-4)  # the head did train


def test_a_resumed_run_on_cached_features_keeps_its_optimizer_state(image_tree, tmp_path, vgg_weights, monkeypatch):
    """The head trains with the full model's optimizer, so checkpoints hold its state and a resume goes on."""
    from workbench.core.engine import checkpoint

    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    config = _vgg_config(image_tree, vgg_weights, **{"training.epochs": 3})
    stop = threading.Event()
    events = []

    def emit(event):
        events.append(event)
        if isinstance(event, EpochEnd) and event.epoch == 0:
            stop.set()  # stops after the first epoch: the second one ends at its first batch

    first = training.run(config, emit, stop, runs_dir=tmp_path / "runs")
    assert isinstance(first, RunFinished) and first.stopped
    steps = next(e for e in events if isinstance(e, RunStarted)).steps_per_epoch
    saved, state = checkpoint.load(Path(first.run_dir) / "checkpoint.keras")
    assert state["epochs_done"] == 1
    before = int(saved.optimizer.iterations.numpy())
    assert before >= steps  # the head's steps were counted by the optimizer the checkpoint holds
    resumed = training.run(config, lambda e: None, threading.Event(), resume_from=first.run_dir)
    assert isinstance(resumed, RunFinished) and resumed.epochs_done == 3
    model, _ = checkpoint.load(Path(first.run_dir) / "checkpoint.keras")
    # Adam's state ran on from the checkpoint: its step count grew by the two epochs trained after it.
    assert int(model.optimizer.iterations.numpy()) >= before + 2 * steps


def test_training_on_cached_features_matches_training_the_frozen_model(image_tree, tmp_path, vgg_weights, monkeypatch):
    """Same data, same order, same initial head: the head's weights after one epoch agree."""
    import tensorflow as tf

    from workbench.core.data import pipeline
    from workbench.core.engine import features
    from workbench.core.engine.compile import make_optimizer

    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    config = _vgg_config(image_tree, vgg_weights, **{"dropout.rate": 0.0, "training.batch_size": 27})
    data = pipeline.prepare_data(config.data, 27, 0)
    (x, y), _ = features.load_or_compute(build_model(config, 3), config, data, lambda e: None)

    def trained(on_features: bool):
        keras.utils.set_random_seed(5)
        model = build_model(config, 3)
        model.get_layer("backbone").trainable = False
        loss = keras.losses.CategoricalCrossentropy()
        if on_features:
            head = features.head_model(model)
            head.compile(optimizer=make_optimizer(config), loss=loss)
            head.fit(x, y, batch_size=27, epochs=1, shuffle=False, verbose=0)
        else:
            images = np.concatenate([np.asarray(i) for i, _ in data.train.unbatch().batch(1000).take(1)])
            model.compile(optimizer=make_optimizer(config), loss=loss)
            # the same images in the cached order: recompute features and match them to the cache
            ext = features.feature_extractor(model)
            f = np.asarray(ext(images, training=False))
            order = [int(np.argmin(((f - row) ** 2).reshape(len(f), -1).sum(1))) for row in x]
            model.fit(tf.constant(images[order]), y, batch_size=27, epochs=1, shuffle=False, verbose=0)
        return model.get_layer("predictions").get_weights()[0]

    np.testing.assert_allclose(trained(True), trained(False), rtol=1e-4, atol=1e-5)


def test_a_runs_backbone_saved_by_name_is_a_weights_source_for_a_new_run(image_tree, tmp_path, vgg_weights):
    from workbench.core.engine.saving import load_model
    from workbench.core.engine.weights import WeightsUnavailable, save_run_backbone
    from workbench.core.runs.saved_backbones import saved_backbones

    config = _vgg_config(image_tree, vgg_weights, **{"training.epochs": 1, "freeze.policy": "top_layers",
                                                     "freeze.layers": 1})
    result = training.run(config, lambda e: None, threading.Event(), runs_dir=tmp_path / "runs")
    assert isinstance(result, RunFinished), result
    path = save_run_backbone(result.run_dir, "my colours/v1", runs_dir=tmp_path / "runs")
    assert path.name == "my-colours-v1.weights.h5" and saved_backbones(tmp_path / "runs") == [path]
    from workbench.core.runs.store import RunStore

    assert len(RunStore(tmp_path / "runs").list()) == 1  # the weights folder is not a run

    trained = load_model(Path(result.run_dir) / "model.keras", compile=False).get_layer("backbone")
    target = build_model(_vgg_config(image_tree, path), 5)
    for a, b in zip(trained.get_weights(), target.get_layer("backbone").get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(WeightsUnavailable):
        save_run_backbone(tmp_path, "x", runs_dir=tmp_path / "runs")


def test_the_freeze_map_lists_layers_by_block_and_a_custom_list_trains_exactly_those():
    from workbench.core.config.run import FreezeConfig
    from workbench.core.engine.model import freeze_map

    spec = backbone_catalogue.get_backbone("MobileNetV2")
    model = build_model(tiny_config(), 3)
    apply_freeze(model, FreezeConfig(policy="top_blocks", blocks=2), spec, pretrained=True)
    rows = freeze_map(model, spec)
    assert rows[0].block == "stem" and rows[-1].block == "top" and all(r.params > 0 for r in rows)
    assert {r.block for r in rows if r.trainable} == {"block 16", "top"}
    assert not any(r.trainable for r in rows if r.type == "BatchNormalization")  # pretrained BN stays frozen
    chosen = [r.name for r in rows if r.block == "block 3" and r.type != "BatchNormalization"]
    summary = apply_freeze(model, FreezeConfig(policy="custom", trainable_layers=chosen), spec, pretrained=True)
    assert sorted(r.name for r in freeze_map(model, spec) if r.trainable) == sorted(chosen)
    assert summary.layers_trainable == len(chosen) + 1  # and the head
    with pytest.raises(ValueError, match="lacks"):
        apply_freeze(model, FreezeConfig(policy="custom", trainable_layers=["nope"]), spec, pretrained=True)
    fields = {p.field for p in validate(tiny_config(**{"freeze.policy": "custom"}), check_paths=False)}
    assert "freeze.trainable_layers" in fields


# ---- what transfer is worth ---------------------------------------------------------------------

def test_a_backbone_pretrained_on_related_classes_beats_zero_init_on_a_small_target_set(make_image_tree, tmp_path):
    """Pretrain on four colours of striped images, save the backbone by name, then learn two new colours.

    Source: red, green, blue and yellow, 30 images each. The source run trains the top six
    blocks of a MobileNetV2 x0.35 at 32 px from random weights (tracing the whole network's
    gradient would triple the time). Target: purple and cyan, only 6 training images each,
    judged on 20 held-out images each. Both target runs keep the backbone frozen (the
    default policy) with the same seed and epochs; only the transfer differs.
    """
    from workbench.core.engine.weights import save_run_backbone

    source = make_image_tree("source", classes=("red", "green", "blue", "yellow"), per_class=30, seed=0)
    target = make_image_tree("target", classes=("purple", "cyan"), per_class=6, seed=1)
    held_out = make_image_tree("held-out", classes=("purple", "cyan"), per_class=20, seed=2)
    runs = tmp_path / "runs"

    def train(config: RunConfig) -> tuple[RunFinished, list[float]]:
        events = []
        result = training.run(config, events.append, threading.Event(), runs_dir=runs)
        assert isinstance(result, RunFinished), result
        return result, [e.logs["val_accuracy"] for e in events if isinstance(e, EpochEnd)]

    pretrain, accuracy = train(tiny_config(**{
        "name": "source", "data.folder": str(source), "data.validation_split": 0.25,
        "freeze.policy": "top_blocks", "freeze.blocks": 6, "training.epochs": 3, "training.batch_size": 16}))
    assert accuracy[-1] >= 0.8, accuracy  # the source classes were learned: there is something to transfer
    weights = save_run_backbone(pretrain.run_dir, "colours", runs_dir=runs)

    target_config = tiny_config(**{
        "data.folder": str(target), "data.validation_folder": str(held_out), "backbone.weights": "file",
        "backbone.weights_file": str(weights), "freeze.policy": "all", "training.epochs": 6,
        "training.batch_size": 4, "training.seed": 7})
    _, transferred = train(target_config.replace(name="transfer"))
    _, zero = train(target_config.replace(**{"name": "zero-init", "backbone.transfer": "zero"}))
    assert transferred[-1] >= 0.9, transferred
    assert transferred[-1] - zero[-1] >= 0.3, (transferred, zero)
