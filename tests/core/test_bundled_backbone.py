"""The backbone bundled for the demo (resources/backbones): it ships, loads as a weights file, and transfers.

The demo run uses `ui/defaults.py: first_launch_config`, which is Qt-free (it is the config the
app opens with); KERAS_HOME points to an empty folder, as on a computer without ImageNet weights.
"""

from __future__ import annotations

import threading

import keras
import numpy as np
import pytest

from workbench.core.base.events import EpochEnd, RunFinished
from workbench.core.config.run import RunConfig
from workbench.core.config.validate import validate
from workbench.core.engine.model import build_model
from workbench.core.engine.weights import WeightsMismatch
from workbench.core.runs.saved_backbones import (
    DEMO_BACKBONE_FILE,
    available_backbones,
    bundled_backbones,
    bundled_demo_backbone,
    is_bundled_backbone,
    saved_backbone_info,
)
from workbench.core.train import run as training
from workbench.resources import resource_path


@pytest.fixture
def no_imagenet(tmp_path, monkeypatch):
    """An empty Keras cache: the ImageNet file is not here (as offline on a fresh computer)."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))


def demo_config() -> RunConfig:
    from workbench.ui.defaults import first_launch_config

    return first_launch_config()


def test_the_demo_backbone_ships_small_with_its_recipe():
    path = bundled_demo_backbone()
    assert path is not None and path == resource_path("backbones", DEMO_BACKBONE_FILE)
    assert path in bundled_backbones() and is_bundled_backbone(str(path))
    assert path.stat().st_size < 4_000_000  # a few MB at most
    info = saved_backbone_info(path)
    assert (info["backbone"], info["width"], info["image_size"]) == ("MobileNetV2", 0.35, 64)
    readme = resource_path("backbones", "README.md").read_text(encoding="utf-8")
    for fact in ("dataset-fashion-mnist", "MIT", "seed", "tools/pretrain_demo_backbone.py"):
        assert fact in readme


def test_bundled_backbones_are_listed_after_the_ones_saved_from_runs(tmp_path):
    assert available_backbones(tmp_path / "runs") == bundled_backbones()
    saved = tmp_path / "runs" / "weights" / "mine.weights.h5"
    saved.parent.mkdir(parents=True)
    saved.write_bytes(b"")
    assert available_backbones(tmp_path / "runs") == [saved, *bundled_backbones()]
    assert not is_bundled_backbone(saved)


def test_the_first_launch_config_starts_from_the_bundled_backbone_frozen(no_imagenet):
    config = demo_config()
    assert config.backbone.weights == "file" and config.freeze.policy == "all"
    assert config.backbone.weights_file == str(bundled_demo_backbone())
    assert validate(config) == []


def test_the_bundled_backbone_loads_through_the_ordinary_weights_file_path(no_imagenet):
    config = demo_config()
    model = build_model(config, 4)
    loaded = model.get_layer("backbone")
    keras.utils.set_random_seed(0)
    fresh = build_model(config.replace(**{"backbone.weights": "none", "backbone.weights_file": ""}), 4)
    pairs = list(zip(loaded.weights, fresh.get_layer("backbone").weights, strict=True))
    assert pairs and all(a.shape == b.shape for a, b in pairs)
    kernels = [(a, b) for a, b in pairs if "kernel" in a.path]
    assert all(not np.allclose(a.numpy(), b.numpy()) for a, b in kernels)  # learned, not random
    # Another width does not fit: the ordinary check names what differs.
    with pytest.raises(WeightsMismatch):
        build_model(config.replace(**{"backbone.width": 0.5}), 4)


def test_a_short_demo_run_transfers_far_better_than_re_initialised_weights(no_imagenet, tmp_path):
    """The first-launch config for 3 epochs on resources/demo (4 classes, chance 0.25, 48 held out),
    then the same run re-initialised: kept frozen (as Compare with zero-init trains it), and trained
    end to end (the old first launch). The bundled backbone must win clearly from the first epoch."""
    runs = tmp_path / "runs"

    def val_accuracy(config: RunConfig) -> list[float]:
        events = []
        result = training.run(config, events.append, threading.Event(), runs_dir=runs)
        assert isinstance(result, RunFinished), result
        return [e.logs["val_accuracy"] for e in events if isinstance(e, EpochEnd)]

    config = demo_config().replace(**{"training.epochs": 3})
    transferred = val_accuracy(config)
    frozen_random = val_accuracy(config.replace(**{"backbone.weights": "none", "backbone.weights_file": ""}))
    scratch = val_accuracy(config.replace(**{"backbone.weights": "none", "backbone.weights_file": "",
                                             "freeze.policy": "none", "training.learning_rate": 1e-3}))
    assert transferred[0] >= 0.6 and min(transferred) >= 0.6, transferred  # well above chance (0.25) at once
    assert transferred[-1] - frozen_random[-1] >= 0.2, (transferred, frozen_random)
    # Against the whole network trained from random weights (the old first launch, 5-10x slower):
    # clearly ahead after the first epoch, and not behind at the end.
    assert transferred[0] - scratch[0] >= 0.15, (transferred, scratch)
    assert transferred[-1] >= scratch[-1], (transferred, scratch)
