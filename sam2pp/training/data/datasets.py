"""The videos of one task behind one interface (`VideoDataset`): folders on disk, the endless synthetic generator,
and a dataset resampled to a fixed epoch length. A video that is too short or has no usable start is swapped for a
random other one, up to `MAX_VIDEO_TRIES` times (published `vos_dataset.py`); all draws come from the caller's
`numpy.random.Generator`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import replace
from pathlib import Path

import numpy as np
from natsort import natsorted

from ...data.synthetic import SyntheticSpec
from ...modeling.task_modules import TASKS
from ..clip import RawClip
from .checks import VideoCheck, check_disk_video
from .errors import DatasetError
from .sampling import sample_clip
from .videos import DiskVideo, GeneratedVideo, VideoFiles, VideoSource

MAX_VIDEO_TRIES = 100  # published `MAX_RETRIES` of `vos_dataset.py`


def check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"task must be one of {list(TASKS)}, got {task!r}")


class VideoDataset(ABC):
    """The videos of one task. `sample(index, ...)` cuts a clip from video `index`, or from random other videos
    when that one offers none (published retry rule)."""

    task: str
    videos: list[str]

    def __len__(self) -> int:
        return len(self.videos)

    @abstractmethod
    def source(self, index: int) -> VideoSource:
        """Video `index`, not yet read."""

    @abstractmethod
    def check(self, index: int) -> VideoCheck:
        """Validate video `index`'s files for this task."""

    def sample(self, index: int, rng: np.random.Generator, num_frames: int, max_objects: int) -> RawClip:
        """A `RawClip` of `num_frames` frames and at most `max_objects` objects visible in its first frame."""
        if not len(self):
            raise DatasetError(f"{self!r}: no videos to sample")
        tried = []
        for _ in range(MAX_VIDEO_TRIES):
            video = self.source(index)
            clip = sample_clip(video, self.task, rng, num_frames, max_objects)
            if clip is not None:
                return clip
            tried.append(video.name)
            index = int(rng.integers(len(self)))
        names = ", ".join(repr(n) for n in natsorted(set(tried))[:5])
        raise DatasetError(f"{self!r}: no {num_frames}-frame clip with a {self.task} object in its first frame "
                           f"in {MAX_VIDEO_TRIES} videos tried ({names}, ...)")


class FolderDataset(VideoDataset):
    """Videos on disk, one `VideoFiles` each (built by a layout such as `section4_dataset` or `tag_dataset`). Opening
    one costs a directory listing; a video's files are read when a clip of it is sampled."""

    def __init__(self, task: str, root: Path, files: list[VideoFiles]):
        check_task(task)
        self.task = task
        self.root = Path(root)
        self.files = files
        self.videos = [f.name for f in files]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.task!r}, {str(self.root)!r}, {len(self)} videos)"

    def source(self, index: int) -> DiskVideo:
        if not 0 <= index < len(self.files):
            raise IndexError(f"{self!r}: video index {index} out of range")
        return DiskVideo(self.files[index])

    def check(self, index: int) -> VideoCheck:
        return check_disk_video(self.source(index), self.task)


class SyntheticDataset(VideoDataset):
    """The synthetic generator as an endless source: video `index` is `spec` generated with a seed derived from
    (`seed`, `index`), so any index, also past the nominal `length` (one epoch), gives the same video every time."""

    def __init__(self, task: str, seed: int = 0, length: int = 64, spec: SyntheticSpec = SyntheticSpec()):
        check_task(task)
        if length < 1:
            raise ValueError(f"length (videos per nominal epoch) must be positive, got {length}")
        self.task = task
        self.seed = seed
        self.spec = spec
        self.videos = [f"synthetic-{seed}-{i}" for i in range(length)]

    def __repr__(self) -> str:
        return f"SyntheticDataset({self.task!r}, seed={self.seed}, {len(self)} videos per epoch)"

    def video_seed(self, index: int) -> int:
        if index < 0:
            raise IndexError(f"{self!r}: video index must be non-negative, got {index}")
        return int(np.random.SeedSequence([self.seed, index]).generate_state(1)[0])

    def source(self, index: int) -> GeneratedVideo:
        video = replace(self.spec, seed=self.video_seed(index)).generate()
        return GeneratedVideo(video, f"synthetic-{self.seed}-{index}")

    def check(self, index: int) -> VideoCheck:
        ids = self.spec.num_objects + self.spec.distractors
        objects = ids * (self.spec.points_per_object if self.task == "point" else 1)
        return VideoCheck(self.spec.num_frames, objects, [])

    def sample(self, index: int, rng: np.random.Generator, num_frames: int, max_objects: int) -> RawClip:
        if num_frames > self.spec.num_frames:
            raise DatasetError(f"{self!r}: cannot cut {num_frames}-frame clips from "
                               f"{self.spec.num_frames}-frame videos")
        return super().sample(index, rng, num_frames, max_objects)


class Resampled(VideoDataset):
    """The published box `samples_per_epoch`: a dataset seen as `samples_per_epoch` samples; sample i is video
    (i + a random offset) mod N when that is fewer than the N videos, else video i mod N (`box_dataset.py`)."""

    def __init__(self, dataset: VideoDataset, samples_per_epoch: int):
        if samples_per_epoch < 1:
            raise ValueError(f"samples_per_epoch must be positive, got {samples_per_epoch}")
        self.dataset = dataset
        self.task = dataset.task
        self.videos = dataset.videos
        self.samples_per_epoch = samples_per_epoch

    def __len__(self) -> int:
        return self.samples_per_epoch

    def __repr__(self) -> str:
        return f"Resampled({self.dataset!r}, {self.samples_per_epoch})"

    def source(self, index: int) -> VideoSource:
        return self.dataset.source(index)

    def check(self, index: int) -> VideoCheck:
        return self.dataset.check(index)

    def sample(self, index: int, rng: np.random.Generator, num_frames: int, max_objects: int) -> RawClip:
        count = len(self.dataset)
        offset = int(rng.integers(count)) if self.samples_per_epoch < count else 0
        return self.dataset.sample((index + offset) % count, rng, num_frames, max_objects)
