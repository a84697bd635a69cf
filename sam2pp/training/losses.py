"""The published SAM 2++ training losses of the three tasks, for one clip.

Every decoder run of every frame (a `StepOutput`: M candidate outputs for N objects) is scored against the frame's
targets. Per step, each term is first computed for every candidate (N, M); the candidate with the smallest weighted
combination of the task's "selection" terms is kept per object (the SAM min-over-masks rule), the IoU-prediction term
is averaged over all M candidates (`supervise_all_iou`), and every term except the object-score one is multiplied by
the object's target presence, so an absent object trains only its score. The clip loss is the plain sum over steps
and frames; `core_loss` is the weighted sum of the terms (recipe §2; published `training/loss_fns.py` and
`training/loss_fns_plus.py` at 09c9ec4).

Normalisation: most terms are divided by `num_objects` (the objects per clip averaged over DDP ranks,
`num_objects_for_loss`); the box CIoU and L1 are not, and the box L1 is summed over every candidate without the
presence mask (the published accumulation). Both box quirks are kept by default and can be switched off in
`LossConfig`.

One term is not published: `loss_peak` of the point task (weight `LossWeights.peak`, 0 by default, when it is not
computed at all). The published point terms let a head trained from scratch satisfy the soft-argmax L1 with a broad
map that has no peak at the point, while inference reads the arg-max; the peak term is the KL divergence from the
normalised target disc to the softmax of the logits over all pixels, which is lowest with the map's mass (and so its
arg-max) on the point. Fine-tuning published weights keeps it off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

from .clip import Clip, ClipOutputs, StepOutput

CORE_LOSS_KEY = "core_loss"
# The target of an invisible box: the whole image, so that CIoU and L1 stay finite (then masked, except the L1 quirk).
_INVISIBLE_BOX = (0.0, 0.0, 1.0, 1.0)
# The point task compares heat maps after thresholding both the prediction's sigmoid and the soft target here.
_POINT_IOU_THRESHOLD = 0.2
# Guards of the published CIoU, kept for parity.
_CIOU_EPS = 1e-7


@dataclass(frozen=True)
class LossWeights:
    """One task's term weights (published `weight_dict`); they also weigh the terms that pick the best candidate.

    `mask` weighs the sigmoid focal term, `object_class` the object-score BCE (`loss_class`); `ciou` and `l1` exist
    only for the tasks that compute them (box: both; point: `l1`, the soft-argmax coordinate term). `peak` weighs
    the point task's optional `loss_peak` (not published; 0 leaves it uncomputed).
    """

    mask: float
    dice: float
    iou: float
    object_class: float = 1.0
    ciou: float = 0.0
    l1: float = 0.0
    peak: float = 0.0

    def by_key(self) -> dict[str, float]:
        """The weights under the published loss keys (`loss_mask`, ..., `loss_class`)."""
        names = {"object_class": "class"}
        return {f"loss_{names.get(f.name, f.name)}": getattr(self, f.name) for f in fields(self)}


def published_weights() -> dict[str, LossWeights]:
    """The weights of the released three-task config (`yaml:490-531`)."""
    return {
        "mask": LossWeights(mask=20.0, dice=1.0, iou=1.0, object_class=1.0),
        "box": LossWeights(mask=0.5, dice=0.1, iou=1.0, object_class=1.0, ciou=1.0, l1=1.0),
        "point": LossWeights(mask=20.0, dice=1.0, iou=1.0, object_class=1.0, l1=20.0),
    }


@dataclass
class LossConfig:
    """How the clip loss is computed; the defaults reproduce the published training.

    box_l1_as_published: the box L1 is the sum over all M candidates, unmasked by visibility (published
        accumulation); False takes the best candidate's L1 times visibility, like every other term.
    box_divide_by_objects: False (published) leaves the box CIoU and L1 undivided by `num_objects`; True divides
        them like the other terms (after the best candidate is picked, so the choice is unchanged).
    supervise_all_iou: the IoU-prediction term is the mean over all M candidates (published); False takes the best
        candidate's only (SAM 1 style).
    """

    weights: dict[str, LossWeights] = field(default_factory=published_weights)
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    supervise_all_iou: bool = True
    box_l1_as_published: bool = True
    box_divide_by_objects: bool = False

    def __post_init__(self) -> None:
        missing = set(_TASK_LOSSES) - set(self.weights)
        unknown = set(self.weights) - set(_TASK_LOSSES)
        if missing or unknown:
            raise ValueError(f"LossConfig.weights needs exactly the tasks {sorted(_TASK_LOSSES)}; "
                             f"missing {sorted(missing)}, unknown {sorted(unknown)}")
        for task, weights in self.weights.items():
            known = _TASK_LOSSES[task].keys + _TASK_LOSSES[task].optional
            extra = [k for k, w in weights.by_key().items() if w != 0 and k not in known]
            if extra:
                raise ValueError(f"LossConfig.weights[{task!r}] weighs {extra}, which the {task} loss does not "
                                 f"compute (it computes {list(known)})")


def num_objects_for_loss(n_local: int) -> float:
    """Objects per clip as the losses divide by: the mean over DDP ranks when distributed, at least 1."""
    count = float(n_local)
    if dist.is_available() and dist.is_initialized():
        device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
        total = torch.tensor(count, dtype=torch.float32, device=device)
        dist.all_reduce(total)
        count = total.item() / dist.get_world_size()
    return max(count, 1.0)


def clip_loss(outputs: ClipOutputs, clip: Clip, num_objects: float,
              config: LossConfig | None = None) -> dict[str, Tensor]:
    """The loss of one clip: every published key of `clip.task`'s loss plus `core_loss`, scalars summed over frames.

    outputs[f] holds frame f's `StepOutput`s in order (time-ordered frames, as many as `clip.num_frames`); targets
    come from `clip.masks`, `clip.visible` and `clip.boxes_xyxy` / `clip.points_xy`, normalised by
    `clip.image_size`. `num_objects` is usually `num_objects_for_loss(clip.num_objects)`.
    """
    config = config or LossConfig()
    if clip.task not in _TASK_LOSSES:
        raise ValueError(f"clip.task {clip.task!r} has no loss; known tasks: {sorted(_TASK_LOSSES)}")
    task = _TASK_LOSSES[clip.task]
    if len(outputs) != clip.num_frames:
        raise ValueError(f"outputs cover {len(outputs)} frames but the clip has {clip.num_frames}")
    weights = config.weights[clip.task].by_key()
    totals: dict[str, Tensor] = {}
    for f, steps in enumerate(outputs):
        if not steps:
            raise ValueError(f"frame {f} has no StepOutput")
        targets = task.targets(clip, f)
        for s, step in enumerate(steps):
            _check_step(step, clip, f, s)
            candidates = task.candidates(step, targets, num_objects, config)
            for key, value in _reduce(candidates, weights, task.selection, config).items():
                totals[key] = totals[key] + value if key in totals else value
    totals = {key: totals[key] for key in task.keys + tuple(k for k in task.optional if weights[k] != 0)}
    zero = clip.masks.new_zeros(())
    totals[CORE_LOSS_KEY] = sum((weights[k] * v for k, v in totals.items() if weights[k] != 0), zero)
    return totals


# --- per-candidate terms -------------------------------------------------------------------------------------------


def sigmoid_focal(logits: Tensor, targets: Tensor, alpha: float, gamma: float) -> Tensor:
    """RetinaNet focal loss per element; alpha < 0 turns the class balancing off, gamma = 0 gives plain BCE."""
    loss = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    if gamma != 0:
        prob = logits.sigmoid()
        p_true = prob * targets + (1 - prob) * (1 - targets)
        loss = loss * (1 - p_true) ** gamma
    if alpha >= 0:
        loss = loss * (alpha * targets + (1 - alpha) * (1 - targets))
    return loss


def dice(logits: Tensor, targets: Tensor) -> Tensor:
    """1 - soft Dice of sigmoid(logits) vs binary targets, with +1 smoothing; (N, M, S, S) -> (N, M)."""
    prob, targets = logits.sigmoid().flatten(2), targets.flatten(2)
    return 1 - (2 * (prob * targets).sum(-1) + 1) / (prob.sum(-1) + targets.sum(-1) + 1)


def soft_label_dice(logits: Tensor, targets: Tensor) -> Tensor:
    """Dice for soft targets (Wang et al., MICCAI 2023): the overlap is (|p| + |t| - |p - t|_1) / 2; (N, M)."""
    prob, targets = logits.sigmoid().flatten(2), targets.flatten(2)
    total = prob.sum(-1) + targets.sum(-1)
    overlap = total - (prob - targets).abs().sum(-1)
    return 1 - (overlap + 1) / (total + 1)


def mask_iou(pred: Tensor, target: Tensor) -> Tensor:
    """IoU of two boolean (N, M, S, S) masks, 0 where both are empty; (N, M) float, no gradient."""
    pred, target = pred.flatten(2), target.flatten(2)
    inter = (pred & target).sum(-1).float()
    union = (pred | target).sum(-1).float()
    return inter / union.clamp(min=1.0)


def ciou(pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """1 - CIoU and the IoU of xyxy boxes (..., 4) -> (...), both differentiable (published `ciou_loss`).

    The aspect-ratio penalty only counts once IoU > 0.5, with its weight computed without gradient; the CIoU is
    clamped to [-1, 1], so the loss lies in [0, 2].
    """
    w_p, h_p = pred[..., 2] - pred[..., 0], pred[..., 3] - pred[..., 1]
    w_t, h_t = target[..., 2] - target[..., 0], target[..., 3] - target[..., 1]
    inter_w = (torch.minimum(pred[..., 2], target[..., 2]) - torch.maximum(pred[..., 0], target[..., 0])).clamp(min=0)
    inter_h = (torch.minimum(pred[..., 3], target[..., 3]) - torch.maximum(pred[..., 1], target[..., 1])).clamp(min=0)
    inter = inter_w * inter_h
    iou = inter / (w_p * h_p + w_t * h_t - inter + _CIOU_EPS)
    hull_w = (torch.maximum(pred[..., 2], target[..., 2]) - torch.minimum(pred[..., 0], target[..., 0])).clamp(min=0)
    hull_h = (torch.maximum(pred[..., 3], target[..., 3]) - torch.minimum(pred[..., 1], target[..., 1])).clamp(min=0)
    centre_dist2 = ((pred[..., 0] + pred[..., 2] - target[..., 0] - target[..., 2]) / 2) ** 2 + (
        (pred[..., 1] + pred[..., 3] - target[..., 1] - target[..., 3]) / 2) ** 2
    distance = centre_dist2 / (hull_w**2 + hull_h**2 + _CIOU_EPS)
    aspect = (4 / math.pi**2) * (torch.atan(w_t / (h_t + _CIOU_EPS)) - torch.atan(w_p / (h_p + _CIOU_EPS))) ** 2
    with torch.no_grad():
        aspect_weight = (iou > 0.5).float() * aspect / (1 - iou + aspect + _CIOU_EPS)
    value = (iou - distance - aspect_weight * aspect).clamp(-1.0, 1.0)
    return 1 - value, iou


def soft_argmax(logits: Tensor) -> Tensor:
    """Expected (x, y) pixel under the softmax of each (N, M, S, S) map over all S² pixels, divided by S; (N, M, 2)."""
    size = logits.shape[-1]
    prob = logits.flatten(2).softmax(-1).unflatten(-1, (size, size))
    grid = torch.arange(size, dtype=prob.dtype, device=prob.device)
    x = (prob.sum(-2) * grid).sum(-1)
    y = (prob.sum(-1) * grid).sum(-1)
    return torch.stack([x, y], -1) / size


def peak_divergence(logits: Tensor, heat: Tensor) -> Tensor:
    """KL(q || softmax(logits)) over all S² pixels of (N, M, S, S) maps, q the heat map normalised to sum 1; (N, M).

    0 when the softmax equals the target disc; an all-zero heat map (an absent point) gives 0.
    """
    log_p = logits.flatten(2).log_softmax(-1)
    q = heat.flatten(2)
    q = q / q.sum(-1, keepdim=True).clamp_min(torch.finfo(q.dtype).tiny)
    return (torch.xlogy(q, q) - q * log_p).sum(-1)


# --- the three tasks -----------------------------------------------------------------------------------------------


@dataclass
class _Targets:
    """One frame's targets for N objects: masks (N, 1, S, S); present (N, 1) float; coords (N, 1, 4 or 2) in [0, 1]."""

    masks: Tensor
    present: Tensor
    coords: Tensor | None = None


