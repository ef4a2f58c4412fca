"""The GAN lab's core (issue #9): a DCGAN with discriminator dropout, its run folder, the collapse
guard, FID and the Inception Score, the dropout-rate sweep and `workbench gan`.

Everything runs on tiny 32x32 images with tiny widths, so each test takes a few seconds."""

from __future__ import annotations

import csv
import json
import pickle
import threading
from pathlib import Path

import numpy as np
import pytest
from fixture_images import noise_images, write_flat_images

from workbench import cli
from workbench.core.base.events import (
    GanEvaluated,
    GanSamples,
    GanStarted,
    GanStep,
    Message,
    RunFailed,
    RunFinished,
    event_from_dict,
    event_to_dict,
)
from workbench.core.base.problems import ConfigError
from workbench.core.config import gan_features
from workbench.core.config.gan import GanConfig, load_gan_config, save_gan_config, validate_gan
from workbench.core.config.gan_sweep import GanSweepConfig
from workbench.core.gan import fid
from workbench.core.gan import images as gan_images
from workbench.core.gan import networks as gan_networks
from workbench.core.gan import training as gan_training
from workbench.core.gan.sweep import run_gan_sweep
from workbench.core.runs.gan_sweeps import GanSweepFinished


def tiny_config(folder, **changes) -> GanConfig:
    config = GanConfig(name="tiny")
    config.data.folder = str(folder)
    config.model.latent_size = 16
    config.model.generator_width = 8
    config.model.discriminator_width = 8
    config.training.steps = 12
    config.training.batch_size = 16
    config.training.sample_every = 5
    config.training.checkpoint_every = 10
    config.training.samples = 16
    config.evaluation.samples = 20
    config.evaluation.features = "backbone"
    config.evaluation.backbone_weights = "none"
    return config.replace(**changes)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from fixture_images import write_image_tree

    return write_image_tree(tmp_path_factory.mktemp("gan") / "data", per_class=8)


@pytest.fixture(scope="module")
def finished_run(data, tmp_path_factory):
    """One complete tiny run with FID at its end (shared by the run-folder tests)."""
    runs = tmp_path_factory.mktemp("gan-runs")
    events = []
    result = gan_training.run(tiny_config(data, **{"evaluation.fid_at_end": True}), events.append, runs_dir=runs)
    return result, events


# ---- the five tests ----------------------------------------------------------------

def test_one_training_step_changes_both_networks_weights(data):
    import keras

    keras.utils.set_random_seed(1)
    config = tiny_config(data)
    model = gan_networks.Gan(config)
    before_g = [w.copy() for w in model.generator.get_weights()]
    before_d = [w.copy() for w in model.discriminator.get_weights()]
    real = np.random.default_rng(0).uniform(-1, 1, (8, 32, 32, 3)).astype(np.float32)
    d_loss, g_loss, d_real, d_fake = model.step(real)
    assert all(np.isfinite([d_loss, g_loss])) and 0 <= d_real <= 1 and 0 <= d_fake <= 1
    changed_g = [not np.array_equal(a, b) for a, b in zip(before_g, model.generator.get_weights(), strict=True)]
    changed_d = [not np.array_equal(a, b) for a, b in zip(before_d, model.discriminator.get_weights(), strict=True)]
    # every trainable weight of both networks moved (BatchNorm's moving statistics are not trainable)
    trainable_g = {id(v) for v in model.generator.trainable_weights}
    for variable, changed in zip(model.generator.weights, changed_g, strict=True):
        if id(variable) in trainable_g:
            assert changed, variable.path
    assert all(changed_d), "every discriminator weight should change in one step"


@pytest.mark.parametrize("size", [32, 64])
def test_samples_have_the_configured_shape_and_range(data, size):
    config = tiny_config(data, **{"data.image_size": size, "training.samples": 9})
    generator = gan_networks.build_generator(config)
    noise = gan_networks.fixed_noise(config)
    images = np.asarray(generator(noise, training=False))
    assert images.shape == (9, size, size, 3) and images.dtype == np.float32
    assert images.min() >= -1.0 and images.max() <= 1.0
    grid = gan_networks.sample_grid(images)
    assert grid.dtype == np.uint8 and grid.shape == (3 * size + 4, 3 * size + 4, 3)
    assert gan_networks.build_discriminator(config).output.shape[1:] == (1,)


