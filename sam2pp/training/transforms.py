"""The published training augmentation: a `RawClip` at video resolution -> the same clip at S x S -> a `Clip`.

In the published order (recipe §3.3): horizontal flip (whole clip), random affine (mask task only, whole clip),
square resize to S x S, colour jitter per clip, random grayscale per clip, colour jitter per frame, then (in
`to_clip`) float and ImageNet normalisation. Geometry is done by `torchvision.transforms.v2.functional` on
tv_tensors (frames `Video`, masks `Mask`, boxes `BoundingBoxes`, points `KeyPoints`), so targets move with their
frames. The v2 transform classes draw from the global RNG; here every random number comes from the caller's
`torch.Generator`, drawn in a fixed order: flip, affine (angle, shear; only for `affine_tasks`), clip jitter,
grayscale, then one jitter per frame.

Coordinates are continuous: pixel i covers [i, i + 1), a box's x1 is its right edge (x + w) and a point at x lies in
pixel int(x), as in the predictor (`to_model_points`) and the published point rasterisation.

Boxes and points travel as coordinates; the published code instead rasterises them (a filled rectangle, a single
pixel), transforms those masks and re-derives them. The visibility rules are kept: a box is visible iff it was and,
clamped to the image, still covers >= 4 px of area (published: >= 4 rectangle pixels); a point is visible iff it
was and lies in [0, S] x [0, S]. Invisible boxes become (0, 0, 0, 0) with an empty mask, invisible points (0, 0).
The results differ from the rasterised path by about a pixel: the published box is the inclusive pixel range of the
rectangle (x1 = last column, so about 1 px less than the edge here), and the published point is the centre of the
pixel block a nearest upscale makes of the point's pixel (within half a video pixel of the exact position here,
~1 model px for a 480p video at 1024); a down-scale that would lose the point's pixel needs no re-marking here. With
the affine enabled for boxes (not published), the box is the exact hull of the turned rectangle, up to ~1.5 px
larger than the pixels of the turned rectangle where its sharp corners fall between pixel centres.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Callable

import torch
from torch import Tensor
from torchvision import tv_tensors
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as F

from ..predictor.preprocess import IMAGE_MEAN, IMAGE_STD
from .clip import Clip, RawClip

TASKS = ("mask", "box", "point")
MIN_BOX_AREA = 4.0

# Mask-task masks follow the published default tensor resize (bilinear, antialiased, rounded back to 0/1); the
# box-task object masks are resized nearest (published `RandomResizeAPI_mask_with_NEAREST_and_png`).
MASK_RESIZE = {"mask": InterpolationMode.BILINEAR, "box": InterpolationMode.NEAREST, "point": InterpolationMode.NEAREST}

# What each task's RawClip must carry.
REQUIRED = {"mask": ("masks",), "box": ("masks", "boxes_xyxy"), "point": ("points_xy",)}

# (points_xy (T, N, 2) model pixels, visible (T, N), S) -> float32 (T, N, S, S) point-task targets.
PointTargets = Callable[[Tensor, Tensor, int], Tensor]


@dataclass(frozen=True)
class JitterStrength:
    """Colour jitter: each factor is uniform in [max(0, 1 - s), 1 + s]; the three ops run in a random order."""

    brightness: float
    contrast: float
    saturation: float


@dataclass(frozen=True)
class AugmentConfig:
    """The published augmentation (yaml:22-124); defaults are the published values except `image_size` (1024)."""

    image_size: int = 1024
    hflip_prob: float = 0.5
    affine_degrees: float = 25.0
    affine_shear: float = 20.0
    affine_fill: tuple[int, int, int] = (123, 116, 103)
    affine_tasks: tuple[str, ...] = ("mask",)
    clip_jitter: JitterStrength = JitterStrength(brightness=0.1, contrast=0.03, saturation=0.03)
    grayscale_prob: float = 0.05
    frame_jitter: JitterStrength = JitterStrength(brightness=0.1, contrast=0.05, saturation=0.05)

    def __post_init__(self):
        if isinstance(self.image_size, bool) or not isinstance(self.image_size, int) or self.image_size < 1:
            raise ValueError(f"image_size must be a positive int, got {self.image_size!r}")
        for name in ("hflip_prob", "grayscale_prob"):
            _check_range(name, getattr(self, name), 0.0, 1.0)
        _check_range("affine_degrees", self.affine_degrees, 0.0, 180.0)
        _check_range("affine_shear", self.affine_shear, 0.0, 89.0)
        fill = tuple(self.affine_fill)
        if len(fill) != 3 or not all(isinstance(v, int) and 0 <= v <= 255 for v in fill):
            raise ValueError(f"affine_fill must be three ints in [0, 255] (R, G, B), got {self.affine_fill!r}")
        unknown = set(self.affine_tasks) - set(TASKS)
        if isinstance(self.affine_tasks, str) or unknown:
            raise ValueError(f"affine_tasks must be a tuple of tasks from {TASKS}, got {self.affine_tasks!r}")
        for name in ("clip_jitter", "frame_jitter"):
            jitter = getattr(self, name)
            if not isinstance(jitter, JitterStrength):
                raise ValueError(f"{name} must be a JitterStrength, got {jitter!r}")
            for f in fields(jitter):
                _check_range(f"{name}.{f.name}", getattr(jitter, f.name), 0.0, float("inf"))


def _check_range(name: str, value, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ValueError(f"{name} must be a number in [{low}, {high}], got {value!r}")


def augment(raw: RawClip, config: AugmentConfig, generator: torch.Generator) -> RawClip:
    """The published augmentation up to normalisation: a `RawClip` at S x S (uint8 frames, bool masks).

    Visibility is re-derived: mask task, any mask pixel left; box and point tasks, the rules in the module docstring.
    The affine is skipped for the whole clip when an object present in the first frame would vanish (one try, as
    published). A first-frame object can still vanish in the resize (a box shrinking below 4 px); rejecting such a
    sample, as the published dataset does, is the caller's choice.
    """
    _check_raw(raw)
    geometry = _Geometry.from_raw(raw)
    if _uniform(generator) < config.hflip_prob:
        geometry = geometry.hflip()
    if raw.task in config.affine_tasks:
        geometry = _random_affine(geometry, raw, config, generator)
    geometry = geometry.resize(config.image_size, MASK_RESIZE[raw.task])
    frames = _color(geometry.frames.as_subclass(Tensor), config, generator)
    return geometry.to_raw(raw, frames)


def to_clip(raw: RawClip, point_targets: PointTargets | None = None) -> Clip:
    """An augmented S x S `RawClip` -> `Clip`: frames to float in [0, 1] and ImageNet-normalised, float targets.

    Point-task targets are the gaussian maps of the current curriculum stage, made by `point_targets`, e.g.
    `functools.partial(sam2pp.training.prompts.gaussian_targets, radius=r, sigma=s)`; required for the point task,
    unused otherwise.
    """
    _check_raw(raw)
    height, width = raw.frames.shape[-2:]
    if height != width:
        raise ValueError(f"to_clip needs a square clip (run augment first); {raw.video!r} is {width}x{height}")
    frames = F.normalize(F.to_dtype(raw.frames, torch.float32, scale=True), mean=list(IMAGE_MEAN), std=list(IMAGE_STD))
    if raw.task == "point":
        masks = _point_masks(raw, point_targets, width)
    else:
        masks = raw.masks.float()
    return Clip(
        task=raw.task, frames=frames, masks=masks, visible=raw.visible.clone(),
        boxes_xyxy=None if raw.boxes_xyxy is None else raw.boxes_xyxy.float(),
        points_xy=None if raw.points_xy is None else raw.points_xy.float(),
        video=raw.video, start=raw.start, obj_ids=raw.obj_ids,
    )


def _point_masks(raw: RawClip, point_targets: PointTargets | None, size: int) -> Tensor:
    if point_targets is None:
        raise ValueError(f"the point task needs point_targets to make its gaussian targets ({raw.video!r})")
    masks = point_targets(raw.points_xy.float(), raw.visible, size)
    expected = (raw.num_frames, raw.num_objects, size, size)
    if tuple(masks.shape) != expected:
        raise ValueError(f"point_targets returned shape {tuple(masks.shape)}, expected {expected}")
    return masks.float()


@dataclass
class _Geometry:
    """A clip's geometric content as tv_tensors: frames uint8 (T, 3, H, W); masks uint8 0/1 (T, N, H, W) or None;
    boxes XYXY (T * N, 4) or None; points (T, N, 2) or None."""

    frames: tv_tensors.Video
    masks: tv_tensors.Mask | None
    boxes: tv_tensors.BoundingBoxes | None
    points: tv_tensors.KeyPoints | None

    @classmethod
    def from_raw(cls, raw: RawClip) -> _Geometry:
        canvas = tuple(raw.frames.shape[-2:])
        boxes = None
        if raw.boxes_xyxy is not None:
            flat = raw.boxes_xyxy.float().reshape(-1, 4)
            boxes = F.clamp_bounding_boxes(tv_tensors.BoundingBoxes(flat, format="XYXY", canvas_size=canvas))
        return cls(
            frames=tv_tensors.Video(raw.frames),
            masks=None if raw.masks is None else tv_tensors.Mask(raw.masks.to(torch.uint8)),
            boxes=boxes,
            points=None if raw.points_xy is None else tv_tensors.KeyPoints(raw.points_xy.float(), canvas_size=canvas),
        )

    def _map(self, op: Callable, frame_kwargs: dict | None = None, **kwargs) -> _Geometry:
        """Apply one v2 functional op to every present tv_tensor; `frame_kwargs` go to the frames only."""
        targets = [None if x is None else op(x, **kwargs) for x in (self.masks, self.boxes, self.points)]
        return _Geometry(op(self.frames, **kwargs, **(frame_kwargs or {})), *targets)

    def hflip(self) -> _Geometry:
        # torchvision flips keypoints as pixel indices (x -> W - 1 - x) but resizes and rotates them as continuous
        # coordinates; for continuous points the mirror is x -> W - x, so the flip is completed by +1.
        out = self._map(F.horizontal_flip)
        if out.points is not None:
            out.points = tv_tensors.wrap(out.points + torch.tensor([1.0, 0.0]), like=out.points)
        return out

    def affine(self, angle: float, shear_x: float, fill: tuple[int, int, int]) -> _Geometry:
        """Rotation and x-shear about the image centre: bilinear frames with `fill`, nearest masks filled with 0."""
        return self._map(
            F.affine, frame_kwargs={"interpolation": InterpolationMode.BILINEAR, "fill": list(fill)},
            angle=angle, translate=[0.0, 0.0], scale=1.0, shear=[shear_x, 0.0],
        )

    def resize(self, size: int, mask_interpolation: InterpolationMode) -> _Geometry:
        """Square resize, aspect not kept; masks as plain 0/1 uint8 tensors so bilinear is honoured and rounded."""
        masks = self.masks
        out = replace(self, masks=None)._map(
            F.resize, size=[size, size], frame_kwargs={"interpolation": InterpolationMode.BILINEAR, "antialias": True})
        if masks is not None:
            plain = F.resize(masks.as_subclass(Tensor), [size, size], interpolation=mask_interpolation, antialias=True)
            out.masks = tv_tensors.Mask(plain)
        return out

    def visible(self, task: str, prior: Tensor) -> Tensor:
        """(T, N) visibility after the transforms, from the task's rule (`prior` is the input visibility)."""
        return _VISIBLE[task](self, prior)

    def to_raw(self, raw: RawClip, frames: Tensor) -> RawClip:
        visible = self.visible(raw.task, raw.visible)
        hidden = ~visible
        masks = boxes = points = None
        if self.masks is not None:
            masks = self.masks.as_subclass(Tensor).bool()
            if raw.task == "box":
                masks = masks & visible[..., None, None]
        if self.boxes is not None:
            boxes = self.boxes.as_subclass(Tensor).reshape(raw.boxes_xyxy.shape).float()
            boxes = boxes.masked_fill(hidden[..., None], 0.0)
        if self.points is not None:
            points = self.points.as_subclass(Tensor).float().masked_fill(hidden[..., None], 0.0)
        return replace(raw, frames=frames, masks=masks, visible=visible, boxes_xyxy=boxes, points_xy=points)


