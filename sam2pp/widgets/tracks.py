"""Tracking results regrouped per frame and per object, the shape both widgets draw from.

A `FrameResult` holds every object of one frame; undoing one object's prompt must drop just
that object's rows everywhere, and the viewer needs each object's boxes and points over all
frames. `Track` keeps `ObjectResult` rows keyed by frame, then by object id. Rows reference
the result's arrays (no copies).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np


@dataclass
class ObjectResult:
    """One object on one frame: mask bool (H, W), box_xyxy (4,) and point_xy (2,) (NaN where unused)."""

    obj_id: int
    task: str
    mask: np.ndarray
    box_xyxy: np.ndarray
    point_xy: np.ndarray
    visible: bool


def split_result(result: object) -> dict[int, ObjectResult]:
    """A FrameResult -> its objects' rows, keyed by object id."""
    return {
        int(obj_id): ObjectResult(
            obj_id=int(obj_id),
            task=str(result.tasks[i]),
            mask=np.asarray(result.masks[i]),
            box_xyxy=np.asarray(result.boxes_xyxy[i], dtype=np.float32),
            point_xy=np.asarray(result.points_xy[i], dtype=np.float32),
            visible=bool(result.visible[i]),
        )
        for i, obj_id in enumerate(result.obj_ids)
    }


class Track:
    """Rows per frame; a newer result for a frame replaces that frame's rows (it holds every object)."""

    def __init__(self) -> None:
        self.frames: dict[int, dict[int, ObjectResult]] = {}

    @classmethod
    def from_results(cls, results: Iterable[object]) -> Track:
        track = cls()
        for result in results:
            track.add(result)
        return track

    def add(self, result: object) -> None:
        self.frames[int(result.frame_idx)] = split_result(result)

    def rows(self, frame_idx: int) -> list[ObjectResult]:
        return list(self.frames.get(frame_idx, {}).values())

    def remove_object(self, obj_id: int) -> list[int]:
        """Drop `obj_id` from every frame; returns the frames that changed."""
        changed = [f for f, rows in self.frames.items() if rows.pop(obj_id, None) is not None]
        return changed

    def clear(self) -> None:
        self.frames.clear()

    def merged_over(self, base: Track) -> Track:
        """This track's frames, and `base`'s frames where this one has none."""
        merged = Track()
        merged.frames = {**base.frames, **self.frames}
        return merged

    def object_tasks(self) -> dict[int, str]:
        """Object id -> task, ids sorted."""
        tasks: dict[int, str] = {}
        for rows in self.frames.values():
            for obj_id, row in rows.items():
                tasks.setdefault(obj_id, row.task)
        return dict(sorted(tasks.items()))

    def series(self, obj_id: int, num_frames: int, field: str) -> np.ndarray:
        """(T, 4) boxes or (T, 2) points of `obj_id` (`field` "box_xyxy" or "point_xy"), NaN where absent."""
        width = 4 if field == "box_xyxy" else 2
        out = np.full((num_frames, width), np.nan, dtype=np.float32)
        for frame_idx, rows in self.frames.items():
            if obj_id in rows and frame_idx < num_frames:
                out[frame_idx] = getattr(rows[obj_id], field)
        return out