def test_discriminator_dropout_is_active_in_training_and_not_in_inference(data):
    config = tiny_config(data, **{"dropout.rate": 0.5, "dropout.placement": ["after_conv", "before_output"]})
    d = gan_networks.build_discriminator(config)
    names = [layer.name for layer in d.layers if "dropout" in layer.name]
    assert names == ["dropout_conv_1", "dropout_conv_2", "dropout_conv_3", "dropout_output"]
    x = np.random.default_rng(1).uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32)
    train_a, train_b = np.asarray(d(x, training=True)), np.asarray(d(x, training=True))
    infer_a, infer_b = np.asarray(d(x, training=False)), np.asarray(d(x, training=False))
    assert not np.allclose(train_a, train_b), "dropout must change the output from call to call in training"
    np.testing.assert_array_equal(infer_a, infer_b)
    assert not np.allclose(train_a, infer_a)
    # placement is honoured, and rate 0 builds no dropout layer at all
    only_output = gan_networks.build_discriminator(config.replace(**{"dropout.placement": ["before_output"]}))
    assert [la.name for la in only_output.layers if "dropout" in la.name] == ["dropout_output"]
    none = gan_networks.build_discriminator(config.replace(**{"dropout.rate": 0.0}))
    assert not [la for la in none.layers if "dropout" in la.name]
    assert not [la for la in gan_networks.build_generator(config).layers if "dropout" in la.name]


def test_fid_of_a_set_against_itself_is_about_zero_and_against_a_different_set_larger(data):
    images = gan_images.find_images(str(data))
    real = fid.load_real_images(images.paths, 32, 24)
    noise = noise_images(24, 32)
    network = fid.open_network(tiny_config(data).evaluation)  # a backbone with random weights: offline
    same = fid.compare(network, real, real)
    other = fid.compare(network, real, noise)
    assert same.fid == pytest.approx(0.0, abs=1e-3)
    assert other.fid > 100 * max(same.fid, 1e-3) and other.fid > 1.0
    assert "MobileNetV2" in other.network and "random weights" in other.network
    assert other.inception_score is None  # no softmax
    # the Fréchet distance itself, against the closed form for 1-D Gaussians
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, (20000, 1)), rng.normal(3, 2, (20000, 1))
    assert fid.frechet_distance(a, b) == pytest.approx(9 + 1 + 4 - 2 * 2, rel=0.03)
    assert fid.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)


def test_the_collapse_guard_fires_on_a_broken_setup(data, tmp_path):
    """A frozen generator (learning rate 1e-9) against a fast discriminator without dropout:
    the discriminator wins within a few steps and the run stops, saying why."""
    config = tiny_config(data, **{
        "training.steps": 300, "training.generator_learning_rate": 1e-9,
        "training.discriminator_learning_rate": 1e-2, "dropout.rate": 0.0,
        "guard.d_loss_floor": 0.05, "guard.d_loss_steps": 10})
    events = []
    result = gan_training.run(config, events.append, runs_dir=tmp_path)
    assert isinstance(result, RunFailed) and result.kind == "diverged"
    assert "discriminator won" in result.error and "10 steps in a row" in result.error
    assert "dropout" in result.details and "label smoothing" in result.details
    steps = [e for e in events if isinstance(e, GanStep)]
    assert len(steps) < 100
    summary = json.loads((tmp_path / result.run_dir.split("/")[-1] / "summary.json").read_text())
    assert summary["status"] == "diverged" and summary["steps_done"] == len(steps)
    # the same setup with the guard off trains on
    off = gan_training.CollapseGuard(config.replace(**{"guard.enabled": False}))
    for step in range(1, 50):
        off.on_step(step, 0.001, 8.0)
    assert off.reason == ""


def test_mode_collapse_is_seen_in_the_samples_spread(data):
    config = tiny_config(data, **{"guard.min_steps": 20, "guard.diversity_fraction": 0.2})
    guard = gan_training.CollapseGuard(config)
    for step, spread in ((0, 0.0), (10, 0.2), (20, 0.3), (30, 0.15)):
        guard.on_samples(step, spread)
        assert guard.reason == ""
    guard.on_samples(40, 0.05)
    assert "mode collapse" in guard.reason and "step 40" in guard.reason and "step 20" in guard.reason
    nan = gan_training.CollapseGuard(config)
    nan.on_step(3, float("nan"), 1.0)
    assert "became nan at step 3" in nan.reason


# ---- the run folder, stop and pause ------------------------------------------------------------

