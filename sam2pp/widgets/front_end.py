"""The widgets' front-end files: the repository's `widgets/` folder, reached through the package's `static` link."""

from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).parent / "static"
SHARED = "frame_canvas.js"


def esm(name: str) -> str:
    """The ES module of the widget whose own code is `name`: the shared frame store and drawing helpers first
    (anywidget loads a single module per widget, so the shared part is prepended, not imported)."""
    return f"{(STATIC / SHARED).read_text()}\n{(STATIC / name).read_text()}"
