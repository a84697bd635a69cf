"""The training augmentation: geometry stays consistent across frames, masks, boxes and points; published order."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as tF

from sam2pp.predictor.preprocess import IMAGE_MEAN, IMAGE_STD
from sam2pp.training.clip import RawClip
from sam2pp.training.transforms import AugmentConfig, JitterStrength, augment, to_clip

T, H, W = 3, 30, 40
RECT = (10, 8, 20, 16)  # x0, y0, x1, y1: columns 10..19, rows 8..15
MARK = (12, 10)  # marker pixel (column, row); its centre is the point (12.5, 10.5)
NO_JITTER = JitterStrength(0.0, 0.0, 0.0)
GEOMETRY_ONLY = dict(clip_jitter=NO_JITTER, frame_jitter=NO_JITTER, grayscale_prob=0.0)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _config(size: int, **kwargs) -> AugmentConfig:
    return AugmentConfig(image_size=size, **{**GEOMETRY_ONLY, **kwargs})


def _rect_mask(height: int = H, width: int = W, rect=RECT) -> torch.Tensor:
    mask = torch.zeros(height, width, dtype=torch.bool)
    mask[rect[1]:rect[3], rect[0]:rect[2]] = True
    return mask


def _texture(height: int = H, width: int = W, seed: int = 1) -> torch.Tensor:
    """One textured uint8 frame (3, H, W), repeated over the clip so any per-frame difference comes from the ops."""
    return torch.randint(0, 256, (3, height, width), generator=_gen(seed), dtype=torch.uint8).expand(T, -1, -1, -1)


def _mask_clip(frames=None, masks=None) -> RawClip:
    masks = _rect_mask()[None, None].expand(T, 1, -1, -1) if masks is None else masks
    frames = _texture() if frames is None else frames
    return RawClip("mask", frames.clone(), masks.clone(), masks.flatten(-2).any(-1), video="v")


def _box_clip(frames=None, height: int = H, width: int = W, rect=RECT) -> RawClip:
    """One object: the rectangle as mask and as box, visible on every frame."""
    masks = _rect_mask(height, width, rect)[None, None].expand(T, 1, -1, -1).clone()
    boxes = torch.tensor(rect, dtype=torch.float32).expand(T, 1, 4).clone()
    frames = _texture(height, width) if frames is None else frames
    return RawClip("box", frames.clone(), masks, torch.ones(T, 1, dtype=torch.bool), boxes_xyxy=boxes, video="v")


def _point_clip(points, visible, frames=None, height: int = H, width: int = W) -> RawClip:
    frames = _texture(height, width) if frames is None else frames
    points = torch.as_tensor(points, dtype=torch.float32).reshape(T, -1, 2)
    visible = torch.as_tensor(visible).reshape(T, -1)
    return RawClip("point", frames.clone(), None, visible, points_xy=points, video="v")


def _tight_box(mask: torch.Tensor) -> torch.Tensor:
    """xyxy box with exclusive right/bottom edges of a (H, W) mask's pixels."""
    ys, xs = mask.nonzero().unbind(-1)
    return torch.tensor([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=torch.float32)


def _nearest(mask: torch.Tensor, size: int) -> torch.Tensor:
    return tF.interpolate(mask[None, None].float(), size=(size, size), mode="nearest")[0, 0].bool()


def _marker_frames(height: int = H, width: int = W, half: int = 0) -> torch.Tensor:
    """Black frames with a white square of side 2 * half + 1 centred on the marker pixel."""
    frames = torch.zeros(T, 3, height, width, dtype=torch.uint8)
    x, y = MARK
    frames[:, :, y - half:y + half + 1, x - half:x + half + 1] = 255
    return frames


def _assert_same(a: RawClip, b: RawClip) -> None:
    assert torch.equal(a.frames, b.frames)
    assert torch.equal(a.visible, b.visible)
    for name in ("masks", "boxes_xyxy", "points_xy"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None and y is None) or torch.equal(x, y), name


# ------------------------------------------------------------------------------------------------------------ config


def test_config_defaults_are_the_published_values():
    c = AugmentConfig()
    assert (c.image_size, c.hflip_prob, c.affine_degrees, c.affine_shear) == (1024, 0.5, 25.0, 20.0)
    assert c.affine_fill == (123, 116, 103) and c.affine_tasks == ("mask",)
    assert c.clip_jitter == JitterStrength(0.1, 0.03, 0.03) and c.grayscale_prob == 0.05
    assert c.frame_jitter == JitterStrength(0.1, 0.05, 0.05)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("image_size", 0),
        ("image_size", 32.0),
        ("hflip_prob", 1.5),
        ("grayscale_prob", -0.1),
        ("affine_degrees", -1.0),
        ("affine_shear", 90.0),
        ("affine_fill", (1, 2)),
        ("affine_tasks", ("mask", "boxes")),
        ("affine_tasks", "mask"),
        ("clip_jitter", (0.1, 0.1, 0.1)),
    ],
)
def test_config_rejects_bad_values_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        AugmentConfig(**{field: value})


