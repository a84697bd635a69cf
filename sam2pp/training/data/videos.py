"""One video's frames and annotations, whatever stores them: files on disk (`DiskVideo` over `VideoFiles`) or the
synthetic generator (`GeneratedVideo`). Both are read lazily, and every disk read is checked against the video
(frame count, frame size), so a bad file is named when it is met."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable, Iterator, Protocol

import numpy as np
from PIL import Image

from ...data.synthetic import SyntheticVideo
from ...io.formats import PointTracks, list_frames, read_boxes_txt, read_palette_png, read_points_npz
from .errors import DatasetError


@contextmanager
def _as_dataset_error(path: Path | None = None) -> Iterator[None]:
    """Turn a reader's OSError/ValueError into a DatasetError naming the file (`path`, unless the message does)."""
    try:
        yield
    except DatasetError:
        raise
    except (OSError, ValueError) as err:
        message = str(err)
        raise DatasetError(message if path is None or str(path) in message else f"{path}: {message}") from err


class VideoSource(Protocol):
    """What clip sampling needs of one video. Frames are (H, W, 3) uint8, `ids` (H, W) uint8 object ids or None
    (no masks); `boxes` maps an object id to its (T, 4) x,y,w,h and (T,) visibility flags; `tracks` are the points."""

    name: str

    @property
    def num_frames(self) -> int: ...

    @property
    def size(self) -> tuple[int, int]: ...

    def frame(self, t: int) -> np.ndarray: ...

    def ids(self, t: int) -> np.ndarray | None: ...

    @property
    def boxes(self) -> dict[int, tuple[np.ndarray, np.ndarray]]: ...

    @property
    def tracks(self) -> PointTracks: ...


@dataclass(frozen=True, eq=False)
class VideoFiles:
    """Where one video's files are. `masks` is the folder of `<frame stem>.png` id masks (None: the video has none);
    `boxes`/`visibles` map an object id to its x,y,w,h / visibility file, whose convention `visibility` names (a key of
    `VISIBILITY_READERS`); `listed_in` is the list file that names the video."""

    name: str
    frames: Path
    masks: Path | None = None
    boxes: dict[int, Path] = field(default_factory=dict)
    visibles: dict[int, Path] = field(default_factory=dict)
    points: Path | None = None
    listed_in: Path | None = None
    visibility: str = "tag"