@dataclass
class _Candidates:
    """One step's terms for every candidate, already normalised as published: per_output[key] (N, M).

    object_class is the scalar object-score term; present (N, 1) masks the terms; divisor rescales listed terms after
    the selection (the box options); raw_l1_sum replaces `loss_l1` with the published unmasked all-candidate sum.
    """

    per_output: dict[str, Tensor]
    object_class: Tensor
    present: Tensor
    divisor: dict[str, float] = field(default_factory=dict)
    raw_l1_sum: Tensor | None = None


@dataclass(frozen=True)
class _TaskLoss:
    """A task's loss: its published keys, the terms that pick the best candidate, how a step is scored, and the
    unpublished keys it computes only when weighted (they then also take part in the selection)."""

    keys: tuple[str, ...]
    selection: tuple[str, ...]
    targets: Callable[[Clip, int], _Targets]
    candidates: Callable[[StepOutput, _Targets, float, LossConfig], _Candidates]
    optional: tuple[str, ...] = ()


def _object_class(step: StepOutput, present: Tensor, num_objects: float) -> Tensor:
    """BCE of the object score vs target presence, summed over objects / num_objects (focal with alpha -1, gamma 0)."""
    logits = step.object_score_logits.float()
    return sigmoid_focal(logits, present, alpha=-1.0, gamma=0.0).mean(1).sum() / num_objects


