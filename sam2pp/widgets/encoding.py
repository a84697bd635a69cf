"""Compact wire formats: frames as JPEG, masks as 1-bit PNG alpha, boxes and points as numbers.

A 480p frame is ~40 kB as JPEG and an object's mask a few hundred bytes as a 1-bit PNG, so
a frame plus its overlay fits in one small message that the browser decodes natively
(`createImageBitmap`) and tints with the object's colour.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from sam2pp.widgets.tracks import ObjectResult
from sam2pp.widgets.viewport import Viewport


def encode_jpeg(frame: np.ndarray, size: tuple[int, int] | None = None, quality: int = 85) -> bytes:
    """uint8 (H, W, 3) -> JPEG bytes, resized to `size = (width, height)` when given."""
    image = Image.fromarray(np.ascontiguousarray(frame), "RGB")
    if size is not None and image.size != size:
        image = image.resize(size, Image.BILINEAR)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def encode_mask_png(mask: np.ndarray, size: tuple[int, int] | None = None) -> bytes:
    """bool (H, W) -> 1-bit palette PNG whose "on" pixels are opaque white and the rest transparent."""
    image = Image.fromarray(np.asarray(mask, dtype=np.uint8), "P")
    if size is not None and image.size != size:
        image = image.resize(size, Image.NEAREST)
    image.putpalette([0, 0, 0, 255, 255, 255])
    out = io.BytesIO()
    image.save(out, format="PNG", transparency=0, bits=1, optimize=True)
    return out.getvalue()


def decode_mask_png(data: bytes) -> np.ndarray:
    """Inverse of `encode_mask_png`: bool (H, W)."""
    return np.asarray(Image.open(io.BytesIO(data)).convert("P")) > 0


def _finite_or_none(values: np.ndarray) -> list[float] | None:
    return [float(v) for v in values] if np.all(np.isfinite(values)) else None


@dataclass
class Overlay:
    """What the browser draws over one frame: JSON-able object records plus binary mask PNGs.

    `objects[i]["mask"]` is an index into `buffers` (or None for an empty mask); boxes and
    points are already in canvas pixels.
    """

    objects: list[dict] = field(default_factory=list)
    buffers: list[bytes] = field(default_factory=list)


def encode_objects(rows: Iterable[ObjectResult], viewport: Viewport) -> Overlay:
    """One frame's object rows (masks at video size, boxes and points in video pixels) -> Overlay."""
    overlay = Overlay()
    size = (viewport.width, viewport.height)
    for row in rows:
        mask_ref = None
        if row.mask.any():
            mask_ref = len(overlay.buffers)
            overlay.buffers.append(encode_mask_png(row.mask, size))
        box = _finite_or_none(row.box_xyxy)
        point = _finite_or_none(row.point_xy)
        overlay.objects.append({
            "id": row.obj_id,
            "task": row.task,
            "visible": row.visible,
            "mask": mask_ref,
            "box": None if box is None else viewport.box_to_display(np.asarray(box)),
            "point": None if point is None else list(viewport.to_display(*point)),
        })
    return overlay
