"""One tracking step for one object: choose its memories, condition the frame on them, decode, encode a new memory.

No session state lives here: the caller passes the object's memories (`ObjectMemory`) and keeps what comes back
(`FrameMemory`). The rules that differ by task sit in `TASK_RULES`, a small registry, instead of branches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor

from .model import FrameFeatures, Points, SAM2PlusModel


@dataclass
class FramePrompt:
    """What the user gave for one object on one frame, in model coordinates.

    points: clicks / box corners / the tracked point; prob_map: (1, 1, S, S) mask prompt in [0, 1] (a binary mask for
    the mask task, the gaussian disc for the point task).
    """

    points: Points | None = None
    prob_map: Tensor | None = None


@dataclass
class FrameMemory:
    """What is kept of one object on one frame: its outputs and, once encoded, its memory.

    pred_masks (1, 1, S/4, S/4) logits; obj_ptr (1, C); object_score_logits (1, 1); boxes_xyxy_norm (1, 4) for the box
    task; maskmem_features (1, Cm, h, w) stored in bfloat16 as published; maskmem_pos_enc (1, Cm, h, w).
    """

    pred_masks: Tensor
    obj_ptr: Tensor
    object_score_logits: Tensor
    boxes_xyxy_norm: Tensor | None = None
    maskmem_features: Tensor | None = None
    maskmem_pos_enc: Tensor | None = None
    from_points: bool = False


@dataclass
class ObjectMemory:
    """An object's memory bank: conditioning frames (prompted) and the frames tracked since."""

    cond: dict[int, FrameMemory] = field(default_factory=dict)
    non_cond: dict[int, FrameMemory] = field(default_factory=dict)

    def get(self, frame_idx: int) -> FrameMemory | None:
        return self.cond.get(frame_idx, self.non_cond.get(frame_idx))


@dataclass(frozen=True)
class TaskRules:
    """How a task reads its prompts.

    clicks: the number of clicks that the multimask rule counts for point labels (B, N).
    prompt_is_output: whether a prompt on a frame is output as it is (mask, gaussian) rather than decoded.
    """

    clicks: Callable[[Tensor], int]
    prompt_is_output: Callable[[FramePrompt], bool]


TASK_RULES: dict[str, TaskRules] = {
    "mask": TaskRules(
        clicks=lambda labels: labels.shape[1],
        prompt_is_output=lambda p: p.prob_map is not None,
    ),
    # A box (corner labels 2 and 3) counts as no click, so a lone box gets multimask output.
    "box": TaskRules(
        clicks=lambda labels: int((labels[0] < 2).sum()),
        prompt_is_output=lambda p: False,
    ),
    "point": TaskRules(
        clicks=lambda labels: labels.shape[1],
        prompt_is_output=lambda p: p.points is not None and p.prob_map is not None,
    ),
}


def select_closest_cond_frames(
    frame_idx: int, cond: dict[int, FrameMemory], limit: int
) -> tuple[dict[int, FrameMemory], dict[int, FrameMemory]]:
    """At most `limit` conditioning frames: the nearest before, the nearest at/after, then the temporally closest."""
    if limit == -1 or len(cond) <= limit:
        return cond, {}
    if limit < 2:
        raise ValueError("max_cond_frames_in_attn must be -1 or at least 2")
    picked: dict[int, FrameMemory] = {}
    before = max((t for t in cond if t < frame_idx), default=None)
    after = min((t for t in cond if t >= frame_idx), default=None)
    for t in (before, after):
        if t is not None:
            picked[t] = cond[t]
    rest = sorted((t for t in cond if t not in picked), key=lambda t: abs(t - frame_idx))
    picked.update((t, cond[t]) for t in rest[: limit - len(picked)])
    return picked, {t: v for t, v in cond.items() if t not in picked}


