"""Checking a whole dataset before training starts, reporting every problem at once: a bad file met at step 10,000
costs the run."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .datasets import VideoDataset
from .errors import DatasetError

SCAN_THREADS = 8


@dataclass
class ScanReport:
    """Counts of a scanned dataset. Objects: box files (box), points (point), ids in each video's first mask
    (mask)."""

    task: str
    videos: int
    frames: int
    objects: int


def scan(dataset: VideoDataset) -> ScanReport:
    """Validate every video of `dataset` (`VideoDataset.check`, in threads: decoding frames releases the GIL); raise
    one DatasetError listing every problem found."""
    with ThreadPoolExecutor(max_workers=min(SCAN_THREADS, os.cpu_count() or 1)) as pool:
        checks = list(pool.map(dataset.check, range(len(dataset.videos))))
    problems = [p for c in checks for p in c.problems]
    if not dataset.videos:
        problems.insert(0, f"{dataset!r}: no videos")
    if problems:
        raise DatasetError(*problems)
    return ScanReport(dataset.task, len(checks), sum(c.frames for c in checks), sum(c.objects for c in checks))
