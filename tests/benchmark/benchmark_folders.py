"""Tiny benchmark folders in each layout, 5 frames of 96x64 from the synthetic generator."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from sam2pp.data.synthetic import make_video
from sam2pp.io.formats import write_boxes_txt

FRAMES = 5
SIZE = (96, 64)


def clip(seed: int, num_objects: int = 2):
    return make_video(seed=seed, num_frames=FRAMES, size=SIZE, num_objects=num_objects, points_per_object=2)


def section4(root: Path, names: list[str], seed: int = 0) -> Path:
    """The section-4 layout: JPEGImages/, Annotations/, Boxes/, Points/."""
    for i, name in enumerate(names):
        clip(seed + i).write(root, name)
    return root


def davis(root: Path, listed: list[str], unlisted: list[str]) -> Path:
    """DAVIS 2017: JPEGImages/480p/, Annotations/480p/, ImageSets/2017/val.txt (naming `listed` only)."""
    flat = section4(root / "flat", listed + unlisted)
    for kind in ("JPEGImages", "Annotations"):
        shutil.move(flat / kind, root / kind / "480p")
    shutil.rmtree(flat)
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("\n".join(listed) + "\n")
    return root


def tag(root: Path, names: list[str], hidden: int | None = None) -> Path:
    """Tracking-Any-Granularity: valid/{JPEGImages,Annotations,Boxes,Visibles,Points}, ImageSets/valid.txt; the
    target of every video is flagged hidden on frame `hidden`."""
    section4(root / "valid", names)
    for name in names:
        flags = ["0" if t == hidden else "1" for t in range(FRAMES)]
        (root / "valid" / "Visibles").mkdir(exist_ok=True)
        (root / "valid" / "Visibles" / f"{name}.txt").write_text("\n".join(flags) + "\n")
    (root / "ImageSets").mkdir()
    (root / "ImageSets" / "valid.txt").write_text("\n".join(names) + "\n")
    return root


def _sequence(folder: Path, video, frames: Path) -> None:
    """A SOT sequence folder: 1-based 8-digit JPEG frames in `frames` and groundtruth.txt of object 1."""
    frames.mkdir(parents=True, exist_ok=True)
    for t, frame in enumerate(video.frames):
        Image.fromarray(frame).save(frames / f"{t + 1:08d}.jpg", quality=90)
    write_boxes_txt(folder / "groundtruth.txt", np.nan_to_num(video.boxes_xywh[0]))


def got10k(root: Path, names: list[str], hidden: int) -> Path:
    """GOT-10k: val/<seq>/ with frames, groundtruth.txt, cover.label (0 on frame `hidden`), absence.label, list.txt."""
    for i, name in enumerate(names):
        folder = root / "val" / name
        _sequence(folder, clip(10 + i), folder)
        (folder / "cover.label").write_text("".join("0\n" if t == hidden else "8\n" for t in range(FRAMES)))
        (folder / "absence.label").write_text("0\n" * FRAMES)
    (root / "val" / "list.txt").write_text("\n".join(names) + "\n")
    return root


def lasot(root: Path, names: list[str], hidden: int) -> Path:
    """LaSOT: <class>/<seq>/img/, groundtruth.txt, full_occlusion.txt (1 on frame `hidden`), out_of_view.txt,
    testing_set.txt."""
    for i, name in enumerate(names):
        folder = root / name.rsplit("-", 1)[0] / name
        _sequence(folder, clip(20 + i), folder / "img")
        (folder / "full_occlusion.txt").write_text(",".join("1" if t == hidden else "0" for t in range(FRAMES)))
        (folder / "out_of_view.txt").write_text(",".join("0" for _ in range(FRAMES)))
    (root / "testing_set.txt").write_text("\n".join(names) + "\n")
    return root