def test_a_run_leaves_config_metrics_samples_generator_and_fid(finished_run):
    result, events = finished_run
    assert isinstance(result, RunFinished) and not result.stopped and result.epochs_done == 12
    run = Path(result.run_dir)
    assert load_gan_config(run / "config.json").training.steps == 12
    with open(run / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == list(range(1, 13))
    assert set(rows[0]) == {"step", "d_loss", "g_loss", "d_real", "d_fake", "seconds"}
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        "step-000000.png", "step-000005.png", "step-000010.png", "step-000012.png"]
    from PIL import Image

    with Image.open(run / "samples" / "step-000012.png") as png:
        assert png.size == (4 * 32 + 6, 4 * 32 + 6)
    generator = gan_networks.load_generator(run)
    assert generator.output.shape[1:] == (32, 32, 3)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["generator"] == "generator.keras"
    assert summary["fid"] == result.best["fid"] and "MobileNetV2" in summary["fid_network"]
    started = [e for e in events if isinstance(e, GanStarted)]
    assert len(started) == 1 and started[0].images == 24 and started[0].steps == 12
    assert [e.step for e in events if isinstance(e, GanSamples)] == [0, 5, 10, 12]
    assert len([e for e in events if isinstance(e, GanStep)]) == 12
    evaluated = [e for e in events if isinstance(e, GanEvaluated)]
    assert len(evaluated) == 1 and evaluated[0].fid > 0 and evaluated[0].real_images == 20
    logged = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    kinds = [r["type"] for r in logged]
    assert "GanStep" not in kinds and kinds.count("GanSamples") == 4 and kinds[-1] == "RunFinished"
    assert all(r["pixels"] == "" for r in logged if r["type"] == "GanSamples")  # the PNGs hold the pixels


def test_gan_events_are_small_picklable_values_that_round_trip(finished_run):
    _, events = finished_run
    grid = next(e for e in events if isinstance(e, GanSamples) and e.step == 5)
    assert grid.array().shape == (grid.height, grid.width, 3)
    for event in (grid, next(e for e in events if isinstance(e, GanStep)),
                  next(e for e in events if isinstance(e, GanEvaluated))):
        assert pickle.loads(pickle.dumps(event)) == event
        assert event_from_dict(json.loads(json.dumps(event_to_dict(event)))) == event


def test_stop_and_pause_act_within_one_step(data, tmp_path):
    """No step runs while paused: nothing between "Paused" and "Resumed", the step after the pause
    comes only once the pause is over, and metrics.csv (flushed at the pause) does not grow meanwhile."""
    import time

    stop, pause = threading.Event(), threading.Event()
    events, stamped = [], []
    seen_during_pause = {}

    def look_and_resume(run_dir):
        seen_during_pause["early"] = (metrics_steps(run_dir), len(steps_of(stamped)))
        time.sleep(0.5)
        seen_during_pause["late"] = (metrics_steps(run_dir), len(steps_of(stamped)))
        seen_during_pause["resumed_at"] = time.perf_counter()
        pause.clear()

    def emit(event):
        events.append(event)
        stamped.append((time.perf_counter(), event))
        if isinstance(event, GanStarted):
            seen_during_pause["run_dir"] = event.run_dir
        if isinstance(event, GanStep) and event.step == 3:
            pause.set()
            seen_during_pause["timer"] = threading.Timer(0.3, look_and_resume, (seen_during_pause["run_dir"],))
            seen_during_pause["timer"].start()
        if isinstance(event, GanStep) and event.step == 6:
            stop.set()

    result = gan_training.run(tiny_config(data, **{"training.steps": 1000}), emit, stop, pause_event=pause, runs_dir=tmp_path)
    seen_during_pause["timer"].join()
    assert isinstance(result, RunFinished) and result.stopped and result.reason == "stopped"
    assert result.epochs_done == 6
    texts = [e.text for e in events if hasattr(e, "text")]
    assert "Paused" in texts and "Resumed" in texts
    # metrics.csv is flushed at the pause and holds steps 1-3 for the whole pause; no step event either
    assert seen_during_pause["early"] == seen_during_pause["late"] == ([1, 2, 3], 3), "a step ran while paused"
    kinds = [("step", e.step) if isinstance(e, GanStep) else getattr(e, "text", None) for e in events]
    paused, resumed = kinds.index("Paused"), kinds.index("Resumed")
    assert kinds[paused - 1] == ("step", 3) and ("step", 4) in kinds[resumed:]
    assert not [k for k in kinds[paused:resumed] if isinstance(k, tuple)], "a step ran while paused"
    step_4 = next(t for t, e in stamped if isinstance(e, GanStep) and e.step == 4)
    assert step_4 > seen_during_pause["resumed_at"]
    run = Path(result.run_dir)
    assert (run / "generator.keras").is_file() and (run / "samples" / "step-000006.png").is_file()
    assert json.loads((run / "summary.json").read_text())["status"] == "stopped"


