"""Validating one video's files for a task, collecting every problem instead of stopping at the first (`scan` gathers
them over a dataset). Every frame and mask is decoded (JPEGs at 1/8 scale), so a truncated file is found before
training; annotation files are read whole."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from natsort import natsorted

from .errors import DatasetError
from .videos import VISIBILITY_READERS, DiskVideo, decoded_image, read_boxes


@dataclass
class VideoCheck:
    """What `scan` found in one video."""

    frames: int
    objects: int
    problems: list[str]


def check_disk_video(video: DiskVideo, task: str) -> VideoCheck:
    """Every frame decoded and its size against the first frame's, then the files `task` reads."""
    try:
        size = video.size
    except DatasetError as err:
        return VideoCheck(0, 0, [str(err)])
    problems = [p for path in video.frame_paths for p in _frame_problems(path, size)]
    objects, task_problems = _CHECKS[task](video)
    return VideoCheck(video.num_frames, objects, problems + task_problems)


def _problems_of(read: Callable, *args) -> list[str]:
    """[] when `read(*args)` succeeds, else its DatasetError message."""
    try:
        read(*args)
    except DatasetError as err:
        return [str(err)]
    return []


def _frame_problems(path: Path, size: tuple[int, int]) -> list[str]:
    try:
        found = decoded_image(path)[0]
    except DatasetError as err:
        return [str(err)]
    return [] if found == size else [f"{path}: frame is {found[0]}x{found[1]}, the video's first frame "
                                     f"{size[0]}x{size[1]}"]


def _mask_problems(video: DiskVideo) -> list[str]:
    folder = video.files.masks
    if not folder.is_dir():
        return [f"{folder}: mask folder of video {video.name!r} not found"]
    problems = []
    for t, frame in enumerate(video.frame_paths):
        path = video.mask_path(t)
        if not path.is_file():
            problems.append(f"{path}: mask of frame {frame.name} not found")
            continue
        try:
            size, mode = decoded_image(path)
        except DatasetError as err:
            problems.append(str(err))
            continue
        if mode not in ("P", "L"):
            problems.append(f"{path}: mask must be an 8-bit palette or grayscale PNG, got mode {mode!r}")
        if size != video.size:
            problems.append(f"{path}: mask is {size[0]}x{size[1]}, its frame {video.size[0]}x{video.size[1]}")
    stems = {frame.stem for frame in video.frame_paths}
    extra = natsorted(p.name for p in folder.glob("*.png") if p.stem not in stems)
    if extra:
        problems.append(f"{folder}: {len(extra)} mask(s) without a frame of the same name in {video.files.frames} "
                        f"({', '.join(extra[:3])}{', ...' if len(extra) > 3 else ''}); frames and masks must pair "
                        f"one to one")
    return problems


def _check_mask(video: DiskVideo) -> tuple[int, list[str]]:
    problems = _mask_problems(video)
    if problems:
        return 0, problems
    try:
        return len(np.setdiff1d(np.unique(video.ids(0)), [0])), []
    except DatasetError as err:
        return 0, [str(err)]


def _check_box(video: DiskVideo) -> tuple[int, list[str]]:
    problems = _mask_problems(video) if video.files.masks is not None else []
    for obj_id, path in video.files.boxes.items():
        problems += _problems_of(read_boxes, path, video.num_frames)
        if obj_id in video.files.visibles:
            problems += _problems_of(VISIBILITY_READERS[video.files.visibility], video.files.visibles[obj_id],
                                     video.num_frames)
    return len(video.files.boxes), problems


def _check_point(video: DiskVideo) -> tuple[int, list[str]]:
    try:
        return video.tracks.num_points, []
    except DatasetError as err:
        return 0, [str(err)]


_CHECKS: dict[str, Callable[[DiskVideo], tuple[int, list[str]]]] = {
    "mask": _check_mask,
    "box": _check_box,
    "point": _check_point,
}
