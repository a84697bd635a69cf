"""Deterministic synthetic videos whose masks, boxes and point tracks are known exactly.

Tests, notebooks and the demo need short clips with ground truth at every granularity and with the
events that make tracking hard: one object passing in front of another, an object growing or
shrinking, an object leaving the frame. Everything comes from one seeded `numpy.random.Generator`,
and geometry is computed in float64, so a seed reproduces the same masks, boxes and points.

Objects are shapes defined by a radial function in their own local frame (ellipse, wobbly blob or
polygon), textured in that local frame, so the texture -- and every tracked point -- rides on the
surface as the object moves, turns and scales. Objects are drawn back to front with anti-aliased
edges; the mask of an object is the set of pixel centres inside its outline and not covered by a
nearer object.

Object roles by id: 1 is the main object (crosses the frame while its scale changes), 2 passes in
front of object 1 halfway through, 3 leaves the frame, 4 and up wander about.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from sam2pp.io.formats import PointTracks, write_boxes_txt, write_palette_png, write_points_npz

_SHAPES = ("ellipse", "blob", "polygon")
_PATTERNS = ("stripes", "checker", "spots", "marble")
_PAN = 24  # pixels of background margin the camera may pan over


@dataclass
class SyntheticVideo:
    """A generated clip and its ground truth; object `obj_ids[o]` owns `boxes_xywh[o]`.

    frames: uint8 (T, H, W, 3); masks: uint8 (T, H, W) object ids, 0 = background;
    boxes_xywh: float64 (O, T, 4) tight boxes of the visible pixels (w = pixel columns covered),
    NaN rows where the object has no visible pixel; points: float32 (T, N, 2) pixel (x, y) of
    surface points, kept even where hidden; visibs: bool (T, N), false when the point is occluded
    or outside the frame; point_obj_ids: int64 (N,) the object each point rides on.
    """

    frames: np.ndarray
    masks: np.ndarray
    boxes_xywh: np.ndarray
    points: np.ndarray
    visibs: np.ndarray
    obj_ids: tuple[int, ...]
    point_obj_ids: np.ndarray

    @property
    def num_frames(self) -> int:
        return self.frames.shape[0]

    @property
    def size(self) -> tuple[int, int]:
        """(W, H) of the frames."""
        return self.frames.shape[2], self.frames.shape[1]

    @property
    def boxes_xyxy(self) -> np.ndarray:
        """float64 (O, T, 4) `x0, y0, x1, y1` with x1 = x + w."""
        xy = self.boxes_xywh[..., :2]
        return np.concatenate([xy, xy + self.boxes_xywh[..., 2:]], axis=-1)

    def write(self, folder: str | Path, name: str, quality: int = 85) -> SampleFiles:
        """Write the CONTRACT section-4 layout under `folder` (replacing this video's old files).

        Box files: `Boxes/<name>.txt` for object 1, `Boxes/<name>_<id>.txt` for every other object.
        """
        folder = Path(folder)
        files = SampleFiles.layout(folder, name, self.obj_ids)
        for stale in (files.frames, files.annotations):
            if stale.exists():
                shutil.rmtree(stale)
        files.frames.mkdir(parents=True)
        for t, frame in enumerate(self.frames):
            Image.fromarray(frame).save(files.frames / f"{t:05d}.jpg", quality=quality)
            write_palette_png(files.annotations / f"{t:05d}.png", self.masks[t])
        for boxes, path in zip(self.boxes_xywh, files.boxes):
            write_boxes_txt(path, boxes)
        write_points_npz(files.points, PointTracks(self.points, self.visibs, self.size))
        return files


@dataclass(frozen=True)
class SampleFiles:
    """Where `SyntheticVideo.write` puts one video; `boxes` follows `obj_ids` order."""

    frames: Path
    annotations: Path
    boxes: list[Path]
    points: Path

    @classmethod
    def layout(cls, folder: Path, name: str, obj_ids: tuple[int, ...]) -> SampleFiles:
        return cls(
            frames=folder / "JPEGImages" / name,
            annotations=folder / "Annotations" / name,
            boxes=[folder / "Boxes" / box_file_name(name, obj_id) for obj_id in obj_ids],
            points=folder / "Points" / f"{name}.npz",
        )


def box_file_name(name: str, obj_id: int) -> str:
    """`<name>.txt` for the main object (id 1), `<name>_<id>.txt` for the others."""
    return f"{name}.txt" if obj_id == 1 else f"{name}_{obj_id}.txt"


@dataclass(frozen=True)
class SyntheticSpec:
    """Arguments of `make_video`, so a sample can be named and regenerated."""

    seed: int = 0
    num_frames: int = 48
    size: tuple[int, int] = (480, 270)
    num_objects: int = 3
    points_per_object: int = 4

    def generate(self) -> SyntheticVideo:
        return make_video(**asdict(self))


SHIPPED_SAMPLES: dict[str, SyntheticSpec] = {
    "synth-shapes": SyntheticSpec(seed=7, num_frames=48, size=(480, 270), num_objects=3),
    "synth-crowd": SyntheticSpec(seed=11, num_frames=36, size=(432, 240), num_objects=5, points_per_object=3),
    "synth-growth": SyntheticSpec(seed=6, num_frames=60, size=(480, 270), num_objects=4, points_per_object=3),
}


@dataclass
class _Object:
    """One object: outline, texture and per-frame pose (centre (T, 2), angle (T,), scale (T,))."""

    obj_id: int
    depth: float
    radius: float
    aspect: tuple[float, float]
    shape: str
    harmonics: np.ndarray
    sides: int
    pattern: str
    colors: np.ndarray
    texture: np.ndarray
    frequency: float
    centre: np.ndarray
    angle: np.ndarray
    scale: np.ndarray
    anchors: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))

    def boundary(self, phi: np.ndarray) -> np.ndarray:
        """Outline radius at local polar angle `phi`, in units of the object radius (max about 1)."""
        if self.shape == "polygon":
            wedge = 2 * np.pi / self.sides
            return np.cos(np.pi / self.sides) / np.cos(np.mod(phi, wedge) - wedge / 2)
        k = np.arange(2, 2 + len(self.harmonics))
        return 1 + (self.harmonics[:, 0] * np.cos(np.multiply.outer(phi, k) + self.harmonics[:, 1])).sum(-1)

    @property
    def max_extent(self) -> float:
        """Radius in unscaled pixels of a circle that always contains the outline."""
        return self.radius * max(self.aspect) * (1 + self.harmonics[:, 0].sum())

    def to_image(self, t: int, local: np.ndarray) -> np.ndarray:
        """Local unit coordinates (..., 2) -> image pixels (..., 2) at frame t."""
        stretched = local * np.asarray(self.aspect) * self.radius * self.scale[t]
        c, s = np.cos(self.angle[t]), np.sin(self.angle[t])
        x = c * stretched[..., 0] - s * stretched[..., 1]
        y = s * stretched[..., 0] + c * stretched[..., 1]
        return np.stack([x, y], axis=-1) + self.centre[t]


def make_video(
    seed: int = 0,
    num_frames: int = 48,
    size: tuple[int, int] = (480, 270),
    num_objects: int = 3,
    points_per_object: int = 4,
) -> SyntheticVideo:
    """Generate a clip of `num_frames` frames of `size` (W, H) with `num_objects` textured objects
    and `points_per_object` surface points on each (N = num_objects * points_per_object)."""
    width, height = size
    if num_frames < 2:
        raise ValueError(f"num_frames must be at least 2, got {num_frames}")
    if width < 32 or height < 32:
        raise ValueError(f"size (W, H) must be at least 32 x 32 pixels, got {size}")
    if not 1 <= num_objects <= 255:
        raise ValueError(f"num_objects must lie in 1..255, got {num_objects}")
    if points_per_object < 0:
        raise ValueError(f"points_per_object must be non-negative, got {points_per_object}")
    rng = np.random.default_rng(seed)
    background = _background(rng, height + 2 * _PAN, width + 2 * _PAN)
    pan = np.round(np.linspace(0, 1, num_frames)[:, None] * rng.uniform(-_PAN, _PAN, 2)).astype(int) + _PAN
    objects = _objects(rng, num_frames, width, height, num_objects)
    for obj in objects:
        obj.anchors = _surface_anchors(rng, obj, points_per_object)
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    masks = np.zeros((num_frames, height, width), dtype=np.uint8)
    for t in range(num_frames):
        x0, y0 = pan[t]
        canvas = background[y0 : y0 + height, x0 : x0 + width].copy()
        for obj in sorted(objects, key=lambda o: o.depth):
            _draw(canvas, masks[t], obj, t)
        frames[t] = np.clip(np.round(canvas), 0, 255).astype(np.uint8)
    obj_ids = tuple(o.obj_id for o in objects)
    points, visibs, point_obj_ids = _track_points(objects, masks)
    return SyntheticVideo(frames, masks, _mask_boxes(masks, obj_ids), points, visibs, obj_ids, point_obj_ids)


def _fractal_noise(
    rng: np.random.Generator, height: int, width: int, cells: int = 3, octaves: int = 6, persistence: float = 0.6
) -> np.ndarray:
    """Smooth value noise (height, width) in [0, 1]: octaves of ever finer random grids, each octave
    `persistence` times as strong as the one before."""
    total = np.zeros((height, width))
    for octave in range(octaves):
        n = cells * 2**octave
        grid = rng.uniform(0, 1, (n + 1, n + 1))
        ys = np.linspace(0, n, height)[:, None]
        xs = np.linspace(0, n, width)[None, :]
        total += persistence**octave * _bilinear(grid, xs, ys, smooth=True)
    total -= total.min()
    return total / max(total.max(), 1e-12)


def _bilinear(image: np.ndarray, x: np.ndarray, y: np.ndarray, smooth: bool = False) -> np.ndarray:
    """Sample `image` (h, w) at float pixel coordinates, clamped at the border; `smooth` uses
    smoothstep weights, which hide the grid lines of value noise."""
    h, w = image.shape[:2]
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    if smooth:
        fx, fy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)
    x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
    xa, xb = np.clip(x0, 0, w - 1), np.clip(x0 + 1, 0, w - 1)
    ya, yb = np.clip(y0, 0, h - 1), np.clip(y0 + 1, 0, h - 1)
    top = image[ya, xa] * (1 - fx) + image[ya, xb] * fx
    bottom = image[yb, xa] * (1 - fx) + image[yb, xb] * fx
    return top * (1 - fy) + bottom * fy


def _hsv(hue: float, saturation: float, value: float) -> np.ndarray:
    """One HSV colour as RGB float (3,) in 0..255."""
    channel = (hue * 6 + np.array([5.0, 3.0, 1.0])) % 6
    return 255 * value * (1 - saturation * np.clip(np.minimum(channel, 4 - channel), 0, 1))


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A landscape-like backdrop (height, width, 3) float: a vertical colour gradient whose horizon is
    bent by one noise field, shaded by a second and tinted by a third."""
    hue = rng.uniform()
    top = _hsv(hue, rng.uniform(0.2, 0.5), rng.uniform(0.75, 0.95))
    bottom = _hsv((hue + rng.uniform(0.25, 0.6)) % 1, rng.uniform(0.35, 0.7), rng.uniform(0.35, 0.6))
    tint = _hsv(rng.uniform(), 0.6, 0.8)
    bend, shade, tone = (_fractal_noise(rng, height, width) for _ in range(3))
    rows = np.linspace(0, 1, height)[:, None]
    mix = np.clip(rows + 0.6 * (bend - 0.5), 0, 1)[..., None]
    image = top * (1 - mix) + bottom * mix
    image = image * (0.7 + 0.6 * (shade[..., None] - 0.5))
    return image * (1 - 0.25 * tone[..., None]) + tint * 0.25 * tone[..., None]


def _objects(rng: np.random.Generator, num_frames: int, width: int, height: int, count: int) -> list[_Object]:
    """Objects 1..count with roles by id (see the module docstring)."""
    unit = min(width, height)
    tau = np.linspace(0, 1, num_frames)
    objects = []
    for obj_id in range(1, count + 1):
        radius = unit * {1: 0.2, 2: 0.13, 3: 0.14}.get(obj_id, rng.uniform(0.07, 0.12))
        obj = _random_object(rng, obj_id, radius, num_frames)
        if obj_id == 1:
            start = np.array([0.25 * width, rng.uniform(0.4, 0.6) * height])
            end = np.array([0.72 * width, rng.uniform(0.4, 0.6) * height])
            wobble = 0.06 * height * np.sin(2 * np.pi * tau + rng.uniform(0, 2 * np.pi))
            obj.centre = start + np.outer(tau, end - start) + np.stack([np.zeros_like(tau), wobble], -1)
            growth = rng.uniform(0.55, 0.7) if rng.uniform() < 0.5 else rng.uniform(1.35, 1.6)
            obj.scale = growth**tau
            obj.depth = 1.0
        elif obj_id == 2:
            meet = objects[0].centre[num_frames // 2] + rng.uniform(-0.25, 0.25, 2) * objects[0].radius
            sweep = np.array([rng.uniform(-0.15, 0.15) * width, 0.7 * height * rng.choice([-1, 1])])
            obj.centre = meet + np.outer(tau - tau[num_frames // 2], sweep)
            obj.depth = 3.0
        elif obj_id == 3:
            obj.centre = _leaving_path(rng, tau, width, height, obj.max_extent)
            obj.depth = 2.0
        else:
            start = rng.uniform([0.1 * width, 0.1 * height], [0.9 * width, 0.9 * height])
            drift = rng.uniform(-0.3, 0.3, 2) * unit
            swing = rng.uniform(-0.1, 0.1, 2) * unit
            obj.centre = start + np.outer(tau, drift) + np.outer(np.sin(np.pi * tau), swing)
            obj.depth = rng.uniform(0, 4)
        objects.append(obj)
    return objects


def _leaving_path(rng: np.random.Generator, tau: np.ndarray, width: int, height: int, extent: float) -> np.ndarray:
    """(T, 2) centres starting inside the frame and fully outside it from 75% of the clip on."""
    start = rng.uniform([0.3 * width, 0.2 * height], [0.7 * width, 0.35 * height])
    gaps = {(-1, 0): start[0], (1, 0): width - start[0], (0, -1): start[1]}
    direction = list(gaps)[rng.integers(len(gaps))]
    distance = gaps[direction] + extent + 2
    return start + np.outer(tau / 0.75, np.asarray(direction, dtype=float) * distance)


def _random_object(rng: np.random.Generator, obj_id: int, radius: float, num_frames: int) -> _Object:
    """Outline, texture and rotation of one object; centre, scale and depth are set by its role."""
    shape = _SHAPES[rng.integers(len(_SHAPES))]
    amplitudes = rng.uniform(0, 0.12, 3) if shape == "blob" else np.zeros(3)
    harmonics = np.stack([amplitudes, rng.uniform(0, 2 * np.pi, 3)], -1)
    stretch = rng.uniform(0.65, 1.0) if shape != "polygon" else rng.uniform(0.85, 1.0)
    aspect = (1.0, stretch) if rng.uniform() < 0.5 else (stretch, 1.0)
    hue = rng.uniform()
    colors = np.stack([_hsv(hue, rng.uniform(0.6, 0.95), rng.uniform(0.75, 1.0)),
                       _hsv((hue + rng.uniform(0.1, 0.5)) % 1, rng.uniform(0.5, 0.9), rng.uniform(0.2, 0.5))])
    angle = rng.uniform(0, 2 * np.pi) + rng.uniform(-1.5, 1.5) * np.linspace(0, 1, num_frames)
    return _Object(
        obj_id=obj_id, depth=0.0, radius=radius, aspect=aspect, shape=shape, harmonics=harmonics,
        sides=int(rng.integers(3, 8)), pattern=_PATTERNS[rng.integers(len(_PATTERNS))], colors=colors,
        texture=_fractal_noise(rng, 64, 64, cells=4, octaves=4), frequency=rng.uniform(2.0, 4.0),
        centre=np.zeros((num_frames, 2)), angle=angle, scale=np.ones(num_frames),
    )


def _pattern(obj: _Object, lx: np.ndarray, ly: np.ndarray) -> np.ndarray:
    """Texture value in [0, 1] at local unit coordinates: a regular pattern mixed with noise."""
    texels = (obj.texture.shape[0] - 1) / 3  # local [-1.5, 1.5] spans the texture; outlines stay inside
    noise = _bilinear(obj.texture, (lx + 1.5) * texels, (ly + 1.5) * texels)
    f = obj.frequency * np.pi
    if obj.pattern == "stripes":
        regular = 0.5 + 0.5 * np.sin(f * (lx + 0.5 * ly) + 6 * noise)
    elif obj.pattern == "checker":
        regular = 0.5 + 0.5 * np.tanh(4 * np.sin(f * lx) * np.sin(f * ly))
    elif obj.pattern == "spots":
        regular = (np.sin(f * lx) * np.sin(f * ly) > 0.4).astype(float)
    else:
        regular = 0.5 + 0.5 * np.sin(f * lx + 10 * noise)
    return 0.65 * regular + 0.35 * noise


def _draw(canvas: np.ndarray, mask: np.ndarray, obj: _Object, t: int) -> None:
    """Composite `obj` at frame t onto `canvas` (H, W, 3) float and stamp its id into `mask` (H, W)."""
    height, width = mask.shape
    cx, cy = obj.centre[t]
    reach = obj.max_extent * obj.scale[t] + 2
    x0, x1 = max(int(np.floor(cx - reach)), 0), min(int(np.ceil(cx + reach)) + 1, width)
    y0, y1 = max(int(np.floor(cy - reach)), 0), min(int(np.ceil(cy + reach)) + 1, height)
    if x0 >= x1 or y0 >= y1:
        return
    dx = np.arange(x0, x1, dtype=np.float64)[None, :] - cx
    dy = np.arange(y0, y1, dtype=np.float64)[:, None] - cy
    c, s = np.cos(obj.angle[t]), np.sin(obj.angle[t])
    pixels = obj.radius * obj.scale[t]
    lx = (c * dx + s * dy) / (pixels * obj.aspect[0])
    ly = (c * dy - s * dx) / (pixels * obj.aspect[1])
    rho, phi = np.hypot(lx, ly), np.arctan2(ly, lx)
    edge = obj.boundary(phi)
    inside = rho <= edge
    alpha = np.clip((edge - rho) * pixels * min(obj.aspect) + 0.5, 0, 1)[..., None]
    depth = np.sqrt(np.clip(1 - (rho / edge) ** 2, 0, 1))
    light = (0.55 + 0.35 * depth - 0.15 * (lx + ly) / np.sqrt(2) * depth)[..., None]
    value = _pattern(obj, lx, ly)[..., None]
    color = (obj.colors[0] * value + obj.colors[1] * (1 - value)) * light
    region = canvas[y0:y1, x0:x1]
    region[...] = region * (1 - alpha) + color * alpha
    mask[y0:y1, x0:x1][inside] = obj.obj_id


def _surface_anchors(rng: np.random.Generator, obj: _Object, count: int) -> np.ndarray:
    """(count, 2) local unit coordinates spread over the object's inner 70%, so points stay on it."""
    phi = rng.uniform(-np.pi, np.pi, count)
    rho = 0.7 * obj.boundary(phi) * np.sqrt(rng.uniform(0.05, 1, count))
    return np.stack([rho * np.cos(phi), rho * np.sin(phi)], -1)


def _track_points(objects: list[_Object], masks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Image trajectories (T, N, 2) of every object's anchors; a point is visible where the mask pixel
    nearest to it belongs to its object. Also returns the owning object id of each point (N,)."""
    num_frames, height, width = masks.shape
    tracks = [np.stack([o.to_image(t, o.anchors) for t in range(num_frames)]) for o in objects]
    points = np.concatenate(tracks, axis=1) if tracks else np.zeros((num_frames, 0, 2))
    owners = np.concatenate([np.full(len(o.anchors), o.obj_id) for o in objects]).astype(np.int64)
    col, row = np.round(points[..., 0]).astype(np.int64), np.round(points[..., 1]).astype(np.int64)
    inside = (col >= 0) & (col < width) & (row >= 0) & (row < height)
    frame = np.arange(num_frames)[:, None]
    hit = masks[frame, np.clip(row, 0, height - 1), np.clip(col, 0, width - 1)] == owners[None, :]
    return points.astype(np.float32), inside & hit, owners


def _mask_boxes(masks: np.ndarray, obj_ids: tuple[int, ...]) -> np.ndarray:
    """(O, T, 4) xywh tight boxes of each object's visible pixels; NaN where it has none."""
    boxes = np.full((len(obj_ids), masks.shape[0], 4), np.nan)
    for o, obj_id in enumerate(obj_ids):
        present = masks == obj_id
        rows, cols = present.any(axis=2), present.any(axis=1)
        for t in np.flatnonzero(rows.any(axis=1)):
            ys, xs = np.flatnonzero(rows[t]), np.flatnonzero(cols[t])
            boxes[o, t] = [xs[0], ys[0], xs[-1] - xs[0] + 1, ys[-1] - ys[0] + 1]
    return boxes