def test_config_rejects_negative_jitter_naming_the_subfield():
    with pytest.raises(ValueError, match=r"frame_jitter\.contrast"):
        AugmentConfig(frame_jitter=JitterStrength(0.1, -0.05, 0.05))


# ---------------------------------------------------------------------------------------------------------- geometry


def test_hflip_mirrors_mask_box_and_point_together():
    size = 64
    sx, sy = size / W, size / H
    out = augment(_box_clip(), _config(size, hflip_prob=1.0, affine_tasks=()), _gen())
    x0, y0, x1, y1 = RECT
    expected = torch.tensor([(W - x1) * sx, y0 * sy, (W - x0) * sx, y1 * sy])
    assert torch.allclose(out.boxes_xyxy[:, 0], expected.expand(T, 4), atol=1e-4)
    assert torch.equal(out.masks[:, 0], _nearest(_rect_mask().flip(-1), size).expand(T, -1, -1))
    assert torch.allclose(_tight_box(out.masks[0, 0]), expected, atol=1.0)

    point = [MARK[0] + 0.5, MARK[1] + 0.5]
    out = augment(_point_clip([point] * T, [True] * T), _config(size, hflip_prob=1.0), _gen())
    assert torch.allclose(out.points_xy[0, 0], torch.tensor([(W - point[0]) * sx, point[1] * sy]))
    marker = torch.zeros(H, W, dtype=torch.bool)
    marker[MARK[1], MARK[0]] = True
    x, y = out.points_xy[0, 0].long()
    assert _nearest(marker.flip(-1), size)[y, x], "the point left the flipped marker pixel"


def test_no_flip_when_its_probability_is_zero():
    size = 32
    out = augment(_box_clip(), _config(size, hflip_prob=0.0, affine_tasks=()), _gen())
    expected = torch.tensor(RECT, dtype=torch.float32) * torch.tensor([size / W, size / H] * 2)
    assert torch.allclose(out.boxes_xyxy[:, 0], expected.expand(T, 4), atol=1e-4)


@pytest.mark.parametrize("size", [16, 64])
def test_resize_scales_masks_boxes_and_points(size):
    scale = torch.tensor([size / W, size / H] * 2)
    config = _config(size, hflip_prob=0.0, affine_tasks=())
    out = augment(_box_clip(), config, _gen())
    assert out.frames.shape == (T, 3, size, size) and out.masks.shape == (T, 1, size, size)
    assert torch.allclose(out.boxes_xyxy[0, 0], torch.tensor(RECT, dtype=torch.float32) * scale, atol=1e-4)
    assert torch.equal(out.masks[:, 0], _nearest(_rect_mask(), size).expand(T, -1, -1)), "box-task masks are nearest"

    out = augment(_mask_clip(), config, _gen())
    assert out.masks.dtype == torch.bool
    assert torch.allclose(_tight_box(out.masks[0, 0]), torch.tensor(RECT, dtype=torch.float32) * scale, atol=1.0)

    point = torch.tensor([MARK[0] + 0.5, MARK[1] + 0.5])
    out = augment(_point_clip([point.tolist()] * T, [True] * T), config, _gen())
    assert torch.allclose(out.points_xy[:, 0], (point * scale[:2]).expand(T, 2))


