"""The SAM 2++ network: its parts, its learned embeddings, and the per-frame operations the tracker composes.

`SAM2PlusModel` owns every parameter of the published checkpoint under the published names. It knows nothing of
sessions: the tracker (`tracker.py`) decides which frames are memories, and the predictor keeps them.

Shapes: S = `image_size`, C = `hidden_dim` (neck width), Cm = `mem_dim`, h = w = S / 16; B objects of one task.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ModelConfig
from .image_encoder import build_image_encoder
from .memory_attention import build_memory_attention
from .memory_encoder import build_memory_encoder
from .mlp import MLP
from .position_encoding import sine_encoding_1d
from .prompt_encoder import build_prompt_encoder
from .task_modules import TaskModuleDict, keep_published_task_names
from .unified_decoder import DecoderOutput, build_unified_decoder

# A prompt mask used as output becomes logits of +-10 (sigmoid(-10) ~ 4.5e-5), as published.
_MASK_LOGIT_SCALE, _MASK_LOGIT_BIAS = 20.0, -10.0


@dataclass
class Points:
    """Point prompts in model pixels: coords (B, N, 2) float32, labels (B, N) int32 (1 pos, 0 neg, 2/3 box corners)."""

    coords: Tensor
    labels: Tensor

    def cat(self, other: Points) -> Points:
        return Points(torch.cat([self.coords, other.coords], 1), torch.cat([self.labels, other.labels], 1))


@dataclass
class FrameFeatures:
    """One frame's features for one task, batch-expanded to the objects being tracked.

    vision (B, C, h, w) and vision_pos (B, C, h, w) are the lowest level; high_res are the task-projected stride-4
    and stride-8 levels fed to the decoder.
    """

    vision: Tensor
    vision_pos: Tensor
    high_res: list[Tensor] | None


@dataclass
class HeadOutput:
    """What one decoding of a frame produced for B objects.

    low_res_masks (B, 1, S/4, S/4) and high_res_masks (B, 1, S, S) are logits of the kept mask; boxes_xyxy_norm
    (B, 4) in [0, 1] model coordinates (box task only); obj_ptr (B, C); object_score_logits (B, 1).
    candidates: every decoder candidate after suppression, before the best is picked (the training loss reads all
    of them); None when a prompt was output as it is.
    """

    low_res_masks: Tensor
    high_res_masks: Tensor
    boxes_xyxy_norm: Tensor | None
    obj_ptr: Tensor
    object_score_logits: Tensor
    candidates: DecoderOutput | None = None


class SAM2PlusModel(nn.Module):
    """SAM 2 with task prompts, a unified mask/box/point decoder and task-adaptive memory."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        cfg = config.resolved()
        _check_supported(cfg)
        self.config = cfg
        keep_published_task_names(self)
        self.image_size = cfg.image_size
        self.hidden_dim = cfg.hidden_dim
        self.mem_dim = cfg.mem_dim
        self.num_maskmem = cfg.num_maskmem

        plain = cfg.to_dict()
        # Each is one module shared by every task or one per task, as the config's `separate_*` switch says.
        self.image_encoder = TaskModuleDict.build(
            lambda: build_image_encoder(plain["image_encoder"]), cfg.separate_image_encoder
        )
        self.memory_attention = TaskModuleDict.build(
            lambda: build_memory_attention(plain["memory_attention"]), cfg.separate_memory_attention
        )
        self.memory_encoder = TaskModuleDict.build(
            lambda: build_memory_encoder(plain["memory_encoder"]), cfg.separate_memory_encoder
        )
        self.sam_prompt_encoder = build_prompt_encoder(plain)
        self.sam_unified_decoder = build_unified_decoder(plain)

        c, cm = self.hidden_dim, self.mem_dim
        self.mask_downsample = nn.Conv2d(1, 1, kernel_size=4, stride=4)
        self.maskmem_tpos_enc = nn.Parameter(torch.zeros(cfg.num_maskmem, 1, 1, cm))
        self.no_mem_embed = nn.Parameter(torch.zeros(1, 1, c))
        self.no_mem_pos_enc = nn.Parameter(torch.zeros(1, 1, c))
        self.no_obj_ptr = nn.Parameter(torch.zeros(1, c))
        self.no_obj_embed_spatial = nn.Parameter(torch.zeros(1, cm))
        self.obj_ptr_proj = MLP(c, c, c, 3) if cfg.use_mlp_for_obj_ptr_proj else nn.Linear(c, c)
        self.obj_ptr_tpos_proj = nn.Linear(c, cm) if cfg.proj_tpos_enc_in_obj_ptrs else nn.Identity()
        for p in (self.maskmem_tpos_enc, self.no_mem_embed, self.no_mem_pos_enc, self.no_obj_ptr, self.no_obj_embed_spatial):
            nn.init.trunc_normal_(p, std=0.02)

    @property
    def device(self) -> torch.device:
        return self.no_mem_embed.device

    # ---- image features -------------------------------------------------------------------------------------------

    def encode_image(self, image: Tensor, task: str | None = None):
        """(1, 3, S, S) normalised image -> `ImageFeatures` of the task's image encoder.

        With the shared image encoder (the default) the features serve every task and `task` may be left out; with
        one encoder per task (`separate_image_encoder`) the task is required.
        """
        if task is None and not self.image_encoder.is_shared:
            raise ValueError("this model has one image encoder per task (separate_image_encoder=True): "
                             f"encode_image needs the task, one of {', '.join(self.image_encoder.tasks)}")
        return self.image_encoder[task](image)

    def task_features(self, image_features, task: str) -> FrameFeatures:
        """Apply the task's high-resolution projections (conv_s0/conv_s1) to image features that serve the task
        (from `encode_image(image, task)` when the model has one image encoder per task)."""
        fpn, pos = image_features.backbone_fpn, image_features.vision_pos_enc
        high_res = None
        if self.config.use_high_res_features_in_sam:
            high_res = list(self.sam_unified_decoder.project_high_res(fpn[:2], task))
        return FrameFeatures(vision=fpn[-1], vision_pos=pos[-1], high_res=high_res)

    # ---- decoding -------------------------------------------------------------------------------------------------

    def decode(
        self,
        task: str,
        features: Tensor,
        high_res: list[Tensor] | None,
        points: Points | None = None,
        mask_prompt: Tensor | None = None,
        multimask: bool = False,
    ) -> HeadOutput:
        """Prompt encoder + unified decoder on (B, C, h, w) features; keeps the best of the multimask outputs.

        mask_prompt: (B, 1, H', W') logits or probabilities, resized to the prompt encoder's mask size if needed.
        """
        b = features.shape[0]
        if points is None:  # the decoder always gets at least one (padding) point
            points = Points(
                torch.zeros(b, 1, 2, device=features.device), -torch.ones(b, 1, dtype=torch.int32, device=features.device)
            )
        if mask_prompt is not None and tuple(mask_prompt.shape[-2:]) != self.sam_prompt_encoder.mask_input_size:
            mask_prompt = F.interpolate(
                mask_prompt.float(),
                size=self.sam_prompt_encoder.mask_input_size,
                mode="bilinear",
                align_corners=False,
                antialias=True,
            )
        sparse, dense = self.sam_prompt_encoder(points=(points.coords, points.labels), boxes=None, masks=mask_prompt)
        out = self.sam_unified_decoder(
            image_embeddings=features,
            image_pe=self.sam_prompt_encoder.dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=multimask,
            repeat_image=False,
            high_res_features=high_res,
            task=task,
        ).suppress_absent()
        candidates = out
        visible = out.object_score_logits > 0
        if multimask:
            out = out.select_best()
        masks = out.masks.float()
        boxes = None if out.boxes_xyxy_norm is None else out.boxes_xyxy_norm[:, 0]
        tokens = out.sam_tokens[:, 0]
        scores = out.object_score_logits
        high = F.interpolate(masks, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        return HeadOutput(masks, high, boxes, self._object_pointer(tokens, visible.float()), scores, candidates)

    def _object_pointer(self, token: Tensor, present: Tensor) -> Tensor:
        """(B, C) decoder token -> object pointer."""
        return self._gate_pointer(self.obj_ptr_proj(token), present)

    def _gate_pointer(self, ptr: Tensor, present: Tensor) -> Tensor:
        """Objects absent (present (B, 1) = 0) get the learned `no_obj_ptr` in place of (or added to) `ptr`."""
        if self.config.fixed_no_obj_ptr:
            ptr = present * ptr
        return ptr + (1 - present) * self.no_obj_ptr

    def prompt_as_output(
        self, task: str, features: Tensor, high_res: list[Tensor] | None, prob_map: Tensor, points: Points | None
    ) -> HeadOutput:
        """Output a prompt map directly (a mask, a point's gaussian, or in training a box's object mask).

        prob_map: (B, 1, S, S) in [0, 1]. The decoder still runs once to produce the object pointer: on the
        down-sampled map (mask task), the point and its map (point task), or the box alone (box task, whose box
        output is then the prompt box). The score is +10 where the map has any positive pixel, else -10.
        """
        if task == "point":
            p = prob_map.float().clamp(1e-6, 1 - 1e-6)
            high = torch.log(p / (1 - p))
        else:
            high = prob_map.float() * _MASK_LOGIT_SCALE + _MASK_LOGIT_BIAS
        low = F.interpolate(high, size=(high.shape[-2] // 4, high.shape[-1] // 4), mode="bilinear",
                            align_corners=False, antialias=True)
        use_points = task == "box" or (task == "point" and self.config.input_point_task_coord_xy)
        use_map = task == "mask" or (task == "point" and self.config.input_point_task_gaussian_mask)
        decoded = self.decode(
            task,
            features,
            high_res,
            points=points if use_points else None,
            mask_prompt=self.mask_downsample(prob_map.float()) if use_map else None,
        )
        boxes = points.coords.reshape(-1, 4) / self.image_size if task == "box" else None
        present = (prob_map.flatten(1) > 0).any(dim=1, keepdim=True).float()
        scores = _MASK_LOGIT_SCALE * present + _MASK_LOGIT_BIAS
        return HeadOutput(low, high, boxes, self._gate_pointer(decoded.obj_ptr, present), scores)

    # ---- memory ---------------------------------------------------------------------------------------------------

    def attend_memory(
        self, task: str, vision: Tensor, vision_pos: Tensor, memory: Tensor, memory_pos: Tensor, num_ptr_tokens: int
    ) -> Tensor:
        """Condition (B, C, h, w) features on (L, B, Cm) memory tokens; the last `num_ptr_tokens` are pointers."""
        b, c, h, w = vision.shape
        seq = lambda t: t.flatten(2).permute(2, 0, 1)  # noqa: E731
        out = self.memory_attention[task](
            curr=seq(vision), curr_pos=seq(vision_pos), memory=memory, memory_pos=memory_pos,
            num_obj_ptr_tokens=num_ptr_tokens,
        )
        return out.permute(1, 2, 0).reshape(b, c, h, w)

    def without_memory(self, vision: Tensor) -> Tensor:
        """Features of an initial conditioning frame: the learned no-memory embedding added directly."""
        return vision + self.no_mem_embed.reshape(1, -1, 1, 1)

    def encode_memory(
        self, task: str, vision: Tensor, high_res_masks: Tensor, object_score_logits: Tensor, binarize: bool = False
    ) -> tuple[Tensor, Tensor]:
        """Memory features (B, Cm, h, w) and their position encoding from a (B, 1, S, S) mask-logit prediction."""
        cfg = self.config
        if cfg.non_overlap_masks_for_mem_enc and not self.training:
            high_res_masks = non_overlapping(high_res_masks)
        if binarize and not self.training:
            mask = (high_res_masks > 0).float()
        else:
            mask = torch.sigmoid(high_res_masks)
        mask = mask * cfg.sigmoid_scale_for_mem_enc + cfg.sigmoid_bias_for_mem_enc
        encoded = self.memory_encoder[task](vision, mask, skip_mask_sigmoid=True)
        absent = 1 - (object_score_logits > 0).float()
        features = encoded.features + absent[..., None, None] * self.no_obj_embed_spatial[..., None, None]
        return features, encoded.pos_enc

    def temporal_pointer_encoding(self, distances: Tensor, max_distance: int) -> Tensor:
        """(P,) signed frame distances -> (P, Cm) encodings of the object pointers' temporal positions."""
        dim = self.hidden_dim if self.config.proj_tpos_enc_in_obj_ptrs else self.mem_dim
        return self.obj_ptr_tpos_proj(sine_encoding_1d(distances / max_distance, dim))


def non_overlapping(masks: Tensor) -> Tensor:
    """Keep, at each pixel, only the highest-scoring object of (B, 1, H, W) logits; others are pushed to <= -10."""
    if masks.shape[0] == 1:
        return masks
    winner = torch.argmax(masks, dim=0, keepdim=True)
    mine = torch.arange(masks.shape[0], device=masks.device)[:, None, None, None]
    return torch.where(winner == mine, masks, masks.clamp(max=-10.0))


def _check_supported(cfg: ModelConfig) -> None:
    """Reject published switches this implementation fixes, rather than silently ignoring them."""
    fixed = {
        "use_obj_ptrs_in_encoder": True,
        "pred_obj_scores": True,
        "pred_obj_scores_mlp": True,
        "no_obj_embed_spatial": True,
        "add_tpos_enc_to_obj_ptrs": True,
        "soft_no_obj_ptr": False,
        "directly_add_no_mem_embed": True,
        "compile_image_encoder": False,
    }
    wrong = {k: getattr(cfg, k) for k, v in fixed.items() if getattr(cfg, k) != v}
    if wrong:
        raise ValueError(f"unsupported model settings {wrong}; sam2pp implements {fixed}")
