"""Training prompts, drawn as the published recipe draws them (recipe §1.3-1.4, §3.5).

`plan_prompts` makes every per-clip decision of the published `prepare_prompt_inputs` in the same order, with the
same probabilities and the same kind of random source: the numpy `rng` for the mode decisions (published: the
model's `np.random.default_rng(42)`, which also draws the GT-only correction decisions, so one rng must be kept for
the whole run and passed to `next_correction_click` as the clip is tracked), a `torch.Generator` for the pixel draws
(box noise, click pixels). Given both, a plan is deterministic.

Coordinates are model pixels (S x S); a sampled click is the integer pixel (x, y), with no half-pixel offset, as
published. Boxes are xyxy with inclusive corners (the last mask pixel, not one past it).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np
import torch
from torch import Tensor

from ..modeling.model import Points
from ..modeling.tracker import TASK_RULES, FramePrompt
from ..predictor.prompts import gaussian_disc
from .clip import Clip

# (start as a fraction of training, radius px, sigma px) at 1024 px: epochs 0 / 30 / 80 of 150 in the release.
GaussianStage = tuple[float, int, float]
PUBLISHED_GAUSSIAN_STAGES: tuple[GaussianStage, ...] = ((0.0, 50, 16.0), (0.2, 20, 8.0), (80 / 150, 5, 2.0))
REFERENCE_SIZE = 1024

# Modes whose prompt is the frame's output as it is (GT mask, clean box + GT mask, gaussian), not decoded.
OUTPUT_MODES = frozenset({"mask", "box", "point"})
# The modes an initial frame of each task's plan can have.
TASK_MODES = {"mask": {"mask", "noised_box", "click"}, "box": {"box", "noised_box", "click"}, "point": {"point"}}
BOX_LABELS = (2, 3)


def scale_gaussian_stages(stages, size: int, reference: int = REFERENCE_SIZE) -> tuple[GaussianStage, ...]:
    """The curriculum for an S x S model: radius and sigma times S / reference.

    The radius is floored to an int (the scaled disc never reaches past the scaled published radius) and kept >= 1 so
    the disc always holds more than its centre; sigma is scaled exactly, so it stays > 0. At S = 256 the published
    stages become 12/4, 5/2, 1/0.5.
    """
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    scale = size / reference
    return tuple((start, max(1, int(radius * scale)), sigma * scale) for start, radius, sigma in stages)


@dataclass(frozen=True)
class PromptConfig:
    """The published training switches (yaml `*_for_train`) and the point curriculum.

    num_init_cond_frames / num_frames_to_correct are maxima when the `rand_*` switch is on (drawn per clip from
    1..max and num_init..max). num_correction_clicks may be 0 (corrected frames then get no clicks). box_noise is a
    fraction of the box width/height, capped at box_noise_bound pixels (not scaled with S, as published).
    gaussian_stages are in pixels at 1024; `gaussian_for` scales them to the model size.
    """

    prob_to_use_pt_input: float = 0.5
    prob_to_use_box_input: float = 0.5
    prob_to_sample_from_gt: float = 0.1
    num_frames_to_correct: int = 2
    rand_frames_to_correct: bool = True
    num_init_cond_frames: int = 2
    rand_init_cond_frames: bool = True
    num_correction_clicks: int = 7
    box_noise: float = 0.1
    box_noise_bound: float = 20.0
    add_all_frames_to_correct_as_cond: bool = True
    gaussian_stages: tuple[GaussianStage, ...] = PUBLISHED_GAUSSIAN_STAGES

    def __post_init__(self):
        for name in ("prob_to_use_pt_input", "prob_to_use_box_input", "prob_to_sample_from_gt"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"PromptConfig.{name} must be in [0, 1], got {value}")
        for name, low in (("num_init_cond_frames", 1), ("num_frames_to_correct", 1), ("num_correction_clicks", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"PromptConfig.{name} must be an int >= {low}, got {value!r}")
        if self.num_frames_to_correct < self.num_init_cond_frames:
            raise ValueError(
                f"PromptConfig.num_frames_to_correct ({self.num_frames_to_correct}) must be >= num_init_cond_frames "
                f"({self.num_init_cond_frames}): every initial conditioning frame of a clicked clip is corrected"
            )
        for name in ("box_noise", "box_noise_bound"):
            if getattr(self, name) < 0:
                raise ValueError(f"PromptConfig.{name} must be >= 0, got {getattr(self, name)}")
        _check_stages(self.gaussian_stages)

    def gaussian_for(self, fraction: float, size: int) -> tuple[int, float]:
        """(radius, sigma) in model pixels of an S x S model at `fraction` (0..1) of training."""
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"training fraction must be in [0, 1], got {fraction}")
        stages = scale_gaussian_stages(self.gaussian_stages, size)
        idx = bisect.bisect_right([start for start, _, _ in stages], fraction) - 1
        _, radius, sigma = stages[idx]
        return radius, sigma


def _check_stages(stages) -> None:
    if len(stages) == 0:
        raise ValueError("PromptConfig.gaussian_stages must hold at least one (start, radius, sigma) stage")
    starts = [stage[0] for stage in stages]
    if starts[0] != 0.0 or any(b <= a for a, b in zip(starts, starts[1:])) or starts[-1] > 1.0:
        raise ValueError(
            f"PromptConfig.gaussian_stages starts must begin at 0.0 and increase within [0, 1], got {starts}"
        )
    for start, radius, sigma in stages:
        if isinstance(radius, bool) or not isinstance(radius, int) or radius < 1 or not sigma > 0:
            raise ValueError(
                f"PromptConfig.gaussian_stages stage at {start} needs an int radius >= 1 and sigma > 0, "
                f"got radius {radius!r}, sigma {sigma!r}"
            )


# ----------------------------------------------------------------------------------------------- pixel sampling


def _uniform(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> Tensor:
    """U[0, 1) drawn from `generator` (on its device) and moved to `device`."""
    source = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=source).to(device)


def mask_boxes(masks: Tensor) -> Tensor:
    """(N, H, W) bool -> (N, 4) float32 xyxy of the first and last mask pixels.

    An empty mask gives (W, H, -1, -1), as published (noise and clamping then turn it into a degenerate box).
    """
    n, h, w = masks.shape
    xs = torch.arange(w, device=masks.device).expand(n, h, w)
    ys = torch.arange(h, device=masks.device)[:, None].expand(n, h, w)
    x0 = torch.where(masks, xs, w).flatten(1).amin(1)
    y0 = torch.where(masks, ys, h).flatten(1).amin(1)
    x1 = torch.where(masks, xs, -1).flatten(1).amax(1)
    y1 = torch.where(masks, ys, -1).flatten(1).amax(1)
    return torch.stack([x0, y0, x1, y1], 1).float()


def box_points(
    boxes_xyxy: Tensor, size: int, noise: float, bound: float, generator: torch.Generator | None
) -> Points:
    """(N, 4) boxes -> `Points` (N, 2, 2) corners with labels 2, 3.

    With noise > 0 each coordinate moves by U(-d, d), d = min(noise * box width (x) or height (y), bound), and is
    clamped to [0, S - 1]; with noise 0 the box is returned as it is (no clamping), as published.
    """
    boxes = boxes_xyxy.float()
    if noise > 0:
        dx = torch.clamp((boxes[:, 2] - boxes[:, 0]) * noise, max=bound)
        dy = torch.clamp((boxes[:, 3] - boxes[:, 1]) * noise, max=bound)
        spread = torch.stack([dx, dy, dx, dy], 1)
        boxes = (boxes + (2 * _uniform(boxes.shape, generator, boxes.device) - 1) * spread).clamp(0, size - 1)
    labels = torch.tensor(BOX_LABELS, dtype=torch.int32, device=boxes.device).expand(len(boxes), 2)
    return Points(boxes.reshape(-1, 2, 2).contiguous(), labels.contiguous())


def _check_click_masks(gt: Tensor, pred: Tensor | None) -> None:
    if gt.dtype != torch.bool or gt.ndim != 3:
        raise ValueError(f"gt must be a bool (N, S, S) tensor, got {gt.dtype} {tuple(gt.shape)}")
    if pred is not None and (pred.dtype != torch.bool or pred.shape != gt.shape):
        raise ValueError(
            f"pred must be a bool tensor shaped like gt {tuple(gt.shape)}, got {pred.dtype} {tuple(pred.shape)}"
        )


def sample_correction_click(gt: Tensor, pred: Tensor | None, generator: torch.Generator | None = None) -> Points:
    """One click per object, uniform over its errors: `Points` (N, 1, 2), labels (N, 1).

    gt, pred: bool (N, S, S). A pixel is drawn uniformly from FP ∪ FN: label 0 in a false positive, 1 in a false
    negative. pred None counts as empty (a positive click uniform inside the GT). A perfect prediction gives a
    negative click uniform in the background (if there is no background either, pixel (0, 0), label 0, as published).
    The draw is the published one: independent U[0, 1) noise on (N, S, S, [negative, positive]), argmax.
    """
    _check_click_masks(gt, pred)
    pred = torch.zeros_like(gt) if pred is None else pred
    false_pos = pred & ~gt
    false_neg = gt & ~pred
    perfect = ~(false_pos | false_neg).flatten(1).any(1)
    negative = false_pos | (perfect[:, None, None] & ~gt)
    n, h, w = gt.shape
    scores = _uniform((n, h, w, 2), generator, gt.device) * torch.stack([negative, false_neg], -1)
    flat = scores.flatten(1).argmax(1)
    pixel = flat // 2
    coords = torch.stack([pixel % w, pixel // w], 1).float()
    return Points(coords[:, None], (flat % 2).to(torch.int32)[:, None])


def next_correction_click(
    gt: Tensor, pred: Tensor | None, rng: np.random.Generator, generator: torch.Generator | None, prob_from_gt: float
) -> Points:
    """One correction click as trained: with `prob_from_gt` sample from the GT alone (rng drawn only if it is > 0).

    pred is the current prediction `high_res_logits > 0`, bool (N, S, S).
    """
    if not 0.0 <= prob_from_gt <= 1.0:
        raise ValueError(f"prob_from_gt must be in [0, 1], got {prob_from_gt}")
    from_gt = prob_from_gt > 0 and rng.random() < prob_from_gt
    return sample_correction_click(gt, None if from_gt else pred, generator)


class ClickSource(Protocol):
    """Where the correction clicks of a training unroll come from (`unroll(clicks=...)`).

    Called once per correction step `step` (0-based) of frame `frame_idx` with gt, pred bool (N, S, S) (the GT and
    the current prediction `high_res_logits > 0`); returns one click per object, `Points` (N, 1, 2), labels (N, 1).
    A seam so that a training step can be replayed from recorded clicks (parity with the published trainer, a logged
    run) without sharing its random generators.
    """

    def __call__(self, frame_idx: int, step: int, gt: Tensor, pred: Tensor) -> Points: ...


@dataclass
class DrawnClicks:
    """The clicks as trained (`next_correction_click`): what `unroll` uses when given no click source.

    rng draws the GT-only decisions (needed only when prob_from_gt > 0), generator the pixels.
    """

    rng: np.random.Generator | None
    generator: torch.Generator | None = None
    prob_from_gt: float = 0.1

    def __call__(self, frame_idx: int, step: int, gt: Tensor, pred: Tensor) -> Points:
        if self.rng is None and self.prob_from_gt > 0:
            raise ValueError("drawing correction clicks with prob_from_gt > 0 needs a numpy rng")
        return next_correction_click(gt, pred, self.rng, self.generator, self.prob_from_gt)


@dataclass
class RecordedClicks:
    """Clicks given in advance: frame t's step k is `Points(coords[t][k][:, None], labels[t][k][:, None])`.

    coords[t]: (K, N, 2) float32 (x, y) model pixels, labels[t]: (K, N) int (1 positive, 0 negative), for every
    corrected frame t. Asking for a frame or step that was not recorded is an error, not a silent draw.
    """

    coords: dict[int, Tensor]
    labels: dict[int, Tensor]

    def __post_init__(self) -> None:
        if set(self.coords) != set(self.labels):
            raise ValueError(f"recorded clicks: coords cover frames {sorted(self.coords)}, "
                             f"labels {sorted(self.labels)}")
        for t, xy in self.coords.items():
            lab = self.labels[t]
            if xy.ndim != 3 or xy.shape[-1] != 2 or tuple(lab.shape) != tuple(xy.shape[:2]):
                raise ValueError(f"recorded clicks of frame {t}: coords must be (K, N, 2) and labels (K, N), "
                                 f"got {tuple(xy.shape)} and {tuple(lab.shape)}")

    def __call__(self, frame_idx: int, step: int, gt: Tensor, pred: Tensor) -> Points:
        if frame_idx not in self.coords or not 0 <= step < len(self.coords[frame_idx]):
            have = {t: len(xy) for t, xy in self.coords.items()}
            raise KeyError(f"no recorded click for step {step} of frame {frame_idx} (recorded: {have})")
        coords, labels = self.coords[frame_idx][step], self.labels[frame_idx][step]
        if len(coords) != gt.shape[0]:
            raise ValueError(f"recorded clicks of frame {frame_idx} are for {len(coords)} objects, the clip has "
                             f"{gt.shape[0]}")
        return Points(coords[:, None].to(gt.device, torch.float32), labels[:, None].to(gt.device, torch.int32))


def gaussian_targets(points_xy: Tensor, visible: Tensor, size: int, radius: int, sigma: float) -> Tensor:
    """The point task's soft targets: (T, N, 2) points, (T, N) visibility -> (T, N, S, S) float32 gaussian discs.

    A disc peaks at 1 on the integer pixel of the point (`gaussian_disc`); an invisible point gets a zero map.
    """
    if points_xy.ndim != 3 or points_xy.shape[-1] != 2 or tuple(visible.shape) != tuple(points_xy.shape[:2]):
        raise ValueError(
            f"points_xy must be (T, N, 2) and visible (T, N), got {tuple(points_xy.shape)} and {tuple(visible.shape)}"
        )
    t_count, n_count = visible.shape
    out = torch.zeros(t_count, n_count, size, size, dtype=torch.float32)
    for t, n in visible.nonzero().tolist():
        point = points_xy[t, n]
        if not torch.isfinite(point).all():
            raise ValueError(f"visible point of object {n} on frame {t} is not finite: {point.tolist()}")
        out[t, n] = gaussian_disc(point, size, radius, sigma)
    return out.to(points_xy.device)


# ----------------------------------------------------------------------------------------------- per-frame prompts


def _gt(clip: Clip, t: int) -> Tensor:
    return clip.masks[t] > 0.5


def _gt_map(clip: Clip, t: int) -> Tensor:
    return clip.masks[t][:, None].to(torch.float32)


def _noised_box_or_click(boxes: Tensor, clip: Clip, t: int, rng, generator, config: PromptConfig):
    if rng.random() < config.prob_to_use_box_input:
        points = box_points(boxes, clip.image_size, config.box_noise, config.box_noise_bound, generator)
        return "noised_box", FramePrompt(points=points)
    return "click", FramePrompt(points=sample_correction_click(_gt(clip, t), None, generator))


def _mask_prompt(clip: Clip, t: int, use_pt_input: bool, rng, generator, config: PromptConfig):
    if not use_pt_input:
        return "mask", FramePrompt(prob_map=_gt_map(clip, t))
    return _noised_box_or_click(mask_boxes(_gt(clip, t)), clip, t, rng, generator, config)


def _box_prompt(clip: Clip, t: int, use_pt_input: bool, rng, generator, config: PromptConfig):
    boxes = clip.boxes_xyxy[t]
    if not use_pt_input:
        points = box_points(boxes, clip.image_size, 0.0, config.box_noise_bound, generator)
        return "box", FramePrompt(points=points, prob_map=_gt_map(clip, t))
    return _noised_box_or_click(boxes, clip, t, rng, generator, config)


def _point_prompt(clip: Clip, t: int, use_pt_input: bool, rng, generator, config: PromptConfig):
    coords = clip.points_xy[t][:, None].to(torch.float32)
    labels = torch.ones(coords.shape[:2], dtype=torch.int32, device=coords.device)
    return "point", FramePrompt(points=Points(coords, labels), prob_map=_gt_map(clip, t))


@dataclass(frozen=True)
class _TaskDraws:
    """How a task draws its clip plan.

    draws_pt_input: whether use_pt_input is drawn (else never clicked); single_init_frame: forced to one initial
    conditioning frame; extra_must_be_visible: an extra initial frame where some object is invisible is dropped;
    needs: the extra Clip field the prompts read and its last dimension; frame_prompt: (clip, t, use_pt_input, rng,
    generator, config) -> (mode, FramePrompt).
    """

    draws_pt_input: bool
    single_init_frame: bool
    extra_must_be_visible: bool
    needs: tuple[str, int] | None
    frame_prompt: Callable


TASK_DRAWS: dict[str, _TaskDraws] = {
    "mask": _TaskDraws(True, False, False, None, _mask_prompt),
    "box": _TaskDraws(True, False, True, ("boxes_xyxy", 4), _box_prompt),
    "point": _TaskDraws(False, True, False, ("points_xy", 2), _point_prompt),
}


# ----------------------------------------------------------------------------------------------- the clip plan


@dataclass
class PromptPlan:
    """Every prompt decision for one clip.

    init_cond_frames: in processing order ([0] or [0, extra]); frames_to_correct: frames that get correction clicks
    (initial frames first); cond_frames: frames stored as conditioning memories (initial frames, and corrected
    frames when `add_all_frames_to_correct_as_cond`); prompts / modes: per initial frame, the `FramePrompt` for all
    N objects (points (N, k, 2), prob_map (N, 1, S, S) or None) and its mode ("mask", "box", "noised_box", "click",
    "point").
    """

    task: str
    num_frames: int
    use_pt_input: bool
    init_cond_frames: list[int]
    frames_to_correct: list[int]
    cond_frames: list[int]
    prompts: dict[int, FramePrompt]
    modes: dict[int, str]

    @property
    def processing_order(self) -> list[int]:
        """Initial conditioning frames first, then the others in time order."""
        return self.init_cond_frames + [t for t in range(self.num_frames) if t not in self.init_cond_frames]

    def prompt_is_output(self, frame_idx: int) -> bool:
        """Whether the frame's prompt is its output as it is (GT mask, clean box + GT mask, gaussian)."""
        return self.modes.get(frame_idx) in OUTPUT_MODES

    @classmethod
    def from_decisions(
        cls,
        task: str,
        num_frames: int,
        use_pt_input: bool,
        init_cond_frames: list[int],
        frames_to_correct: list[int],
        cond_frames: list[int],
        prompts: dict[int, FramePrompt],
        modes: dict[int, str],
    ) -> PromptPlan:
        """A plan whose decisions were made elsewhere (recorded from the published trainer or a logged run), checked
        to be one `plan_prompts` could have made, so that a replay fails loudly instead of tracking something else.

        Frames to correct include the initial frames and exist only with `use_pt_input`; conditioning frames are the
        initial frames and some of the corrected ones; every initial frame has a prompt and a mode of the task, and
        the prompt is output as it is (`TASK_RULES`) exactly when the mode says so.
        """
        where = f"recorded {task} plan"
        if task not in TASK_DRAWS:
            raise ValueError(f"{where}: unknown task, expected one of {list(TASK_DRAWS)}")
        for name, frames in (("init_cond_frames", init_cond_frames), ("frames_to_correct", frames_to_correct),
                             ("cond_frames", cond_frames)):
            if len(set(frames)) != len(frames) or not all(0 <= t < num_frames for t in frames):
                raise ValueError(f"{where}: {name} {frames} must be distinct frames of 0..{num_frames - 1}")
        if not init_cond_frames:
            raise ValueError(f"{where}: needs at least one initial conditioning frame")
        if frames_to_correct and (not use_pt_input or not set(init_cond_frames) <= set(frames_to_correct)):
            raise ValueError(f"{where}: frames_to_correct {frames_to_correct} must be empty without use_pt_input, "
                             f"else include the initial frames {init_cond_frames}")
        if not set(init_cond_frames) <= set(cond_frames) <= {*init_cond_frames, *frames_to_correct}:
            raise ValueError(f"{where}: cond_frames {cond_frames} must be the initial frames {init_cond_frames} and "
                             f"some of the corrected frames {frames_to_correct}")
        if set(prompts) != set(init_cond_frames) or set(modes) != set(init_cond_frames):
            raise ValueError(f"{where}: prompts (frames {sorted(prompts)}) and modes (frames {sorted(modes)}) must "
                             f"cover exactly the initial frames {init_cond_frames}")
        unknown = {t: m for t, m in modes.items() if m not in TASK_MODES[task]}
        if unknown:
            raise ValueError(f"{where}: unknown modes {unknown}, expected some of {sorted(TASK_MODES[task])}")
        rules = TASK_RULES[task]
        mismatched = [t for t in init_cond_frames if rules.prompt_is_output(prompts[t]) != (modes[t] in OUTPUT_MODES)]
        if mismatched:
            raise ValueError(f"{where}: the prompts of frames {mismatched} do not fit their modes (a mask, box or "
                             "point mode is output as it is: it needs the map, and the box or point with it)")
        return cls(task, num_frames, use_pt_input, list(init_cond_frames), list(frames_to_correct), list(cond_frames),
                   dict(prompts), dict(modes))


