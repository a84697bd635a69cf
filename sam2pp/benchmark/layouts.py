"""Which benchmark a folder holds, and its videos, read by the training system's dataset readers.

Layouts (`--layout`; "auto" detects them in this order):
- `tag`: Tracking-Any-Granularity, and YouTube-VOS / MOSE folders: `<root>/<split>/JPEGImages/<video>/` with
  `Annotations/`, `Boxes/`, `Visibles/`, `Points/` beside it and the list `<root>/ImageSets/<split>.txt`;
- `davis2017`: `JPEGImages/480p/<video>/`, `Annotations/480p/<video>/`, `ImageSets/2017/<split>.txt` (or a flat
  `JPEGImages/<video>/` next to an `ImageSets/` folder);
- `section4`: the CONTRACT section-4 folder (`JPEGImages/`, `Annotations/`, `Boxes/`, `Points/`; TAP-Vid DAVIS point
  files are its `Points/<video>.npz`);
- `lasot`: `<root>/<class>/<sequence>/{img/, groundtruth.txt, full_occlusion.txt, out_of_view.txt}`;
- `got10k`: `<root>/<split>/<sequence>/{frames, groundtruth.txt, cover.label, absence.label}` and `list.txt`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from ..io.formats import read_boxes_txt
from ..training.data import DAVIS_RESOLUTIONS, LAYOUTS, DatasetError, DiskVideo, FolderDataset, open_dataset

EVAL_SPLITS = {"tag": "valid", "davis2017": "val", "section4": "", "lasot": "test", "got10k": "val"}
"""The split each layout is scored on when `--split` is not given (section-4 folders have no splits)."""

MODES = {"mask": "vos", "box": "sot", "point": "pt"}
"""The `sam2pp eval` mode that scores each task."""

HEADLINES = {
    "mask": ("J&F-Mean", "J-Mean", "F-Mean"),
    "box": ("AUC", "Precision", "NormPrecision"),
    "point": ("AJ", "delta_avg", "OA"),
}
"""The metrics a task's benchmark papers quote; the first one ranks videos worst-first."""

LAYOUT_HEADLINES = {("box", "got10k"): ("AO", "SR50", "SR75")}
"""Benchmarks quoted with other metrics than their task's default (GOT-10k reports the got10k toolkit's)."""

GOT10K_RESULTS = "GOT-10k"
"""Folder of the predictions in the GOT-10k toolkit's submission layout (`<seq>/<seq>_001.txt`, `<seq>_time.txt`)."""


@dataclass
class Benchmark:
    """The videos of one task in one benchmark folder."""

    root: Path
    layout: str
    split: str
    task: str
    dataset: FolderDataset

    @property
    def videos(self) -> list[str]:
        return self.dataset.videos

    @property
    def mode(self) -> str:
        return MODES[self.task]

    @property
    def headline(self) -> tuple[str, ...]:
        return LAYOUT_HEADLINES.get((self.task, self.layout), HEADLINES[self.task])

    def video(self, name: str) -> DiskVideo:
        return self.dataset.source(self._index[name])

    @cached_property
    def _index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.videos)}

    def describe(self) -> dict[str, str]:
        return {"dataset": str(self.root), "layout": self.layout, "split": self.split, "task": self.task,
                "mode": self.mode}


def open_benchmark(root: str | Path, task: str, layout: str = "auto", split: str | None = None) -> Benchmark:
    """The benchmark under `root` for `task`; `split` defaults to the layout's evaluation split (`EVAL_SPLITS`)."""
    root = Path(root)
    if task not in MODES:
        raise ValueError(f"unknown task {task!r}; use {', '.join(MODES)}")
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found")
    if layout == "auto":
        layout = detect_layout(root, split)
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be 'auto' or one of {list(LAYOUTS)}, got {layout!r}")
    split = EVAL_SPLITS[layout] if split is None else split
    dataset = open_dataset(root, task, layout, split)
    if not dataset.videos:
        raise DatasetError(f"{root}: no videos in the {layout} layout" + (f" (split {split!r})" if split else ""))
    return Benchmark(root, layout, split, task, dataset)


def detect_layout(root: Path, split: str | None = None) -> str:
    """The layout of `root` from its folders, or a DatasetError saying what was looked for."""
    splits = [split] if split else [p.name for p in sorted(root.iterdir()) if p.is_dir()]
    if any((root / s / "JPEGImages").is_dir() for s in splits):
        return "tag"
    if (root / "JPEGImages").is_dir():
        davis = (root / "ImageSets").is_dir() or any((root / "JPEGImages" / r).is_dir() for r in DAVIS_RESOLUTIONS)
        return "davis2017" if davis else "section4"
    if (root / "testing_set.txt").is_file() or any(p.parent.joinpath("img").is_dir() for p in _truth_files(root)):
        return "lasot"
    if any((root / s / "list.txt").is_file() for s in splits) or _truth_files(root):
        return "got10k"
    raise DatasetError(
        f"{root}: unknown benchmark layout: found none of <split>/JPEGImages (Tracking-Any-Granularity, YouTube-VOS, "
        f"MOSE), JPEGImages with ImageSets (DAVIS 2017), JPEGImages (section 4), <class>/<sequence>/img with "
        f"groundtruth.txt (LaSOT), <split>/list.txt or <split>/<sequence>/groundtruth.txt (GOT-10k)"
    )


def _truth_files(root: Path) -> list[Path]:
    """The `groundtruth.txt` files two levels down (`<class or split>/<sequence>/groundtruth.txt`)."""
    return list(root.glob("*/*/groundtruth.txt"))


def write_got10k_results(pred_root: Path, name: str, seconds: float) -> Path:
    """The GOT-10k toolkit's result files of one sequence, from its section-4 box file: `<seq>_001.txt` (x,y,w,h with
    3 decimals) and `<seq>_time.txt` (seconds per frame; here the video's mean)."""
    boxes = read_boxes_txt(pred_root / "Boxes" / f"{name}.txt")
    folder = pred_root / GOT10K_RESULTS / name
    folder.mkdir(parents=True, exist_ok=True)
    np.savetxt(folder / f"{name}_001.txt", boxes, fmt="%.3f", delimiter=",")
    np.savetxt(folder / f"{name}_time.txt", np.full(len(boxes), seconds / len(boxes)), fmt="%.8f")
    return folder


@dataclass(frozen=True)
class NativeResults:
    """A toolkit's own result layout, written beside the section-4 files: `write(predictions, video, seconds)` puts
    one video's results in `predictions/<folder>/<video>/`."""

    folder: str
    write: Callable[[Path, str, float], Path]


NATIVE_RESULTS = {"got10k": NativeResults(GOT10K_RESULTS, write_got10k_results)}
"""The layouts whose toolkit reads results in a layout of its own (the others read the section-4 files)."""