def _mask_targets(clip: Clip, f: int) -> _Targets:
    masks = clip.masks[f].unsqueeze(1).float()
    return _Targets(masks=masks, present=masks.flatten(1).gt(0).any(1, keepdim=True).float())


def _visible_targets(clip: Clip, f: int) -> Tensor:
    return clip.visible[f].unsqueeze(1).float()


def _box_targets(clip: Clip, f: int) -> _Targets:
    if clip.boxes_xyxy is None:
        raise ValueError("a box clip needs clip.boxes_xyxy")
    present = _visible_targets(clip, f)
    boxes = clip.boxes_xyxy[f].float() / clip.image_size
    whole = boxes.new_tensor(_INVISIBLE_BOX)
    boxes = torch.where(present.bool(), boxes, whole)
    return _Targets(masks=clip.masks[f].unsqueeze(1).float(), present=present, coords=boxes.unsqueeze(1))


def _point_targets(clip: Clip, f: int) -> _Targets:
    if clip.points_xy is None:
        raise ValueError("a point clip needs clip.points_xy")
    points = clip.points_xy[f].float() / clip.image_size
    return _Targets(masks=clip.masks[f].unsqueeze(1).float(), present=_visible_targets(clip, f),
                    coords=points.unsqueeze(1))


def _mask_terms(logits: Tensor, targets: Tensor, num_objects: float, config: LossConfig) -> dict[str, Tensor]:
    """Focal and Dice of (N, M, S, S) logits vs binary targets, each (N, M) / num_objects."""
    focal = sigmoid_focal(logits, targets, config.focal_alpha, config.focal_gamma).flatten(2).mean(-1)
    return {"loss_mask": focal / num_objects, "loss_dice": dice(logits, targets) / num_objects}


