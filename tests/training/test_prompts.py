"""Training prompt simulation: published probabilities, draw order, click and box sampling, curriculum."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch

from sam2pp.predictor.prompts import gaussian_disc
from sam2pp.modeling.tracker import FramePrompt
from sam2pp.training.clip import Clip
from sam2pp.training.prompts import (
    DrawnClicks,
    PromptConfig,
    PromptPlan,
    RecordedClicks,
    box_points,
    gaussian_targets,
    mask_boxes,
    next_correction_click,
    plan_prompts,
    sample_correction_click,
    scale_gaussian_stages,
)

S, T, N = 32, 8, 2
HIDDEN_BOX_FRAMES = (3, 5)  # object 1 is out of view there in the box clip
DRAWS = 4000


def make_clip(task: str, num_frames: int = T, hide: bool | None = None) -> Clip:
    """Two moving rectangles; object 1 is invisible on HIDDEN_BOX_FRAMES if `hide` (default: in the box clip)."""
    hide = task == "box" if hide is None else hide
    masks = torch.zeros(num_frames, N, S, S)
    visible = torch.ones(num_frames, N, dtype=torch.bool)
    boxes = torch.zeros(num_frames, N, 4)
    points = torch.zeros(num_frames, N, 2)
    for t in range(num_frames):
        for n in range(N):
            x0, y0 = 2 + t + 12 * n, 3 + n
            x1, y1 = x0 + 6, y0 + 9
            if hide and n == 1 and t in HIDDEN_BOX_FRAMES:
                visible[t, n] = False
                continue
            masks[t, n, y0 : y1 + 1, x0 : x1 + 1] = 1
            boxes[t, n] = torch.tensor([x0, y0, x1, y1], dtype=torch.float32)
            points[t, n] = torch.tensor([x0 + 2.5, y0 + 3.7])
    if task == "point":
        masks = gaussian_targets(points, visible, S, 3, 1.0)
    return Clip(
        task=task,
        frames=torch.zeros(num_frames, 3, S, S),
        masks=masks,
        visible=visible,
        boxes_xyxy=boxes if task == "box" else None,
        points_xy=points if task == "point" else None,
        video="synthetic",
    )


def draw_plans(task: str, count: int = DRAWS, seed: int = 0, config: PromptConfig | None = None):
    """`count` plans from one persistent rng and generator, as a training run draws them."""
    clip = make_clip(task)
    rng, gen = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
    return clip, [plan_prompts(clip, rng, config, gen) for _ in range(count)]


def assert_rate(hits: int, count: int, p: float, what: str) -> None:
    tolerance = 4.5 * math.sqrt(p * (1 - p) / count)
    assert abs(hits / count - p) <= tolerance, f"{what}: {hits}/{count} = {hits / count:.4f}, expected {p:.4f}"


def has_extra_corrected(plan) -> bool:
    return any(t not in plan.init_cond_frames for t in plan.frames_to_correct)


@pytest.fixture(scope="module")
def mask_plans():
    return draw_plans("mask")


@pytest.fixture(scope="module")
def box_plans():
    return draw_plans("box")


# ----------------------------------------------------------------------------------------------- frequencies


def test_mask_task_frequencies(mask_plans):
    _, plans = mask_plans
    modes = Counter(p.modes[0] for p in plans)
    assert set(modes) == {"mask", "noised_box", "click"}
    assert_rate(modes["mask"], DRAWS, 1 / 2, "mask input")
    assert_rate(modes["noised_box"], DRAWS, 1 / 4, "box from mask")
    assert_rate(modes["click"], DRAWS, 1 / 4, "one click")
    assert_rate(sum(len(p.init_cond_frames) == 2 for p in plans), DRAWS, 1 / 2, "two initial frames")
    # clicked (1/2) x one initial frame (1/2) x two frames to correct (1/2)
    assert_rate(sum(has_extra_corrected(p) for p in plans), DRAWS, 1 / 8, "corrected extra frame")


def test_box_task_frequencies(box_plans):
    _, plans = box_plans
    modes = Counter(p.modes[0] for p in plans)
    assert set(modes) == {"box", "noised_box", "click"}
    assert_rate(modes["box"], DRAWS, 1 / 2, "clean box + GT mask")
    assert_rate(modes["noised_box"], DRAWS, 1 / 4, "noised box")
    assert_rate(modes["click"], DRAWS, 1 / 4, "one click")
    visible_extra = (7 - len(HIDDEN_BOX_FRAMES)) / 7
    assert_rate(sum(len(p.init_cond_frames) == 2 for p in plans), DRAWS, visible_extra / 2, "two initial frames")
    # clicked x (one initial frame drawn, or two with the extra dropped) x the redraw giving two frames to correct
    p_extra = 1 / 2 * (1 / 2 * 1 / 2 + 1 / 2 * (1 - visible_extra) * 1 / 2)
    assert_rate(sum(has_extra_corrected(p) for p in plans), DRAWS, p_extra, "corrected extra frame")


@pytest.mark.parametrize("task", ["mask", "box"])
def test_modes_per_frame_share_the_clip_decision_and_draw_box_or_click_per_frame(task, mask_plans, box_plans):
    _, plans = mask_plans if task == "mask" else box_plans
    as_output = {"mask": "mask", "box": "box"}[task]
    two = [p for p in plans if len(p.init_cond_frames) == 2]
    for plan in two:
        first, extra = (plan.modes[t] for t in plan.init_cond_frames)
        assert (first == as_output) == (extra == as_output) == (not plan.use_pt_input)
    clicked = [p for p in two if p.use_pt_input]
    differ = sum(len(set(p.modes.values())) == 2 for p in clicked)
    assert_rate(differ, len(clicked), 1 / 2, "box-vs-click drawn per initial frame")


def test_box_extra_frame_is_never_an_invisible_target(box_plans):
    clip, plans = box_plans
    for plan in plans:
        for t in plan.init_cond_frames:
            assert bool(clip.visible[t].all()), f"initial frame {t} has a hidden object"
    extras = {p.init_cond_frames[1] for p in plans if len(p.init_cond_frames) == 2}
    assert extras == set(range(1, T)) - set(HIDDEN_BOX_FRAMES)


def test_mask_task_keeps_an_extra_frame_with_a_hidden_object():
    clip = make_clip("mask", hide=True)
    rng, gen = np.random.default_rng(1), torch.Generator().manual_seed(1)
    plans = [plan_prompts(clip, rng, PromptConfig(), gen) for _ in range(400)]
    extras = {p.init_cond_frames[1] for p in plans if len(p.init_cond_frames) == 2}
    assert extras == set(range(1, T)), "as published, only the box task drops an invisible extra frame"
    hidden_clicks = [p.prompts[t] for p in plans for t in p.init_cond_frames[1:]
                     if t in HIDDEN_BOX_FRAMES and p.modes[t] == "click"]
    assert hidden_clicks
    assert all(prompt.points.labels[1].item() == 0 for prompt in hidden_clicks), "an empty GT gives a negative click"


@pytest.mark.parametrize("task", ["mask", "box"])
def test_corrections_and_conditioning_frames(task, mask_plans, box_plans):
    _, plans = mask_plans if task == "mask" else box_plans
    for plan in plans:
        if not plan.use_pt_input:
            assert plan.frames_to_correct == []
            assert plan.cond_frames == plan.init_cond_frames
            continue
        assert plan.frames_to_correct[: len(plan.init_cond_frames)] == plan.init_cond_frames
        assert len(plan.frames_to_correct) <= 2
        assert plan.cond_frames == plan.frames_to_correct  # corrected frames become conditioning frames
        assert sorted(plan.processing_order) == list(range(T))
        assert plan.processing_order[: len(plan.init_cond_frames)] == plan.init_cond_frames


def test_point_task_always_one_gaussian_frame_no_clicks_no_rng_draw():
    clip = make_clip("point")
    rng, twin = np.random.default_rng(7), np.random.default_rng(7)
    for _ in range(50):
        plan = plan_prompts(clip, rng, PromptConfig(), torch.Generator().manual_seed(0))
        assert plan.init_cond_frames == [0] and plan.frames_to_correct == [] and plan.modes == {0: "point"}
    assert rng.random() == twin.random(), "the point task draws nothing from the rng"
    prompt = plan.prompts[0]
    torch.testing.assert_close(prompt.points.coords, clip.points_xy[0][:, None])
    assert prompt.points.labels.tolist() == [[1], [1]] and prompt.points.labels.dtype == torch.int32
    torch.testing.assert_close(prompt.prob_map, clip.masks[0][:, None])
    assert plan.prompt_is_output(0)


# ----------------------------------------------------------------------------------------------- draw order


def published_mask_draws(rng, num_frames):
    """The published `prepare_prompt_inputs` rng calls for the mask task, restated call by call."""
    use_pt = rng.random() < 0.5
    num_init = rng.integers(1, 2, endpoint=True)
    num_correct = 2
    if use_pt and num_correct > num_init:
        num_correct = rng.integers(num_init, 2, endpoint=True)
    init = [0] if num_init == 1 else [0] + rng.choice(range(1, num_frames), 1, replace=False).tolist()
    modes = ["mask" if not use_pt else ("noised_box" if rng.random() < 0.5 else "click") for _ in init]
    if not use_pt:
        correct = []
    elif num_correct == num_init:
        correct = init
    else:
        rest = [t for t in range(num_frames) if t not in init]
        correct = init + rng.choice(rest, num_correct - num_init, replace=False).tolist()
    return init, correct, modes


def test_mask_plan_follows_the_published_draw_order():
    clip = make_clip("mask")
    ours, published = np.random.default_rng(123), np.random.default_rng(123)
    gen = torch.Generator().manual_seed(0)
    for _ in range(300):
        plan = plan_prompts(clip, ours, PromptConfig(), gen)
        init, correct, modes = published_mask_draws(published, T)
        assert (plan.init_cond_frames, plan.frames_to_correct) == (init, correct)
        assert [plan.modes[t] for t in plan.init_cond_frames] == modes
    assert ours.random() == published.random()


def test_plans_are_deterministic_given_both_seeds():
    for task in ("mask", "box", "point"):
        _, first = draw_plans(task, 60, seed=5)
        _, again = draw_plans(task, 60, seed=5)
        for a, b in zip(first, again):
            assert a.init_cond_frames == b.init_cond_frames and a.frames_to_correct == b.frames_to_correct
            assert a.modes == b.modes
            for t, prompt in a.prompts.items():
                other = b.prompts[t]
                if prompt.points is not None:
                    assert torch.equal(prompt.points.coords, other.points.coords)
                    assert torch.equal(prompt.points.labels, other.points.labels)
                assert (prompt.prob_map is None) == (other.prob_map is None)
                if prompt.prob_map is not None:
                    assert torch.equal(prompt.prob_map, other.prob_map)


# ----------------------------------------------------------------------------------------------- prompt contents


def test_prompt_contents_per_mode(mask_plans, box_plans):
    for clip, plans in (mask_plans, box_plans):
        for plan in plans[:400]:
            for t, prompt in plan.prompts.items():
                mode = plan.modes[t]
                gt = clip.masks[t] > 0.5
                if mode in ("mask", "box"):
                    assert prompt.prob_map.shape == (N, 1, S, S) and prompt.prob_map.dtype == torch.float32
                    torch.testing.assert_close(prompt.prob_map[:, 0], clip.masks[t])
                    assert plan.prompt_is_output(t)
                else:
                    assert prompt.prob_map is None and not plan.prompt_is_output(t)
                if mode == "mask":
                    assert prompt.points is None
                    continue
                coords, labels = prompt.points.coords, prompt.points.labels
                assert coords.dtype == torch.float32 and labels.dtype == torch.int32
                if mode == "box":
                    torch.testing.assert_close(coords.reshape(N, 4), clip.boxes_xyxy[t])
                if mode in ("box", "noised_box"):
                    assert coords.shape == (N, 2, 2) and labels.tolist() == [[2, 3]] * N
                if mode == "click":
                    assert coords.shape == (N, 1, 2) and labels.tolist() == [[1]] * N
                    x, y = coords[:, 0].long().unbind(1)
                    assert gt[torch.arange(N), y, x].all(), "an initial click must lie inside the GT"


def test_mask_task_box_is_noised_around_the_mask_box(mask_plans):
    clip, plans = mask_plans
    for plan in plans[:600]:
        for t, mode in plan.modes.items():
            if mode != "noised_box":
                continue
            box = mask_boxes(clip.masks[t] > 0.5)
            spread = torch.minimum((box[:, 2:] - box[:, :2]) * 0.1, torch.tensor(20.0)).repeat(1, 2)
            delta = plan.prompts[t].points.coords.reshape(N, 4) - box
            assert (delta.abs() <= spread + 1e-5).all()


def test_mask_boxes_are_inclusive_and_empty_masks_give_the_published_degenerate_box():
    masks = torch.zeros(2, 12, 16, dtype=torch.bool)
    masks[0, 5:10, 3:8] = True
    assert mask_boxes(masks).tolist() == [[3, 5, 7, 9], [16, 12, -1, -1]]


def test_noised_box_stays_in_the_image_and_within_the_noise_bound():
    size = 256
    boxes = torch.tensor([[40.0, 40.0, 46.0, 48.0], [0.0, 0.0, 255.0, 255.0], [8.0, 8.0, 248.0, 200.0]])
    spread = torch.tensor([[0.6, 0.8, 0.6, 0.8], [20.0, 20.0, 20.0, 20.0], [20.0, 19.2, 20.0, 19.2]])
    gen = torch.Generator().manual_seed(1)
    deltas = []
    for _ in range(1000):
        points = box_points(boxes, size, 0.1, 20.0, gen)
        coords = points.coords.reshape(3, 4)
        assert coords.min() >= 0 and coords.max() <= size - 1
        assert points.labels.tolist() == [[2, 3]] * 3
        deltas.append(coords - boxes)
    deltas = torch.stack(deltas)
    assert (deltas.abs() <= spread + 1e-4).all()
    # unclamped coordinates reach close to the bound in both directions
    assert (deltas[:, 0].amax(0) > 0.9 * spread[0]).all() and (deltas[:, 0].amin(0) < -0.9 * spread[0]).all()
    assert deltas[:, 2, 0].amax() > 19.0, "the 20 px bound must bind on a 240 px wide box, not 24 px"
    assert torch.equal(box_points(boxes, size, 0.0, 20.0, gen).coords.reshape(3, 4), boxes)


# ----------------------------------------------------------------------------------------------- correction clicks


def error_masks():
    """Object 0: FN rows 0-3 (64 px), FP rows 8-11 (64 px); object 1: FN 32 px, FP 96 px."""
    gt = torch.zeros(2, 16, 16, dtype=torch.bool)
    pred = torch.zeros_like(gt)
    gt[0, 0:8], pred[0, 4:12] = True, True
    gt[1, 0:6], pred[1, 0:4] = True, True
    pred[1, 6:12] = True
    return gt, pred


def test_correction_click_labels_follow_fp_and_fn_uniformly():
    gt, pred = error_masks()
    gen = torch.Generator().manual_seed(3)
    positives = torch.zeros(2)
    count = 1500
    for _ in range(count):
        click = sample_correction_click(gt, pred, gen)
        assert click.coords.shape == (2, 1, 2) and click.labels.shape == (2, 1)
        coords = click.coords[:, 0]
        assert torch.equal(coords, coords.round()), "clicks are integer pixels (no +0.5)"
        x, y = coords.long().unbind(1)
        is_fn = (gt & ~pred)[torch.arange(2), y, x]
        is_fp = (pred & ~gt)[torch.arange(2), y, x]
        label = click.labels[:, 0]
        assert torch.equal(label == 1, is_fn) and torch.equal(label == 0, is_fp)
        positives += label
    assert_rate(int(positives[0]), count, 64 / 128, "object 0 positive clicks")
    assert_rate(int(positives[1]), count, 32 / 128, "object 1 positive clicks")


def test_perfect_prediction_gives_a_negative_background_click_and_gt_only_a_positive_inside():
    gt, _ = error_masks()
    gen = torch.Generator().manual_seed(4)
    for _ in range(200):
        click = sample_correction_click(gt, gt.clone(), gen)
        x, y = click.coords[:, 0].long().unbind(1)
        assert click.labels.tolist() == [[0], [0]] and not gt[torch.arange(2), y, x].any()
        click = sample_correction_click(gt, None, gen)
        x, y = click.coords[:, 0].long().unbind(1)
        assert click.labels.tolist() == [[1], [1]] and gt[torch.arange(2), y, x].all()


def test_next_correction_click_samples_from_gt_with_its_probability():
    gt, _ = error_masks()
    perfect = gt.clone()
    gen = torch.Generator().manual_seed(5)
    rng, twin = np.random.default_rng(9), np.random.default_rng(9)
    for _ in range(20):
        assert next_correction_click(gt, perfect, rng, gen, 0.0).labels.tolist() == [[0], [0]]
    assert rng.random() == twin.random(), "prob 0 must not draw from the rng"
    assert next_correction_click(gt, perfect, rng, gen, 1.0).labels.tolist() == [[1], [1]]
    count = 4000
    from_gt = sum(int(next_correction_click(gt[:1], perfect[:1], rng, gen, 0.1).labels) for _ in range(count))
    assert_rate(from_gt, count, 0.1, "GT-only sampling")


def test_click_inputs_are_checked():
    gt, pred = error_masks()
    with pytest.raises(ValueError, match="gt must be a bool"):
        sample_correction_click(gt.float(), pred)
    with pytest.raises(ValueError, match="pred must be a bool"):
        sample_correction_click(gt, pred[:1])
    with pytest.raises(ValueError, match="prob_from_gt"):
        next_correction_click(gt, pred, np.random.default_rng(0), None, 1.5)


# ----------------------------------------------------------------------------------------------- gaussian targets


def test_gaussian_targets_are_discs_at_visible_points_and_zero_elsewhere():
    points = torch.tensor([[[5.7, 9.2], [20.0, 3.0]], [[0.0, 0.0], [31.9, 31.9]]])
    visible = torch.tensor([[True, False], [True, True]])
    maps = gaussian_targets(points, visible, S, 4, 1.5)
    assert maps.shape == (2, 2, S, S) and maps.dtype == torch.float32
    assert maps[0, 1].abs().sum() == 0
    assert maps[0, 0, 9, 5] == 1.0 and maps[1, 1, 31, 31] == 1.0
    torch.testing.assert_close(maps[1, 0], gaussian_disc(points[1, 0], S, 4, 1.5))
    with pytest.raises(ValueError, match="points_xy must be"):
        gaussian_targets(points, visible[:1], S, 4, 1.5)


# ----------------------------------------------------------------------------------------------- curriculum, config


@pytest.mark.parametrize(
    "fraction, at_1024, at_256",
    [(0.0, (50, 16.0), (12, 4.0)), (0.19, (50, 16.0), (12, 4.0)), (0.2, (20, 8.0), (5, 2.0)),
     (0.5, (20, 8.0), (5, 2.0)), (0.54, (5, 2.0), (1, 0.5)), (1.0, (5, 2.0), (1, 0.5))],
)
def test_curriculum_stages_by_training_fraction(fraction, at_1024, at_256):
    config = PromptConfig()
    assert config.gaussian_for(fraction, 1024) == at_1024
    assert config.gaussian_for(fraction, 256) == at_256


def test_scaled_curriculum_keeps_radius_at_least_one_and_sigma_positive():
    stages = scale_gaussian_stages(PromptConfig().gaussian_stages, 16)
    assert [radius for _, radius, _ in stages] == [1, 1, 1]
    assert all(isinstance(radius, int) for _, radius, _ in stages)
    assert [sigma for _, _, sigma in stages] == [0.25, 0.125, 0.03125]
    with pytest.raises(ValueError, match="fraction"):
        PromptConfig().gaussian_for(1.2, 256)


@pytest.mark.parametrize(
    "field, value",
    [("prob_to_use_pt_input", 1.5), ("prob_to_use_box_input", -0.1), ("prob_to_sample_from_gt", 2.0),
     ("num_init_cond_frames", 0), ("num_frames_to_correct", 0), ("num_correction_clicks", -1),
     ("num_init_cond_frames", 2.0), ("box_noise", -0.1), ("box_noise_bound", -1.0),
     ("gaussian_stages", ()), ("gaussian_stages", ((0.1, 5, 2.0),)), ("gaussian_stages", ((0.0, 0, 2.0),)),
     ("gaussian_stages", ((0.0, 5, 0.0),)), ("gaussian_stages", ((0.0, 5, 2.0), (0.0, 3, 1.0)))],
)
def test_config_errors_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"PromptConfig.{field}"):
        PromptConfig(**{field: value})


def test_config_rejects_fewer_frames_to_correct_than_initial_frames():
    with pytest.raises(ValueError, match="num_frames_to_correct"):
        PromptConfig(num_frames_to_correct=1, num_init_cond_frames=2)


# ----------------------------------------------------------------------------------------------- fixed switches


def test_fixed_switches_and_box_redraw_after_a_dropped_frame():
    fixed = PromptConfig(prob_to_use_pt_input=1.0, rand_init_cond_frames=False, rand_frames_to_correct=False,
                         num_frames_to_correct=3)
    _, plans = draw_plans("mask", 100, config=fixed)
    for plan in plans:
        assert len(plan.init_cond_frames) == 2 and len(plan.frames_to_correct) == 3
    no_cond = PromptConfig(
        prob_to_use_pt_input=1.0, rand_init_cond_frames=False, add_all_frames_to_correct_as_cond=False
    )
    clip, plans = draw_plans("box", 700, config=no_cond)
    dropped = [p for p in plans if len(p.init_cond_frames) == 1]
    assert_rate(len(dropped), len(plans), len(HIDDEN_BOX_FRAMES) / 7, "extra frame dropped")
    # after the drop the frames to correct are redrawn from 1..2
    assert_rate(sum(len(p.frames_to_correct) == 2 for p in dropped), len(dropped), 1 / 2, "redrawn corrections")
    assert all(p.cond_frames == p.init_cond_frames for p in plans)


def test_single_frame_clip_is_clicked_with_one_initial_frame():
    clip = make_clip("mask", num_frames=1)
    rng, gen = np.random.default_rng(0), torch.Generator().manual_seed(0)
    for _ in range(30):
        plan = plan_prompts(clip, rng, PromptConfig(), gen)
        assert plan.use_pt_input and plan.init_cond_frames == [0] and plan.frames_to_correct == [0]


def test_processing_order_puts_initial_frames_first():
    _, plans = draw_plans("mask", 200, seed=2)
    plan = next(p for p in plans if len(p.init_cond_frames) == 2)
    extra = plan.init_cond_frames[1]
    assert plan.processing_order == [0, extra] + [t for t in range(1, T) if t != extra]


def test_bad_clips_are_named():
    clip = make_clip("mask")
    clip.visible[0, 1] = False
    with pytest.raises(ValueError, match=r"synthetic.*frame 0.*\[1\]"):
        plan_prompts(clip, np.random.default_rng(0))
    clip = make_clip("box")
    clip.boxes_xyxy = None
    with pytest.raises(ValueError, match="boxes_xyxy"):
        plan_prompts(clip, np.random.default_rng(0))
    clip = make_clip("mask")
    clip.task = "polygon"
    with pytest.raises(ValueError, match="unknown task 'polygon'"):
        plan_prompts(clip, np.random.default_rng(0))


# ---- replaying recorded decisions -----------------------------------------------------------------------------------


def _decisions(plan: PromptPlan) -> tuple:
    return (plan.task, plan.num_frames, plan.use_pt_input, plan.init_cond_frames, plan.frames_to_correct,
            plan.cond_frames, plan.prompts, plan.modes)


def test_a_drawn_plan_rebuilds_from_its_decisions(mask_plans, box_plans):
    for plan in mask_plans[1][:200] + box_plans[1][:200] + draw_plans("point", 20)[1]:
        assert PromptPlan.from_decisions(*_decisions(plan)) == plan


@pytest.mark.parametrize("change, message", [
    ({"cond_frames": [0, 4]}, "cond_frames"),
    ({"use_pt_input": False}, "without use_pt_input"),
    ({"frames_to_correct": [3, 4]}, "include the initial frames"),
    ({"modes": {0: "scribble"}}, "unknown modes"),
    ({"modes": {0: "box"}}, "unknown modes"),
    ({"modes": {0: "mask"}}, "do not fit their modes"),
    ({"prompts": {}}, "cover exactly"),
    ({"init_cond_frames": [0, 0]}, "distinct"),
    ({"frames_to_correct": [0, T]}, "distinct frames"),
])
def test_inconsistent_decisions_are_refused(change, message):
    decisions = dict(task="mask", num_frames=T, use_pt_input=True, init_cond_frames=[0], frames_to_correct=[0, 3],
                     cond_frames=[0, 3], prompts={0: FramePrompt()}, modes={0: "click"})
    PromptPlan.from_decisions(**decisions)
    with pytest.raises(ValueError, match=message):
        PromptPlan.from_decisions(**{**decisions, **change})


def test_drawn_clicks_are_next_correction_click():
    gt, pred = error_masks()
    a = DrawnClicks(np.random.default_rng(5), torch.Generator().manual_seed(6), 0.5)
    rng, generator = np.random.default_rng(5), torch.Generator().manual_seed(6)
    for k in range(20):
        mine, reference = a(0, k, gt, pred), next_correction_click(gt, pred, rng, generator, 0.5)
        assert torch.equal(mine.coords, reference.coords) and torch.equal(mine.labels, reference.labels)
    with pytest.raises(ValueError, match="numpy rng"):
        DrawnClicks(None, None, 0.1)(0, 0, gt, pred)
    assert DrawnClicks(None, torch.Generator().manual_seed(1), 0.0)(0, 0, gt, pred).coords.shape == (len(gt), 1, 2)


def test_recorded_clicks_give_each_step_its_click_and_refuse_the_unrecorded():
    coords = torch.arange(3 * N * 2, dtype=torch.float32).reshape(3, N, 2)
    labels = torch.tensor([[1, 0], [0, 1], [1, 1]], dtype=torch.int32)
    clicks = RecordedClicks({2: coords}, {2: labels})
    gt = torch.zeros(N, S, S, dtype=torch.bool)
    click = clicks(2, 1, gt, gt)
    assert torch.equal(click.coords, coords[1][:, None]) and torch.equal(click.labels, labels[1][:, None])
    for frame, step in ((2, 3), (0, 0)):
        with pytest.raises(KeyError, match="no recorded click"):
            clicks(frame, step, gt, gt)
    with pytest.raises(ValueError, match="objects"):
        clicks(2, 0, gt[:1], gt[:1])
    with pytest.raises(ValueError, match=r"\(K, N, 2\)"):
        RecordedClicks({2: coords[0]}, {2: labels[0]})

