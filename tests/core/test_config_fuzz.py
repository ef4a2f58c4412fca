"""Property tests: random and mutated JSON never gets past RunConfig as anything but ConfigError.

Whatever a config file holds (hand-edited, truncated, from another program, random bytes),
reading it raises ConfigError with readable problems or gives a RunConfig that validates
without crashing and survives a JSON round trip.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from workbench.core.base.problems import ConfigError, Problem
from workbench.core.config.run import RunConfig, load_config
from workbench.core.config.validate import validate

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SPECIAL = [
    None, True, False, 0, -1, 1, 2**31, 10**400, -(10**400), 0.5, -0.0, 1e308, 1e-320,
    math.inf, -math.inf, math.nan, "", " ", "\x00", "\ud800", "../../etc", "é☕", [], {}, [1, "a"],
    {"x": 1},
]

leaves = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20) | st.sampled_from(SPECIAL)
)
json_values = st.recursive(
    leaves,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=16,
)


def check(read) -> None:
    """`read()` must return a usable RunConfig or raise ConfigError with problems, nothing else."""
    try:
        config = read()
    except ConfigError as exc:
        assert exc.problems and all(isinstance(p, Problem) and p.message for p in exc.problems)
        assert str(exc)
        return
    assert isinstance(config, RunConfig)
    for problems in (validate(config, check_paths=False),) + (
        (validate(config),) if not Path(config.data.folder or "/nonexistent").exists() else ()
    ):
        assert all(isinstance(p, Problem) and p.message for p in problems)
    assert RunConfig.from_json(config.to_json()) == config  # what loads, saves and loads again


def _paths(data, prefix=()):
    """Every key path of nested dicts (groups and leaves)."""
    found = []
    if isinstance(data, dict):
        for key, value in data.items():
            found.append(prefix + (key,))
            found += _paths(value, prefix + (key,))
    return found


@st.composite
def mutated_configs(draw):
    """A valid config's dict with a few random edits: values of any type, keys removed or invented."""
    data = RunConfig().to_dict()
    for _ in range(draw(st.integers(1, 5))):
        paths = _paths(data)
        path = draw(st.sampled_from(paths)) if paths else ()
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        op = draw(st.sampled_from(["set", "set", "delete", "add", "wrap"]))
        if not path or not isinstance(parent, dict):
            continue
        key = path[-1]
        if op == "set":
            parent[key] = draw(json_values)
        elif op == "delete":
            parent.pop(key, None)
        elif op == "add":
            parent[draw(st.text(max_size=10))] = draw(json_values)
        elif key in parent:
            parent[key] = [parent[key]]
    return data


@FUZZ
@given(json_values)
@example(None)
@example([])
@example({"training": {"learning_rate": 10**400}})
@example({"schema_version": 10**400})
@example({"training": "fast"})
@example({"data": {"image_size": 1e308}})
def test_any_json_value_is_a_config_or_a_config_error(value):
    check(lambda: RunConfig.from_dict(value))
    check(lambda: RunConfig.from_json(json.dumps(value)))


@FUZZ
@given(mutated_configs())
def test_a_mutated_config_is_a_config_or_a_config_error(data):
    check(lambda: RunConfig.from_dict(data))


@st.composite
def mutated_text(draw):
    """The JSON of a valid config, cut, spliced or sprinkled with random characters."""
    config = RunConfig(name=draw(st.text(max_size=8)))
    config.training.epochs = draw(st.integers(1, 50))
    text = config.to_json()
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["cut", "insert", "delete", "truncate"]))
        if op == "cut":
            end = draw(st.integers(at, min(len(text), at + 30)))
            text = text[:at] + text[end:]
        elif op == "insert":
            text = text[:at] + draw(st.text(max_size=6) | st.sampled_from(list('{}[],:"\\0123456789e-.'))) + text[at:]
        elif op == "delete":
            text = text[:at] + text[at + 1:]
        else:
            text = text[:at]
    return text


@FUZZ
@given(mutated_text())
@example("")
@example("[" * 100_000)
@example("[" * 50_000 + "]" * 50_000)
@example('{"training": {"epochs": ' + "9" * 5000 + "}}")
@example("NaN")
@example('{"training": {"learning_rate": NaN}}')
def test_mutated_json_text_is_a_config_or_a_config_error(text):
    check(lambda: RunConfig.from_json(text))


@FUZZ
@given(st.binary(max_size=300) | mutated_text().map(lambda t: t.encode("utf-8", "surrogatepass")))
@example(b"\xef\xbb\xbf{}")  # a UTF-8 byte-order mark, as some editors write
@example(b"\xff\xfe{\x00}\x00")  # UTF-16
def test_any_file_content_is_a_config_or_a_config_error(tmp_path_factory, content):
    path = tmp_path_factory.getbasetemp() / "fuzz-config.json"
    path.write_bytes(content)
    check(lambda: load_config(path))


@pytest.mark.parametrize("where", ["a directory", "a NUL in the name", "missing"])
def test_a_config_path_that_is_not_a_file_is_a_config_error(tmp_path, where):
    path = {"a directory": tmp_path, "a NUL in the name": f"{tmp_path}/a\0b.json",
            "missing": tmp_path / "missing.json"}[where]
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems
