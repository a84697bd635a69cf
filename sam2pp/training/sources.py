"""Where a run's clips come from: one dataset per task (folders, or the synthetic generator), checked before the
first step, mixed per step by the published schedule, augmented, and turned into model-ready `Clip`s."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import torch

from ..modeling.task_modules import TASKS
from .clip import Clip, RawClip
from .config import DataSource, TrainConfig
from .data import DatasetError, SyntheticDataset, VideoDataset, open_dataset, scan
from .mixing import EpochSchedule
from .prompts import gaussian_targets
from .transforms import augment, to_clip
from .validation import held_out_root, validate

AUGMENT_TRIES = 10  # published: a clip whose first-frame object vanishes after the transforms is drawn again


class Concat(VideoDataset):
    """Several datasets of one task seen as one (the published ConcatDataset)."""

    def __init__(self, parts: list[VideoDataset]):
        self.parts, self.task = parts, parts[0].task
        self.videos = [v for p in parts for v in p.videos]

    def __repr__(self) -> str:
        return f"Concat({', '.join(map(repr, self.parts))})"

    def _locate(self, index: int) -> tuple[VideoDataset, int]:
        for part in self.parts:
            if index < len(part):
                return part, index
            index -= len(part)
        raise IndexError(f"{self!r}: video index out of range")

    def source(self, index: int):
        part, i = self._locate(index)
        return part.source(i)

    def check(self, index: int):
        part, i = self._locate(index)
        return part.check(i)


def open_sources(config: TrainConfig) -> dict[str, VideoDataset]:
    """One dataset per task with a positive mixing probability: its folders, else the synthetic source."""
    datasets = {}
    synth = config.data.synthetic
    spec = synth.spec()
    for task in TASKS:
        if config.data.task_probs.get(task, 0) <= 0:
            continue
        parts = [_open(src) for src in config.data.sources if src.task == task]
        if not parts:
            datasets[task] = SyntheticDataset(task, seed=synth.seed, length=synth.clips_per_epoch, spec=spec)
        else:
            datasets[task] = parts[0] if len(parts) == 1 else Concat(parts)
    return datasets


def _open(src: DataSource) -> VideoDataset:
    return open_dataset(src.root, src.task, layout=src.layout, split=src.split)


class ClipSources:
    """The run's datasets, their schedule, and the pipeline from a (task, index) to an augmented `Clip`."""

    def __init__(self, config: TrainConfig, world, out: Path):
        self.config, self.world, self.out = config, world, out
        self.datasets = open_sources(config)
        self.reports = {task: scan(ds) for task, ds in self.datasets.items()}
        endless = frozenset(t for t, ds in self.datasets.items() if isinstance(ds, SyntheticDataset))
        self.mixer = EpochSchedule(
            sizes={t: len(ds) for t, ds in self.datasets.items()},
            probs=config.data.task_probs,
            seed=config.seed,
            clips_per_step=config.data.clips_per_step,
            world_size=world.size,
            endless=endless,
        )
        self.steps_per_epoch = self.mixer.steps_per_epoch(0)
        if self.steps_per_epoch == 0:
            sizes = {t: len(ds) for t, ds in self.datasets.items()}
            raise DatasetError(f"no complete global batch of {self.mixer.global_batch} clips in any task "
                               f"(videos per task: {sizes})")

    def describe(self) -> str:
        lines = [f"data ({self.steps_per_epoch} steps per epoch, {self.mixer.global_batch} clips per step):"]
        for task, ds in self.datasets.items():
            r = self.reports[task]
            lines.append(f"  {task:>5}: {ds!r}: {r.videos} videos, {r.frames} frames, {r.objects} objects")
        return "\n".join(lines)

    def schedule(self, step: int) -> tuple[str, tuple[int, ...]]:
        """The step's task and this rank's sample indices."""
        epoch, i = divmod(step, self.steps_per_epoch)
        plan = self.mixer.step(epoch, i)
        return plan.task, plan.for_rank(self.world.rank)

    def clip(self, task: str, index: int, seeds, fraction: float) -> Clip:
        """Sample, augment and finish clip `index` of `task`; the point targets follow the curriculum at `fraction`."""
        cfg = self.config
        size = cfg.augment.image_size
        radius, sigma = cfg.prompts.gaussian_for(fraction, size)
        rng = np.random.default_rng(seeds.data)
        generator = torch.Generator().manual_seed(seeds.augment)
        dataset = self.datasets[task]
        for _ in range(AUGMENT_TRIES):
            raw = dataset.sample(index, rng, cfg.data.num_frames, cfg.data.max_objects[task])
            raw = _first_frame_visible(augment(raw, cfg.augment, generator))
            if raw is not None:
                return to_clip(raw, partial(gaussian_targets, radius=radius, sigma=sigma))
            index = int(rng.integers(len(dataset)))
        raise DatasetError(f"{dataset!r}: {AUGMENT_TRIES} clips in a row lost every object after augmentation")

    def validate(self, model, step: int, progress: bool = True) -> dict:
        cfg = self.config
        root = held_out_root(cfg.validation, self.out, cfg.data.synthetic)
        return validate(model, root, self.out / "validation" / f"step{step:06d}", cfg.validation.tasks,
                        cfg.validation.max_videos, progress)


def _first_frame_visible(raw: RawClip) -> RawClip | None:
    """The clip, or None when an object sampled on the first frame is no longer visible there (published retry)."""
    return raw if bool(raw.visible[0].all()) else None
