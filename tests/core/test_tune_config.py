"""The tuning study as a value (no Optuna, no TensorFlow): JSON, ranges, trial configs, the dropout preset,
the fingerprint that keeps another config out of a study, and the study folder's reader."""

import json
import subprocess
import sys

import pytest

from workbench.core.base.problems import ConfigError
from workbench.core.config.run import RunConfig
from workbench.core.config.tune import (
    SEARCHABLE,
    SearchRange,
    TuneConfig,
    default_range,
    dropout_preset,
    fingerprint,
    resolve_param,
    trial_config,
    validate_tune,
)
from workbench.core.runs.studies import (
    StudyRecord,
    StudyTrial,
    TrialEnded,
    format_trial,
    list_studies,
    mask_storage,
    read_study,
    write_study,
)


@pytest.fixture
def base(image_tree) -> RunConfig:
    config = RunConfig(name="base")
    config.data.folder = str(image_tree)
    config.data.image_size = 32
    config.backbone.name = "VGG16"
    config.backbone.weights = "none"
    return config


def fields(problems) -> list[str]:
    return [p.field for p in problems]


def test_every_default_range_is_a_study_that_can_run_and_round_trips_through_json(base):
    tune = TuneConfig(base, {name: default_range(name, base) for name in SEARCHABLE}, trials=7, folds=3,
                      storage="sqlite:///x.db", study_name="s-1", timeout_s=60)
    assert validate_tune(tune) == []
    data = json.loads(tune.to_json())
    assert data["tune"]["trials"] == 7 and data["data"]["folder"] == base.data.folder  # a run config + "tune"
    assert TuneConfig.from_dict(data) == tune
    plain = TuneConfig.from_dict(base.to_dict())  # a plain run config: the default tune block
    assert plain.base == base and plain.search == {} and plain.trials == 20


def test_bad_ranges_and_settings_are_named_by_field(base):
    tune = TuneConfig(base, {
        "learning_rate": SearchRange(1e-2, 1e-5, log=True),  # low above high: empty
        "dropout_rate": SearchRange(0.0, 1.5),  # a rate of 1.5 is impossible
        "batch_size": SearchRange(choices=[]),  # no values
        "optimizer": SearchRange(choices=["adam", "lion"]),
        "label_smoothing": SearchRange(0.0, 0.2, log=True),  # log from 0
        "freeze_depth": SearchRange(0, 2.5),
        "momentum": SearchRange(0.1, 0.9),  # not searchable
    }, trials=0, folds=101, sampler="random", study_name="no spaces")
    problems = validate_tune(tune)
    text = "\n".join(str(p) for p in problems)
    for field in ("learning_rate", "dropout_rate", "batch_size", "optimizer", "label_smoothing", "freeze_depth",
                  "momentum"):
        assert f"tune.search.{field}" in fields(problems), text
    assert {"tune.trials", "tune.folds", "tune.sampler", "tune.study_name"} <= set(fields(problems))
    assert "the range is empty" in text and "lion" in text and "unknown parameter 'momentum'" in text
    assert validate_tune(TuneConfig(base, {}))[0].message == "choose at least one parameter to search"


def test_a_grid_needs_values_and_a_trial_at_either_end_must_validate(base):
    grid = TuneConfig(base, {"learning_rate": SearchRange(1e-4, 1e-2, log=True)}, sampler="grid")
    assert fields(validate_tune(grid)) == ["tune.search.learning_rate"]
    stepped = TuneConfig(base, {"dropout_rate": SearchRange(0.0, 0.4, step=0.2)}, sampler="grid")
    assert validate_tune(stepped) == [] and stepped.search["dropout_rate"].grid_values(False) == [0.0, 0.2, 0.4]
    # spatial dropout needs a feature-map placement: the trial that would draw it is refused up front
    kinds = TuneConfig(base, {"dropout_kind": SearchRange(choices=["dropout", "spatial", "gaussian"])})
    (problem,) = validate_tune(kinds)
    assert problem.field == "dropout.placement" and "spatial" in problem.message
    missing = TuneConfig(base.replace(**{"data.folder": "/no/such/folder"}), {"dropout_rate": SearchRange(0, 0.5)})
    assert fields(validate_tune(missing)) == ["data.folder"]