def _check_clip(clip: Clip, draws: _TaskDraws) -> None:
    where = f"clip {clip.video or '?'}@{clip.start} ({clip.task})"
    t_count, n_count = clip.num_frames, clip.num_objects
    if clip.masks.ndim != 4 or clip.masks.shape[-1] != clip.masks.shape[-2]:
        raise ValueError(f"{where}: masks must be (T, N, S, S), got {tuple(clip.masks.shape)}")
    if tuple(clip.visible.shape) != (t_count, n_count):
        raise ValueError(f"{where}: visible must be (T, N) = ({t_count}, {n_count}), got {tuple(clip.visible.shape)}")
    if draws.needs is not None:
        name, width = draws.needs
        field = getattr(clip, name)
        if field is None or tuple(field.shape) != (t_count, n_count, width):
            shape = None if field is None else tuple(field.shape)
            raise ValueError(f"{where}: {name} must be ({t_count}, {n_count}, {width}), got {shape}")
    hidden = (~clip.visible[0].bool()).nonzero().flatten().tolist()
    if hidden:
        raise ValueError(f"{where}: every object must be visible on frame 0; objects {hidden} are not")


def _draw_num_to_correct(use_pt_input: bool, num_init: int, num_correct: int, config: PromptConfig, rng) -> int:
    if use_pt_input and config.rand_frames_to_correct and num_correct > num_init:
        return int(rng.integers(num_init, num_correct, endpoint=True))
    return num_correct


