"""A uniform read-only view of the frames a widget shows: a predictor state or an array."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class FrameSource(Protocol):
    """What the widgets need from a video: its size and one frame at a time.

    A `sam2pp` inference state satisfies it, so widgets read frames through the state's own
    (lazy, cached) loader instead of holding a second copy of the video.
    """

    num_frames: int
    video_height: int
    video_width: int

    def frame(self, idx: int) -> np.ndarray:
        """uint8 (H, W, 3) RGB frame `idx`."""
        ...


class ArrayFrames:
    """Frames held in memory: a uint8 array (T, H, W, 3) or a sequence of (H, W, 3) arrays."""

    def __init__(self, frames: np.ndarray | Sequence[np.ndarray]):
        if len(frames) == 0:
            raise ValueError("the video has no frames")
        first = np.asarray(frames[0])
        if first.ndim != 3 or first.shape[2] != 3 or first.dtype != np.uint8:
            raise ValueError(f"frames must be uint8 (H, W, 3), got {first.dtype} {first.shape}")
        self._frames = frames
        self.num_frames = len(frames)
        self.video_height, self.video_width = int(first.shape[0]), int(first.shape[1])

    def frame(self, idx: int) -> np.ndarray:
        return np.asarray(self._frames[idx])


def as_frame_source(video: object) -> FrameSource:
    """Accept a predictor state (anything with the `FrameSource` attributes) or in-memory frames."""
    if isinstance(video, FrameSource):
        return video
    if isinstance(video, (np.ndarray, list, tuple)):
        return ArrayFrames(video)
    raise TypeError(
        "expected a predictor state (with num_frames, video_height, video_width and frame(i)) or "
        f"uint8 frames (T, H, W, 3), got {type(video).__name__}"
    )


def check_frame_idx(source: FrameSource, idx: int) -> int:
    """Return `idx` as an int, or raise naming the valid range."""
    if not 0 <= int(idx) < source.num_frames:
        raise IndexError(f"frame index {idx} is outside the video's 0..{source.num_frames - 1}")
    return int(idx)