def test_trial_config_maps_each_parameter_onto_the_run_config(base):
    config = trial_config(base, {"learning_rate": 3e-4, "batch_size": 16, "dropout_rate": 0.3,
                                 "dropout_kind": "gaussian", "freeze_depth": 2, "dense_units": 64,
                                 "augmentation": 0.2, "label_smoothing": 0.1, "optimizer": "sgd"})
    t, d = config.training, config.dropout
    assert (t.learning_rate, t.batch_size, t.label_smoothing, t.optimizer) == (3e-4, 16, 0.1, "sgd")
    assert (d.rate, d.kind, config.head.dense_units) == (0.3, "gaussian", [64])
    assert (config.freeze.policy, config.freeze.blocks) == ("top_blocks", 2)
    a = config.data.augment
    assert (a.flip, a.rotation, a.zoom, a.contrast) == (True, 0.1, 0.2, 0.2)
    assert trial_config(base, {"freeze_depth": 0, "dense_units": 0}).freeze.policy == "all"
    layers = base.replace(**{"freeze.policy": "top_layers", "freeze.layers": 4})
    assert trial_config(layers, {"freeze_depth": 7}).freeze.layers == 7
    assert base.training.learning_rate == 1e-3  # the base is left alone
    with pytest.raises(ValueError):
        trial_config(base, {"momentum": 0.5})


def test_the_dropout_preset_is_a_grid_over_rate_and_kind(base):
    preset = dropout_preset(base, [0.0, 0.2, 0.2], ["dropout", "gaussian"], folds=3)
    assert (preset.sampler, preset.pruner, preset.folds, preset.trials) == ("grid", "none", 3, 4)
    assert preset.search["dropout_rate"].choices == [0.0, 0.2]
    assert preset.search["dropout_kind"].choices == ["dropout", "gaussian"]
    one_kind = dropout_preset(base, [0.1, 0.5], [], folds=1)
    assert list(one_kind.search) == ["dropout_rate"] and validate_tune(one_kind) == []


def test_the_fingerprint_ignores_the_budget_and_paths_but_not_the_search(base):
    tune = TuneConfig(base, {"learning_rate": default_range("learning_rate", base)})
    same = TuneConfig(base.replace(name="other", **{"data.folder": "/elsewhere"}), dict(tune.search), trials=99,
                      timeout_s=5, storage="sqlite:///y.db", study_name="x")
    assert fingerprint(tune) == fingerprint(same)
    for other in (TuneConfig(base.replace(**{"training.epochs": 9}), dict(tune.search)),
                  TuneConfig(base, {"learning_rate": SearchRange(1e-4, 1e-1, log=True)}),
                  TuneConfig(base, dict(tune.search), folds=3)):
        assert fingerprint(other) != fingerprint(tune)


def test_from_dict_lists_every_bad_key_and_type():
    with pytest.raises(ConfigError) as caught:
        TuneConfig.from_dict({"training": {"epochs": "many"},
                              "tune": {"trials": "ten", "colour": 1, "search": {"learning_rate": {"low": "a"}}}})
    assert {"training.epochs", "tune.trials", "tune.colour", "tune.search.learning_rate.low"} <= {
        p.field for p in caught.value.problems}


def test_short_names_and_masked_passwords():
    assert resolve_param("lr") == "learning_rate" and resolve_param("dropout_kind") == "dropout_kind"
    with pytest.raises(ValueError, match="unknown parameter 'colour'"):
        resolve_param("colour")
    assert mask_storage("postgresql://ann:s3cret@db.lab:5432/studies") == "postgresql://ann:***@db.lab:5432/studies"
    assert mask_storage("sqlite:////tmp/a.db") == "sqlite:////tmp/a.db"


def test_a_study_folder_round_trips_and_a_broken_one_says_so(tmp_path):
    folder = tmp_path / "study-a"
    folder.mkdir()
    trial = StudyTrial(0, "complete", 0.75, {"learning_rate": 1e-3}, [str(tmp_path / "run")], [0.7, 0.8], 0.05, 3.2)
    record = StudyRecord("a", str(folder), "sqlite:///x", trials=[trial, StudyTrial(1, "failed", error="stopped")],
                         best_number=0, best_value=0.75, best_params={"learning_rate": 1e-3})
    write_study(record, RunConfig(name="best").to_json())
    back = read_study(folder)
    assert back == record and back.counts()["complete"] == 1 and back.counts()["failed"] == 1
    assert RunConfig.from_json((folder / "best_config.json").read_text()).name == "best"
    rows = (folder / "trials.csv").read_text().splitlines()
    assert rows[0].startswith("number,state,value,value_std,learning_rate") and len(rows) == 3
    (tmp_path / "study-b").mkdir()
    (tmp_path / "study-b" / "study.json").write_text("{broken")
    assert sorted((s.name, bool(s.problem)) for s in list_studies(tmp_path)) == [("a", False), ("b", True)]
    assert "cannot be read" in read_study(tmp_path / "study-b").problem
    line = format_trial(TrialEnded(3, "pruned", None, {"learning_rate": 0.000123456}, [], 2.5))
    assert "trial   3" in line and "pruned" in line and "learning_rate=0.0001235" in line


def test_the_config_and_the_study_folder_load_without_optuna_or_tensorflow():
    code = ("import sys; import workbench.core.config.tune, workbench.core.runs.studies; "
            "print('optuna' in sys.modules, 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert out.split() == ["False", "False"]
