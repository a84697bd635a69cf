"""Nested dataclasses to and from plain JSON values, every value checked against its field's annotation.

Model configs and training configs are read by the same code: JSON lists become tuples, integers become floats where
a float is due, and a value of the wrong type (a string for a number, 7.0 for a count, "false" for a bool) raises
a `ValueError` naming the field's path (`config.memory_attention.num_layers`). Readers add their own range rules
per field name, and the published class names a section may carry in a "type" key.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

_KINDS = {bool: "true or false", int: "an integer", float: "a finite number", str: "a string"}


def to_plain(obj: Any) -> Any:
    """Dataclasses as dicts, tuples as lists, recursively (what `json.dumps` takes)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (tuple, list)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    return obj


def _no_rule(name: str, value: Any, where: str) -> None:
    return None


@dataclass(frozen=True)
class PlainReader:
    """Reads a dataclass from plain values. `rule(name, value, where)` may raise for a scalar out of its field's range;
    `section_types[cls]` are the "type" names a section of class `cls` may carry (the key is dropped)."""

    rule: Callable[[str, Any, str], None] = _no_rule
    section_types: Mapping[type, set[str]] = field(default_factory=dict)

    def read(self, cls: type, data: Any, where: str) -> Any:
        if not isinstance(data, dict):
            raise ValueError(f"{where}: expected an object, got {type(data).__name__}")
        data = dict(data)
        kind = data.pop("type", None) if cls in self.section_types else None
        if kind is not None and kind not in self.section_types[cls]:
            raise ValueError(f"{where}: type {kind!r} is not one of {sorted(self.section_types[cls])}")
        hints = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"{where}: unknown keys {unknown}; known: {sorted(names)}")
        return cls(**{name: self._typed(hints[name], value, f"{where}.{name}", name) for name, value in data.items()})

    def _typed(self, hint: Any, value: Any, where: str, name: str) -> Any:
        if dataclasses.is_dataclass(hint):
            return self.read(hint, value, where)
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if origin in (typing.Union, types.UnionType):
            if value is None and type(None) in args:
                return None
            (inner,) = [a for a in args if a is not type(None)]
            return self._typed(inner, value, where, name)
        if origin is tuple:
            if not isinstance(value, (list, tuple)):
                raise ValueError(f"{where}: expected a list, got {value!r}")
            items = args[:1] * len(value) if args[-1:] == (Ellipsis,) else args
            if len(items) != len(value):
                raise ValueError(f"{where}: expected {len(items)} values, got {len(value)} ({list(value)})")
            return tuple(self._typed(h, v, f"{where}[{i}]", name) for i, (h, v) in enumerate(zip(items, value)))
        if origin is dict:
            if not isinstance(value, dict):
                raise ValueError(f"{where}: expected an object, got {value!r}")
            if not args or args[1] is Any:
                return dict(value)
            return {k: self._typed(args[1], v, f"{where}.{k}", name) for k, v in value.items()}
        if hint is Any:
            return value
        value = _scalar(hint, value, where)
        self.rule(name, value, where)
        return value


def _scalar(hint: type, value: Any, where: str) -> Any:
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    valid = {
        bool: isinstance(value, bool),
        int: numeric and isinstance(value, int),
        float: numeric and math.isfinite(value),
        str: isinstance(value, str),
    }[hint]
    if not valid:
        raise ValueError(f"{where}: expected {_KINDS[hint]}, got {value!r} ({type(value).__name__})")
    return float(value) if hint is float else value
