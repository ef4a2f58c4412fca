"""RunConfig: JSON round trip, readable errors, validation of each field."""

import json

import pytest

from workbench.core.base.problems import ConfigError
from workbench.core.config.run import SCHEMA_VERSION, RunConfig, load_config, save_config
from workbench.core.config.validate import validate


@pytest.fixture
def config(tmp_path):
    c = RunConfig()
    c.data.folder = str(tmp_path)
    return c


def fields(problems):
    return {p.field for p in problems}


def test_default_config_with_a_folder_is_valid(config):
    assert validate(config) == []


def test_json_round_trip_keeps_every_field(config, tmp_path):
    config.name = "mine"
    config.head.dense_units = [128, 64]
    config.dropout.placement = ["feature_map", "after_dense"]
    config.dropout.kind = "dropblock"
    config.training.learning_rate = 3e-4
    config.data.augment.flip = True
    path = tmp_path / "run.json"
    save_config(config, path)
    loaded = load_config(path)
    assert loaded == config
    assert json.loads(path.read_text())["schema_version"] == SCHEMA_VERSION
    assert isinstance(loaded.training.learning_rate, float)


def test_missing_keys_take_defaults():
    loaded = RunConfig.from_dict({"training": {"epochs": 3}})
    assert loaded.training.epochs == 3
    assert loaded.training.batch_size == RunConfig().training.batch_size


def test_int_is_accepted_for_float_fields():
    loaded = RunConfig.from_dict({"training": {"learning_rate": 1}})
    assert loaded.training.learning_rate == 1.0 and isinstance(loaded.training.learning_rate, float)


def test_unknown_keys_and_wrong_types_are_all_reported():
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict(
            {"data": {"folder": 3, "colour": "red"}, "training": {"epochs": "ten", "seed": True}, "extra": 1}
        )
    problems = {p.field: p.message for p in info.value.problems}
    assert "unknown setting 'colour'" in problems["data.colour"]
    assert "must be text" in problems["data.folder"]
    assert "whole number" in problems["training.epochs"]
    assert "whole number" in problems["training.seed"]
    assert "extra" in problems


@pytest.mark.parametrize("text, expected", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    ('{"training": 5}', "group of settings"),
    ('{"dropout": {"placement": "feature_map"}}', "list of"),
    ('{"schema_version": 99}', "newer Workbench"),
    ('{"training": {"learning_rate": NaN}}', "finite"),
])
def test_bad_json_gives_a_readable_error(tmp_path, text, expected):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert expected in str(info.value)


def test_missing_config_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.json")


@pytest.mark.parametrize("path, value, field, words", [
    ("backbone.name", "AlexNet", "backbone.name", "unknown backbone"),
    ("dropout.rate", 1.0, "dropout.rate", "below 1"),
    ("dropout.rate", -0.1, "dropout.rate", "at least 0"),
    ("dropout.kind", "cosmic", "dropout.kind", "must be one of"),
    ("dropout.placement", ["everywhere"], "dropout.placement", "unknown placement"),
    ("data.image_size", 16, "data.image_size", "at least 32"),
    ("data.folder", "", "data.folder", "choose a folder"),
    ("data.folder", "/no/such/folder", "data.folder", "not found"),
    ("data.validation_split", 1.0, "data.validation_split", "between 0 and 1"),
    ("training.learning_rate", 0.0, "training.learning_rate", "above 0"),
    ("training.epochs", 0, "training.epochs", "between 1"),
    ("training.batch_size", 0, "training.batch_size", "between 1"),
    ("training.optimizer", "adagrad", "training.optimizer", "must be one of"),
    ("backbone.weights", "file", "backbone.weights_file", "choose a weights file"),
    ("backbone.width", 0.42, "backbone.width", "supports width"),
    ("freeze.policy", "top_layers", "freeze.layers", "how many top layers"),
    ("freeze.policy", "melt", "freeze.policy", "must be one of"),
])
def test_each_validation_message(config, path, value, field, words):
    bad = config.replace(**{path: value})
    problems = validate(bad)
    assert field in fields(problems), problems
    assert any(words in p.message for p in problems if p.field == field)


def test_after_dense_dropout_needs_a_dense_layer(config):
    bad = config.replace(**{"dropout.placement": ["after_dense"]})
    assert "dropout.placement" in fields(validate(bad))
    good = bad.replace(**{"head.dense_units": [32]})
    assert validate(good) == []


def test_too_many_blocks_is_refused(config):
    bad = config.replace(**{"freeze.policy": "top_blocks", "freeze.blocks": 999})
    assert "freeze.blocks" in fields(validate(bad))


def test_replace_does_not_touch_the_original(config):
    changed = config.replace(**{"training.epochs": 99})
    assert changed.training.epochs == 99
    assert config.training.epochs != 99
