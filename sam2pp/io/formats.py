"""Readers and writers for the on-disk formats of CONTRACT.md section 4.

Every reader is strict: a file that does not match its format raises an error naming the file and
the problem, so a bad benchmark folder fails loudly instead of scoring as garbage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from natsort import natsorted
from PIL import Image

FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png")
_BOX_SEPARATORS = re.compile(r"[,\s]+")


def _davis_palette() -> np.ndarray:
    """The 256-colour PASCAL VOC / DAVIS palette: id bits spread over the RGB channels. (256, 3) uint8."""
    ids = np.arange(256)
    palette = np.zeros((256, 3), dtype=np.uint8)
    for shift in range(8):
        for channel in range(3):
            bit = (ids >> channel) & 1
            palette[:, channel] |= (bit << (7 - shift)).astype(np.uint8)
        ids = ids >> 3
    return palette


DAVIS_PALETTE = _davis_palette()


def is_hidden(path: Path) -> bool:
    """Whether a file is hidden (its name starts with "."), like the `._00000.jpg` resource forks macOS copies leave;
    such files are never frames, masks or results."""
    return path.name.startswith(".")


def list_frames(folder: str | Path) -> list[Path]:
    """Image files (.jpg/.jpeg/.png, any case) of a frame folder in natural sort order ("2" before "10"); hidden
    files are skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder of frames")
    frames = [p for p in folder.iterdir()
              if p.is_file() and not is_hidden(p) and p.suffix.lower() in FRAME_EXTENSIONS]
    if not frames:
        raise ValueError(f"{folder}: no frames ({', '.join(FRAME_EXTENSIONS)}) in this folder")
    return natsorted(frames, key=lambda p: p.name)


def read_palette_png(path: str | Path) -> np.ndarray:
    """Object ids of a mask PNG: (H, W) uint8. Only 8-bit palette ("P") or grayscale ("L") images qualify,
    because an RGB image's pixel values are colours, not ids."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: mask file not found")
    try:
        with Image.open(path) as image:
            image.load()
    except OSError as err:
        raise ValueError(f"{path}: not a readable image ({err})") from err
    if image.mode not in ("P", "L"):
        raise ValueError(f"{path}: mask must be an 8-bit palette or grayscale PNG, got image mode {image.mode!r}")
    return np.asarray(image, dtype=np.uint8)


def write_palette_png(path: str | Path, ids: np.ndarray) -> None:
    """Write object ids (H, W) as an 8-bit palette PNG with the DAVIS colours; parent folders are created."""
    path = Path(path)
    ids = np.asarray(ids)
    if ids.ndim != 2:
        raise ValueError(f"{path}: object ids must be a 2-D (H, W) array, got shape {ids.shape}")
    if ids.dtype == bool:
        ids = ids.astype(np.uint8)
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"{path}: object ids must be integers, got dtype {ids.dtype}")
    if ids.size and (ids.min() < 0 or ids.max() > 255):
        raise ValueError(f"{path}: object ids must lie in 0..255 for an 8-bit PNG, got {ids.min()}..{ids.max()}")
    image = Image.fromarray(ids.astype(np.uint8), mode="P")
    image.putpalette(DAVIS_PALETTE.tobytes())
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def read_boxes_txt(path: str | Path) -> np.ndarray:
    """One `x,y,w,h` line per frame (commas and/or whitespace) -> (T, 4) float64.

    Absence markers (NaN rows, `0,0,0,0`) are kept verbatim; `box_absent` interprets them.
    Trailing blank lines are ignored; a blank line between boxes is an error (it would shift frames).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: box file not found")
    lines = read_text(path, "box file").rstrip().splitlines()
    boxes = np.empty((len(lines), 4), dtype=np.float64)
    for i, line in enumerate(lines):
        fields = [f for f in _BOX_SEPARATORS.split(line.strip()) if f]
        if len(fields) != 4:
            raise ValueError(f"{path}, line {i + 1}: expected 4 values x,y,w,h, got {len(fields)} in {line!r}")
        try:
            boxes[i] = [float(f) for f in fields]
        except ValueError as err:
            raise ValueError(f"{path}, line {i + 1}: not a number in {line!r}") from err
    if not len(boxes):
        raise ValueError(f"{path}: no boxes in file")
    return boxes


