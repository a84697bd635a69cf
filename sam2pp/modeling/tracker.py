"""One tracking step for one object: choose its memories, condition the frame on them, decode, encode a new memory.

No session state lives here: the caller passes the object's memories (`ObjectMemory`) and keeps what comes back
(`FrameMemory`). The rules that differ by task sit in `TASK_RULES`, a small registry, instead of branches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Collection

import torch
from torch import Tensor

from .model import FrameFeatures, HeadOutput, Points, SAM2PlusModel


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
    task; maskmem_features (1, Cm, h, w) stored in bfloat16 as published; maskmem_pos_enc (1, Cm, h, w), one tensor
    shared by every memory of the same shape (it depends on the shape only).
    """

    pred_masks: Tensor
    obj_ptr: Tensor
    object_score_logits: Tensor
    boxes_xyxy_norm: Tensor | None = None
    maskmem_features: Tensor | None = None
    maskmem_pos_enc: Tensor | None = None
    from_points: bool = False

    def move_outputs(self, device: torch.device) -> None:
        """Move the decoder's outputs (mask logits, object pointer, object score, box) to `device`; the steps that
        read them back copy them to the model's device."""
        for name in ("pred_masks", "obj_ptr", "object_score_logits", "boxes_xyxy_norm"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value.to(device))


@dataclass
class ObjectMemory:
    """An object's memory bank: conditioning frames (prompted) and the frames tracked since."""

    cond: dict[int, FrameMemory] = field(default_factory=dict)
    non_cond: dict[int, FrameMemory] = field(default_factory=dict)

    def get(self, frame_idx: int) -> FrameMemory | None:
        return self.cond.get(frame_idx, self.non_cond.get(frame_idx))

    def evict(self, frame_idx: int, reverse: bool, window: int, anchors: Collection[int] = ()) -> None:
        """Forget the tracked frames that no later tracking step can read (`Tracker.memory_window`).

        Kept: every conditioning frame, the tracked frames within `window` frames behind `frame_idx` in the tracking
        direction (the next frames read them), any frame ahead of it (an earlier pass's; this one overwrites it), and
        the tracked frames within `window` of a conditioning frame or of one of `anchors` on either side (a pass that
        starts there, forwards or in reverse, reads them, as published). `anchors` are the other objects'
        conditioning frames: a propagation starts at the earliest prompt of any object, so this object's memories
        near it are read too.
        """
        sign = -1 if reverse else 1
        for t in list(self.non_cond):
            behind = (frame_idx - t) * sign
            if behind > window and all(abs(t - c) > window for c in (*self.cond, *anchors)):
                del self.non_cond[t]


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
    # Only training gives a box together with the object's mask: the mask is then the output (published).
    "box": TaskRules(
        clicks=lambda labels: int((labels[0] < 2).sum()),
        prompt_is_output=lambda p: p.points is not None and p.prob_map is not None,
    ),
    "point": TaskRules(
        clicks=lambda labels: labels.shape[1],
        prompt_is_output=lambda p: p.points is not None and p.prob_map is not None,
    ),
}


