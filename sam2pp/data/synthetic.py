"""Deterministic synthetic videos whose masks, boxes and point tracks are known exactly.

Tests, notebooks and the demo need short clips with ground truth at every granularity and with the
events that make tracking hard: one object passing in front of another, an object growing or
shrinking, an object leaving the frame. Everything comes from seeded `numpy.random.Generator`s, and
geometry is computed in float64, so a seed reproduces the same masks, boxes and points.

Objects are shapes defined by a radial function in their own local frame (ellipse, wobbly blob or
polygon), textured in that local frame, so the texture -- and every tracked point -- rides on the
surface as the object moves, turns and scales. Objects are drawn back to front with anti-aliased
edges; the mask of an object is the set of pixel centres inside its outline and not covered by a
nearer object.

Object roles by id: 1 is the main object (crosses the frame while its scale changes), 2 passes in
front of object 1 halfway through, 3 leaves the frame, 4 and up wander about.

Everything else is opt-in (the defaults leave every output as it always was; `TRAINING_SPEC` turns
it all on): extra turning (`rotation`), growing and shrinking (`scaling`) and curved, uneven paths
(`wander`) for every object; object 3, where there is one, coming back after it left (`reentry`); a camera that shakes
and zooms, carrying the objects with the backdrop (`shake`, `zoom`); light that changes over time
(`brightness`); static shapes without an id painted into the backdrop (`clutter`); and look-alike
distractors (`distractors`). Distractor k (0-based) copies object `k % num_objects + 1` with small
changes to its size, outline, colours and texture, passes close to it once, and gets id
`num_objects + k + 1`: a distractor is a full object (mask, box, points) and as good a target as
any other; `SyntheticVideo.distractor_of` names the object each one imitates. Each option draws
from its own seeded stream, so turning one on leaves the draws of the scene and of the others alone.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image

from sam2pp.io.formats import PointTracks, write_boxes_txt, write_palette_png, write_points_npz

_SHAPES = ("ellipse", "blob", "polygon")
_PATTERNS = ("stripes", "checker", "spots", "marble")
_PAN = 24  # pixels of background margin the camera may pan over
_OPTIONS = ("rotation", "scaling", "wander", "reentry", "distractors", "camera", "brightness", "clutter")


@dataclass
class SyntheticVideo:
    """A generated clip and its ground truth; object `obj_ids[o]` owns `boxes_xywh[o]`.

    frames: uint8 (T, H, W, 3); masks: uint8 (T, H, W) object ids, 0 = background;
    boxes_xywh: float64 (O, T, 4) tight boxes of the visible pixels (w = pixel columns covered),
    NaN rows where the object has no visible pixel; points: float32 (T, N, 2) pixel (x, y) of
    surface points, kept even where hidden; visibs: bool (T, N), false when the point is occluded
    or outside the frame; point_obj_ids: int64 (N,) the object each point rides on;
    distractor_of: look-alike id -> id of the object it imitates (empty without distractors).
    """

    frames: np.ndarray
    masks: np.ndarray
    boxes_xywh: np.ndarray
    points: np.ndarray
    visibs: np.ndarray
    obj_ids: tuple[int, ...]
    point_obj_ids: np.ndarray
    distractor_of: dict[int, int] = field(default_factory=dict)

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
    distractors: int = 0
    reentry: bool = False
    rotation: float = 0.0
    scaling: float = 0.0
    wander: float = 0.0
    zoom: float = 0.0
    shake: float = 0.0
    brightness: float = 0.0
    clutter: int = 0

    def generate(self) -> SyntheticVideo:
        return make_video(**asdict(self))


SHIPPED_SAMPLES: dict[str, SyntheticSpec] = {
    "synth-shapes": SyntheticSpec(seed=7, num_frames=48, size=(480, 270), num_objects=3),
    "synth-crowd": SyntheticSpec(seed=11, num_frames=36, size=(432, 240), num_objects=5, points_per_object=3),
    "synth-growth": SyntheticSpec(seed=6, num_frames=60, size=(480, 270), num_objects=4, points_per_object=3),
}

TRAINING_SPEC = SyntheticSpec(
    num_frames=16, size=(320, 240), num_objects=3, points_per_object=4, distractors=1, reentry=True,
    rotation=1.5, scaling=0.2, wander=0.08, zoom=0.2, shake=2.0, brightness=0.15, clutter=4,
)
"""Every opt-in event on, for training clips: `dataclasses.replace(TRAINING_SPEC, seed=..., size=...)`."""


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
    *,
    distractors: int = 0,
    reentry: bool = False,
    rotation: float = 0.0,
    scaling: float = 0.0,
    wander: float = 0.0,
    zoom: float = 0.0,
    shake: float = 0.0,
    brightness: float = 0.0,
    clutter: int = 0,
) -> SyntheticVideo:
    """Generate a clip of `num_frames` frames of `size` (W, H) with `num_objects` textured objects
    and `distractors` look-alikes of them, with `points_per_object` surface points on each
    (N = (num_objects + distractors) * points_per_object).

    Opt-in events (see the module docstring): `reentry` brings object 3 back after it left (it does
    nothing with fewer than 3 objects); every object turns by up to
    `rotation` extra radians, scales by up to a factor exp(+-`scaling`) and strays up to `wander`
    times min(W, H) off its path; the camera shakes by up to `shake` pixels and zooms in up to a
    factor exp(`zoom`); the light changes by up to +-`brightness` of its level; `clutter` static
    shapes without an id lie on the backdrop."""
    width, height = size
    if num_frames < 2:
        raise ValueError(f"num_frames must be at least 2, got {num_frames}")
    if width < 32 or height < 32:
        raise ValueError(f"size (W, H) must be at least 32 x 32 pixels, got {size}")
    if not 1 <= num_objects <= 255:
        raise ValueError(f"num_objects must lie in 1..255, got {num_objects}")
    if points_per_object < 0:
        raise ValueError(f"points_per_object must be non-negative, got {points_per_object}")
    _check_options(num_objects, distractors, clutter, rotation=rotation, scaling=scaling, wander=wander,
                   zoom=zoom, shake=shake, brightness=brightness)
    rng = np.random.default_rng(seed)
    streams = {option: np.random.default_rng([seed, k + 1]) for k, option in enumerate(_OPTIONS)}
    margin = _PAN + int(np.ceil(shake))
    background = _background(rng, height + 2 * margin, width + 2 * margin)
    pan = np.round(np.linspace(0, 1, num_frames)[:, None] * rng.uniform(-_PAN, _PAN, 2)).astype(int) + margin
    objects = _objects(rng, num_frames, width, height, num_objects)
    for obj in objects:
        obj.anchors = _surface_anchors(rng, obj, points_per_object)
    unit = min(width, height)
    motion = _Motion(rotation, scaling, wander * unit, streams)
    for obj in objects:
        motion.turn_and_resize(obj)
    if reentry and num_objects >= 3:
        _come_back(streams["reentry"], objects[2], unit, pad=wander * unit + shake + 2)
    for obj in objects:
        motion.stray(obj)
    distractor_of = _add_look_alikes(streams["distractors"], objects, distractors, motion, unit, points_per_object)
    _paint_clutter(streams["clutter"], background, clutter, unit)
    camera = _Camera.random(streams["camera"], pan, width, height, shake, zoom)
    for obj in objects:
        camera.carry(obj)
    gain = _light(streams["brightness"], num_frames, brightness)
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    masks = np.zeros((num_frames, height, width), dtype=np.uint8)
    for t in range(num_frames):
        canvas = camera.view(background, t)
        for obj in sorted(objects, key=lambda o: o.depth):
            _draw(canvas, masks[t], obj, t)
        frames[t] = np.clip(np.round(canvas * gain[t]), 0, 255).astype(np.uint8)
    obj_ids = tuple(o.obj_id for o in objects)
    points, visibs, point_obj_ids = _track_points(objects, masks)
    return SyntheticVideo(frames, masks, _mask_boxes(masks, obj_ids), points, visibs, obj_ids, point_obj_ids,
                          distractor_of)


def _check_options(num_objects: int, distractors: int, clutter: int, **amounts: float) -> None:
    """Name the first opt-in argument out of range."""
    if distractors < 0 or num_objects + distractors > 255:
        raise ValueError(f"distractors must be non-negative with num_objects + distractors <= 255 (ids are "
                         f"uint8), got {distractors} distractors and {num_objects} objects")
    if clutter < 0:
        raise ValueError(f"clutter must be non-negative, got {clutter}")
    for name, amount in amounts.items():
        if not (np.isfinite(amount) and amount >= 0):
            raise ValueError(f"{name} must be a finite non-negative number, got {amount}")
    if amounts["brightness"] > 0.5:
        raise ValueError(f"brightness must be at most 0.5 (a change of +-50%), got {amounts['brightness']}")


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


def _wiggle(
    rng: np.random.Generator, tau: np.ndarray, dims: int = 1, cycles: tuple[float, float] = (0.3, 1.5)
) -> np.ndarray:
    """A smooth random curve (T, dims) over clip time `tau` (T,) in [0, 1] that starts at 0 and peaks at
    0.4..1 in magnitude: a drift plus two waves of `cycles` periods per clip."""
    drift = rng.uniform(-1, 1, dims)
    amplitude = rng.uniform(-1, 1, (2, dims))
    frequency = rng.uniform(*cycles, (2, dims))
    phase = rng.uniform(0, 2 * np.pi, (2, dims))
    waves = amplitude[:, None] * np.sin(2 * np.pi * frequency[:, None] * tau[None, :, None] + phase[:, None])
    curve = np.outer(tau, drift) + waves.sum(axis=0)
    curve = curve - curve[0]
    return curve / np.maximum(np.abs(curve).max(axis=0), 1e-12) * rng.uniform(0.4, 1.0, dims)


@dataclass
class _Motion:
    """Opt-in motion laid over every object's scripted pose, each part a `_wiggle` from its own stream:
    up to `rotation` extra radians of turn, a scale factor within exp(+-`scaling`), `wander` pixels off
    the path. At zero amounts the pose is left exactly as it was."""

    rotation: float
    scaling: float
    wander: float
    streams: dict[str, np.random.Generator]

    def turn_and_resize(self, obj: _Object) -> None:
        tau = np.linspace(0, 1, len(obj.angle))
        obj.angle = obj.angle + self.rotation * _wiggle(self.streams["rotation"], tau)[:, 0]
        obj.scale = obj.scale * np.exp(self.scaling * _wiggle(self.streams["scaling"], tau)[:, 0])

    def stray(self, obj: _Object) -> None:
        tau = np.linspace(0, 1, len(obj.centre))
        obj.centre = obj.centre + self.wander * _wiggle(self.streams["wander"], tau, dims=2)


def _come_back(rng: np.random.Generator, obj: _Object, unit: int, pad: float) -> None:
    """Bring the leaving object back. Its straight exit path is start + u * step, fully outside from
    u = 0.75 on; replay it out past the edge with `pad` more pixels to spare (for wander and shake),
    keep it there, unseen, for 15-30% of the clip while it slides along the edge, then bring it back
    in to end with its centre inside the frame."""
    tau = np.linspace(0, 1, len(obj.centre))
    start, step = obj.centre[0], obj.centre[-1] - obj.centre[0]
    length = np.linalg.norm(step)
    out = 0.75 + (pad + obj.max_extent * max(obj.scale.max() - 1, 0.0)) / length
    leave = rng.uniform(0.3, 0.45)
    knots = [0.0, leave, leave + rng.uniform(0.15, 0.3), 1.0]
    u = np.interp(tau, knots, [0.0, out, out, rng.uniform(0, 0.2)])
    slide = np.interp(tau, knots, [0.0, 0.0, 1.0, 1.0]) * rng.uniform(-0.15, 0.15) * unit
    side = np.array([-step[1], step[0]]) / length
    obj.centre = start + np.outer(u, step) + np.outer(slide, side)


def _look_alike(rng: np.random.Generator, model: _Object, obj_id: int, unit: int) -> _Object:
    """A distractor imitating `model`: the same shape family and pattern with size, outline, colours and
    texture changed a little, on a straight path that passes within 0.5-1.5 of `model`'s radii of it at
    a random moment in the middle 40% of the clip, in front of or behind it."""
    num_frames = len(model.centre)
    tau = np.linspace(0, 1, num_frames)
    meet = int(rng.integers(round(0.3 * (num_frames - 1)), round(0.7 * (num_frames - 1)) + 1))
    near, way = rng.uniform(0, 2 * np.pi, 2)
    offset = model.radius * model.scale[meet] * rng.uniform(0.5, 1.5) * np.array([np.cos(near), np.sin(near)])
    velocity = rng.uniform(0.4, 0.9) * unit * np.array([np.cos(way), np.sin(way)])
    amplitudes, phases = model.harmonics.T
    return replace(
        model, obj_id=obj_id, depth=rng.uniform(0, 4), radius=model.radius * rng.uniform(0.85, 1.1),
        harmonics=np.stack([amplitudes * rng.uniform(0.7, 1.3, 3), phases + rng.uniform(-0.5, 0.5, 3)], -1),
        colors=np.clip(model.colors * rng.uniform(0.9, 1.1, (2, 3)) + rng.uniform(-12, 12, (2, 3)), 0, 255),
        texture=(model.texture + _fractal_noise(rng, *model.texture.shape, cells=4, octaves=4)) / 2,
        frequency=model.frequency * rng.uniform(0.9, 1.1),
        centre=model.centre[meet] + offset + np.outer(tau - tau[meet], velocity),
        angle=rng.uniform(0, 2 * np.pi) + rng.uniform(-1.5, 1.5) * tau,
        scale=np.full(num_frames, model.scale[meet]), anchors=np.zeros((0, 2)),
    )


def _add_look_alikes(
    rng: np.random.Generator, objects: list[_Object], count: int, motion: _Motion, unit: int, points: int
) -> dict[int, int]:
    """Append `count` distractors to `objects` (ids after the last object; distractor k imitates object
    k modulo their number), moving like everyone else; returns distractor id -> imitated id."""
    models = list(objects)
    distractor_of = {}
    for k in range(count):
        model = models[k % len(models)]
        obj = _look_alike(rng, model, len(models) + k + 1, unit)
        obj.anchors = _surface_anchors(rng, obj, points)
        motion.turn_and_resize(obj)
        motion.stray(obj)
        objects.append(obj)
        distractor_of[obj.obj_id] = model.obj_id
    return distractor_of


def _paint_clutter(rng: np.random.Generator, background: np.ndarray, count: int, unit: int) -> None:
    """Paint `count` random textured shapes into `background` (h, w, 3) float: things in the scene that
    have no id and are nobody's target."""
    height, width = background.shape[:2]
    unused_ids = np.zeros((height, width), dtype=np.uint8)
    for _ in range(count):
        obj = _random_object(rng, 0, unit * rng.uniform(0.05, 0.12), 1)
        obj.centre = rng.uniform([0, 0], [width, height], (1, 2))
        _draw(background, unused_ids, obj, 0)