def _mask_visible(geometry: _Geometry, prior: Tensor) -> Tensor:
    return geometry.masks.as_subclass(Tensor).flatten(-2).any(-1).bool()


def _box_visible(geometry: _Geometry, prior: Tensor) -> Tensor:
    boxes = geometry.boxes.as_subclass(Tensor).reshape(*prior.shape, 4)
    area = (boxes[..., 2] - boxes[..., 0]).clamp(min=0) * (boxes[..., 3] - boxes[..., 1]).clamp(min=0)
    return prior & (area >= MIN_BOX_AREA)


def _point_visible(geometry: _Geometry, prior: Tensor) -> Tensor:
    height, width = geometry.points.canvas_size
    x, y = geometry.points.as_subclass(Tensor).unbind(-1)
    return prior & (x >= 0) & (x <= width) & (y >= 0) & (y <= height)


_VISIBLE = {"mask": _mask_visible, "box": _box_visible, "point": _point_visible}


def _random_affine(geometry: _Geometry, raw: RawClip, config: AugmentConfig, generator: torch.Generator) -> _Geometry:
    """One affine for the whole clip, or none if an object present in frame 0 would vanish there."""
    angle = _uniform(generator, -config.affine_degrees, config.affine_degrees)
    shear_x = _uniform(generator, -config.affine_shear, config.affine_shear)
    moved = geometry.affine(angle, shear_x, config.affine_fill)
    before = geometry.visible(raw.task, raw.visible)[0]
    after = moved.visible(raw.task, raw.visible)[0]
    return geometry if (before & ~after).any() else moved