def frame_memory(out: HeadOutput, prompt: FramePrompt) -> FrameMemory:
    """What is kept of a decoder output (its memory is encoded later)."""
    return FrameMemory(
        pred_masks=out.low_res_masks,
        obj_ptr=out.obj_ptr,
        object_score_logits=out.object_score_logits,
        boxes_xyxy_norm=out.boxes_xyxy_norm,
        from_points=prompt.points is not None,
    )


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

    def __init__(self, model: SAM2PlusModel, memory_device: torch.device | None = None, compile_step: bool = False):
        """`memory_device`: where inference keeps the memory features (None: the model's device); each step reads
        the memories it needs back to the model's device.

        `compile_step`: run memory attention, the decoder and the memory encoder through `torch.compile` (the
        published "vos_optimized" mode). Memory attention compiles with dynamic shapes, since an object's memory
        grows over its first frames; the other two see the same shapes on every tracked frame.
        """
        self.model = model
        self.config = model.config
        self.memory_device = memory_device
        self._pos_enc: dict[tuple, Tensor] = {}
        compiled = _compiled if compile_step else lambda fn, **_: fn
        self._attend_memory = compiled(model.attend_memory, dynamic=True)
        self._decode = compiled(model.decode)
        self._encode_memory = compiled(model.encode_memory)

    def memory_window(self) -> int:
        """How many frames behind the one being tracked (in the tracking direction) a tracking step reads: the
        farthest of the num_maskmem - 1 spatial memories (every `memory_temporal_stride_for_eval` frames after the
        previous frame) and of the max_obj_ptrs_in_encoder - 1 object pointers."""
        cfg = self.config
        spatial = 1 + max(cfg.num_maskmem - 2, 0) * cfg.memory_temporal_stride_for_eval
        return max(spatial, cfg.max_obj_ptrs_in_encoder - 1)

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
        result, out = self.predict(task, frame_idx, features, memory, num_frames, prompt, is_init_cond_frame, reverse,
                                   prev_mask_logits)
        if run_memory_encoder:
            self.encode(task, features, result, out.high_res_masks)
        return result

    def predict(self, task, frame_idx, features, memory, num_frames, prompt=None, is_init_cond_frame=False,
                reverse=False, prev_mask_logits=None) -> tuple[FrameMemory, HeadOutput]:
        """`step` without the memory encoder, also returning the decoder's output (training reads its candidates)."""
        prompt = prompt or FramePrompt()
        if self.config.use_mask_input_as_output_without_sam and TASK_RULES[task].prompt_is_output(prompt):
            out = self.model.prompt_as_output(task, features.vision, features.high_res, prompt.prob_map, prompt.points)
        else:
            vision = self.condition(task, frame_idx, features, memory, num_frames, is_init_cond_frame, reverse)
            out = self.decode(task, vision, features, prompt, is_init_cond_frame, prev_mask_logits)
        return frame_memory(out, prompt), out

    def encode(self, task: str, features: FrameFeatures, frame: FrameMemory, high_res_masks: Tensor | None = None):
        """Fill `frame`'s memory from its masks (upsampled from the low-res logits unless given).

        Memories are stored in bfloat16 for inference, as published, and kept in float32 while training.
        """
        if high_res_masks is None:
            size = (self.model.image_size, self.model.image_size)
            high_res_masks = torch.nn.functional.interpolate(
                frame.pred_masks.to(self.model.device), size=size, mode="bilinear", align_corners=False
            )
        binarize = self.config.binarize_mask_from_pts_for_mem_enc and frame.from_points
        feats, pos = self._encode_memory(
            task, features.vision, high_res_masks, frame.object_score_logits.to(self.model.device),
            binarize=binarize,
        )
        self._store_memory(task, frame, feats, pos)

    def _store_memory(self, task: str, frame: FrameMemory, feats: Tensor, pos: Tensor) -> None:
        """Keep (1, Cm, h, w) memory features in `frame`: float32 in training; for inference a bfloat16 copy, as
        published (a copy even when already bfloat16, so that a row of a batch does not hold the whole batch), on
        `memory_device`."""
        if not self.model.training:
            feats = feats.to(torch.bfloat16, copy=True).to(self.memory_device or feats.device)
        frame.maskmem_features = feats
        frame.maskmem_pos_enc = self._one_pos_enc(task, pos)

    def _one_pos_enc(self, task: str, pos: Tensor) -> Tensor:
        """The memory position encoding depends only on the memory's shape: keep one copy per shape, not per frame."""
        key = (task, tuple(pos.shape), pos.dtype, pos.device, pos.is_inference())
        if key not in self._pos_enc:
            self._pos_enc[key] = pos.clone()
        return self._pos_enc[key]

    def condition(self, task, frame_idx, features, memory, num_frames, is_init, reverse=False) -> Tensor:
        """The frame's features for the decoder: with the no-memory embedding (initial prompt) or after memory attention."""
        if is_init:
            return self.model.without_memory(features.vision)
        return self._condition(task, frame_idx, features, memory, num_frames, reverse)

    def decode(self, task, vision, features, prompt, is_init, prev_mask_logits=None) -> HeadOutput:
        """Prompt encoder and decoder on conditioned features; clicks refine `prev_mask_logits` when given."""
        points, mask_prompt = prompt.points, prompt.prob_map
        if task == "point":
            points = points if self.config.input_point_task_coord_xy else None
            mask_prompt = mask_prompt if self.config.input_point_task_gaussian_mask else None
        if prev_mask_logits is not None:
            mask_prompt = prev_mask_logits
        return self._decode(
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
        b = features.vision.shape[0]
        tokens, tokens_pos, n_ptr = self._memory_tokens(frame_idx, memory, num_frames, reverse, b)
        return self._attend_memory(task, features.vision, features.vision_pos, tokens, tokens_pos, n_ptr)

    def _memory_tokens(self, frame_idx, memory, num_frames, reverse, b=1) -> tuple[Tensor, Tensor, int]:
        """The memory tokens (L, B, Cm) an object's frame attends to, their encodings, and how many are pointers."""
        if not memory.cond:
            raise RuntimeError(f"frame {frame_idx}: the object has no prompted (conditioning) frame to track from")
        selected, unselected = select_closest_cond_frames(frame_idx, memory.cond, self.config.max_cond_frames_in_attn)
        mem, mem_pos = self._spatial_memories(frame_idx, memory, selected, unselected, reverse)
        ptrs, ptr_pos = self._object_pointers(frame_idx, memory, selected, unselected, num_frames, reverse, b)
        n_ptr = sum(p.shape[0] for p in ptrs)
        return torch.cat(mem + ptrs, dim=0), torch.cat(mem_pos + ptr_pos, dim=0), n_ptr

    # ---- several objects at once ----------------------------------------------------------------------------------

    def track_objects(self, task: str, frame_idx: int, features: FrameFeatures, memories: list[ObjectMemory],
                      num_frames: int, reverse: bool = False) -> list[FrameMemory]:
        """`step` without a prompt (a tracked frame) for several objects of one task, each with its memory bank.

        Memory attention and the memory encoder run once for each group of objects whose memories have the same
        layout (usually all of them); their large matrix products give every row the same numbers as a batch of one.
        The decoder runs per object: its matrix products over a few tokens round differently in a batch (about 2e-6
        per frame, compounding through the memories), so batching it would lose exact equality with `step`.
        """
        tokens = [self._memory_tokens(frame_idx, m, num_frames, reverse) for m in memories]
        groups: dict[tuple[int, int], list[int]] = {}
        for i, (mem, _, n_ptr) in enumerate(tokens):
            groups.setdefault((mem.shape[0], n_ptr), []).append(i)
        results: list[FrameMemory | None] = [None] * len(memories)
        for (_, n_ptr), rows in groups.items():
            batch = _expand(features, len(rows))
            vision = self._attend_memory(
                task, batch.vision, batch.vision_pos, torch.cat([tokens[i][0] for i in rows], dim=1),
                torch.cat([tokens[i][1] for i in rows], dim=1), n_ptr,
            )
            outs = [self.decode(task, v[None], features, FramePrompt(), is_init=False) for v in vision]
            frames = [frame_memory(o, FramePrompt()) for o in outs]
            self._encode_batch(task, batch, frames, torch.cat([o.high_res_masks for o in outs]))
            for i, frame in zip(rows, frames):
                results[i] = frame
        return results

    def _encode_batch(self, task: str, batch: FrameFeatures, frames: list[FrameMemory], high_res_masks: Tensor):
        """`encode` for a batch of objects; one at a time when the memory encoder makes masks non-overlapping
        across the batch, which objects tracked one at a time never see."""
        if self.config.non_overlap_masks_for_mem_enc or len(frames) == 1:
            for k, frame in enumerate(frames):
                self.encode(task, _expand(batch, 1), frame, high_res_masks[k:k + 1])
            return
        feats, pos = self._encode_memory(
            task, batch.vision, high_res_masks, torch.cat([f.object_score_logits for f in frames])
        )
        for k, frame in enumerate(frames):
            self._store_memory(task, frame, feats[k:k + 1], pos[k:k + 1])

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
            # Stored memories may be bfloat16: compute in float32 (autocast still runs them in bfloat16, as published).
            feats.append(m.maskmem_features.to(device=device, dtype=torch.float32).flatten(2).permute(2, 0, 1))
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


def _expand(features: FrameFeatures, b: int) -> FrameFeatures:
    """One frame's features (batch 1) seen as a batch of `b` objects, without copying."""
    grow = lambda t: t[:1].expand(b, *t.shape[1:])  # noqa: E731
    high_res = None if features.high_res is None else [grow(t) for t in features.high_res]
    return FrameFeatures(vision=grow(features.vision), vision_pos=grow(features.vision_pos), high_res=high_res)



# Graphs one compiled step function may hold: per task, one object or a batch, a memory of one frame or more, and a
# first call before the modules' lazily filled caches exist (dynamo's default of 8 sends the third task to eager).
_RECOMPILE_LIMIT = 64


def _compiled(fn: Callable, **options) -> Callable:
    """`fn` through `torch.compile`, called with contiguous tensors: dynamo guards on strides, and the batched and
    one-object paths hand it views of different layouts, each of which would otherwise compile it again."""
    compiled = torch.compile(fn, **options)

    def call(*args, **kwargs):
        with torch._dynamo.config.patch(recompile_limit=_RECOMPILE_LIMIT):
            return compiled(*map(_contiguous, args), **{k: _contiguous(v) for k, v in kwargs.items()})

    return call


def _contiguous(value):
    if isinstance(value, Tensor):
        return value.contiguous()
    if isinstance(value, list):
        return [_contiguous(v) for v in value]
    return value
