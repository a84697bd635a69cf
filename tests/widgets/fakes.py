"""A predictor that follows CONTRACT.md's API and result fields but draws simple shapes.

Each object's output on frame t is its prompt's shape moved 2 px right per frame after the
prompted frame: a disc around positive clicks (minus negative ones), the prompt box, or a
small disc at the track point. Every call is recorded in `calls`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass
class FakeFrameResult:
    frame_idx: int
    obj_ids: list[int]
    tasks: list[str]
    mask_logits: np.ndarray
    masks: np.ndarray
    boxes_xyxy: np.ndarray
    points_xy: np.ndarray
    object_score_logits: np.ndarray
    visible: np.ndarray


@dataclass
class FakeObject:
    task: str
    frame_idx: int
    kind: str
    data: dict


@dataclass
class FakeState:
    frames: np.ndarray
    objects: dict[int, FakeObject] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return len(self.frames)

    @property
    def video_height(self) -> int:
        return self.frames.shape[1]

    @property
    def video_width(self) -> int:
        return self.frames.shape[2]

    def frame(self, idx: int) -> np.ndarray:
        return self.frames[idx]


def gradient_video(num_frames: int = 12, height: int = 120, width: int = 160) -> np.ndarray:
    """uint8 (T, H, W, 3) frames that differ from each other and across the image."""
    y, x = np.mgrid[:height, :width]
    frames = [np.stack([(x + 3 * t) % 256, (y * 2) % 256, np.full_like(x, 40 + t)], -1) for t in range(num_frames)]
    return np.asarray(frames, dtype=np.uint8)


class FakePredictor:
    RADIUS = 20

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def init_state(self, video) -> FakeState:
        if isinstance(video, (str, Path)):
            paths = sorted(Path(video).glob("*.jpg"))
            video = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])
        return FakeState(np.asarray(video, dtype=np.uint8))

    def _prompt(self, state, name, frame_idx, obj_id, task, kind, **data) -> FakeFrameResult:
        self.calls.append((name, {"frame_idx": frame_idx, "obj_id": obj_id, **data}))
        known = state.objects.get(obj_id)
        if known is not None and known.task != task:
            raise ValueError(f"object {obj_id} has task {known.task!r}, not {task!r}")
        state.objects[obj_id] = FakeObject(task, frame_idx, kind, data)
        return self._result(state, frame_idx)

    def add_points(self, state, frame_idx, obj_id, points_xy, labels):
        points_xy, labels = np.asarray(points_xy, np.float32), np.asarray(labels, np.int32)
        return self._prompt(state, "add_points", frame_idx, obj_id, "mask", "points", points=points_xy, labels=labels)

    def add_box(self, state, frame_idx, obj_id, box_xyxy, task="box"):
        return self._prompt(state, "add_box", frame_idx, obj_id, task, "box", box=np.asarray(box_xyxy, np.float32))

    def add_track_point(self, state, frame_idx, obj_id, point_xy, radius=None, sigma=None):
        point = np.asarray(point_xy, np.float32)
        return self._prompt(state, "add_track_point", frame_idx, obj_id, "point", "track_point", point=point)

    def propagate(self, state, start_frame=None, max_frames=None, reverse=False):
        self.calls.append(("propagate", {"start_frame": start_frame, "reverse": reverse}))
        if start_frame is None:
            start_frame = min(o.frame_idx for o in state.objects.values())
        stop = -1 if reverse else state.num_frames
        frames = list(range(start_frame, stop, -1 if reverse else 1))[:max_frames]
        for t in frames:
            yield self._result(state, t)

    def remove_object(self, state, obj_id):
        self.calls.append(("remove_object", {"obj_id": obj_id}))
        state.objects.pop(obj_id, None)

    def reset_state(self, state):
        self.calls.append(("reset_state", {}))
        state.objects.clear()

    def _result(self, state: FakeState, frame_idx: int) -> FakeFrameResult:
        ids = sorted(state.objects)
        h, w = state.video_height, state.video_width
        yy, xx = np.mgrid[:h, :w]
        logits = np.full((len(ids), h, w), -10.0, np.float32)
        boxes = np.full((len(ids), 4), np.nan, np.float32)
        points = np.full((len(ids), 2), np.nan, np.float32)
        for i, obj_id in enumerate(ids):
            obj = state.objects[obj_id]
            dx = 2.0 * (frame_idx - obj.frame_idx)
            inside = np.zeros((h, w), bool)
            if obj.kind == "points":
                for (x, y), label in zip(obj.data["points"], obj.data["labels"]):
                    disc = (xx - x - dx) ** 2 + (yy - y) ** 2 <= self.RADIUS**2
                    inside = inside | disc if label == 1 else inside & ~disc
            elif obj.kind == "box":
                x0, y0, x1, y1 = obj.data["box"]
                inside = (xx >= x0 + dx) & (xx < x1 + dx) & (yy >= y0) & (yy < y1)
                if obj.task == "box":
                    boxes[i] = [x0 + dx, y0, x1 + dx, y1]
            else:
                x, y = obj.data["point"]
                inside = (xx - x - dx) ** 2 + (yy - y) ** 2 <= 16
                points[i] = [round(x + dx), round(y)]
            logits[i][inside] = 10.0
        scores = np.where(logits.reshape(len(ids), -1).max(axis=1, initial=-10.0) > 0, 5.0, -5.0).astype(np.float32)
        return FakeFrameResult(
            frame_idx=frame_idx,
            obj_ids=ids,
            tasks=[state.objects[i].task for i in ids],
            mask_logits=logits,
            masks=logits > 0,
            boxes_xyxy=boxes,
            points_xy=points,
            object_score_logits=scores,
            visible=scores > 0,
        )
