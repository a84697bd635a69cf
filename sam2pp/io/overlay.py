"""Pictures of tracking results for humans: overlays on frames, GIF/MP4 animations, a sample quick-look.

Masks and boxes are rasterised by torchvision's drawing utilities; point markers and trails go
through PIL's `ImageDraw`, because a hidden point needs a hollow marker and a trail may have gaps,
neither of which `draw_keypoints` can express. Line widths and marker sizes grow with the drawn frame's
width, so they stay visible on a full-HD frame and once a picture is scaled down for display.
"""

from __future__ import annotations

import colorsys
from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image, ImageDraw
from torchvision.utils import draw_bounding_boxes, draw_segmentation_masks
from tqdm.auto import tqdm

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from sam2pp.data.synthetic import SyntheticVideo

Color = tuple[int, int, int]

# Ten well separated hues (matplotlib's "tab10"); ids past them get golden-ratio hues.
_PALETTE: tuple[Color, ...] = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
)
_PROGRESS_FROM = 100  # frames; shorter animations are written without a progress bar
PREVIEW_MAX_WIDTH = 960
"""Default width limit (px) of previews: a full-HD video is drawn at half size (a GIF of 1080p frames is ~1 MB each)."""


def object_color(obj_id: int) -> Color:
    """The RGB colour of object `obj_id`, the same in every frame, figure and session."""
    if obj_id < 0:
        raise ValueError(f"object ids are non-negative integers, got {obj_id}")
    if obj_id < len(_PALETTE):
        return _PALETTE[obj_id]
    r, g, b = colorsys.hsv_to_rgb((obj_id * 0.618033988749895) % 1.0, 0.75, 0.95)
    return round(255 * r), round(255 * g), round(255 * b)


