"""A tracking session: the video, its objects with their task, prompts and memories, and a bounded feature cache."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import torch

from ..modeling.model import FrameFeatures
from ..modeling.tracker import FramePrompt, ObjectMemory
from .frames import FrameSource


@dataclass
class TrackedObject:
    """One user object. `memory` feeds tracking; `pending` holds prompt outputs not yet turned into memories."""

    obj_id: int
    task: str
    memory: ObjectMemory = field(default_factory=ObjectMemory)
    pending: ObjectMemory = field(default_factory=ObjectMemory)
    prompts: dict[int, FramePrompt] = field(default_factory=dict)
    tracked: dict[int, bool] = field(default_factory=dict)  # frame -> tracked in reverse

    def latest(self, frame_idx: int, cond: bool):
        """The newest output on a frame: a pending one of the same kind first, then the memory bank."""
        pending = (self.pending.cond if cond else self.pending.non_cond).get(frame_idx)
        return pending if pending is not None else self.memory.get(frame_idx)


class TrackingState:
    """Everything a `VideoPredictor` session knows; create it with `VideoPredictor.init_state`."""

    def __init__(self, frames: FrameSource, image_size: int, device: torch.device, feature_cache_size: int = 4):
        self.frames = frames
        self.image_size = image_size
        self.device = torch.device(device)
        self.objects: OrderedDict[int, TrackedObject] = OrderedDict()
        self._features: OrderedDict[int, object] = OrderedDict()
        self._task_features: dict[tuple[int, str], FrameFeatures] = {}
        self._feature_cache_size = feature_cache_size

    @property
    def num_frames(self) -> int:
        return self.frames.num_frames

    @property
    def video_width(self) -> int:
        return self.frames.width

    @property
    def video_height(self) -> int:
        return self.frames.height

    @property
    def obj_ids(self) -> list[int]:
        return list(self.objects)

    def frame(self, index: int) -> np.ndarray:
        """Frame `index` as uint8 (H, W, 3) at the video's resolution."""
        return self.frames.frame(index)

    def object(self, obj_id: int) -> TrackedObject:
        if obj_id not in self.objects:
            raise KeyError(f"unknown object id {obj_id}; this session has objects {self.obj_ids}")
        return self.objects[obj_id]

    def check_frame(self, frame_idx: int) -> int:
        return self.frames.check_index(frame_idx)

    def cached_features(self, frame_idx: int, compute) -> object:
        """Image features of a frame from the LRU cache, computed with `compute(frame_idx)` on a miss."""
        if frame_idx in self._features:
            self._features.move_to_end(frame_idx)
            return self._features[frame_idx]
        feats = compute(frame_idx)
        self._features[frame_idx] = feats
        if len(self._features) > self._feature_cache_size:
            old, _ = self._features.popitem(last=False)
            for key in [k for k in self._task_features if k[0] == old]:
                del self._task_features[key]
        return feats

    def cached_task_features(self, frame_idx: int, task: str, compute) -> FrameFeatures:
        key = (frame_idx, task)
        if key not in self._task_features:
            self._task_features[key] = compute()
        return self._task_features[key]

    def __repr__(self) -> str:
        objs = ", ".join(f"{o.obj_id}:{o.task}" for o in self.objects.values()) or "none"
        return (f"TrackingState({self.num_frames} frames, {self.video_width}x{self.video_height}, objects: {objs})")