def _draw_init_frames(clip: Clip, num_init: int, rng) -> list[int]:
    t_count = clip.num_frames
    if num_init > t_count:
        raise ValueError(f"{num_init} initial conditioning frames requested but the clip has {t_count} frames")
    if num_init == 1:
        return [0]
    return [0] + rng.choice(range(1, t_count), num_init - 1, replace=False).tolist()


def plan_prompts(
    clip: Clip,
    rng: np.random.Generator,
    config: PromptConfig | None = None,
    generator: torch.Generator | None = None,
) -> PromptPlan:
    """Draw one clip's prompts in the published order (recipe §1.3 steps 1-6).

    rng: use_pt_input, the number of initial frames, the number of corrected frames, the extra initial and corrected
    frames, box-vs-click per initial frame; generator: box noise and click pixels. A one-frame clip is always clicked
    with one initial frame, as published for images.
    """
    config = config or PromptConfig()
    if clip.task not in TASK_DRAWS:
        where = f"clip {clip.video or '?'}@{clip.start}"
        raise ValueError(f"{where}: unknown task {clip.task!r}, expected one of {list(TASK_DRAWS)}")
    draws = TASK_DRAWS[clip.task]
    _check_clip(clip, draws)
    prob_pt, num_init = config.prob_to_use_pt_input, config.num_init_cond_frames
    num_correct = config.num_frames_to_correct
    if clip.num_frames == 1:
        prob_pt, num_correct, num_init = 1.0, 1, 1

    use_pt_input = draws.draws_pt_input and bool(rng.random() < prob_pt)
    if draws.single_init_frame:
        num_init = 1
    if config.rand_init_cond_frames and num_init > 1:
        num_init = int(rng.integers(1, num_init, endpoint=True))
    num_correct = _draw_num_to_correct(use_pt_input, num_init, num_correct, config, rng)

    init_frames = _draw_init_frames(clip, num_init, rng)
    if draws.extra_must_be_visible:
        kept = [t for t in init_frames if t == 0 or bool(clip.visible[t].all())]
        if len(kept) != len(init_frames):
            init_frames, num_init = kept, len(kept)
            num_correct = _draw_num_to_correct(use_pt_input, num_init, num_correct, config, rng)

    prompts, modes = {}, {}
    for t in init_frames:
        modes[t], prompts[t] = draws.frame_prompt(clip, t, use_pt_input, rng, generator, config)

    frames_to_correct = _draw_frames_to_correct(clip.num_frames, init_frames, use_pt_input, num_correct, rng)
    extra_cond = [t for t in frames_to_correct if t not in init_frames]
    if not config.add_all_frames_to_correct_as_cond:
        extra_cond = []
    return PromptPlan(
        task=clip.task,
        num_frames=clip.num_frames,
        use_pt_input=use_pt_input,
        init_cond_frames=init_frames,
        frames_to_correct=frames_to_correct,
        cond_frames=init_frames + extra_cond,
        prompts=prompts,
        modes=modes,
    )


def _draw_frames_to_correct(
    t_count: int, init_frames: list[int], use_pt_input: bool, num_correct: int, rng
) -> list[int]:
    if not use_pt_input:
        return []
    extra = num_correct - len(init_frames)
    if extra == 0:
        return list(init_frames)
    rest = [t for t in range(t_count) if t not in init_frames]
    if extra > len(rest):
        raise ValueError(f"{num_correct} frames to correct requested but the clip has {t_count} frames")
    return init_frames + rng.choice(rest, extra, replace=False).tolist()
