"""A search range typed on one line: every default range reads back as itself, and text that is
not a range says why."""

from __future__ import annotations

import pytest

from workbench.core.config.run import RunConfig
from workbench.core.config.tune import SEARCHABLE, SearchRange, default_range
from workbench.ui.fields import InputError
from workbench.ui.tuning_ranges import format_range, parse_range


def test_every_default_range_reads_back_as_itself():
    base = RunConfig()
    for name in SEARCHABLE:
        search = default_range(name, base)
        assert parse_range(format_range(search)) == search, name


def test_ranges_steps_logs_and_values():
    assert parse_range("1e-5 .. 1e-2 log") == SearchRange(1e-5, 1e-2, log=True)
    assert parse_range(" 16 ..128  step 16 ") == SearchRange(16, 128, step=16)
    assert parse_range("0,5 .. 0,75") == SearchRange(0.5, 0.75)  # a decimal comma at either end
    assert parse_range("adam, sgd").choices == ["adam", "sgd"]
    assert parse_range("0, 0.2, 64, true").choices == [0, 0.2, 64, True]
    assert format_range(SearchRange(choices=[False, 0.5, "x"])) == "false, 0.5, x"


@pytest.mark.parametrize("text, reason", [
    ("", "enter a range"), ("0.1 ..", "low and a high end"), (".. 3", "low and a high end"),
    ("0.1 .. x", "high end 'x' is not a number"), ("1 .. 2 steps 3", "'steps' is not understood"),
    ("1 .. 2 step", "'step' is not understood"), ("a,, b", "between commas is missing"),
])
def test_text_that_is_not_a_range_says_why(text, reason):
    with pytest.raises(InputError, match=reason):
        parse_range(text)
