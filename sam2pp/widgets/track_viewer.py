"""`TrackViewer`: scrub or play tracking results over the video, toggle objects and layers, export.

Frames and masks are fetched by the browser on demand (a small prefetch window around the
shown frame); boxes and points of all frames travel once, as numbers, because trails need
the past positions. Exports are drawn in Python with `sam2pp.io.overlay`, so a PNG, GIF or
MP4 shows exactly what the toggles select. A viewer of a `PromptWidget` follows it: objects
prompted or propagated after the viewer was built appear in it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import anywidget
import numpy as np
import traitlets as t
from PIL import Image

from sam2pp.io.formats import ordered_xyxy
from sam2pp.io.overlay import draw_overlay, object_color, write_animation
from sam2pp.widgets.frame_server import FrameServer
from sam2pp.widgets.front_end import STATIC, esm
from sam2pp.widgets.prompt_widget import PromptWidget, hex_color
from sam2pp.widgets.tracks import ObjectResult, Track
from sam2pp.widgets.video import FrameSource, as_frame_source, check_frame_idx
from sam2pp.widgets.viewport import Viewport

EXPORT_FORMATS = ("png", "gif", "mp4")


def _as_track(results: Iterable[object] | Track) -> Track:
    return results if isinstance(results, Track) else Track.from_results(results)


def _video(results: object, video: object) -> FrameSource:
    if isinstance(results, PromptWidget):
        return as_frame_source(results.state if video is None else video)
    if video is None:
        raise ValueError("pass the video too: TrackViewer(results, state) or TrackViewer(results, frames)")
    return as_frame_source(video)


def _nan_to_none(rows: np.ndarray) -> list[list[float] | None]:
    return [[round(float(v), 2) for v in row] if np.isfinite(row).all() else None for row in rows]


class TrackViewer(anywidget.AnyWidget):
    """Show `results` (FrameResults from `propagate`, a `Track`, or a `PromptWidget`) over `video`.

    `video` is the predictor state or uint8 frames (T, H, W, 3); with a PromptWidget it
    defaults to the widget's state. Keyboard (focused): space play/pause, ←/→ step,
    Home/End first/last frame, m/b/p toggle masks/boxes/points. A viewer of a PromptWidget shows
    the widget's current results at all times; give other viewers new results with `update`.
    """

    _esm = esm("track_viewer.js")
    _css = STATIC / "track_viewer.css"

    frame_idx = t.Int(0).tag(sync=True)
    num_frames = t.Int(1).tag(sync=True)
    width = t.Int(1).tag(sync=True)
    height = t.Int(1).tag(sync=True)
    fps = t.Float(10.0).tag(sync=True)
    playing = t.Bool(False).tag(sync=True)
    alpha = t.Float(0.5).tag(sync=True)
    show_masks = t.Bool(True).tag(sync=True)
    show_boxes = t.Bool(True).tag(sync=True)
    show_points = t.Bool(True).tag(sync=True)
    trail = t.Int(10).tag(sync=True)
    objects = t.List(t.Dict()).tag(sync=True)
    hidden = t.List(t.Int()).tag(sync=True)
    tracks = t.Dict().tag(sync=True)
    status = t.Unicode("").tag(sync=True)
    prefetch = t.Int(8).tag(sync=True)

    def __init__(self, results: Iterable[object] | Track | PromptWidget, video: object = None, *,
                 fps: float = 10.0, max_display_size: int = 960, export_dir: str | Path = ".", **kwargs):
        self.source = _video(results, video)
        self._widget = results if isinstance(results, PromptWidget) else None
        self._track = _as_track(results) if self._widget is None else None
        self.viewport = Viewport.fit(self.source.video_width, self.source.video_height, max_display_size)
        self.export_dir = Path(export_dir)
        self._server = FrameServer(self.source, self.viewport, lambda idx: self.track.rows(idx))
        super().__init__(num_frames=self.source.num_frames, width=self.viewport.width, height=self.viewport.height,
                         fps=fps, **self._object_traits(), **kwargs)
        self.on_msg(self._on_msg)
        if self._widget is not None:
            self._widget.observe(lambda _change: self.refresh(), names="revision")

    @property
    def track(self) -> Track:
        """The results shown: the PromptWidget's current ones, or those given (`update` replaces them)."""
        return self._widget.track if self._widget is not None else self._track

    def update(self, results: Iterable[object] | Track) -> None:
        """Show new results (FrameResults or a Track), e.g. after objects were added and propagated again."""
        if self._widget is not None:
            raise ValueError("this viewer follows its PromptWidget; prompt or propagate there instead")
        self._track = _as_track(results)
        self.refresh()

    def refresh(self) -> None:
        """Re-read the results: the object list, the boxes and points, and the masks the browser holds."""
        traits = self._object_traits()
        shown = {obj["id"] for obj in traits["objects"]}
        self.hidden = [i for i in self.hidden if i in shown]
        self.objects, self.tracks = traits["objects"], traits["tracks"]
        self._server.invalidate()
        self.send({"type": "invalidate", "frames": None})

    def _object_traits(self) -> dict:
        """The `objects` and `tracks` traits of the current results."""
        track = self.track
        tasks = track.object_tasks()
        return {"objects": [{"id": i, "task": task, "color": hex_color(i)} for i, task in tasks.items()],
                "tracks": {str(i): self._series(track, i) for i in tasks}}

    def _series(self, track: Track, obj_id: int) -> dict:
        """Boxes and points of one object over all frames, in canvas pixels (None where absent)."""
        boxes = track.series(obj_id, self.source.num_frames, "box_xyxy")
        points = track.series(obj_id, self.source.num_frames, "point_xy")
        scale = np.array([self.viewport.scale_x, self.viewport.scale_y], np.float32)
        return {"boxes": _nan_to_none(boxes * np.tile(scale, 2)), "points": _nan_to_none(points * scale)}

    # Drawing in Python (exports) ----------------------------------------------------------
    def shown_rows(self, frame_idx: int) -> list[ObjectResult]:
        return [row for row in self.track.rows(frame_idx) if row.obj_id not in self.hidden]

    def render(self, frame_idx: int | None = None) -> np.ndarray:
        """uint8 (H, W, 3) video frame with the shown objects and layers drawn, at video resolution."""
        frame_idx = check_frame_idx(self.source, self.frame_idx if frame_idx is None else frame_idx)
        frame = self.source.frame(frame_idx)
        rows = self.shown_rows(frame_idx)
        if not rows:
            return np.asarray(frame).copy()
        ids = [row.obj_id for row in rows]
        start = max(0, frame_idx - self.trail + 1)
        track = self.track
        trails = np.stack([track.series(i, frame_idx + 1, "point_xy")[start:] for i in ids])
        return draw_overlay(
            frame,
            masks=np.stack([row.mask for row in rows]) if self.show_masks else None,
            boxes_xyxy=ordered_xyxy(np.stack([row.box_xyxy for row in rows])) if self.show_boxes else None,
            points_xy=np.stack([row.point_xy for row in rows]) if self.show_points else None,
            visible=np.array([row.visible for row in rows]),
            trails=trails if self.show_points and self.trail > 1 else None,
            colors=[object_color(i) for i in ids],
            alpha=self.alpha,
        )

    def export_frame(self, path: str | Path | None = None, frame_idx: int | None = None) -> Path:
        """Write the rendered frame as PNG (default `<export_dir>/frame_<idx>.png`)."""
        frame_idx = self.frame_idx if frame_idx is None else frame_idx
        path = Path(path) if path is not None else self.export_dir / f"frame_{frame_idx:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(self.render(frame_idx)).save(path)
        return path

    def export_video(self, path: str | Path, fps: float | None = None) -> Path:
        """Write every rendered frame as `.gif` or `.mp4` at `fps` (default: the viewer's)."""
        frames = (self.render(i) for i in range(self.source.num_frames))
        return write_animation(path, frames, fps=fps or self.fps, progress=False)

    # Browser messages ---------------------------------------------------------------------
    def _on_msg(self, _widget, content: dict, _buffers) -> None:
        kind = content.get("type")
        try:
            if kind == "request":
                for message, buffers in self._server.answer(content):
                    self.send(message, buffers)
            elif kind == "export":
                self._export(content.get("format"))
            else:
                raise ValueError(f"unknown message type {kind!r}")
        except (ValueError, IndexError, OSError) as error:
            self.status = f"error: {error}"

    def _export(self, fmt: str | None) -> None:
        if fmt not in EXPORT_FORMATS:
            raise ValueError(f"export format must be one of {EXPORT_FORMATS}, got {fmt!r}")
        if fmt == "png":
            path = self.export_frame()
        else:
            self.status = f"writing {fmt.upper()} ..."
            path = self.export_video(self.export_dir / f"track.{fmt}")
        self.status = f"saved {path}"
        mime = {"png": "image/png", "gif": "image/gif", "mp4": "video/mp4"}[fmt]
        self.send({"type": "download", "name": path.name, "mime": mime}, [path.read_bytes()])