@dataclass(frozen=True)
class _Camera:
    """What each frame sees of the backdrop: the pan's integer top-left corner (T, 2), a shake (T, 2) in
    pixels and a zoom (T,) >= 1 about the frame centre (zooming in only, so the backdrop margin always
    suffices). Objects follow the shake and the zoom as if they stood in the scene, but not the pan:
    their paths are scripted in the frame."""

    pan: np.ndarray
    shake: np.ndarray
    zoom: np.ndarray
    size: tuple[int, int]

    @classmethod
    def random(
        cls, rng: np.random.Generator, pan: np.ndarray, width: int, height: int, shake: float, zoom: float
    ) -> _Camera:
        tau = np.linspace(0, 1, len(pan))
        level = _wiggle(rng, tau)[:, 0]
        jitter = shake * _wiggle(rng, tau, dims=2, cycles=(1.5, 4.0))
        return cls(pan, jitter, np.exp(zoom * (level - level.min()) / 2), (width, height))

    @property
    def centre(self) -> np.ndarray:
        return (np.asarray(self.size, dtype=np.float64) - 1) / 2

    def view(self, background: np.ndarray, t: int) -> np.ndarray:
        """(H, W, 3) float: the backdrop (h, w, 3) as frame t sees it; a plain crop without shake or zoom."""
        (width, height), (cx, cy) = self.size, self.centre
        xs = self.pan[t, 0] + self.shake[t, 0] + cx + (np.arange(width) - cx) / self.zoom[t]
        ys = self.pan[t, 1] + self.shake[t, 1] + cy + (np.arange(height) - cy) / self.zoom[t]
        return _lerp(_lerp(background, ys, axis=0), xs, axis=1)

    def carry(self, obj: _Object) -> None:
        """Move and scale `obj`'s pose with the shake and zoom (exactly unchanged without them)."""
        zoom = self.zoom[:, None]
        obj.centre = obj.centre + (zoom - 1) * (obj.centre - self.centre) - zoom * self.shake
        obj.scale = obj.scale * self.zoom


