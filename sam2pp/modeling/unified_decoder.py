"""The unified decoder: SAM's mask decoder with one output head per task (mask, box, point).

The two-way transformer, output tokens, IoU head and object-score head are shared. Each task owns
its high-res projections (`conv_s0[task]`, `conv_s1[task]`), its upscaling path and its
hypernetwork MLPs, each a `TaskModuleDict` saved under the published flat names (`conv_s0_mask`, ...);
the box task also runs the corner box head. `_task_head(task)` gathers a task's modules in one place.

Shapes: image embedding (B, C, h, w); masks at (4h, 4w); high-res levels (B, C/8, 4h, 4w) and
(B, C/4, 2h, 2w) after projection.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from sam2pp.modeling.box_head import CornerBoxHead
from sam2pp.modeling.layer_norm import LayerNorm2d
from sam2pp.modeling.mlp import MLP
from sam2pp.modeling.task_modules import TASKS, TaskModuleDict, keep_published_task_names
from sam2pp.modeling.two_way_transformer import TwoWayTransformer

NO_OBJECT_LOGIT = -1024.0
DYNAMIC_MULTIMASK_ARGS = frozenset(
    {"dynamic_multimask_via_stability", "dynamic_multimask_stability_delta", "dynamic_multimask_stability_thresh"}
)


@dataclass
class DecoderOutput:
    """What one decoder call produces (M = 3 candidates with multimask output, else 1).

    masks: (B, M, 4h, 4w) logits; iou_pred: (B, M); sam_tokens: (B, M, C) or (B, 1, C), the
    output tokens the object pointer is made from; object_score_logits: (B, 1);
    boxes_xyxy_norm: (B, M, 4) in [0, 1] image units for the box task, None otherwise.
    """

    masks: Tensor
    iou_pred: Tensor
    sam_tokens: Tensor
    object_score_logits: Tensor
    boxes_xyxy_norm: Tensor | None = None

    def suppress_absent(self) -> DecoderOutput:
        """Where the object score is <= 0: masks become NO_OBJECT_LOGIT and boxes (0, 0, 0, 0).

        The tracker memorises this hard choice, so it must match what is shown.
        """
        present = self.object_score_logits > 0
        masks = torch.where(present[:, :, None, None], self.masks, NO_OBJECT_LOGIT)
        boxes = None if self.boxes_xyxy_norm is None else torch.where(present[:, :, None], self.boxes_xyxy_norm, 0.0)
        return replace(self, masks=masks, boxes_xyxy_norm=boxes)

    def select_best(self) -> DecoderOutput:
        """Keep, per batch element, the candidate with the highest predicted IoU (M -> 1).

        The token follows the chosen mask when one token per candidate was returned.
        """
        best = self.iou_pred.argmax(dim=-1)
        rows = torch.arange(best.shape[0], device=best.device)

        def pick(tensor: Tensor) -> Tensor:
            return tensor[rows, best].unsqueeze(1)

        return replace(
            self,
            masks=pick(self.masks),
            iou_pred=pick(self.iou_pred),
            sam_tokens=pick(self.sam_tokens) if self.sam_tokens.shape[1] > 1 else self.sam_tokens,
            boxes_xyxy_norm=None if self.boxes_xyxy_norm is None else pick(self.boxes_xyxy_norm),
        )


@dataclass(frozen=True)
class _TaskHead:
    """One task's modules, looked up from the decoder's published attribute names."""

    upscaling: nn.Sequential
    hypernetworks: nn.ModuleList
    conv_s0: nn.Conv2d
    conv_s1: nn.Conv2d


@dataclass(frozen=True)
class _Candidates:
    """All mask-token outputs before selection: masks (B, T, 4h, 4w), boxes (B, T, 4) | None, iou (B, T)."""

    masks: Tensor
    boxes: Tensor | None
    iou_pred: Tensor


def _upscaling(dim: int, activation: type[nn.Module]) -> nn.Sequential:
    """Two 2x transposed convolutions, C -> C/4 -> C/8 (indices 0..4 as in the checkpoint)."""
    return nn.Sequential(
        nn.ConvTranspose2d(dim, dim // 4, kernel_size=2, stride=2),
        LayerNorm2d(dim // 4),
        activation(),
        nn.ConvTranspose2d(dim // 4, dim // 8, kernel_size=2, stride=2),
        activation(),
    )


class UnifiedDecoder(nn.Module):
    """Predicts masks (and for the box task boxes), their IoU and an object score from prompts."""

    def __init__(
        self,
        transformer_dim: int,
        transformer: TwoWayTransformer,
        box_head_inner_dim: int,
        box_head_freeze_bn: bool = True,
        num_multimask_outputs: int = 3,
        activation: type[nn.Module] = nn.GELU,
        iou_head_depth: int = 3,
        iou_head_hidden_dim: int = 256,
        use_high_res_features: bool = True,
        iou_prediction_use_sigmoid: bool = False,
        dynamic_multimask_via_stability: bool = False,
        dynamic_multimask_stability_delta: float = 0.05,
        dynamic_multimask_stability_thresh: float = 0.98,
        pred_obj_scores: bool = False,
        pred_obj_scores_mlp: bool = False,
        use_multimask_token_for_obj_ptr: bool = False,
    ) -> None:
        super().__init__()
        if not use_high_res_features:
            raise ValueError("the box head of this decoder needs use_high_res_features=True (the published b+ setting)")
        if box_head_inner_dim // 8 != transformer_dim // 8:
            raise ValueError(
                f"box_head_inner_dim / 8 ({box_head_inner_dim // 8}) must equal transformer_dim / 8 "
                f"({transformer_dim // 8}): the box scores use the mask hypernetwork vectors"
            )
        self.transformer_dim = transformer_dim
        self.transformer = transformer
        self.num_multimask_outputs = num_multimask_outputs
        self.num_mask_tokens = num_multimask_outputs + 1
        self.use_high_res_features = use_high_res_features
        self.pred_obj_scores = pred_obj_scores
        self.use_multimask_token_for_obj_ptr = use_multimask_token_for_obj_ptr
        self.dynamic_multimask_via_stability = dynamic_multimask_via_stability
        self.dynamic_multimask_stability_delta = dynamic_multimask_stability_delta
        self.dynamic_multimask_stability_thresh = dynamic_multimask_stability_thresh

        self.iou_token = nn.Embedding(1, transformer_dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, transformer_dim)
        if pred_obj_scores:
            self.obj_score_token = nn.Embedding(1, transformer_dim)
        self.iou_prediction_head = MLP(
            transformer_dim,
            iou_head_hidden_dim,
            self.num_mask_tokens,
            iou_head_depth,
            sigmoid_output=iou_prediction_use_sigmoid,
        )
        if pred_obj_scores:
            self.pred_obj_score_head = (
                MLP(transformer_dim, transformer_dim, 1, 3) if pred_obj_scores_mlp else nn.Linear(transformer_dim, 1)
            )
        keep_published_task_names(self)
        dim = transformer_dim
        self.output_upscaling = TaskModuleDict(lambda _: _upscaling(dim, activation))
        self.conv_s0 = TaskModuleDict(lambda _: nn.Conv2d(dim, dim // 8, kernel_size=1))
        self.conv_s1 = TaskModuleDict(lambda _: nn.Conv2d(dim, dim // 4, kernel_size=1))
        self.output_hypernetworks_mlps = TaskModuleDict(
            lambda _: nn.ModuleList(MLP(dim, dim, dim // 8, 3) for _ in range(self.num_mask_tokens))
        )
        self.box_head = CornerBoxHead(transformer_dim, box_head_inner_dim, stride=4, freeze_bn=box_head_freeze_bn)

    def _task_head(self, task: str) -> _TaskHead:
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
        return _TaskHead(
            upscaling=self.output_upscaling[task],
            hypernetworks=self.output_hypernetworks_mlps[task],
            conv_s0=self.conv_s0[task],
            conv_s1=self.conv_s1[task],
        )

    def project_high_res(self, backbone_fpn: list[Tensor], task: str) -> tuple[Tensor, Tensor]:
        """Apply the task's 1x1 projections to the two finest FPN levels.

        backbone_fpn[0] (B, C, 4h, 4w) -> (B, C/8, 4h, 4w); backbone_fpn[1] (B, C, 2h, 2w) -> (B, C/4, 2h, 2w).
        Done once per frame and task, outside the decoder call, so repeated prompts reuse it.
        """
        if len(backbone_fpn) < 2:
            raise ValueError(f"need at least the two finest FPN levels, got {len(backbone_fpn)}")
        head = self._task_head(task)
        return head.conv_s0(backbone_fpn[0]), head.conv_s1(backbone_fpn[1])

    def _output_tokens(self, batch: int) -> Tensor:
        """(B, [1 +] 1 + T, C): object-score token (if any), IoU token, mask tokens."""
        weights = [self.iou_token.weight, self.mask_tokens.weight]
        if self.pred_obj_scores:
            weights.insert(0, self.obj_score_token.weight)
        return torch.cat(weights, dim=0).unsqueeze(0).expand(batch, -1, -1)

    def _transform(
        self,
        image_embeddings: Tensor,
        image_pe: Tensor,
        sparse_prompt_embeddings: Tensor,
        dense_prompt_embeddings: Tensor,
        repeat_image: bool,
    ) -> tuple[Tensor, Tensor]:
        """Two-way transformer over output tokens + prompt tokens and the prompted image.

        Returns the tokens (B, [1 +] 1 + T + N, C) and the image back as a map (B, C, h, w).
        """
        batch = sparse_prompt_embeddings.shape[0]
        tokens = torch.cat([self._output_tokens(batch), sparse_prompt_embeddings], dim=1)
        if repeat_image:
            image_embeddings = torch.repeat_interleave(image_embeddings, batch, dim=0)
        elif image_embeddings.shape[0] != batch:
            raise ValueError(
                f"image_embeddings batch {image_embeddings.shape[0]} != prompt batch {batch} (use repeat_image=True)"
            )
        if image_pe.shape[0] != 1:
            raise ValueError(f"image_pe must have batch size 1 (PromptEncoder.dense_pe), got {tuple(image_pe.shape)}")
        src = image_embeddings + dense_prompt_embeddings
        b, c, h, w = src.shape
        hs, src = self.transformer(src, torch.repeat_interleave(image_pe, batch, dim=0), tokens)
        return hs, src.transpose(1, 2).reshape(b, c, h, w)

    @staticmethod
    def _upscale(head: _TaskHead, src: Tensor, high_res_features: list[Tensor]) -> Tensor:
        """(B, C, h, w) -> (B, C/8, 4h, 4w), adding the projected 1/8 and 1/4 levels on the way up."""
        feat_s0, feat_s1 = high_res_features
        dc1, ln1, act1, dc2, act2 = head.upscaling
        upscaled = act1(ln1(dc1(src) + feat_s1))
        return act2(dc2(upscaled) + feat_s0)

    def _predict(
        self,
        image_embeddings: Tensor,
        image_pe: Tensor,
        sparse_prompt_embeddings: Tensor,
        dense_prompt_embeddings: Tensor,
        repeat_image: bool,
        high_res_features: list[Tensor],
        task: str,
    ) -> tuple[_Candidates, Tensor, Tensor]:
        """Run the transformer and the task's head -> candidates, mask tokens (B, T, C), object score (B, 1)."""
        head = self._task_head(task)
        hs, src = self._transform(
            image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings, repeat_image
        )
        first = 1 if self.pred_obj_scores else 0
        mask_tokens_out = hs[:, first + 1 : first + 1 + self.num_mask_tokens]

        upscaled = self._upscale(head, src, high_res_features)
        hyper_in = torch.stack([mlp(mask_tokens_out[:, i]) for i, mlp in enumerate(head.hypernetworks)], dim=1)
        b, c, h, w = upscaled.shape
        masks = (hyper_in @ upscaled.reshape(b, c, h * w)).reshape(b, -1, h, w)
        boxes = self.box_head(*high_res_features, src, hyper_in) if task == "box" else None

        iou_pred = self.iou_prediction_head(hs[:, first])
        if self.pred_obj_scores:
            object_score_logits = self.pred_obj_score_head(hs[:, 0])
        else:  # no score head: the object is taken as present (sigmoid(10) ~ 1)
            object_score_logits = iou_pred.new_full((b, 1), 10.0)
        return _Candidates(masks, boxes, iou_pred), mask_tokens_out, object_score_logits

    def _stability_scores(self, mask_logits: Tensor) -> Tensor:
        """(B, M, H, W) -> (B, M): area above +delta over area above -delta (1 when both are empty)."""
        flat = mask_logits.flatten(-2)
        delta = self.dynamic_multimask_stability_delta
        inner = (flat > delta).sum(dim=-1).float()
        outer = (flat > -delta).sum(dim=-1).float()
        return torch.where(outer > 0, inner / outer, 1.0)

    def _dynamic_select(self, candidates: _Candidates) -> _Candidates:
        """Single-mask output, falling back to the best multimask candidate when token 0 is unstable."""
        multi_iou = candidates.iou_pred[:, 1:]
        best = multi_iou.argmax(dim=-1)
        rows = torch.arange(best.shape[0], device=best.device)
        stable = self._stability_scores(candidates.masks[:, 0:1]) >= self.dynamic_multimask_stability_thresh

        def choose(values: Tensor) -> Tensor:
            single = values[:, 0:1]
            fallback = values[:, 1:][rows, best].unsqueeze(1)
            keep = stable.reshape(stable.shape + (1,) * (single.dim() - 2))
            return torch.where(keep, single, fallback)

        boxes = None if candidates.boxes is None else choose(candidates.boxes)
        return _Candidates(choose(candidates.masks), boxes, choose(candidates.iou_pred))

    def _select(self, candidates: _Candidates, multimask_output: bool) -> _Candidates:
        if multimask_output:
            span = slice(1, None)
        elif self.dynamic_multimask_via_stability and not self.training:
            return self._dynamic_select(candidates)
        else:
            span = slice(0, 1)
        boxes = None if candidates.boxes is None else candidates.boxes[:, span]
        return _Candidates(candidates.masks[:, span], boxes, candidates.iou_pred[:, span])

    def forward(
        self,
        image_embeddings: Tensor,
        image_pe: Tensor,
        sparse_prompt_embeddings: Tensor,
        dense_prompt_embeddings: Tensor,
        multimask_output: bool,
        repeat_image: bool,
        high_res_features: list[Tensor] | None,
        task: str,
    ) -> DecoderOutput:
        """image_embeddings (B | 1, C, h, w); image_pe (1, C, h, w); sparse (B, N, C); dense (B, C, h, w);
        high_res_features: the task's projected levels [(B, C/8, 4h, 4w), (B, C/4, 2h, 2w)].

        With `multimask_output` the three multimask candidates are returned, otherwise the single
        mask (or, with dynamic multimask enabled at eval, the best candidate if it is unstable).
        The object-pointer tokens are the three multimask tokens only when
        `use_multimask_token_for_obj_ptr` and `multimask_output`, else the single-mask token.
        """
        if high_res_features is None or len(high_res_features) != 2:
            raise ValueError("high_res_features must be the two projected levels from project_high_res")
        candidates, mask_tokens_out, object_score_logits = self._predict(
            image_embeddings,
            image_pe,
            sparse_prompt_embeddings,
            dense_prompt_embeddings,
            repeat_image,
            high_res_features,
            task,
        )
        chosen = self._select(candidates, multimask_output)
        if multimask_output and self.use_multimask_token_for_obj_ptr:
            sam_tokens = mask_tokens_out[:, 1:]
        else:
            sam_tokens = mask_tokens_out[:, 0:1]
        return DecoderOutput(
            masks=chosen.masks,
            iou_pred=chosen.iou_pred,
            sam_tokens=sam_tokens,
            object_score_logits=object_score_logits,
            boxes_xyxy_norm=chosen.boxes,
        )