class DiskVideo:
    """A `VideoSource` over `VideoFiles`; every read checks the file against the video (count, size)."""

    def __init__(self, files: VideoFiles):
        self.files = files
        self.name = files.name

    @cached_property
    def frame_paths(self) -> list[Path]:
        if self.files.listed_in is not None and not self.files.frames.is_dir():
            raise DatasetError(f"{self.files.listed_in}: lists video {self.name!r} but its frame folder "
                               f"{self.files.frames} does not exist")
        with _as_dataset_error():
            return list_frames(self.files.frames)

    @property
    def num_frames(self) -> int:
        return len(self.frame_paths)

    @cached_property
    def size(self) -> tuple[int, int]:
        return image_header(self.frame_paths[0])[0]

    def frame(self, t: int) -> np.ndarray:
        path = self.frame_paths[t]
        with _as_dataset_error(path), Image.open(path) as image:
            rgb = np.asarray(image.convert("RGB"))
        if (rgb.shape[1], rgb.shape[0]) != self.size:
            raise DatasetError(f"{path}: frame is {rgb.shape[1]}x{rgb.shape[0]}, the video's first frame "
                               f"{self.size[0]}x{self.size[1]}")
        return rgb

    def mask_path(self, t: int) -> Path:
        return self.files.masks / f"{self.frame_paths[t].stem}.png"

    def ids(self, t: int) -> np.ndarray | None:
        if self.files.masks is None:
            return None
        path = self.mask_path(t)
        with _as_dataset_error():
            ids = read_palette_png(path)
        if (ids.shape[1], ids.shape[0]) != self.size:
            raise DatasetError(f"{path}: mask is {ids.shape[1]}x{ids.shape[0]}, its frame "
                               f"{self.size[0]}x{self.size[1]}")
        return ids

    @cached_property
    def boxes(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        tracks = {}
        for obj_id, path in self.files.boxes.items():
            flags = self.files.visibles.get(obj_id)
            shown = (np.ones(self.num_frames, bool) if flags is None
                     else VISIBILITY_READERS[self.files.visibility](flags, self.num_frames))
            tracks[obj_id] = (read_boxes(path, self.num_frames), shown)
        return tracks

    @cached_property
    def tracks(self) -> PointTracks:
        if self.files.points is None:
            raise DatasetError(f"video {self.name!r}: no points file")
        return _read_tracks(self.files.points, self.num_frames, self.size)


class GeneratedVideo:
    """A `VideoSource` over an in-memory `SyntheticVideo` (object 1 of its boxes is id `obj_ids[0]`, and so on)."""

    def __init__(self, video: SyntheticVideo, name: str):
        self.video = video
        self.name = name
        self.num_frames = video.num_frames
        self.size = video.size

    def frame(self, t: int) -> np.ndarray:
        return self.video.frames[t]

    def ids(self, t: int) -> np.ndarray:
        return self.video.masks[t]

    @cached_property
    def boxes(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        shown = np.ones(self.num_frames, bool)
        return {obj_id: (xywh, shown) for obj_id, xywh in zip(self.video.obj_ids, self.video.boxes_xywh)}

    @cached_property
    def tracks(self) -> PointTracks:
        return PointTracks(self.video.points, self.video.visibs, self.size)


def image_header(path: Path) -> tuple[tuple[int, int], str]:
    """(W, H) and PIL mode of an image, from its header only."""
    with _as_dataset_error(path), Image.open(path) as image:
        return image.size, image.mode


def decoded_image(path: Path) -> tuple[tuple[int, int], str]:
    """(W, H) and PIL mode of an image decoded whole, so that a truncated or corrupt file fails here rather than in a
    training step. A JPEG is decoded at 1/8 scale (`draft`), which still reads every byte in about half the time
    (measured: 17 ms instead of 33 ms for a 1080p frame)."""
    with _as_dataset_error(path), Image.open(path) as image:
        size, mode = image.size, image.mode
        image.draft(None, (max(1, size[0] // 8), max(1, size[1] // 8)))
        image.load()
    return size, mode


def read_boxes(path: Path, num_frames: int) -> np.ndarray:
    """A box file of a `num_frames`-frame video -> (T, 4) x,y,w,h; a line count other than T is an error."""
    with _as_dataset_error():
        boxes = read_boxes_txt(path)
    if len(boxes) != num_frames:
        raise DatasetError(f"{path}: {len(boxes)} box lines for {num_frames} frames")
    return boxes


def read_visibles_txt(path: Path, num_frames: int) -> np.ndarray:
    """A TAG `Visibles/<video>.txt`: one 0 or 1 per line, one line per frame -> (T,) bool."""
    if not path.is_file():
        raise DatasetError(f"{path}: visibility file not found")
    lines = path.read_text().rstrip().splitlines()
    bad = [f"line {i + 1} {line!r}" for i, line in enumerate(lines) if line.strip() not in ("0", "1")]
    if bad:
        raise DatasetError(f"{path}: expected 0 or 1 on every line, got {', '.join(bad[:3])}")
    if len(lines) != num_frames:
        raise DatasetError(f"{path}: {len(lines)} visibility lines for {num_frames} frames")
    return np.array([line.strip() == "1" for line in lines], dtype=bool)


def _read_flags(path: Path, num_frames: int, allowed: range) -> np.ndarray:
    """Integer flags, one per frame, separated by commas and/or newlines -> (T,) int."""
    if not path.is_file():
        raise DatasetError(f"{path}: visibility file not found")
    fields = [f for f in path.read_text().replace(",", " ").split()]
    bad = [f for f in fields if not f.isdigit() or int(f) not in allowed]
    if bad:
        raise DatasetError(f"{path}: expected integers in {allowed.start}..{allowed.stop - 1}, got {bad[:3]}")
    if len(fields) != num_frames:
        raise DatasetError(f"{path}: {len(fields)} flags for {num_frames} frames")
    return np.array([int(f) for f in fields])


def read_got10k_visibility(path: Path, num_frames: int) -> np.ndarray:
    """GOT-10k `cover.label` (visible eighths of the target, 0 = fully hidden; the toolkit scores frames with
    cover > 0), and the `absence.label` beside it when present (1 = absent) -> (T,) bool."""
    visible = _read_flags(path, num_frames, range(9)) > 0
    absence = path.with_name("absence.label")
    return visible & ~(_read_flags(absence, num_frames, range(2)) > 0) if absence.is_file() else visible


def read_lasot_visibility(path: Path, num_frames: int) -> np.ndarray:
    """LaSOT `full_occlusion.txt` and the `out_of_view.txt` beside it (comma-separated 0/1 flags): the target is
    visible where neither is 1 (pytracking's `target_visible`) -> (T,) bool."""
    hidden = _read_flags(path, num_frames, range(2)) > 0
    return ~(hidden | (_read_flags(path.with_name("out_of_view.txt"), num_frames, range(2)) > 0))


VISIBILITY_READERS: dict[str, Callable[[Path, int], np.ndarray]] = {
    "tag": read_visibles_txt,
    "got10k": read_got10k_visibility,
    "lasot": read_lasot_visibility,
}


def _read_tracks(path: Path, num_frames: int, size: tuple[int, int]) -> PointTracks:
    """The points of a video; a visible point must be finite and less than a pixel outside the frame (published:
    0 <= int(x) <= W)."""
    with _as_dataset_error():
        tracks = read_points_npz(path)
    if tracks.num_frames != num_frames:
        raise DatasetError(f"{path}: trajs_2d has {tracks.num_frames} frames, the video {num_frames}")
    if tracks.size is not None and tracks.size != size:
        raise DatasetError(f"{path}: size is {tracks.size}, the frames are {size}")
    xy = tracks.trajs_2d
    with np.errstate(invalid="ignore"):
        inside = np.isfinite(xy).all(-1) & (xy > -1).all(-1) & (xy[..., 0] < size[0] + 1) & (xy[..., 1] < size[1] + 1)
    outside = np.argwhere(tracks.visibs & ~inside)
    if len(outside):
        t, n = outside[0]
        raise DatasetError(f"{path}: {len(outside)} visible point(s) outside the {size[0]}x{size[1]} frame, "
                           f"first point {n} at frame {t}: {xy[t, n].tolist()}")
    return tracks