class Tracker:
    """Runs `SAM2PlusModel` on one frame for one object of one task, as the published video predictor does."""

    def __init__(self, model: SAM2PlusModel):
        self.model = model
        self.config = model.config

    def step(
        self,
        task: str,
        frame_idx: int,
        features: FrameFeatures,
        memory: ObjectMemory,
        num_frames: int,
        prompt: FramePrompt | None = None,
        is_init_cond_frame: bool = False,
        reverse: bool = False,
        run_memory_encoder: bool = True,
        prev_mask_logits: Tensor | None = None,
    ) -> FrameMemory:
        """Track one object on one frame; `prev_mask_logits` (1, 1, S/4, S/4) refine an earlier output with clicks."""
        prompt = prompt or FramePrompt()
        rules = TASK_RULES[task]
        if self.config.use_mask_input_as_output_without_sam and rules.prompt_is_output(prompt):
            out = self.model.prompt_as_output(task, features.vision, features.high_res, prompt.prob_map, prompt.points)
        else:
            out = self._decode(task, frame_idx, features, memory, num_frames, prompt, is_init_cond_frame, reverse,
                               prev_mask_logits)
        result = FrameMemory(
            pred_masks=out.low_res_masks,
            obj_ptr=out.obj_ptr,
            object_score_logits=out.object_score_logits,
            boxes_xyxy_norm=out.boxes_xyxy_norm,
            from_points=prompt.points is not None,
        )
        if run_memory_encoder:
            self.encode(task, features, result, out.high_res_masks)
        return result

    def encode(self, task: str, features: FrameFeatures, frame: FrameMemory, high_res_masks: Tensor | None = None):
        """Fill `frame`'s memory from its masks (upsampled from the low-res logits unless given)."""
        if high_res_masks is None:
            size = (self.model.image_size, self.model.image_size)
            high_res_masks = torch.nn.functional.interpolate(
                frame.pred_masks, size=size, mode="bilinear", align_corners=False
            )
        binarize = self.config.binarize_mask_from_pts_for_mem_enc and frame.from_points
        feats, pos = self.model.encode_memory(
            task, features.vision, high_res_masks, frame.object_score_logits, binarize=binarize
        )
        frame.maskmem_features = feats.to(torch.bfloat16)
        frame.maskmem_pos_enc = pos

    def _decode(self, task, frame_idx, features, memory, num_frames, prompt, is_init, reverse, prev_mask_logits):
        if is_init:
            vision = self.model.without_memory(features.vision)
        else:
            vision = self._condition(task, frame_idx, features, memory, num_frames, reverse)
        points, mask_prompt = prompt.points, prompt.prob_map
        if task == "point":
            points = points if self.config.input_point_task_coord_xy else None
            mask_prompt = mask_prompt if self.config.input_point_task_gaussian_mask else None
        if prev_mask_logits is not None:
            mask_prompt = prev_mask_logits
        return self.model.decode(
            task, vision, features.high_res, points=points, mask_prompt=mask_prompt,
            multimask=self._multimask(task, is_init, prompt.points),
        )

    def _multimask(self, task: str, is_init: bool, points: Points | None) -> bool:
        cfg = self.config
        clicks = 0 if points is None else TASK_RULES[task].clicks(points.labels)
        return (
            cfg.multimask_output_in_sam
            and (is_init or cfg.multimask_output_for_tracking)
            and cfg.multimask_min_pt_num <= clicks <= cfg.multimask_max_pt_num
        )

    # ---- memory selection -----------------------------------------------------------------------------------------

    def _condition(self, task, frame_idx, features, memory, num_frames, reverse) -> Tensor:
        """Features of a tracked frame after memory attention over the selected memories and object pointers."""
        if not memory.cond:
            raise RuntimeError(f"frame {frame_idx}: the object has no prompted (conditioning) frame to track from")
        b = features.vision.shape[0]
        selected, unselected = select_closest_cond_frames(frame_idx, memory.cond, self.config.max_cond_frames_in_attn)
        mem, mem_pos = self._spatial_memories(frame_idx, memory, selected, unselected, reverse)
        ptrs, ptr_pos = self._object_pointers(frame_idx, memory, selected, unselected, num_frames, reverse, b)
        tokens = torch.cat(mem + ptrs, dim=0)
        tokens_pos = torch.cat(mem_pos + ptr_pos, dim=0)
        n_ptr = sum(p.shape[0] for p in ptrs)
        return self.model.attend_memory(task, features.vision, features.vision_pos, tokens, tokens_pos, n_ptr)

    def _memory_frames(self, frame_idx, memory, selected, unselected, reverse) -> list[tuple[int, FrameMemory]]:
        """(temporal slot, memory) pairs: slot 0 for conditioning frames, then the previous num_maskmem - 1 frames."""
        n, stride = self.config.num_maskmem, self.config.memory_temporal_stride_for_eval
        if self.model.training:
            stride = 1
        pairs = [(0, m) for m in selected.values()]
        for slot in range(1, n):
            back = n - slot
            if back == 1:
                t = frame_idx + 1 if reverse else frame_idx - 1
            elif reverse:
                t = -(-(frame_idx + 2) // stride) * stride + (back - 2) * stride
            else:
                t = ((frame_idx - 2) // stride) * stride - (back - 2) * stride
            found = memory.non_cond.get(t, unselected.get(t))
            if found is not None:
                pairs.append((slot, found))
        return pairs

    def _spatial_memories(self, frame_idx, memory, selected, unselected, reverse):
        feats, pos = [], []
        device = self.model.device
        n = self.config.num_maskmem
        for slot, m in self._memory_frames(frame_idx, memory, selected, unselected, reverse):
            feats.append(m.maskmem_features.to(device).flatten(2).permute(2, 0, 1))
            enc = m.maskmem_pos_enc.to(device).flatten(2).permute(2, 0, 1)
            pos.append(enc + self.model.maskmem_tpos_enc[n - slot - 1])
        return feats, pos

    def _object_pointers(self, frame_idx, memory, selected, unselected, num_frames, reverse, b):
        """Pointer tokens (P * C/Cm, B, Cm) and their temporal encodings, as lists of zero or one tensor."""
        cfg = self.config
        max_ptrs = min(num_frames, cfg.max_obj_ptrs_in_encoder)
        sign = -1 if reverse else 1
        cond = selected
        if not self.model.training and cfg.only_obj_ptrs_in_the_past_for_eval:
            cond = {t: m for t, m in selected.items() if (t >= frame_idx if reverse else t <= frame_idx)}
        pairs = [
            ((frame_idx - t) * sign if cfg.use_signed_tpos_enc_to_obj_ptrs else abs(frame_idx - t), m.obj_ptr)
            for t, m in cond.items()
        ]
        for dist in range(1, max_ptrs):
            t = frame_idx + dist if reverse else frame_idx - dist
            if t < 0 or t >= num_frames:
                break
            found = memory.non_cond.get(t, unselected.get(t))
            if found is not None:
                pairs.append((dist, found.obj_ptr))
        if not pairs:
            return [], []
        c, cm = self.model.hidden_dim, self.model.mem_dim
        device = self.model.device
        ptrs = torch.stack([p.to(device) for _, p in pairs], dim=0)  # (P, B, C)
        distances = torch.tensor([d for d, _ in pairs], device=device)
        pos = self.model.temporal_pointer_encoding(distances, max_ptrs - 1)
        pos = pos.unsqueeze(1).expand(-1, b, cm)
        if cm < c:  # each pointer becomes C / Cm tokens of width Cm
            ptrs = ptrs.reshape(-1, b, c // cm, cm).permute(0, 2, 1, 3).flatten(0, 1)
            pos = pos.repeat_interleave(c // cm, dim=0)
        return [ptrs], [pos]
