"""Reading a module's section of the published JSON config (as `ModelConfig.to_dict()` or config.json gives it)."""

from __future__ import annotations

from typing import Any


def section(data: dict[str, Any], expected: str, where: str) -> dict[str, Any]:
    """A copy of a config section without its `type` key, after checking that the type is `expected`."""
    kind = data.get("type", expected)
    if kind != expected:
        raise ValueError(f"{where}: only type {expected!r} is supported, got {kind!r}")
    return {k: v for k, v in data.items() if k != "type"}
