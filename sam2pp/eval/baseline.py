"""The copy-the-first-frame baseline: every frame's prediction is the first frame's ground truth.

A tracker that does not beat it has learned nothing about motion; the demo model's quality targets are stated
against it on the same clips.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from natsort import natsorted

from ..io.formats import (
    PointTracks,
    is_hidden,
    list_frames,
    read_boxes_txt,
    read_palette_png,
    read_points_npz,
    write_boxes_txt,
    write_palette_png,
    write_points_npz,
)


def copy_first_frame(gt: str | Path, out: str | Path, task: str) -> Path:
    """Write the baseline for `task` ("mask": `gt`/<video>/*.png, "box": `gt`/<video>.txt, "point":
    `gt`/<video>.npz, the `sam2pp eval` layouts) into `out`, in the same layout; returns `out`."""
    gt, out = Path(gt), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    BASELINES[task](gt, out)
    return out


def _masks(gt: Path, out: Path) -> None:
    for video in natsorted(p for p in gt.iterdir() if p.is_dir() and not is_hidden(p)):
        frames = list_frames(video)
        first = read_palette_png(frames[0])
        for frame in frames:
            write_palette_png(out / video.name / frame.name, first)


def _boxes(gt: Path, out: Path) -> None:
    for path in natsorted(p for p in gt.glob("*.txt") if not is_hidden(p)):
        boxes = read_boxes_txt(path)
        write_boxes_txt(out / path.name, np.repeat(boxes[:1], len(boxes), axis=0))


def _points(gt: Path, out: Path) -> None:
    for path in natsorted(p for p in gt.glob("*.npz") if not is_hidden(p)):
        tracks = read_points_npz(path)
        t = len(tracks.trajs_2d)
        first = _first_visible(tracks)
        write_points_npz(out / path.name, PointTracks(np.repeat(first[None], t, axis=0),
                                                     np.ones_like(tracks.visibs, dtype=bool), tracks.size))


def _first_visible(tracks: PointTracks) -> np.ndarray:
    """(N, 2): each point where it is first visible (TAP-Vid "first" queries)."""
    first = tracks.visibs.argmax(axis=0)
    return tracks.trajs_2d[first, np.arange(tracks.trajs_2d.shape[1])].astype(np.float32)


BASELINES = {"mask": _masks, "box": _boxes, "point": _points}