def metrics_steps(run_dir) -> list[int]:
    with open(Path(run_dir) / "metrics.csv", newline="") as fh:
        return [int(r["step"]) for r in csv.DictReader(fh)]


def steps_of(stamped) -> list:
    return [e for _, e in list(stamped) if isinstance(e, GanStep)]


def test_one_sided_label_smoothing_and_each_networks_beta_1_are_what_the_step_uses(data):
    """The discriminator is made to answer one logit c for every image: its loss is then known in closed
    form, with the real images' target 1 - smoothing and the generated ones' 0 (one-sided)."""
    import keras
    import tensorflow as tf

    def losses(smoothing: float, c: float = 2.0):
        keras.utils.set_random_seed(1)
        config = tiny_config(data, **{"training.label_smoothing": smoothing, "dropout.rate": 0.0})
        gan = gan_networks.Gan(config)
        for variable in gan.discriminator.weights:
            variable.assign(np.zeros(variable.shape, variable.dtype))
        gan.discriminator.get_layer("logit").bias.assign([c])
        real = np.random.default_rng(0).uniform(-1, 1, (8, 32, 32, 3)).astype(np.float32)
        return gan.step(real)

    c = 2.0
    softplus = float(tf.math.softplus(c))
    for smoothing in (0.0, 0.2):
        d_loss, g_loss, d_real, d_fake = losses(smoothing, c)
        real_target = 1.0 - smoothing
        assert d_loss == pytest.approx((softplus - real_target * c) + softplus, rel=1e-5), smoothing
        assert g_loss == pytest.approx(softplus - c, rel=1e-5)  # the generator's target stays 1
        assert d_real == pytest.approx(d_fake) == pytest.approx(float(tf.sigmoid(c)), rel=1e-5)

    # beta 1, per network: after one step Adam's first moment is (1 - beta_1) * gradient, and the same
    # seed gives the same gradient, so the moments of two runs differ exactly by the ratio of (1 - beta_1)
    def first_moments(g_beta: float, d_beta: float):
        keras.utils.set_random_seed(3)
        config = tiny_config(data, **{"training.generator_beta_1": g_beta, "training.discriminator_beta_1": d_beta,
                                      "dropout.rate": 0.0})
        gan = gan_networks.Gan(config)
        assert (gan.g_optimizer.beta_1, gan.d_optimizer.beta_1) == (g_beta, d_beta)
        gan.step(np.random.default_rng(0).uniform(-1, 1, (8, 32, 32, 3)).astype(np.float32))

        def moments(optimizer):
            return [np.asarray(v) for v in optimizer.variables if v.path.endswith("_momentum")]

        return moments(gan.g_optimizer), moments(gan.d_optimizer)

    g_a, d_a = first_moments(0.5, 0.5)
    g_b, d_b = first_moments(0.9, 0.0)
    assert g_a and d_a and len(g_a) == len(g_b) and len(d_a) == len(d_b)
    for a, b in zip(g_a, g_b, strict=True):
        np.testing.assert_allclose(b, a * (0.1 / 0.5), rtol=1e-4, atol=1e-9)
    for a, b in zip(d_a, d_b, strict=True):
        np.testing.assert_allclose(b, a * (1.0 / 0.5), rtol=1e-4, atol=1e-9)


# ---- config, data, sweep, CLI ----------------------------------------------------------------

def test_config_round_trips_and_bad_values_are_worded_for_a_person(data, tmp_path):
    config = tiny_config(data, **{"dropout.placement": ["before_output"], "training.label_smoothing": 0.1})
    save_gan_config(config, tmp_path / "gan.json")
    assert load_gan_config(tmp_path / "gan.json") == config
    assert validate_gan(config) == []
    bad = config.replace(**{"data.image_size": 48, "dropout.rate": 1.0, "training.generator_beta_1": 1.5,
                            "dropout.placement": ["everywhere"], "data.class_name": "nope",
                            "evaluation.features": "classifier"})
    fields = {p.field for p in validate_gan(bad)}
    assert fields >= {"data.image_size", "dropout.rate", "training.generator_beta_1", "dropout.placement",
                      "data.class_name", "evaluation.classifier_run"}
    with pytest.raises(ConfigError) as info:
        GanConfig.from_dict({"model": {"latent_size": "big"}, "colour": 1})
    assert {p.field for p in info.value.problems} == {"model.latent_size", "colour"}
    with pytest.raises(ConfigError, match="classifier's config"):
        GanConfig.from_dict({"backbone": {"name": "VGG16"}, "head": {}})