def read_text(path: Path, what: str) -> str:
    """The text of a UTF-8 file; a binary file raises an error naming the file (not a bare codec message)."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not a text {what} (byte {err.start} is not UTF-8; is it a binary file?)") from None


def write_boxes_txt(path: str | Path, xywh: np.ndarray) -> None:
    """Write (T, 4) `x,y,w,h` boxes, one comma-separated line per frame; NaN rows become `nan,nan,nan,nan`."""
    path = Path(path)
    xywh = np.asarray(xywh, dtype=np.float64)
    if xywh.ndim != 2 or xywh.shape[1] != 4:
        raise ValueError(f"{path}: boxes must have shape (T, 4), got {xywh.shape}")
    nan_rows = np.isnan(xywh).any(axis=1)
    lines = ["nan,nan,nan,nan" if absent else ",".join(format(v, ".10g") for v in row)
             for row, absent in zip(xywh, nan_rows)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def box_absent(xywh: np.ndarray) -> np.ndarray:
    """Which rows mark an absent target: any NaN, or w <= 0, or h <= 0 (GOT-10k/LaSOT). (..., 4) -> (...) bool."""
    xywh = np.asarray(xywh, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.isnan(xywh).any(axis=-1) | (xywh[..., 2] <= 0) | (xywh[..., 3] <= 0)


def xywh_to_xyxy(xywh: np.ndarray) -> np.ndarray:
    """(..., 4) `x, y, w, h` -> (..., 4) `x0, y0, x1, y1` with x1 = x + w."""
    xywh = np.asarray(xywh, dtype=np.float64)
    return np.concatenate([xywh[..., :2], xywh[..., :2] + xywh[..., 2:]], axis=-1)


def ordered_xyxy(boxes_xyxy: np.ndarray) -> np.ndarray:
    """(..., 4) xyxy boxes with their corners sorted (the box head may return x0 > x1)."""
    b = np.asarray(boxes_xyxy, dtype=np.float32)
    return np.concatenate([np.minimum(b[..., :2], b[..., 2:]), np.maximum(b[..., :2], b[..., 2:])], axis=-1)


def xyxy_to_xywh(xyxy: np.ndarray) -> np.ndarray:
    """(..., 4) `x0, y0, x1, y1` -> (..., 4) `x, y, w, h`."""
    xyxy = np.asarray(xyxy, dtype=np.float64)
    return np.concatenate([xyxy[..., :2], xyxy[..., 2:] - xyxy[..., :2]], axis=-1)


@dataclass
class PointTracks:
    """Point trajectories of one video; point n is object id n.

    trajs_2d: float32 (T, N, 2) pixels (x, y); visibs: bool (T, N);
    size: (W, H) of the video frames, needed to rescale for TAP-Vid scoring.
    """

    trajs_2d: np.ndarray
    visibs: np.ndarray
    size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        self.trajs_2d = np.asarray(self.trajs_2d, dtype=np.float32)
        self.visibs = np.asarray(self.visibs).astype(bool)
        if self.trajs_2d.ndim != 3 or self.trajs_2d.shape[2] != 2:
            raise ValueError(f"trajs_2d must have shape (T, N, 2), got {self.trajs_2d.shape}")
        if self.visibs.shape != self.trajs_2d.shape[:2]:
            raise ValueError(f"visibs must have shape {self.trajs_2d.shape[:2]} (T, N), got {self.visibs.shape}")
        if self.size is not None:
            size = np.asarray(self.size).reshape(-1)
            if size.shape != (2,) or (size <= 0).any():
                raise ValueError(f"size must be two positive numbers (W, H), got {self.size!r}")
            self.size = (int(size[0]), int(size[1]))

    @property
    def num_frames(self) -> int:
        return self.trajs_2d.shape[0]

    @property
    def num_points(self) -> int:
        return self.trajs_2d.shape[1]


def read_points_npz(path: str | Path) -> PointTracks:
    """Read `trajs_2d`, `visibs` and the optional `size` (W, H) of a points `.npz`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: points file not found")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: not a readable .npz ({err})") from err
    missing = [key for key in ("trajs_2d", "visibs") if key not in arrays]
    if missing:
        raise ValueError(f"{path}: missing array(s) {missing}; found {sorted(arrays)}")
    size = arrays.get("size")
    try:
        return PointTracks(arrays["trajs_2d"], arrays["visibs"], None if size is None else tuple(size.reshape(-1)))
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err


def write_points_npz(path: str | Path, tracks: PointTracks) -> None:
    """Write a PointTracks as `.npz` (`size` only when known); parent folders are created."""
    path = Path(path)
    arrays = {"trajs_2d": tracks.trajs_2d.astype(np.float32), "visibs": tracks.visibs.astype(bool)}
    if tracks.size is not None:
        arrays["size"] = np.asarray(tracks.size, dtype=np.int64)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        np.savez(f, **arrays)