def _mask_iou_l1(step: StepOutput, logits: Tensor, targets: Tensor, num_objects: float) -> Tensor:
    """|predicted IoU - IoU of (logits > 0) vs (target > 0)| / num_objects, (N, M)."""
    return (step.ious.float() - mask_iou(logits > 0, targets > 0)).abs() / num_objects


def _mask_candidates(step: StepOutput, targets: _Targets, num_objects: float, config: LossConfig) -> _Candidates:
    logits = step.masks.float()
    masks = targets.masks.expand_as(logits)
    terms = _mask_terms(logits, masks, num_objects, config)
    terms["loss_iou"] = _mask_iou_l1(step, logits, masks, num_objects)
    return _Candidates(terms, _object_class(step, targets.present, num_objects), targets.present)


def _box_candidates(step: StepOutput, targets: _Targets, num_objects: float, config: LossConfig) -> _Candidates:
    if step.boxes_xyxy_norm is None:
        raise ValueError("a box-task StepOutput needs boxes_xyxy_norm")
    logits, boxes = step.masks.float(), step.boxes_xyxy_norm.float()
    masks, target_boxes = targets.masks.expand_as(logits), targets.coords.expand_as(boxes)
    terms = _mask_terms(logits, masks, num_objects, config)
    ciou_loss, box_iou = ciou(boxes, target_boxes)
    terms["loss_ciou"] = ciou_loss
    terms["loss_l1"] = (boxes - target_boxes).abs().sum(-1)
    # The box IoU target keeps its gradient, as published; the IoU head is also scored against the mask IoU.
    terms["loss_iou"] = ((step.ious.float() - box_iou).abs() / num_objects
                         + _mask_iou_l1(step, logits, masks, num_objects))
    divisor = {"loss_ciou": num_objects, "loss_l1": num_objects} if config.box_divide_by_objects else {}
    raw_l1 = terms["loss_l1"].sum() if config.box_l1_as_published else None
    return _Candidates(terms, _object_class(step, targets.present, num_objects), targets.present, divisor, raw_l1)