def test_mask_task_masks_are_resized_bilinear_and_rounded():
    """A one-pixel-wide line vanishes in a 4x bilinear downscale (published tensor default) but not in nearest."""
    masks = torch.zeros(T, 1, H, W, dtype=torch.bool)
    masks[:, :, :, 20] = True
    masks[:, :, 0:8, 0:8] = True
    out = augment(_mask_clip(masks=masks), _config(10, hflip_prob=0.0, affine_tasks=()), _gen())
    assert _nearest(masks[0, 0], 10)[:, 5].any()
    assert not out.masks[0, 0, :, 4:7].any()
    assert out.masks[0, 0, 0:2, 0:2].all()


def test_affine_moves_mask_box_and_point_together():
    """Square 32 px clips at S = 32 isolate the affine; the box is the hull of the turned rectangle's pixels."""
    size = 32
    config = _config(size, hflip_prob=0.0, affine_tasks=("mask", "box", "point"))
    rect = (11, 9, 21, 17)
    point = [MARK[0] + 0.5, MARK[1] + 0.5]
    frames = _marker_frames(size, size, half=1)
    for seed in range(4):
        out = augment(_box_clip(height=size, width=size, rect=rect), config, _gen(seed))
        assert not torch.equal(out.masks[0, 0], _rect_mask(size, size, rect)), "the affine was not applied"
        for t in range(T):
            assert torch.allclose(out.boxes_xyxy[t, 0], _tight_box(out.masks[t, 0]), atol=1.5)
        out = augment(_point_clip([point] * T, [True] * T, frames, size, size), config, _gen(seed))
        assert not torch.equal(out.frames, frames)
        for t in range(T):
            x, y = out.points_xy[t, 0].long()
            assert out.frames[t, 0, y, x] > 200, f"seed {seed}, frame {t}: the point left the turned marker"


def test_affine_and_flip_are_the_same_for_every_frame():
    config = _config(32, hflip_prob=0.5)
    flipped = 0
    for seed in range(6):
        out = augment(_mask_clip(), config, _gen(seed))
        assert all(torch.equal(out.frames[0], out.frames[t]) for t in range(T))
        assert all(torch.equal(out.masks[0], out.masks[t]) for t in range(T))
        plain = augment(_mask_clip(), _config(32, hflip_prob=0.0, affine_tasks=()), _gen(seed))
        assert not torch.equal(out.masks, plain.masks), "the affine was not applied"
        flipped += int(out.masks[0, 0, :, 16:].sum() > out.masks[0, 0, :, :16].sum())
    assert 0 < flipped < 6, "the flip should happen for some seeds and not for others"


def test_affine_is_skipped_when_a_first_frame_mask_would_vanish():
    """Seed 0 turns a corner pixel out of the image, so a clip with such an object in frame 0 is not turned at all."""
    masks = _rect_mask()[None, None].repeat(T, 2, 1, 1)
    masks[:, 1] = False
    masks[0, 1, 0, 0] = True
    config = _config(32, hflip_prob=0.0)
    skipped = augment(_mask_clip(masks=masks), config, _gen(0))
    reference = augment(_mask_clip(masks=masks), replace(config, affine_tasks=()), _gen(0))
    _assert_same(skipped, reference)
    assert skipped.visible[0].all()

    turned = augment(_mask_clip(masks=masks[:, :1]), config, _gen(0))
    assert not torch.equal(turned.masks, reference.masks[:, :1]), "without the corner object the clip is turned"


def test_objects_absent_from_the_first_frame_do_not_block_the_affine():
    masks = _rect_mask()[None, None].repeat(T, 2, 1, 1)
    masks[:, 1] = False
    masks[1, 1, 0, 0] = True
    config = _config(32, hflip_prob=0.0)
    out = augment(_mask_clip(masks=masks), config, _gen(0))
    reference = augment(_mask_clip(masks=masks), replace(config, affine_tasks=()), _gen(0))
    assert not torch.equal(out.masks[:, 0], reference.masks[:, 0])
    assert out.visible.tolist() == [[True, False], [True, False], [True, False]], "the corner pixel left the image"