@dataclass(frozen=True)
class _Jitter:
    """Drawn jitter: the op order (indices into `_COLOR_OPS`) and each op's factor."""

    order: tuple[int, ...]
    factors: tuple[float, float, float]


_COLOR_OPS = (F.adjust_brightness, F.adjust_contrast, F.adjust_saturation)


def _draw_jitter(strength: JitterStrength, generator: torch.Generator) -> _Jitter:
    order = tuple(torch.randperm(len(_COLOR_OPS), generator=generator).tolist())
    spans = (strength.brightness, strength.contrast, strength.saturation)
    return _Jitter(order, tuple(_uniform(generator, max(0.0, 1.0 - s), 1.0 + s) for s in spans))


def _jitter(frames: Tensor, jitter: _Jitter) -> Tensor:
    """uint8 (..., 3, H, W); contrast uses each frame's own mean grey level."""
    for index in jitter.order:
        frames = _COLOR_OPS[index](frames, jitter.factors[index])
    return frames


def _color(frames: Tensor, config: AugmentConfig, generator: torch.Generator) -> Tensor:
    """Clip jitter, clip grayscale, then per-frame jitter, on uint8 (T, 3, S, S)."""
    frames = _jitter(frames, _draw_jitter(config.clip_jitter, generator))
    if _uniform(generator) < config.grayscale_prob:
        frames = F.rgb_to_grayscale(frames, num_output_channels=3)
    return torch.stack([_jitter(frame, _draw_jitter(config.frame_jitter, generator)) for frame in frames]).contiguous()