def draw_overlay(
    frame: np.ndarray,
    masks: np.ndarray | None = None,
    boxes_xyxy: np.ndarray | None = None,
    points_xy: np.ndarray | None = None,
    visible: np.ndarray | None = None,
    colors: Sequence[Color] | None = None,
    trails: np.ndarray | None = None,
    *,
    obj_ids: Sequence[int] | None = None,
    alpha: float = 0.45,
    box_width: int | None = None,
    point_radius: int | None = None,
    scale: float = 1.0,
) -> np.ndarray:
    """Draw O objects' results on a copy of `frame` (H, W, 3) uint8 and return it.

    masks: bool (O, H, W), tinted with `alpha` and outlined; boxes_xyxy: (O, 4); points_xy: (O, 2),
    drawn filled, or hollow where `visible` (O,) is false; trails: (O, L, 2) past positions, oldest
    first, drawn as polylines broken at NaN. NaN boxes and points are skipped. Colours come from
    `colors`, else from `object_color` of `obj_ids` (default 1..O). `box_width` and `point_radius`
    default to sizes that grow with the drawn width (`line_width`, `marker_radius`). With `scale`, the
    picture is the frame resized by that factor (coordinates stay those of `frame`): a preview of a
    large video is drawn small without drawing it large first.
    """
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frame must be a uint8 (H, W, 3) image, got {frame.dtype} {frame.shape}")
    count = _object_count(
        frame.shape[:2], masks=masks, boxes_xyxy=boxes_xyxy, points_xy=points_xy, visible=visible, trails=trails
    )
    colors = _resolve_colors(count, colors, obj_ids)
    if scale != 1.0:
        frame, masks, (boxes_xyxy, points_xy, trails) = _rescaled(frame, masks, (boxes_xyxy, points_xy, trails), scale)
    width = frame.shape[1]
    box_width = line_width(width) if box_width is None else box_width
    point_radius = marker_radius(width) if point_radius is None else point_radius
    image = torch.from_numpy(frame.copy()).permute(2, 0, 1)
    if masks is not None:
        image = _draw_masks(image, np.asarray(masks, dtype=bool), colors, alpha)
    if boxes_xyxy is not None:
        image = _draw_boxes(image, np.asarray(boxes_xyxy, dtype=np.float32), colors, box_width)
    canvas = Image.fromarray(image.permute(1, 2, 0).numpy())
    if trails is not None:
        _draw_trails(ImageDraw.Draw(canvas), np.asarray(trails, dtype=np.float64), colors, max(1, point_radius // 2))
    if points_xy is not None:
        shown = np.ones(count, dtype=bool) if visible is None else np.asarray(visible, dtype=bool)
        _draw_points(ImageDraw.Draw(canvas), np.asarray(points_xy, dtype=np.float64), shown, colors, point_radius)
    return np.asarray(canvas)


def line_width(width: int) -> int:
    """Box line width (px) for a picture `width` px wide: 2 up to 640 px, then one more per 320 px."""
    return max(2, round(width / 320))


def marker_radius(width: int) -> int:
    """Point marker radius (px) for a picture `width` px wide: 4 up to 640 px, then growing in step."""
    return max(4, round(width / 160))


def fit_scale(width: int, max_width: int | None) -> float:
    """The factor that brings a picture `width` px wide down to at most `max_width` px (1 when it fits or no limit)."""
    if max_width is not None and max_width < 1:
        raise ValueError(f"max_width must be a positive number of pixels (or None for no limit), got {max_width}")
    return 1.0 if max_width is None or width <= max_width else max_width / width


def _rescaled(frame: np.ndarray, masks: np.ndarray | None, coords: tuple, scale: float):
    """The frame resized by `scale` (bilinear), masks sampled at the new pixels' centres, coordinates scaled."""
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    height, width = frame.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = np.asarray(Image.fromarray(frame).resize(size, Image.Resampling.BILINEAR))
    if masks is not None:
        rows = np.minimum(((np.arange(size[1]) + 0.5) * height / size[1]).astype(int), height - 1)
        cols = np.minimum(((np.arange(size[0]) + 0.5) * width / size[0]).astype(int), width - 1)
        masks = np.asarray(masks, dtype=bool)[:, rows][:, :, cols]
    factor = np.array(size, dtype=np.float64) / (width, height)
    scaled = tuple(None if c is None else np.asarray(c, dtype=np.float64) * np.tile(factor, np.shape(c)[-1] // 2)
                   for c in coords)
    return small, masks, scaled


# Per argument: its shape in words, its number of dimensions, and the size of its last one if fixed.
_SHAPES = {
    "masks": ("(O, H, W)", 3, None),
    "boxes_xyxy": ("(O, 4)", 2, 4),
    "points_xy": ("(O, 2)", 2, 2),
    "visible": ("(O,)", 1, None),
    "trails": ("(O, L, 2)", 3, 2),
}


def _object_count(size: tuple[int, int], **arrays: np.ndarray | None) -> int:
    """O, checked to agree across every array given (and masks to match the frame's (H, W))."""
    counts = {}
    for name, array in arrays.items():
        if array is None:
            continue
        shape = np.shape(array)
        words, ndim, last = _SHAPES[name]
        if len(shape) != ndim or (last is not None and shape[-1] != last):
            raise ValueError(f"{name} must have shape {words}, got {shape}")
        counts[name] = shape[0]
    masks = arrays.get("masks")
    if masks is not None and tuple(np.shape(masks)[1:]) != tuple(size):
        raise ValueError(f"masks are {np.shape(masks)[1:]} (H, W) but the frame is {tuple(size)}")
    if len(set(counts.values())) > 1:
        raise ValueError(f"arguments disagree on the number of objects: {counts}")
    return next(iter(counts.values()), 0)


def _resolve_colors(count: int, colors: Sequence[Color] | None, obj_ids: Sequence[int] | None) -> list[Color]:
    if colors is not None:
        if len(colors) != count:
            raise ValueError(f"got {len(colors)} colors for {count} objects")
        return [tuple(int(c) for c in color) for color in colors]
    if obj_ids is None:
        obj_ids = range(1, count + 1)
    if len(obj_ids) != count:
        raise ValueError(f"got {len(obj_ids)} obj_ids for {count} objects")
    return [object_color(int(i)) for i in obj_ids]


def _contours(masks: np.ndarray) -> np.ndarray:
    """(O, H, W) bool -> the mask pixels with a 4-neighbour outside the mask (the image border counts as outside)."""
    padded = np.pad(masks, ((0, 0), (1, 1), (1, 1)))
    interior = padded[:, :-2, 1:-1] & padded[:, 2:, 1:-1] & padded[:, 1:-1, :-2] & padded[:, 1:-1, 2:]
    return masks & ~interior


def _draw_masks(image: torch.Tensor, masks: np.ndarray, colors: list[Color], alpha: float) -> torch.Tensor:
    keep = [o for o in range(len(masks)) if masks[o].any()]
    if not keep:
        return image
    chosen = [colors[o] for o in keep]
    image = draw_segmentation_masks(image, torch.from_numpy(masks[keep]), alpha=alpha, colors=chosen)
    return draw_segmentation_masks(image, torch.from_numpy(_contours(masks[keep])), alpha=1.0, colors=chosen)


def _draw_boxes(image: torch.Tensor, boxes: np.ndarray, colors: list[Color], width: int) -> torch.Tensor:
    keep = [o for o in range(len(boxes)) if np.isfinite(boxes[o]).all()]
    if not keep:
        return image
    return draw_bounding_boxes(image, torch.from_numpy(boxes[keep]), colors=[colors[o] for o in keep], width=width)


def _draw_points(
    draw: ImageDraw.ImageDraw, points: np.ndarray, visible: np.ndarray, colors: list[Color], radius: int
) -> None:
    for (x, y), shown, color in zip(points, visible, colors):
        if not np.isfinite([x, y]).all():
            continue
        bounds = (x - radius, y - radius, x + radius, y + radius)
        if shown:
            draw.ellipse(bounds, fill=color, outline=(255, 255, 255), width=1)
        else:
            draw.ellipse(bounds, outline=color, width=2)


def _draw_trails(draw: ImageDraw.ImageDraw, trails: np.ndarray, colors: list[Color], width: int) -> None:
    for trail, color in zip(trails, colors):
        finite = np.isfinite(trail).all(axis=1)
        for start in np.flatnonzero(finite[:-1] & finite[1:]):
            draw.line([tuple(trail[start]), tuple(trail[start + 1])], fill=color, width=width)


def write_animation(
    path: str | Path, frames: Iterable[np.ndarray], fps: float = 10, progress: bool | None = None,
    total: int | None = None,
) -> Path:
    """Write uint8 (H, W, 3) frames as an animated `.gif` (Pillow, looping) or an `.mp4` (PyAV, H.264).

    `progress` shows a tqdm bar; by default only for 100 frames or more, or when the count is unknown
    (pass `total` with a generator of known length).
    Pillow folds a GIF frame identical to the one before it into that one's duration.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise ValueError(f"{path}: animations are written as .gif or .mp4, not {suffix or 'no suffix'!r}")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if total is None and (isinstance(frames, Sequence) or hasattr(frames, "shape")):
        total = len(frames)
    if progress is None:
        progress = total is None or total >= _PROGRESS_FROM
    frames = tqdm(_checked(frames, path), total=total, disable=not progress, desc=path.name, unit="frame")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".gif":
        _write_gif(path, frames, fps)
    else:
        _write_mp4(path, frames, fps)
    return path


def _checked(frames: Iterable[np.ndarray], path: Path) -> Iterable[np.ndarray]:
    """Yield the frames, failing on the first one that is not uint8 (H, W, 3) of the first frame's size."""
    first_shape = None
    for index, frame in enumerate(frames):
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"{path}: frame {index} must be uint8 (H, W, 3), got {frame.dtype} {frame.shape}")
        if first_shape is None:
            first_shape = frame.shape
        elif frame.shape != first_shape:
            raise ValueError(f"{path}: frame {index} is {frame.shape}, the first frame was {first_shape}")
        yield frame


def _write_gif(path: Path, frames: Iterable[np.ndarray], fps: float) -> None:
    images = (Image.fromarray(frame) for frame in frames)
    first = next(images, None)
    if first is None:
        raise ValueError(f"{path}: no frames to write")
    first.save(path, save_all=True, append_images=images, duration=round(1000 / fps), loop=0, optimize=False)


def _write_mp4(path: Path, frames: Iterable[np.ndarray], fps: float) -> None:
    """H.264 in yuv420p, which needs even sides: odd frames gain one replicated row or column."""
    import av  # only here: pictures, previews and GIFs need no PyAV

    with av.open(str(path), mode="w") as container:
        stream = None
        for frame in frames:
            height, width = frame.shape[:2]
            frame = np.pad(frame, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
            if stream is None:
                stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
                stream.width, stream.height = frame.shape[1], frame.shape[0]
                stream.pix_fmt = "yuv420p"
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        if stream is None:
            raise ValueError(f"{path}: no frames to write")
        for packet in stream.encode():
            container.mux(packet)


def show_sample(video: SyntheticVideo, frame_idx: int = 0) -> Figure:
    """A two-panel matplotlib Figure of one frame: the frame with masks, boxes and points drawn on,
    and the object-id mask. Hidden points are hollow."""
    from matplotlib.figure import Figure

    if not 0 <= frame_idx < video.num_frames:
        raise IndexError(f"frame_idx {frame_idx} is outside 0..{video.num_frames - 1}")
    ids = list(video.obj_ids)
    masks = np.stack([video.masks[frame_idx] == i for i in ids])
    image = draw_overlay(video.frames[frame_idx], masks, video.boxes_xyxy[:, frame_idx], obj_ids=ids)
    image = draw_overlay(
        image,
        points_xy=video.points[frame_idx],
        visible=video.visibs[frame_idx],
        colors=[object_color(int(i)) for i in video.point_obj_ids],
    )
    width, height = video.size
    figure = Figure(figsize=(10, 10 * height / (2 * width) + 0.6), layout="constrained")
    left, right = figure.subplots(1, 2)
    left.imshow(image)
    left.set_title(f"frame {frame_idx}")
    id_colors = np.zeros((256, 3), dtype=np.uint8)
    for i in ids:
        id_colors[i] = object_color(i)
    right.imshow(id_colors[video.masks[frame_idx]])
    right.set_title("object ids")
    for axes in (left, right):
        axes.set_axis_off()
    return figure
