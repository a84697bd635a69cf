"""Cutting one video into a `RawClip`, as the published samplers do (`vos_sampler.py`, `box_sampler.py`,
`point_sampler.py`): a uniform start, `num_frames` consecutive frames, up to `max_objects` of the objects usable in
the first frame, drawn without replacement. What "usable" means and what the targets are differ by task (`RULES`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ...io.formats import box_absent, xywh_to_xyxy
from ..clip import RawClip
from .errors import DatasetError
from .videos import VideoSource

MIN_MASK_PIXELS = 5  # a mask object counts as present in a first frame above this many pixels (SAM2-Plus: > 5)


def _mask_candidates(video: VideoSource, t: int) -> list[int]:
    ids = video.ids(t)
    if ids is None:
        raise DatasetError(f"video {video.name!r}: the mask task needs mask PNGs")
    counts = np.bincount(ids.ravel(), minlength=256)
    return [int(i) for i in np.flatnonzero(counts > MIN_MASK_PIXELS) if i != 0]


def _mask_targets(video: VideoSource, frames: range, obj_ids: list[int]) -> dict:
    ids = np.stack([video.ids(t) for t in frames])
    masks = torch.from_numpy(ids[:, None] == np.array(obj_ids, dtype=np.uint8)[None, :, None, None])
    return {"masks": masks, "visible": masks.flatten(2).any(-1)}


def _box_track(video: VideoSource, obj_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(T, 4) xyxy clipped to the frame (zeros where hidden) and (T,) visibility: flagged visible, w and h > 0,
    and a non-empty box after clipping (published: x1, y1 >= 0, x2, y2 > 0, then clipped to the image)."""
    xywh, shown = video.boxes[obj_id]
    width, height = video.size
    xyxy = np.clip(xywh_to_xyxy(np.nan_to_num(xywh)), 0, [width, height, width, height])
    visible = shown & ~box_absent(xywh) & (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
    return np.where(visible[:, None], xyxy, 0.0), visible


def _box_candidates(video: VideoSource, t: int) -> list[int]:
    return [obj_id for obj_id in sorted(video.boxes) if _box_track(video, obj_id)[1][t]]


def _filled_box(xyxy: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The published `box_to_mask`: rows int(y1):int(y2), columns int(x1):int(x2) of an (H, W) bool image."""
    mask = np.zeros((size[1], size[0]), dtype=bool)
    x1, y1, x2, y2 = (int(v) for v in xyxy)
    mask[y1:y2, x1:x2] = True
    return mask


def _box_targets(video: VideoSource, frames: range, obj_ids: list[int]) -> dict:
    tracks = [_box_track(video, obj_id) for obj_id in obj_ids]
    boxes = np.stack([xyxy[frames.start : frames.stop] for xyxy, _ in tracks], axis=1)
    visible = np.stack([shown[frames.start : frames.stop] for _, shown in tracks], axis=1)
    masks = []
    for i, t in enumerate(frames):
        ids = video.ids(t)
        objects = [(ids == obj_id) if ids is not None else _filled_box(boxes[i, o], video.size)
                   for o, obj_id in enumerate(obj_ids)]
        masks.append(np.stack(objects) & visible[i, :, None, None])
    return {"masks": torch.from_numpy(np.stack(masks)), "visible": torch.from_numpy(visible),
            "boxes_xyxy": torch.from_numpy(boxes.astype(np.float32))}


def _point_candidates(video: VideoSource, t: int) -> list[int]:
    return [int(n) for n in np.flatnonzero(video.tracks.visibs[t])]


def _point_targets(video: VideoSource, frames: range, obj_ids: list[int]) -> dict:
    """Visible points clamped into the closed W x H frame (the pixel the published `int()` picks), hidden ones 0."""
    tracks = video.tracks
    visible = tracks.visibs[frames.start : frames.stop][:, obj_ids]
    xy = np.clip(tracks.trajs_2d[frames.start : frames.stop][:, obj_ids], 0, video.size)
    points = np.where(visible[..., None], xy, 0.0)
    return {"masks": None, "visible": torch.from_numpy(visible),
            "points_xy": torch.from_numpy(points.astype(np.float32))}


@dataclass(frozen=True)
class _TaskRule:
    candidates: Callable[[VideoSource, int], list[int]]
    targets: Callable[[VideoSource, range, list[int]], dict]


RULES = {
    "mask": _TaskRule(_mask_candidates, _mask_targets),
    "box": _TaskRule(_box_candidates, _box_targets),
    "point": _TaskRule(_point_candidates, _point_targets),
}


def sample_clip(video: VideoSource, task: str, rng: np.random.Generator, num_frames: int,
                max_objects: int) -> RawClip | None:
    """A clip of `num_frames` consecutive frames whose objects are all usable in its first frame, or None when the
    video is too short or no start has such an object. Starts are tried in a random order (the first one is uniform,
    as published; trying each start at most once bounds the reads)."""
    if video.num_frames < num_frames:
        return None
    rule = RULES[task]
    for start in rng.permutation(video.num_frames - num_frames + 1).tolist():
        candidates = rule.candidates(video, start)
        if candidates:
            break
    else:
        return None
    chosen = rng.choice(len(candidates), size=min(max_objects, len(candidates)), replace=False)
    obj_ids = [candidates[i] for i in chosen]
    frames = range(start, start + num_frames)
    pixels = torch.from_numpy(np.stack([video.frame(t) for t in frames])).permute(0, 3, 1, 2).contiguous()
    return RawClip(task=task, frames=pixels, **rule.targets(video, frames, obj_ids), video=video.name, start=start,
                   obj_ids=tuple(obj_ids))
