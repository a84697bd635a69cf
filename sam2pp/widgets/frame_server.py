"""Answers the browser's requests for frames, so the video is sent on demand, never whole.

The browser asks for the frame it shows plus a small prefetch window; each answer is one
message carrying the JPEG (unless the browser already holds it) and that frame's overlay.
Encoded frames and overlays are cached so scrubbing back and forth costs no re-encoding.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable

from sam2pp.widgets.encoding import Overlay, encode_jpeg, encode_objects
from sam2pp.widgets.tracks import ObjectResult
from sam2pp.widgets.video import FrameSource
from sam2pp.widgets.viewport import Viewport


class _LRU(OrderedDict):
    def __init__(self, capacity: int):
        super().__init__()
        self.capacity = capacity

    def put(self, key, value) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.capacity:
            self.popitem(last=False)


class FrameServer:
    """Encodes frame `i` of `source` and the overlay of the object rows `rows_for(i)`."""

    def __init__(
        self,
        source: FrameSource,
        viewport: Viewport,
        rows_for: Callable[[int], list[ObjectResult]],
        quality: int = 85,
        cache_frames: int = 64,
    ):
        self.source = source
        self.viewport = viewport
        self.rows_for = rows_for
        self.quality = quality
        self._jpegs = _LRU(cache_frames)
        self._overlays = _LRU(4 * cache_frames)

    def jpeg(self, idx: int) -> bytes:
        if idx not in self._jpegs:
            size = (self.viewport.width, self.viewport.height)
            self._jpegs.put(idx, encode_jpeg(self.source.frame(idx), size, self.quality))
        return self._jpegs[idx]

    def overlay(self, idx: int) -> Overlay:
        if idx not in self._overlays:
            self._overlays.put(idx, encode_objects(self.rows_for(idx), self.viewport))
        return self._overlays[idx]

    def invalidate(self, frames: Iterable[int] | None = None) -> None:
        """Forget encoded overlays (all, or of `frames`) after results changed."""
        if frames is None:
            self._overlays.clear()
            return
        for idx in frames:
            self._overlays.pop(idx, None)

    def message(self, idx: int, with_image: bool = True) -> tuple[dict, list[bytes]]:
        """One `frame` message: `image` and each object's `mask` index into the buffers."""
        overlay = self.overlay(idx)
        buffers = [self.jpeg(idx)] if with_image else []
        offset = len(buffers)
        objects = [
            {**obj, "mask": None if obj["mask"] is None else obj["mask"] + offset} for obj in overlay.objects
        ]
        content = {"type": "frame", "idx": idx, "image": 0 if with_image else None, "objects": objects}
        return content, buffers + overlay.buffers

    def answer(self, request: dict) -> list[tuple[dict, list[bytes]]]:
        """Messages for a browser request `{"frames": [i, ...], "images": bool}`; bad indices are dropped."""
        with_image = bool(request.get("images", True))
        frames = [int(i) for i in request.get("frames", []) if 0 <= int(i) < self.source.num_frames]
        return [self.message(i, with_image) for i in frames]