def _lerp(image: np.ndarray, coords: np.ndarray, axis: int) -> np.ndarray:
    """Linear interpolation of `image` along one `axis` at float positions `coords`, clamped at the border;
    a plain copy when every position is a whole pixel (a camera without shake or zoom)."""
    size = image.shape[axis]
    start = np.floor(coords)
    weight = (coords - start).reshape((-1,) + (1,) * (image.ndim - axis - 1))
    start = start.astype(np.int64)
    before = np.take(image, np.clip(start, 0, size - 1), axis=axis)
    if not weight.any():
        return before
    after = np.take(image, np.clip(start + 1, 0, size - 1), axis=axis)
    return before + weight * (after - before)


def _light(rng: np.random.Generator, num_frames: int, brightness: float) -> np.ndarray:
    """(T, 3) per-frame colour gains: a slow swell or fade of up to +-`brightness`, stronger in some
    channels than in others."""
    return 1 + brightness * _wiggle(rng, np.linspace(0, 1, num_frames)) * rng.uniform(0.6, 1.0, 3)


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
    """Image trajectories (T, N, 2) of every object's anchors; a point is visible where it lies in the frame (the
    bounds a prompt must keep) and the mask pixel nearest to it belongs to its object. Also returns the owning object
    id of each point (N,)."""
    num_frames, height, width = masks.shape
    tracks = [np.stack([o.to_image(t, o.anchors) for t in range(num_frames)]) for o in objects]
    points = np.concatenate(tracks, axis=1) if tracks else np.zeros((num_frames, 0, 2))
    owners = np.concatenate([np.full(len(o.anchors), o.obj_id) for o in objects]).astype(np.int64)
    col, row = np.round(points[..., 0]).astype(np.int64), np.round(points[..., 1]).astype(np.int64)
    inside = (points[..., 0] >= 0) & (points[..., 1] >= 0) & (col < width) & (row < height)
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
