"""Checking a whole dataset before training starts, reporting every problem at once: a bad file met at step 10,000
costs the run."""

from __future__ import annotations

from dataclasses import dataclass

from .datasets import VideoDataset
from .errors import DatasetError


@dataclass
class ScanReport:
    """Counts of a scanned dataset. Objects: box files (box), points (point), ids in each video's first mask
    (mask: decoding every mask would make the scan as slow as an epoch)."""

    task: str
    videos: int
    frames: int
    objects: int


def scan(dataset: VideoDataset) -> ScanReport:
    """Validate every video of `dataset` from file headers and small annotation files; raise one DatasetError
    listing every problem found."""
    checks = [dataset.check(i) for i in range(len(dataset.videos))]
    problems = [p for c in checks for p in c.problems]
    if not dataset.videos:
        problems.insert(0, f"{dataset!r}: no videos")
    if problems:
        raise DatasetError(*problems)
    return ScanReport(dataset.task, len(checks), sum(c.frames for c in checks), sum(c.objects for c in checks))