@pytest.mark.parametrize("task", ["box", "point"])
def test_no_affine_for_box_and_point_tasks_by_default(task):
    clip = _box_clip() if task == "box" else _point_clip([[12.5, 10.5]] * T, [True] * T)
    default = AugmentConfig(image_size=32)
    out = augment(clip, default, _gen(5))
    _assert_same(out, augment(clip, replace(default, affine_tasks=()), _gen(5)))
    mask_out = augment(_mask_clip(), default, _gen(5))
    assert not torch.equal(mask_out.frames, augment(_mask_clip(), replace(default, affine_tasks=()), _gen(5)).frames)


def test_points_leaving_the_image_become_invisible_and_zero():
    size = 32
    points = [[10.0, 20.0], [0.0, 0.0], [0.0, 0.0]]
    clip = _point_clip(points, [True, True, False], height=size, width=size)
    config = _config(size, hflip_prob=0.0, affine_tasks=("point",))
    out = augment(clip, config, _gen(0))
    assert out.visible[:, 0].tolist() == [True, False, False]
    assert torch.equal(out.points_xy[1:], torch.zeros(2, 1, 2))
    assert not torch.allclose(out.points_xy[0, 0], torch.tensor([10.0, 20.0])), "the affine was not applied"
    assert ((out.points_xy[0, 0] >= 0) & (out.points_xy[0, 0] <= size)).all()


def test_boxes_shrinking_below_four_pixels_become_invisible_with_empty_masks():
    clip = _box_clip()
    clip.boxes_xyxy[:, 0] = torch.tensor([30.0, 20.0, 32.0, 22.0])  # 2 x 2 px: 0.8 x 1.07 px at 16
    clip.masks[:, 0] = _rect_mask(rect=(30, 20, 32, 22))
    clip.boxes_xyxy[2, 0] = 0.0
    clip.masks[2, 0] = False
    clip.visible[2, 0] = False
    big = augment(clip, _config(64, hflip_prob=0.0), _gen())
    assert big.visible[:, 0].tolist() == [True, True, False] and big.masks[0, 0].any()
    small = augment(clip, _config(16, hflip_prob=0.0), _gen())
    assert not small.visible.any()
    assert torch.equal(small.boxes_xyxy, torch.zeros(T, 1, 4)) and not small.masks.any()


def test_boxes_are_clamped_to_the_image():
    clip = _box_clip()
    clip.boxes_xyxy[:, 0] = torch.tensor([-5.0, 25.0, 20.0, 40.0])
    out = augment(clip, _config(30, hflip_prob=0.0), _gen())
    assert torch.allclose(out.boxes_xyxy[0, 0], torch.tensor([0.0, 25.0, 15.0, 30.0]))


def test_mask_task_visibility_follows_the_masks():
    masks = _rect_mask()[None, None].repeat(T, 1, 1, 1)
    masks[1] = False
    out = augment(_mask_clip(masks=masks), _config(16), _gen())
    assert out.visible[:, 0].tolist() == [True, False, True]


# ------------------------------------------------------------------------------------------------------------ colour


def test_clip_jitter_is_shared_by_all_frames():
    config = _config(32, hflip_prob=0.0, affine_tasks=(), clip_jitter=JitterStrength(0.1, 0.03, 0.03))
    out = augment(_mask_clip(), config, _gen(2))
    assert all(torch.equal(out.frames[0], out.frames[t]) for t in range(T))
    plain = augment(_mask_clip(), replace(config, clip_jitter=NO_JITTER), _gen(2))
    assert not torch.equal(out.frames, plain.frames)


def test_frame_jitter_differs_between_frames():
    config = _config(32, hflip_prob=0.0, affine_tasks=(), frame_jitter=JitterStrength(0.1, 0.05, 0.05))
    out = augment(_mask_clip(), config, _gen(2))
    assert all(not torch.equal(out.frames[s], out.frames[t]) for s in range(T) for t in range(s + 1, T))
    assert all(torch.equal(out.masks[0], out.masks[t]) for t in range(T)), "jitter must not touch the masks"


def test_grayscale_makes_every_frame_grey():
    config = AugmentConfig(image_size=32, grayscale_prob=1.0)
    out = augment(_mask_clip(), config, _gen(4))
    assert torch.equal(out.frames[:, 0], out.frames[:, 1]) and torch.equal(out.frames[:, 1], out.frames[:, 2])
    plain = augment(_mask_clip(), replace(config, grayscale_prob=0.0), _gen(4))
    assert not torch.equal(plain.frames[:, 0], plain.frames[:, 1])


