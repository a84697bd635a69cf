"""Where each dataset layout keeps a video's files: the CONTRACT section-4 layout, Tracking-Any-Granularity (TAG),
DAVIS 2017, GOT-10k and LaSOT, each turned into a `FolderDataset` of `VideoFiles` from directory listings and list
files alone; `open_dataset` picks one by name."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from natsort import natsorted

from .datasets import FolderDataset, check_task
from .errors import DatasetError
from .videos import VideoFiles

LAYOUTS = ("section4", "tag", "davis2017", "got10k", "lasot")
DAVIS_RESOLUTIONS = ("480p", "Full-Resolution")  # a DAVIS root keeps its frames under one of these (480p scored)
LASOT_LISTS = {"test": "testing_set.txt", "train": "training_set.txt"}


def section4_dataset(root: str | Path, task: str) -> FolderDataset:
    """CONTRACT section 4: `JPEGImages/<video>/`, `Annotations/<video>/`, `Boxes/<video>.txt` (object 1) and
    `Boxes/<video>_<id>.txt` (object id), `Points/<video>.npz`. The box task's mask targets are the Annotations PNGs
    where the video has them, else the filled boxes."""
    root = Path(root)
    videos = _folders(root / "JPEGImages")
    box_files = _box_files(root / "Boxes", set(videos)) if task == "box" else {}
    files = [_annotated_files(root, name, task, boxes=box_files.get(name) or {1: root / "Boxes" / f"{name}.txt"})
             for name in videos]
    return FolderDataset(task, root, files)


def tag_dataset(root: str | Path, task: str, split: str = "train") -> FolderDataset:
    """Tracking-Any-Granularity: `<root>/<split>/{JPEGImages,Annotations,Boxes,Visibles,Points}` and the video list
    `<root>/ImageSets/<split>.txt` (or `<root>/<split>/ImageSets/<split>.txt`; without one, every frame folder). One box
    object per video (id 1), its mask target the Annotations PNG where present (published `png_folder`)."""
    root = Path(root)
    base = root / split
    listing = next((p for p in (root / "ImageSets" / f"{split}.txt", base / "ImageSets" / f"{split}.txt")
                    if p.is_file()), None)
    videos = _folders(base / "JPEGImages") if listing is None else _listed(listing)
    files = [_annotated_files(base, name, task, boxes={1: base / "Boxes" / f"{name}.txt"},
                              visibles={1: base / "Visibles" / f"{name}.txt"}, listed_in=listing)
             for name in videos]
    return FolderDataset(task, root, files)


def davis_dataset(root: str | Path, task: str, split: str = "val") -> FolderDataset:
    """DAVIS 2017 (masks only): `JPEGImages/480p/<video>/`, `Annotations/480p/<video>/` (without a resolution folder:
    `JPEGImages/<video>/`, as flat DAVIS-style copies have) and the video list `ImageSets/2017/<split>.txt` or
    `ImageSets/<split>.txt` (without one, every frame folder)."""
    root = Path(root)
    _only_task(task, "mask", root, "DAVIS")
    resolution = next((r for r in DAVIS_RESOLUTIONS if (root / "JPEGImages" / r).is_dir()), "")
    frames, masks = root / "JPEGImages" / resolution, root / "Annotations" / resolution
    listing = next((p for p in (root / "ImageSets" / "2017" / f"{split}.txt", root / "ImageSets" / f"{split}.txt")
                    if p.is_file()), None)
    videos = _folders(frames) if listing is None else _listed(listing)
    files = [VideoFiles(name=name, frames=frames / name, masks=masks / name, listed_in=listing) for name in videos]
    return FolderDataset(task, root, files)


def got10k_dataset(root: str | Path, task: str, split: str = "val") -> FolderDataset:
    """GOT-10k (boxes only): `<root>/<split>/<sequence>/` holds the frames, `groundtruth.txt` (x,y,w,h lines; the test
    split gives only the first), `cover.label` and `absence.label`; `<root>/<split>/list.txt` lists the sequences
    (without it, every folder with a `groundtruth.txt`)."""
    root = Path(root)
    _only_task(task, "box", root, "GOT-10k")
    base = root / split
    listing = base / "list.txt" if (base / "list.txt").is_file() else None
    videos = _listed(listing) if listing is not None else _sequences(base, "")
    files = [VideoFiles(name=name, frames=base / name, boxes={1: base / name / "groundtruth.txt"},
                        visibles={1: base / name / "cover.label"}, listed_in=listing, visibility="got10k")
             for name in videos]
    return FolderDataset(task, root, files)


def lasot_dataset(root: str | Path, task: str, split: str = "test") -> FolderDataset:
    """LaSOT (boxes only): `<root>/<class>/<sequence>/` (or `<root>/<sequence>/`) with the frames in `img/`,
    `groundtruth.txt`, `full_occlusion.txt` and `out_of_view.txt`; the split's list is `<root>/testing_set.txt` or
    `training_set.txt` (without it, every sequence found)."""
    root = Path(root)
    _only_task(task, "box", root, "LaSOT")
    listing = root / LASOT_LISTS.get(split, f"{split}.txt")
    listing = listing if listing.is_file() else None
    if listing is None:
        folders = {Path(p).name: root / p for p in _sequences(root, "img")}
    else:
        names = _listed(listing)
        folders = {n: next((f for f in (root / n.rsplit("-", 1)[0] / n, root / n) if f.is_dir()),
                           root / n.rsplit("-", 1)[0] / n) for n in names}
    files = [VideoFiles(name=name, frames=folder / "img", boxes={1: folder / "groundtruth.txt"},
                        visibles={1: folder / "full_occlusion.txt"}, listed_in=listing, visibility="lasot")
             for name, folder in folders.items()]
    return FolderDataset(task, root, files)


_SPLIT_LAYOUTS: dict[str, Callable[[Path, str, str], FolderDataset]] = {
    "tag": tag_dataset,
    "davis2017": davis_dataset,
    "got10k": got10k_dataset,
    "lasot": lasot_dataset,
}


def open_dataset(root: str | Path, task: str, layout: str = "auto", split: str = "train") -> FolderDataset:
    """The videos of `task` under `root` in `layout` (one of LAYOUTS); "auto" picks "tag" when
    `<root>/<split>/JPEGImages` exists and "section4" when `<root>/JPEGImages` does."""
    root = Path(root)
    if layout == "auto":
        if (root / split / "JPEGImages").is_dir():
            layout = "tag"
        elif (root / "JPEGImages").is_dir():
            layout = "section4"
        else:
            raise DatasetError(f"{root}: neither {split}/JPEGImages (TAG layout) nor JPEGImages (section-4 layout) "
                               f"is a folder here")
    if layout in _SPLIT_LAYOUTS:
        return _SPLIT_LAYOUTS[layout](root, task, split)
    if layout == "section4":
        return section4_dataset(root, task)
    raise ValueError(f"layout must be 'auto' or one of {list(LAYOUTS)}, got {layout!r}")


def _only_task(task: str, only: str, root: Path, name: str) -> None:
    check_task(task)
    if task != only:
        raise DatasetError(f"{root}: the {name} layout has {only} annotations only; it cannot serve the {task} task")


def _sequences(folder: Path, frames: str) -> list[str]:
    """Sequence folders (relative to `folder`, natural order) holding `groundtruth.txt` and a `frames` subfolder
    ("" = the frames lie beside it), one or two levels down."""
    if not folder.is_dir():
        raise DatasetError(f"{folder}: folder of sequences not found")
    found = [p.parent for p in (*folder.glob("*/groundtruth.txt"), *folder.glob("*/*/groundtruth.txt"))
             if (p.parent / frames).is_dir()]
    return natsorted(str(p.relative_to(folder)) for p in found)


def _annotated_files(base: Path, name: str, task: str, **fields) -> VideoFiles:
    """Video `name` in the folders section 4 and TAG share under `base`: `JPEGImages/<video>/`,
    `Annotations/<video>/`, `Points/<video>.npz`; `fields` are the `VideoFiles` fields that differ (boxes, ...)."""
    return VideoFiles(name=name, frames=base / "JPEGImages" / name,
                      masks=_mask_folder(base / "Annotations" / name, task), points=base / "Points" / f"{name}.npz",
                      **fields)


def _mask_folder(folder: Path, task: str) -> Path | None:
    """The mask task always reads `folder`; the box task only where it exists (else its targets are filled boxes)."""
    return folder if task == "mask" or folder.is_dir() else None


def _folders(folder: Path) -> list[str]:
    if not folder.is_dir():
        raise DatasetError(f"{folder}: folder of videos not found")
    return natsorted(p.name for p in folder.iterdir() if p.is_dir())


def _listed(path: Path) -> list[str]:
    """Video names of an ImageSets file, one per line; an extension is dropped (published)."""
    return [os.path.splitext(line.strip())[0] for line in path.read_text().splitlines() if line.strip()]


def _box_files(folder: Path, videos: set[str]) -> dict[str, dict[int, Path]]:
    """Object id -> box file of every video: `<video>.txt` is object 1, `<video>_<id>.txt` object id (a stem that
    is itself a video name belongs to that video)."""
    found: dict[str, dict[int, Path]] = {}
    paths = natsorted(folder.glob("*.txt"), key=lambda p: p.name) if folder.is_dir() else []
    for path in paths:
        stem = path.stem
        base, _, suffix = stem.rpartition("_")
        if stem in videos:
            found.setdefault(stem, {})[1] = path
        elif base in videos and suffix.isdigit():
            found.setdefault(base, {})[int(suffix)] = path
    return found
