"""Dataclass configs by dotted path, and building them from JSON with every problem collected."""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from typing import Any

from workbench.core.base.problems import Problem


def get_field(config: Any, path: str) -> Any:
    obj = config
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def set_field(config: Any, path: str, value: Any) -> None:
    *parents, last = path.split(".")
    obj = config
    for part in parents:
        obj = getattr(obj, part)
    if not hasattr(obj, last):
        raise AttributeError(f"no config field {path!r}")
    setattr(obj, last, value)


def build_dataclass(cls: type, data: dict, prefix: str, problems: list[Problem]) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in known:
            where = f"{prefix}{key}"
            problems.append(
                Problem(where, f"unknown setting '{key}' (known: {', '.join(sorted(known))})")
            )
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        where = f"{prefix}{f.name}"
        value = _coerce(hints[f.name], data[f.name], where, problems)
        if value is not _BAD:
            kwargs[f.name] = value
    return cls(**kwargs)


_BAD = object()


def _type_name(tp: Any) -> str:
    names = {int: "a whole number", float: "a number", str: "text", bool: "true or false"}
    if tp in names:
        return names[tp]
    if typing.get_origin(tp) is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}s"
    return getattr(tp, "__name__", str(tp))


def _coerce(tp: Any, value: Any, where: str, problems: list[Problem]) -> Any:
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            problems.append(Problem(where, "must be a group of settings ({...})"))
            return _BAD
        return build_dataclass(tp, value, where + ".", problems)
    origin = typing.get_origin(tp)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, list):
            problems.append(Problem(where, f"must be {_type_name(tp)}"))
            return _BAD
        items = [_coerce(item_tp, v, where, problems) for v in value]
        return _BAD if any(i is _BAD for i in items) else items
    if origin is dict:
        key_tp, value_tp = typing.get_args(tp)
        if not isinstance(value, dict):
            problems.append(Problem(where, 'must be a group of values by name, e.g. {"cat": 2.0, "dog": 1.0}'))
            return _BAD
        entries = {k: _coerce(value_tp, v, f"{where}.{k}", problems) for k, v in value.items()}
        return _BAD if any(v is _BAD for v in entries.values()) else entries
    if origin in (typing.Union, types.UnionType):  # pragma: no cover - no optional fields yet
        return value
    ok = {
        bool: lambda v: isinstance(v, bool),
        int: lambda v: isinstance(v, int) and not isinstance(v, bool),
        float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        str: lambda v: isinstance(v, str),
    }[tp](value)
    if not ok:
        problems.append(Problem(where, f"must be {_type_name(tp)}, not {json.dumps(value)[:40]}"))
        return _BAD
    if tp is float:
        try:
            value = float(value)
        except OverflowError:  # an integer too large for a float (1e309 written out)
            value = math.inf
        if not math.isfinite(value):
            problems.append(Problem(where, "must be a finite number"))
            return _BAD
    return value
