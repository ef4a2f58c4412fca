"""A search range as one line of text, so each parameter of the Tuning tab needs one field.

"1e-5 .. 1e-2 log" is a range on a log scale, "16 .. 128 step 16" a range in steps, and
"adam, sgd" or "0, 0.2, 0.4" a list of values to choose from (the grid sampler tries each).
Pure Python: the form parses with it and the tests read it without widgets. A message says
what is wrong; the field's tooltip (RANGE_HELP) says what it takes.
"""

from __future__ import annotations

from workbench.core.config.tune import SearchRange
from workbench.ui.fields import InputError

RANGE_HELP = ("A range as 'low .. high' (add 'log' for a log scale, 'step 16' for steps), "
              "or values to choose from, separated by commas: 'adam, sgd' or '0, 0.2, 0.4'.")


def format_number(value: float) -> str:
    return f"{value:g}"


def format_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format_number(value)
    return str(value)


def format_range(search: SearchRange) -> str:
    """The text a person reads and edits for `search`."""
    if search.choices is not None:
        return ", ".join(format_value(v) for v in search.choices)
    low = "" if search.low is None else format_number(search.low)
    high = "" if search.high is None else format_number(search.high)
    text = f"{low} .. {high}"
    if search.log:
        text += " log"
    if search.step is not None:
        text += f" step {format_number(search.step)}"
    return text


def parse_value(text: str) -> object:
    """One value of a list: a whole number, a number, true/false, or a word."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_number(text: str, what: str) -> float:
    try:
        return float(text.replace(",", "."))
    except ValueError:
        raise InputError(f"the {what} '{text}' is not a number") from None


def parse_range(text: str) -> SearchRange:
    """The SearchRange a field's text describes; InputError (worded for a person) when it is none."""
    text = text.strip()
    if not text:
        raise InputError("enter a range (0.1 .. 0.5) or values (0.1, 0.3)")
    if ".." not in text:
        values = [part.strip() for part in text.split(",")]
        if any(not v for v in values):
            raise InputError("a value between commas is missing")
        return SearchRange(choices=[parse_value(v) for v in values])
    low_text, rest = (part.strip() for part in text.split("..", 1))
    words = rest.split()
    if not low_text or not words:
        raise InputError("a range needs a low and a high end: 0.1 .. 0.5")
    search = SearchRange(low=parse_number(low_text, "low end"), high=parse_number(words[0], "high end"))
    extra = words[1:]
    while extra:
        word = extra.pop(0).lower()
        if word == "log":
            search.log = True
        elif word == "step" and extra:
            search.step = parse_number(extra.pop(0), "step")
        else:
            raise InputError(f"'{word}' is not understood after a range: only 'log' or 'step 2'")
    return search
