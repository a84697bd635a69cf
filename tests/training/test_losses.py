"""The training losses: the published values (../shared/parity/losses), gradients, the multimask rule and options."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist

from conftest import PARITY, need
from sam2pp.training.clip import Clip, StepOutput
from sam2pp.training.losses import (
    LossConfig,
    LossWeights,
    clip_loss,
    num_objects_for_loss,
    peak_divergence,
    published_weights,
    soft_argmax,
)

LOSSES = PARITY / "losses"
CASES = sorted(p.name for p in LOSSES.iterdir() if (p / "expected.json").is_file()) if LOSSES.is_dir() else []
S = 16


def fixture_inputs(case_dir: Path) -> tuple[list[list[StepOutput]], Clip, dict]:
    """A case folder as (outputs, clip, expected.json) in the project's types."""
    spec = json.loads((case_dir / "expected.json").read_text())
    with np.load(case_dir / "inputs.npz") as npz:
        arrays = {k: torch.from_numpy(npz[k]) for k in npz.files}
    outputs = [[StepOutput(arrays[f"f{f}_s{s}_masks"], arrays[f"f{f}_s{s}_ious"],
                           arrays[f"f{f}_s{s}_object_score_logits"], arrays.get(f"f{f}_s{s}_boxes_xyxy_norm"))
                for s in range(spec["steps"])] for f in range(spec["frames"])]
    clip = Clip(spec["task"], torch.empty(0), arrays["target_masks"], arrays["visible"],
                arrays.get("target_boxes_xyxy"), arrays.get("target_points_xy"))
    assert clip.image_size == spec["size"]
    return outputs, clip, spec


@pytest.mark.parametrize("case", CASES or ["absent"])
def test_published_values(case):
    outputs, clip, spec = fixture_inputs(need(LOSSES / case))
    losses = clip_loss(outputs, clip, num_objects_for_loss(clip.num_objects))
    assert set(losses) == set(spec["expected"])
    tol = spec["tolerance"]
    for key, value in spec["expected"].items():
        assert losses[key].item() == pytest.approx(value, rel=tol["rel"], abs=tol["abs"]), key


def random_clip(task: str, n: int = 2, frames: int = 2, seed: int = 0) -> Clip:
    """Targets with every object visible on frame 0 and object 1 (if any) absent on the last frame."""
    g = torch.Generator().manual_seed(seed)
    masks = torch.zeros(frames, n, S, S)
    masks[:, :, 3:9, 4:12] = 1.0
    if n > 1:
        masks[-1, 1] = 0.0
    visible = masks.flatten(2).any(-1)
    boxes = torch.tensor([4.0, 3.0, 11.0, 8.0]).expand(frames, n, 4).clone() if task == "box" else None
    points = (torch.rand(frames, n, 2, generator=g) * S) if task == "point" else None
    if task == "point":
        masks = masks * torch.rand(frames, n, S, S, generator=g)
    return Clip(task, torch.empty(0), masks, visible, boxes, points)


def random_outputs(clip: Clip, ms: tuple[int, ...] = (3, 1), seed: int = 1) -> list[list[StepOutput]]:
    """Leaf tensors with gradients, one StepOutput per entry of ms on every frame."""
    g = torch.Generator().manual_seed(seed)
    n = clip.num_objects

    def step(m: int) -> StepOutput:
        boxes = None
        if clip.task == "box":
            lo, hi = torch.rand(n, m, 2, generator=g) * 0.5, 0.5 + torch.rand(n, m, 2, generator=g) * 0.5
            boxes = torch.cat([lo, hi], -1).requires_grad_()
        return StepOutput((torch.randn(n, m, S, S, generator=g) * 3).requires_grad_(),
                          torch.rand(n, m, generator=g).requires_grad_(),
                          torch.randn(n, 1, generator=g).requires_grad_(), boxes)

    return [[step(m) for m in ms] for _ in range(clip.num_frames)]


@pytest.mark.parametrize("task", ["mask", "box", "point"])
def test_gradients_flow_and_are_finite(task):
    clip = random_clip(task)
    outputs = random_outputs(clip)
    losses = clip_loss(outputs, clip, 2.0)
    assert all(v.dim() == 0 for v in losses.values())
    losses["core_loss"].backward()
    for steps in outputs:
        for out in steps:
            for t in (out.masks, out.ious, out.object_score_logits, out.boxes_xyxy_norm):
                if t is not None:
                    assert t.grad is not None and torch.isfinite(t.grad).all()
    assert outputs[0][0].masks.grad.abs().sum() > 0