def _point_candidates(step: StepOutput, targets: _Targets, num_objects: float, config: LossConfig) -> _Candidates:
    logits = step.masks.float()
    heat = targets.masks.expand_as(logits)
    focal = sigmoid_focal(logits, heat, config.focal_alpha, config.focal_gamma).flatten(2).mean(-1)
    iou = mask_iou(logits.sigmoid() > _POINT_IOU_THRESHOLD, heat > _POINT_IOU_THRESHOLD)
    terms = {
        "loss_mask": focal / num_objects,
        "loss_dice": soft_label_dice(logits, heat) / num_objects,
        "loss_l1": (soft_argmax(logits) - targets.coords).abs().sum(-1) / num_objects,
        "loss_iou": (step.ious.float() - iou).abs() / num_objects,
    }
    if config.weights["point"].peak != 0:
        terms["loss_peak"] = peak_divergence(logits, heat) / num_objects
    return _Candidates(terms, _object_class(step, targets.present, num_objects), targets.present)


_TASK_LOSSES: dict[str, _TaskLoss] = {
    "mask": _TaskLoss(("loss_mask", "loss_dice", "loss_iou", "loss_class"),
                      ("loss_mask", "loss_dice"), _mask_targets, _mask_candidates),
    "box": _TaskLoss(("loss_mask", "loss_dice", "loss_ciou", "loss_l1", "loss_iou", "loss_class"),
                     ("loss_mask", "loss_dice", "loss_ciou", "loss_l1"), _box_targets, _box_candidates),
    "point": _TaskLoss(("loss_mask", "loss_dice", "loss_iou", "loss_class", "loss_l1"),
                       ("loss_mask", "loss_dice", "loss_l1", "loss_peak"), _point_targets, _point_candidates,
                       optional=("loss_peak",)),
}


def _reduce(candidates: _Candidates, weights: dict[str, float], selection: tuple[str, ...],
            config: LossConfig) -> dict[str, Tensor]:
    """One step's scalar terms: the best candidate per object (IoU: mean over all), masked by presence, summed."""
    per_output = candidates.per_output
    num_outputs = per_output["loss_iou"].shape[1]
    if num_outputs > 1:
        combo = sum(weights[k] * per_output[k] for k in selection if k in per_output)
        best = combo.argmin(-1, keepdim=True)
        picked = {k: v.gather(1, best) for k, v in per_output.items()}
        if config.supervise_all_iou:
            picked["loss_iou"] = per_output["loss_iou"].mean(-1, keepdim=True)
    else:
        picked = dict(per_output)
    step = {k: (v * candidates.present).sum() / candidates.divisor.get(k, 1.0) for k, v in picked.items()}
    if candidates.raw_l1_sum is not None:
        step["loss_l1"] = candidates.raw_l1_sum / candidates.divisor.get("loss_l1", 1.0)
    step["loss_class"] = candidates.object_class
    return step


def _check_step(step: StepOutput, clip: Clip, f: int, s: int) -> None:
    """Shapes of one StepOutput against the clip: masks (N, M, S, S), ious (N, M), scores (N, 1), boxes (N, M, 4)."""
    n, size = clip.num_objects, clip.image_size
    where = f"frame {f}, step {s}"
    if step.masks.dim() != 4 or step.masks.shape[0] != n or tuple(step.masks.shape[2:]) != (size, size):
        raise ValueError(f"{where}: masks have shape {tuple(step.masks.shape)}, expected ({n}, M, {size}, {size})")
    m = step.masks.shape[1]
    if tuple(step.ious.shape) != (n, m):
        raise ValueError(f"{where}: ious have shape {tuple(step.ious.shape)}, expected ({n}, {m})")
    if tuple(step.object_score_logits.shape) != (n, 1):
        raise ValueError(f"{where}: object_score_logits have shape {tuple(step.object_score_logits.shape)}, "
                         f"expected ({n}, 1)")
    if step.boxes_xyxy_norm is not None and tuple(step.boxes_xyxy_norm.shape) != (n, m, 4):
        raise ValueError(f"{where}: boxes_xyxy_norm have shape {tuple(step.boxes_xyxy_norm.shape)}, "
                         f"expected ({n}, {m}, 4)")