def _uniform(generator: torch.Generator, low: float = 0.0, high: float = 1.0) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator, dtype=torch.float64))


def _check_raw(raw: RawClip) -> None:
    """Shapes, dtypes and the fields the task needs; visible points must lie in the frame."""
    where = f"clip {raw.video!r} (start {raw.start})"
    if raw.task not in TASKS:
        raise ValueError(f"{where}: unknown task {raw.task!r}; expected one of {TASKS}")
    if raw.frames.dtype != torch.uint8 or raw.frames.ndim != 4 or raw.frames.shape[1] != 3:
        raise ValueError(f"{where}: frames must be uint8 (T, 3, H, W), got {raw.frames.dtype} "
                         f"{tuple(raw.frames.shape)}")
    num_frames, _, height, width = raw.frames.shape
    if raw.visible.dtype != torch.bool or raw.visible.ndim != 2 or raw.visible.shape[0] != num_frames:
        raise ValueError(f"{where}: visible must be bool (T={num_frames}, N), got {raw.visible.dtype} "
                         f"{tuple(raw.visible.shape)}")
    num_objects = raw.visible.shape[1]
    for name in REQUIRED[raw.task]:
        if getattr(raw, name) is None:
            raise ValueError(f"{where}: the {raw.task} task needs {name}")
    expected = {
        "masks": (num_frames, num_objects, height, width),
        "boxes_xyxy": (num_frames, num_objects, 4),
        "points_xy": (num_frames, num_objects, 2),
    }
    for name, shape in expected.items():
        value = getattr(raw, name)
        if value is not None and tuple(value.shape) != shape:
            raise ValueError(f"{where}: {name} must have shape {shape}, got {tuple(value.shape)}")
    if raw.masks is not None and raw.masks.dtype != torch.bool:
        raise ValueError(f"{where}: masks must be bool, got {raw.masks.dtype}")
    if raw.points_xy is not None:
        _check_points_inside(raw, where, width, height)


def _check_points_inside(raw: RawClip, where: str, width: int, height: int) -> None:
    x, y = raw.points_xy.unbind(-1)
    outside = raw.visible & ~((x >= 0) & (x <= width) & (y >= 0) & (y <= height))
    if outside.any():
        t, n = (int(i) for i in outside.nonzero()[0])
        raise ValueError(f"{where}: frame {t}, object {n}: visible point {raw.points_xy[t, n].tolist()} lies outside "
                         f"the {width}x{height} frame")
