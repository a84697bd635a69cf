"""`FrameResult`: everything the tracker says about one frame, as numpy arrays at the video's resolution."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class FrameResult:
    """Results of one frame for the objects `obj_ids` (rows in that order).

    mask_logits float32 (O, H, W); masks bool (O, H, W) = mask_logits > 0; boxes_xyxy float32 (O, 4), NaN rows for
    objects that are not box-task; points_xy float32 (O, 2), the arg-max pixel for point-task objects, NaN otherwise;
    object_score_logits float32 (O,), NaN for an object without output on this frame; visible bool (O,);
    low_res_logits float32 (O, S/4, S/4), the model-resolution logits the tracker keeps.
    """

    frame_idx: int
    obj_ids: list[int]
    tasks: list[str]
    mask_logits: np.ndarray
    masks: np.ndarray
    boxes_xyxy: np.ndarray
    points_xy: np.ndarray
    object_score_logits: np.ndarray
    visible: np.ndarray
    low_res_logits: np.ndarray

    def __len__(self) -> int:
        return len(self.obj_ids)

    def index(self, obj_id: int) -> int:
        try:
            return self.obj_ids.index(obj_id)
        except ValueError:
            raise KeyError(f"object id {obj_id} is not in this result (objects: {self.obj_ids})") from None

    def label_map(self) -> np.ndarray:
        """uint8-able (H, W) map of object ids (0 = background); where masks overlap, the higher logit wins."""
        h, w = self.mask_logits.shape[1:]
        if not self.obj_ids:
            return np.zeros((h, w), dtype=np.int64)
        ids = np.asarray(self.obj_ids)
        best = np.argmax(np.where(self.masks, self.mask_logits, -np.inf), axis=0)
        return np.where(self.masks.any(axis=0), ids[best], 0)
