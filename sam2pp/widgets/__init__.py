"""Jupyter widgets (anywidget) for prompting a `VideoPredictor` and viewing its tracks.

    from sam2pp.widgets import PromptWidget, TrackViewer
    w = PromptWidget(predictor, state); w          # click, drag boxes, place track points
    w.propagate(); TrackViewer(w)                  # scrub, play, export PNG/GIF/MP4

The JavaScript and CSS live in the repository's top-level `widgets/` folder; this package
reaches them through its `static` link (copied into wheels as package data).
"""

from sam2pp.widgets.prompt_widget import PromptWidget
from sam2pp.widgets.prompts import apply_prompt, replay
from sam2pp.widgets.track_viewer import TrackViewer
from sam2pp.widgets.tracks import ObjectResult, Track
from sam2pp.widgets.viewport import Viewport

__all__ = ["ObjectResult", "PromptWidget", "Track", "TrackViewer", "Viewport", "apply_prompt", "replay"]