def build_two_way_transformer(config: dict) -> TwoWayTransformer:
    """The decoder's transformer; depth, MLP width and heads are fixed by the published model."""
    width = config["image_encoder"]["neck"]["d_model"]
    return TwoWayTransformer(depth=2, embedding_dim=width, num_heads=8, mlp_dim=2048)


def build_unified_decoder(config: dict) -> UnifiedDecoder:
    """UnifiedDecoder from the top-level model config (the parsed config.json).

    `sam_mask_decoder_extra_args` may set the dynamic multimask options (dynamic_multimask_*).
    """
    if config["backbone_stride"] != 16:
        raise ValueError(f"the unified decoder needs backbone_stride 16, got {config['backbone_stride']}")
    if not config.get("unified_decoder_box_head_pred_masks", False):
        raise ValueError("only unified_decoder_box_head_pred_masks=True (box masks from hypernetworks) is supported")
    extra = dict(config.get("sam_mask_decoder_extra_args") or {})
    unknown = set(extra) - DYNAMIC_MULTIMASK_ARGS
    if unknown:
        raise ValueError(
            f"unsupported sam_mask_decoder_extra_args {sorted(unknown)}; allowed: {sorted(DYNAMIC_MULTIMASK_ARGS)}"
        )
    return UnifiedDecoder(
        transformer_dim=config["image_encoder"]["neck"]["d_model"],
        transformer=build_two_way_transformer(config),
        box_head_inner_dim=config["unified_decoder_box_head_inner_dim"],
        box_head_freeze_bn=config["unified_decoder_box_head_freeze_bn"],
        num_multimask_outputs=3,
        iou_head_depth=3,
        iou_head_hidden_dim=256,
        use_high_res_features=config["use_high_res_features_in_sam"],
        iou_prediction_use_sigmoid=config["iou_prediction_use_sigmoid"],
        pred_obj_scores=config["pred_obj_scores"],
        pred_obj_scores_mlp=config["pred_obj_scores_mlp"],
        use_multimask_token_for_obj_ptr=config["use_multimask_token_for_obj_ptr"],
        **extra,
    )
