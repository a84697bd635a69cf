"""A tracking session: the video, its objects with their task, prompts and memories, and a bounded feature cache."""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import torch

from ..modeling.model import FrameFeatures
from ..modeling.tracker import FramePrompt, ObjectMemory
from .frames import FrameSource

STREAM_LENGTH = 2**31  # a stream's length as tracking reads it: longer than any temporal range


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
        self._features: OrderedDict[tuple[int, str | None], object] = OrderedDict()
        self._task_features: dict[tuple[int, str], FrameFeatures] = {}
        self._feature_cache_size = feature_cache_size

    @property
    def num_frames(self) -> int:
        """The frames of the video (of a stream: received so far)."""
        return self.frames.num_frames

    @property
    def track_length(self) -> int:
        """The video's length as tracking reads it (it caps the object pointers' temporal range): a stream's is
        unknown, so it counts as longer than any range, which an offline video of `max_obj_ptrs_in_encoder` frames
        or more gives too."""
        return STREAM_LENGTH if self.frames.is_stream else self.frames.num_frames

    def add_frame(self, frame) -> int:
        """Append a frame to a streaming session (`VideoPredictor.init_state()` without a video); returns its index.
        frame: uint8 (H, W, 3) array or PIL image, the size of the first."""
        if not self.frames.is_stream:
            raise TypeError("add_frame needs a streaming session: create it with init_state() (no video) or with an "
                            "iterator of frames")
        return self.frames.add(frame)

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

    def cached_features(self, frame_idx: int, compute, encoder_task: str | None = None) -> object:
        """Image features of a frame from the LRU cache, computed with `compute(frame_idx)` on a miss.

        encoder_task: the task whose image encoder makes them when the model has one per task (None: the shared
        encoder); each (frame, encoder) entry then counts against the cache size.
        """
        key = (frame_idx, encoder_task)
        if key in self._features:
            self._features.move_to_end(key)
            return self._features[key]
        feats = compute(frame_idx)
        self._features[key] = feats
        if len(self._features) > self._feature_cache_size:
            (old_frame, old_task), _ = self._features.popitem(last=False)
            for k in [k for k in self._task_features if k[0] == old_frame and old_task in (None, k[1])]:
                del self._task_features[k]
        return feats

    def cached_task_features(self, frame_idx: int, task: str, compute) -> FrameFeatures:
        key = (frame_idx, task)
        if key not in self._task_features:
            self._task_features[key] = compute()
        return self._task_features[key]

    def tensor_bytes(self) -> int:
        """Bytes held by the session's tensors (memories, prompts, cached features and frames), each storage counted
        once: what `memory_bank="window"` keeps from growing with the video's length."""
        seen: dict[tuple, int] = {}
        for t in _tensors([self.objects, self._features, self._task_features, self.frames._cache]):
            storage = t.untyped_storage()
            seen[(t.device, storage.data_ptr())] = storage.nbytes()
        return sum(seen.values())

    def __repr__(self) -> str:
        objs = ", ".join(f"{o.obj_id}:{o.task}" for o in self.objects.values()) or "none"
        return (f"TrackingState({self.num_frames} frames, {self.video_width}x{self.video_height}, objects: {objs})")


def _tensors(value):
    """Every tensor in nested dataclasses, dicts, lists and tuples."""
    if isinstance(value, torch.Tensor):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _tensors(getattr(value, f.name))
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors(v)