def test_same_seed_same_clip_other_seed_other_clip():
    for clip in (_mask_clip(), _box_clip(), _point_clip([[12.5, 10.5]] * T, [True] * T)):
        _assert_same(augment(clip, AugmentConfig(image_size=32), _gen(7)),
                     augment(clip, AugmentConfig(image_size=32), _gen(7)))
        assert not torch.equal(augment(clip, AugmentConfig(image_size=32), _gen(7)).frames,
                               augment(clip, AugmentConfig(image_size=32), _gen(8)).frames)


def test_augment_leaves_its_input_untouched():
    clip = _box_clip()
    copy = replace(clip, frames=clip.frames.clone(), masks=clip.masks.clone(), boxes_xyxy=clip.boxes_xyxy.clone())
    augment(clip, AugmentConfig(image_size=32, hflip_prob=1.0, affine_tasks=("box",)), _gen())
    _assert_same(clip, copy)


# ----------------------------------------------------------------------------------------------------------- to_clip


def test_to_clip_normalises_frames_and_makes_float_targets():
    raw = augment(_box_clip(), AugmentConfig(image_size=32), _gen())
    clip = to_clip(raw)
    assert clip.frames.shape == (T, 3, 32, 32) and clip.frames.dtype == torch.float32
    mean, std = torch.tensor(IMAGE_MEAN)[:, None, None], torch.tensor(IMAGE_STD)[:, None, None]
    assert torch.allclose(clip.frames, (raw.frames.float() / 255 - mean) / std, atol=1e-6)
    assert clip.masks.dtype == torch.float32 and torch.equal(clip.masks, raw.masks.float())
    assert clip.visible.dtype == torch.bool and clip.boxes_xyxy.dtype == torch.float32
    assert (clip.image_size, clip.num_frames, clip.num_objects) == (32, T, 1)
    assert clip.task == "box" and clip.video == "v"


def test_to_clip_point_task_takes_its_targets_from_the_callable():
    raw = augment(_point_clip([[12.5, 10.5]] * T, [True, False, True]), AugmentConfig(image_size=32), _gen())
    seen = {}

    def targets(points, visible, size):
        seen.update(points=points, visible=visible, size=size)
        return torch.full((T, 1, size, size), 0.5)

    clip = to_clip(raw, targets)
    assert seen["size"] == 32 and torch.equal(seen["visible"], raw.visible)
    assert torch.equal(seen["points"], raw.points_xy)
    assert torch.equal(clip.masks, torch.full((T, 1, 32, 32), 0.5)) and clip.points_xy.dtype == torch.float32
    with pytest.raises(ValueError, match="point_targets"):
        to_clip(raw)
    with pytest.raises(ValueError, match="point_targets returned shape"):
        to_clip(raw, lambda p, v, s: torch.zeros(T, 1, s, s + 1))


def test_to_clip_needs_a_square_clip():
    with pytest.raises(ValueError, match="square"):
        to_clip(_mask_clip())


# ------------------------------------------------------------------------------------------------------- bad input


def test_bad_input_is_named():
    config = AugmentConfig(image_size=16)
    with pytest.raises(ValueError, match="frames must be uint8"):
        augment(replace(_mask_clip(), frames=_texture().float()), config, _gen())
    with pytest.raises(ValueError, match="box task needs boxes_xyxy"):
        augment(replace(_box_clip(), boxes_xyxy=None), config, _gen())
    with pytest.raises(ValueError, match="unknown task"):
        augment(replace(_mask_clip(), task="masks"), config, _gen())
    with pytest.raises(ValueError, match=r"masks must have shape \(3, 1, 30, 40\)"):
        augment(replace(_mask_clip(), masks=torch.zeros(T, 1, H, W + 1, dtype=torch.bool)), config, _gen())
    with pytest.raises(ValueError, match="frame 1, object 0: visible point"):
        augment(_point_clip([[1.0, 1.0], [W + 3.0, 1.0], [1.0, 1.0]], [True] * T), config, _gen())
