"""What training data hands the model, and what the model hands the loss.

A `RawClip` is read from disk (or generated) at the video's own resolution; the transforms turn it into a `Clip` at
the model's S x S resolution. The training unroll (`unroll.py`) tracks the clip's N objects together and returns,
for every frame in time order, the list of `StepOutput`s (one per decoder run on that frame: 1, or 1 + the
correction clicks) that the loss (`losses.py`) reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
from torch import Tensor


@dataclass
class _ClipFields:
    """T frames of one video and N objects of one task, with their targets; see `RawClip` and `Clip`."""

    task: str
    frames: Tensor
    masks: Tensor | None
    visible: Tensor
    boxes_xyxy: Tensor | None = None
    points_xy: Tensor | None = None
    video: str = ""
    start: int = 0
    obj_ids: tuple[int, ...] = field(default_factory=tuple)

    @property
    def num_frames(self) -> int:
        return self.visible.shape[0]

    @property
    def num_objects(self) -> int:
        return self.visible.shape[1]

    def to(self, device: torch.device | str):
        """The clip with its tensors on `device`."""
        move = lambda x: None if x is None else x.to(device)  # noqa: E731
        return replace(self, frames=move(self.frames), masks=move(self.masks), visible=move(self.visible),
                       boxes_xyxy=move(self.boxes_xyxy), points_xy=move(self.points_xy))


@dataclass
class RawClip(_ClipFields):
    """Consecutive frames of one video and its objects of one task, in video pixels (W x H).

    frames: uint8 (T, 3, H, W); masks: bool (T, N, H, W) object masks (mask task; box task where the dataset has
    them, else the filled box) or None (point task); visible: bool (T, N); boxes_xyxy: float32 (T, N, 4) pixels,
    box task only (x1 = x + w); points_xy: float32 (T, N, 2) pixels, point task only.
    """


@dataclass
class Clip(_ClipFields):
    """A `RawClip` after augmentation, in model pixels (S x S).

    frames: float32 (T, 3, S, S) normalised with the ImageNet mean and std; masks: float32 (T, N, S, S) targets,
    0/1 object masks (mask and box tasks) or the gaussian heat map around the point (point task); visible: bool
    (T, N); boxes_xyxy: float32 (T, N, 4) model pixels (box task); points_xy: float32 (T, N, 2) model pixels
    (point task).
    """

    @property
    def image_size(self) -> int:
        return self.masks.shape[-1]


@dataclass
class StepOutput:
    """One decoder run on one frame for the clip's N objects, every multimask candidate kept, after suppression.

    masks: float32 (N, M, S, S) high-res logits (-1024 where the object is predicted absent); ious: (N, M) predicted
    IoUs; object_score_logits: (N, 1); boxes_xyxy_norm: (N, M, 4) in [0, 1] (box task) or None.
    """

    masks: Tensor
    ious: Tensor
    object_score_logits: Tensor
    boxes_xyxy_norm: Tensor | None = None


# For each frame of a clip, in time order, its decoder runs in order (the last one is the frame's prediction).
ClipOutputs = list[list[StepOutput]]