def test_one_class_or_a_flat_folder_of_images(data, tmp_path):
    assert len(gan_images.find_images(str(data)).paths) == 24
    one = gan_images.find_images(str(data), "red")
    assert len(one.paths) == 8 and all("/red/" in p for p in one.paths)
    flat = write_flat_images(tmp_path / "flat", 5)
    (flat / "notes.png").write_text("not an image")
    found = gan_images.find_images(str(flat))
    assert len(found.paths) == 5 and not found.problems and "notes.png" in found.warnings[0].message
    empty = gan_images.find_images(str(tmp_path / "flat"), "red")
    assert empty.problems and "folder not found" in empty.problems[0].message


def test_cli_gan_sweep_trains_one_real_run_per_rate_and_writes_the_fid_table(data, tmp_path, capsys):
    """`workbench gan CONFIG --sweep-rates 0,0.5`: two real (tiny) GAN runs, FID at each end, the table."""
    path = tmp_path / "gan.json"
    save_gan_config(tiny_config(data, **{"training.steps": 4, "dropout.placement": []}), path)
    runs = tmp_path / "runs"
    code = cli.main(["gan", str(path), "--sweep-rates", "0,0.5", "--runs-dir", str(runs)])
    out = capsys.readouterr().out
    assert code == 0, out
    (folder,) = [p for p in runs.iterdir() if p.name.startswith("sweep-")]
    saved = json.loads((folder / "sweep.json").read_text())
    assert saved["status"] == "finished" and saved["rates"] == [0.0, 0.5] and saved["planned"] == 2
    with open(folder / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(float(r["rate"]), r["status"], int(r["steps_done"])) for r in rows] == [
        (0.0, "finished", 4), (0.5, "finished", 4)]
    for row, trial in zip(rows, saved["trials"], strict=True):
        run = Path(row["run_dir"])
        assert run.parent == runs and run.is_dir() and row["run_dir"] == trial["run_dir"]
        summary = json.loads((run / "summary.json").read_text())
        # the table holds the FID each run computed itself, on the base config's feature network
        assert summary["status"] == "finished" and summary["fid"] > 0
        assert float(row["fid"]) == pytest.approx(summary["fid"]) == pytest.approx(trial["fid"])
        assert "MobileNetV2" in row["network"] and row["network"] == summary["fid_network"]
        config = load_gan_config(run / "config.json")
        assert config.dropout.rate == float(row["rate"]) and config.evaluation.fid_at_end
        assert (run / "generator.keras").is_file() and (run / "samples" / "step-000004.png").is_file()
    first, second = (load_gan_config(Path(r["run_dir"]) / "config.json") for r in rows)
    assert second.dropout.placement == ["after_conv"]  # a rate above 0 needs a placement
    network = gan_networks.build_discriminator(second)
    assert [la.rate for la in network.layers if "dropout" in la.name] == [0.5, 0.5, 0.5]
    assert rows[0]["fid"] != rows[1]["fid"]  # two different generators, two measurements
    best = min(rows, key=lambda r: float(r["fid"]))
    assert saved["best"]["rate"] == float(best["rate"])
    table = [line for line in out.splitlines() if line.lstrip("* ").split("  ")[0].strip() in ("0", "0.5")]
    assert len(table) == 2 and [line.startswith("*") for line in table] == [r is best for r in rows]
    assert f"Best: discriminator dropout {float(best['rate']):g}" in out and str(folder) in out


