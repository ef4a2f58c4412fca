"""`workbench compare`: the config as it stands, then zero-init, and both scores, like the GUI's Compare."""

from core_helpers import tiny_config

from workbench import cli
from workbench.core.config.run import save_config
from workbench.core.runs.listing import list_runs
from workbench.resources import resource_path

BUNDLED = resource_path("backbones", "mobilenetv2-0.35-64px-fashion6.weights.h5")


def test_compare_trains_both_and_prints_their_scores(image_tree, tmp_path, capsys):
    config = tiny_config(image_tree, epochs=1, **{
        "name": "cmp", "data.image_size": 64, "backbone.weights": "file", "backbone.weights_file": str(BUNDLED),
        "freeze.policy": "all"})
    path = tmp_path / "cfg.json"
    save_config(config, path)
    assert cli.main(["compare", str(path), "--runs-dir", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    names = sorted(r.config.name for r in list_runs(tmp_path / "runs"))
    assert names == ["cmp (transfer)", "cmp (zero-init)"]
    zero = next(r for r in list_runs(tmp_path / "runs") if r.config.name == "cmp (zero-init)")
    assert zero.config.backbone.weights == "none" and zero.config.backbone.transfer == "zero"
    table = out[out.index("Best validation accuracy:"):]
    assert "cmp (transfer)" in table and "cmp (zero-init)" in table


def test_compare_refuses_a_config_that_already_starts_from_random_weights(image_tree, tmp_path, capsys):
    path = tmp_path / "cfg.json"
    save_config(tiny_config(image_tree, epochs=1), path)
    assert cli.main(["compare", str(path), "--runs-dir", str(tmp_path / "runs")]) == 2
    assert "already starts from random weights" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
