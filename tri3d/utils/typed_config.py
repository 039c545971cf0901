"""Typed construction of config dataclasses from JSON-like dicts.

``config.json`` files are user input: a value of the wrong type (``"batch": "8"``,
``"batch": true``, ``"total_kimg": Infinity``) or an unknown key must be refused with a
message naming the key, before anything is built from it.
"""
from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


def from_typed_dict(cls: type[T], data: Any, where: str) -> T:
    """``cls(**data)`` after checking every value against ``cls``'s annotations.

    Nested dataclass fields take dicts (checked recursively); missing keys keep their
    defaults. ``where`` names the source in errors (e.g. ``"config.json"``); nested keys
    are reported as ``where: G.renderer.near``.

    Raises:
        ValueError: naming the first key that is unknown or holds a value of the wrong type.
    """
    return _build(cls, data, where, "")


def _build(cls: type, data: Any, where: str, prefix: str):
    if not isinstance(data, dict):
        raise ValueError(f"{where}: {prefix.rstrip('.') or 'the config'} must be a JSON object, "
                         f"got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{where}: unknown option {prefix}{unknown[0]}")
    kwargs = {key: _convert(hints[key], value, where, prefix + key) for key, value in data.items()}
    return cls(**kwargs)


def _convert(annotation: Any, value: Any, where: str, key: str) -> Any:
    """``value`` checked (and nested dataclasses built) against ``annotation``."""
    options = typing.get_args(annotation) if _is_union(annotation) else (annotation,)
    if value is None and type(None) in options:
        return None
    for option in options:
        if option is type(None):
            continue
        if dataclasses.is_dataclass(option):
            if isinstance(value, dict):
                return _build(option, value, where, key + ".")
        elif _matches(option, value):
            return float(value) if option is float else value
    names = " or ".join("a JSON object" if dataclasses.is_dataclass(o) else _WORDS[o] for o in options)
    shown = type(value).__name__ if isinstance(value, (list, dict)) else json.dumps(value)[:60]
    raise ValueError(f"{where}: {key} must be {names}, got {shown}")


_WORDS = {bool: "true or false", int: "an integer", float: "a finite number", str: "a string", type(None): "null"}


def _matches(option: type, value: Any) -> bool:
    if option is bool:
        return isinstance(value, bool)
    if option is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if option is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if option is str:
        return isinstance(value, str)
    raise TypeError(f"unsupported config annotation {option!r}")


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)