def test_a_gan_sweep_that_cannot_write_its_table_says_so_and_exits_1(data, tmp_path, capsys, monkeypatch):
    from workbench.core.base import files
    from workbench.core.gan import sweep as gan_sweep

    def disk_full(path, text):
        if Path(path).name in ("sweep.json", "results.csv"):
            raise OSError(28, "No space left on device")
        files.atomic_write_text(path, text)

    monkeypatch.setattr(gan_sweep, "atomic_write_text", disk_full)
    path = tmp_path / "gan.json"
    save_gan_config(tiny_config(data, **{"training.steps": 2, "evaluation.samples": 10}), path)
    runs = tmp_path / "runs"
    assert cli.main(["gan", str(path), "--sweep-rates", "0", "--runs-dir", str(runs)]) == 1
    err = capsys.readouterr().err
    assert "could not be written" in err and "No space left on device" in err
    assert err.count("[warning]") == 1  # the same failure is reported once, not at every save
    (folder,) = [p for p in runs.iterdir() if p.name.startswith("sweep-")]
    assert list(folder.iterdir()) == []
    (run,) = [p for p in runs.iterdir() if not p.name.startswith("sweep-")]
    assert (run / "generator.keras").is_file()  # the trial itself kept its work

    events = []
    plan = GanSweepConfig(load_gan_config(path), [0.0])
    result = run_gan_sweep(plan, events.append, runs_dir=tmp_path / "runs2")
    assert "No space left on device" in result.save_error
    finished = events[-1]
    assert isinstance(finished, GanSweepFinished) and finished.error == result.save_error
    said = [e.level for e in events if isinstance(e, Message) and "could not be written" in e.text]
    assert said == ["warning", "error"]  # once when it happened, once at the end


def test_cli_gan_trains_headless_and_refuses_a_bad_config(data, tmp_path, capsys):
    path = tmp_path / "gan.json"
    save_gan_config(tiny_config(data, **{"training.steps": 6}), path)
    assert not load_gan_config(path).evaluation.fid_at_end  # --fid turns it on
    code = cli.main(["gan", str(path), "--fid", "--runs-dir", str(tmp_path / "runs")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "GAN run" in out and "Step 5/6" in out and "finished after 6 steps" in out
    (run,) = (tmp_path / "runs").iterdir()
    assert (run / "generator.keras").is_file() and (run / "samples" / "step-000006.png").is_file()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["fid"] > 0 and "MobileNetV2" in summary["fid_network"]
    assert f"FID {summary['fid']:.3f}" in out and "20 real vs 20 generated images" in out

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"kind": "gan", "data": {"folder": str(tmp_path / "none"), "image_size": 48}}))
    assert cli.main(["gan", str(bad), "--runs-dir", str(tmp_path / "runs2")]) == 2
    err = capsys.readouterr().err
    assert "data.image_size" in err and "folder not found" in err
    assert not (tmp_path / "runs2").exists()
    assert cli.main(["gan", str(path), "--sweep-rates", "0, 1.5"]) == 2
    assert "below 1" in capsys.readouterr().err


def test_fid_from_a_trained_classifier_uses_its_penultimate_layer_and_softmax(data, tmp_path):
    """A stand-in classifier run folder (model.keras with a 'predictions' layer, summary.json)."""
    import keras

    inputs = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(8, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(6, activation="relu", name="dense_1")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="predictions")(x)
    run = tmp_path / "classifier-run"
    run.mkdir()
    keras.Model(inputs, outputs).save(run / "model.keras")
    (run / "summary.json").write_text(json.dumps({"class_names": ["blue", "green", "red"]}))
    (run / "config.json").write_text("{}")

    evaluation = tiny_config(data, **{"evaluation.features": "auto", "evaluation.classifier_run": str(run)}).evaluation
    assert gan_features.resolve_source(evaluation) == "classifier"  # no InceptionV3 weights here
    network = fid.open_network(evaluation)
    assert "classifier-run" in network.description and "penultimate layer, 6 features" in network.description
    real = fid.load_real_images(gan_images.find_images(str(data)).paths, 32, 24)
    result = fid.compare(network, real, noise_images(24))
    assert result.fid > 0 and 1.0 <= result.inception_score <= 3.0
    assert fid.compare(network, real, real).fid == pytest.approx(0.0, abs=1e-6)


def test_auto_features_prefer_inception_when_its_weights_are_cached(tmp_path, monkeypatch):
    from workbench.core.config.gan import GanEvaluationConfig

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    auto = GanEvaluationConfig(features="auto", backbone_weights="none")
    assert gan_features.resolve_source(auto) == "backbone" and "random weights" in gan_features.describe_source(auto)
    with pytest.raises(fid.FeaturesUnavailable, match=gan_features.INCEPTION_TOP_FILE):
        fid.open_network(GanEvaluationConfig(features="inception"))
    (tmp_path / "keras" / "models").mkdir(parents=True)
    (tmp_path / "keras" / "models" / gan_features.INCEPTION_TOP_FILE).write_bytes(b"")
    assert gan_features.resolve_source(auto) == "inception"
    assert gan_features.describe_source(auto) == "InceptionV3, ImageNet weights"