def test_core_loss_is_the_weighted_sum():
    clip = random_clip("box")
    losses = clip_loss(random_outputs(clip), clip, 2.0)
    weights = published_weights()["box"].by_key()
    expected = sum(weights[k] * v for k, v in losses.items() if k != "core_loss")
    assert losses["core_loss"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_box_l1_fix_changes_the_value_and_masks_invisible_boxes():
    clip = random_clip("box")
    outputs = random_outputs(clip)
    quirk = clip_loss(outputs, clip, 2.0)
    fixed = clip_loss(outputs, clip, 2.0, LossConfig(box_l1_as_published=False))
    assert fixed["loss_l1"].item() < quirk["loss_l1"].item()
    for key in ("loss_mask", "loss_dice", "loss_ciou", "loss_iou", "loss_class"):
        assert fixed[key].item() == pytest.approx(quirk[key].item(), rel=1e-6)
    invisible_boxes = outputs[-1][0].boxes_xyxy_norm
    quirk_grad, = torch.autograd.grad(quirk["loss_l1"], invisible_boxes)
    fixed_grad, = torch.autograd.grad(fixed["loss_l1"], invisible_boxes)
    assert quirk_grad[1].abs().sum() > 0  # the published sum trains the absent object's boxes towards [0, 0, 1, 1]
    assert fixed_grad[1].abs().sum() == 0


def test_box_divide_by_objects_scales_ciou_and_l1_only():
    clip = random_clip("box")
    outputs = random_outputs(clip)
    base = clip_loss(outputs, clip, 2.0)
    divided = clip_loss(outputs, clip, 2.0, LossConfig(box_divide_by_objects=True))
    for key in ("loss_ciou", "loss_l1"):
        assert divided[key].item() == pytest.approx(base[key].item() / 2, rel=1e-6)
    assert divided["loss_mask"].item() == pytest.approx(base["loss_mask"].item(), rel=1e-6)


def single_output_loss(clip: Clip, logits: torch.Tensor, ious: torch.Tensor, score: torch.Tensor,
                       config: LossConfig | None = None) -> dict[str, torch.Tensor]:
    return clip_loss([[StepOutput(logits, ious, score)]], clip, 1.0, config)


def test_three_outputs_keep_the_best_mask_and_average_the_iou_term():
    clip = random_clip("mask", n=1, frames=1)
    good = (clip.masks[0, :, None] * 20 - 10).clone()
    bad = -good
    ious = torch.tensor([[0.3, 0.9, 0.1]])
    score = torch.tensor([[2.0]])
    three = single_output_loss(clip, torch.cat([bad, good, bad], 1), ious, score)
    singles = [single_output_loss(clip, m, ious[:, i:i + 1], score) for i, m in enumerate([bad, good, bad])]
    assert three["loss_mask"].item() == pytest.approx(singles[1]["loss_mask"].item(), rel=1e-6)
    assert three["loss_dice"].item() == pytest.approx(singles[1]["loss_dice"].item(), rel=1e-6)
    mean_iou = sum(s["loss_iou"].item() for s in singles) / 3
    assert three["loss_iou"].item() == pytest.approx(mean_iou, rel=1e-6)
    best_only = single_output_loss(clip, torch.cat([bad, good, bad], 1), ious, score,
                                   LossConfig(supervise_all_iou=False))
    assert best_only["loss_iou"].item() == pytest.approx(singles[1]["loss_iou"].item(), rel=1e-6)
    assert singles[0]["loss_mask"].item() > 10 * singles[1]["loss_mask"].item()


def test_absent_object_trains_only_its_score():
    clip = random_clip("mask", frames=2)
    outputs = random_outputs(clip, ms=(3, 1))
    clip_loss(outputs, clip, 2.0)["core_loss"].backward()
    for out in outputs[-1]:  # object 1 has an empty mask on the last frame
        assert out.masks.grad[1].abs().sum() == 0
        assert out.ious.grad[1].abs().sum() == 0
        assert out.object_score_logits.grad[1].abs().sum() > 0
        assert out.masks.grad[0].abs().sum() > 0


def test_soft_argmax_finds_a_peak():
    logits = torch.full((1, 1, S, S), -50.0)
    logits[0, 0, 2, 5] = 50.0  # row y=2, column x=5
    assert soft_argmax(logits)[0, 0].tolist() == pytest.approx([5 / S, 2 / S], abs=1e-6)


def gaussian_disc(x: float, y: float, sigma: float = 1.5) -> torch.Tensor:
    grid = torch.arange(S, dtype=torch.float32)
    return torch.exp(-((grid[None, :] - x) ** 2 + (grid[:, None] - y) ** 2) / (2 * sigma**2))


def with_peak(weight: float) -> LossConfig:
    weights = published_weights()
    weights["point"] = replace(weights["point"], peak=weight)
    return LossConfig(weights=weights)


def test_point_peak_term_is_off_by_default_and_weighted_when_on():
    clip = random_clip("point")
    outputs = random_outputs(clip, ms=(1, 1))  # one candidate: the peak term cannot change which one is scored
    published = clip_loss(outputs, clip, 2.0)
    peaked = clip_loss(outputs, clip, 2.0, with_peak(2.0))
    assert "loss_peak" not in published
    for key in published:
        if key != "core_loss":
            assert peaked[key].item() == pytest.approx(published[key].item(), rel=1e-6)
    assert peaked["loss_peak"].item() > 0
    assert peaked["core_loss"].item() == pytest.approx(published["core_loss"].item() + 2 * peaked["loss_peak"].item(),
                                                        rel=1e-5)
    with pytest.raises(ValueError, match="loss_peak"):
        weights = published_weights()
        weights["mask"] = replace(weights["mask"], peak=1.0)
        LossConfig(weights=weights)


def test_point_peak_divergence_is_lowest_on_the_point_and_zero_when_absent():
    heat = gaussian_disc(11, 4)[None, None]
    on = (heat * 10).log()
    off = (gaussian_disc(3, 12)[None, None] * 10).log()
    assert peak_divergence(on, heat).item() == pytest.approx(0.0, abs=1e-4)
    assert peak_divergence(off, heat).item() > 5
    assert peak_divergence(off, torch.zeros_like(heat)).item() == 0.0


def test_point_peak_term_moves_the_arg_max_of_a_flat_map_onto_the_point():
    target = gaussian_disc(11, 4)[None, None]
    clip = Clip("point", torch.empty(0), target[None, :, 0], torch.ones(1, 1, dtype=torch.bool), None,
                torch.tensor([[[11.0, 4.0]]]))
    logits = torch.full((1, 1, S, S), -5.0, requires_grad=True)
    optimizer = torch.optim.Adam([logits], lr=0.1)
    for _ in range(30):
        optimizer.zero_grad()
        loss = single_output_loss(clip, logits, torch.ones(1, 1), torch.ones(1, 1) * 5, with_peak(1.0))
        loss["loss_peak"].backward()
        optimizer.step()
    y, x = divmod(int(logits.detach().flatten().argmax()), S)
    assert (x, y) == (11, 4)


def test_num_objects_for_loss_clamps_and_reduces(tmp_path):
    assert num_objects_for_loss(3) == 3.0
    assert num_objects_for_loss(0) == 1.0
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        assert num_objects_for_loss(2) == 2.0
    finally:
        dist.destroy_process_group()


def test_bad_input_is_named():
    clip = random_clip("mask")
    outputs = random_outputs(clip)
    with pytest.raises(ValueError, match="the clip has 2"):
        clip_loss(outputs[:1], clip, 1.0)
    outputs[1][1] = replace(outputs[1][1], ious=torch.zeros(2, 3))
    with pytest.raises(ValueError, match="frame 1, step 1: ious"):
        clip_loss(outputs, clip, 1.0)
    with pytest.raises(ValueError, match="no loss"):
        clip_loss(outputs, replace(clip, task="segment"), 1.0)
    with pytest.raises(ValueError, match="loss_ciou"):
        LossConfig(weights={**published_weights(), "mask": LossWeights(mask=20, dice=1, iou=1, ciou=1)})
