"""Which task, and which samples of it, every global step of an epoch trains on (the published `MixedDataLoader`).

One task per step. Each task's samples are shuffled per epoch and cut into global batches of
`world_size * clips_per_step` samples (incomplete batches are dropped); rank r takes every `world_size`-th sample of a
global batch, the way `DistributedSampler` deals them. So a 2-rank run with 1 clip per step and a 1-rank run with 2
clips per step train on the same clips at the same step. The step's task is drawn from `probs` by a generator that
restarts from the seed at every epoch start, the same on every rank; a drawn task with no batch left gets
probability 0 and the draw is repeated; the epoch ends when every task is used up. So each epoch uses every batch
of every task once: the probabilities set the interleaving, the dataset sizes the proportions.

Everything is a pure function of (seed, epoch, step), so a resumed run continues exactly.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from itertools import accumulate

import numpy as np

from ..modeling.task_modules import TASKS

DEFAULT_PROBS = {"mask": 0.3, "box": 0.3, "point": 0.4}  # published `dataset_prob`, per batch


@dataclass(frozen=True)
class StepPlan:
    """One global step: its task, which batch of that task's epoch list it is, and the sample indices
    `indices[rank][clip]` into the task's dataset."""

    task: str
    batch: int
    indices: tuple[tuple[int, ...], ...]

    def for_rank(self, rank: int) -> tuple[int, ...]:
        return self.indices[rank]


@dataclass(frozen=True)
class EpochSchedule:
    """Task mixing and sample order. `sizes`: samples per epoch of each task's dataset (a nominal length for an
    endless source); `endless`: tasks whose epoch e uses indices e * size ... (e + 1) * size - 1, so every epoch
    sees new videos of an endless source."""

    sizes: dict[str, int]
    probs: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_PROBS))
    seed: int = 0
    clips_per_step: int = 1
    world_size: int = 1
    endless: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        unknown = sorted(set(self.sizes) - set(TASKS))
        if unknown or not self.sizes:
            raise ValueError(f"sizes must name tasks among {list(TASKS)}, got {sorted(self.sizes)}")
        bad = {t: n for t, n in self.sizes.items() if not isinstance(n, int) or n < 0}
        if bad:
            raise ValueError(f"sizes must be non-negative integers, got {bad}")
        missing = sorted(set(self.sizes) - set(self.probs))
        if missing:
            raise ValueError(f"probs has no probability for task(s) {missing}")
        used = [self.probs[t] for t in self.sizes]
        if min(used) < 0 or sum(used) <= 0:
            raise ValueError(f"probs must be non-negative with a positive sum, got {self.probs}")
        if self.clips_per_step < 1 or self.world_size < 1:
            raise ValueError(f"clips_per_step and world_size must be positive, got {self.clips_per_step} "
                             f"and {self.world_size}")
        if not set(self.endless) <= set(self.sizes):
            raise ValueError(f"endless tasks {sorted(self.endless)} must be among sizes {sorted(self.sizes)}")

    @property
    def global_batch(self) -> int:
        """Samples per step over all ranks."""
        return self.world_size * self.clips_per_step

    @property
    def tasks(self) -> tuple[str, ...]:
        """The tasks in the published dataset order (mask, box, point)."""
        return tuple(t for t in TASKS if t in self.sizes)

    def batches(self, task: str) -> int:
        """Global batches of `task` per epoch."""
        return self.sizes[task] // self.global_batch

    def steps_per_epoch(self, epoch: int) -> int:
        """Steps of epoch `epoch`: the same for every epoch (the task draws restart from the seed each epoch)."""
        return len(self._sequence)

    def step(self, epoch: int, i: int) -> StepPlan:
        """The plan of step `i` (0-based) of epoch `epoch`."""
        if not 0 <= i < len(self._sequence):
            raise IndexError(f"step {i} is outside epoch {epoch}'s {len(self._sequence)} steps")
        task, batch = self._sequence[i]
        size = self.sizes[task]
        first = batch * self.global_batch
        block = _order(self.seed, epoch, self.tasks.index(task), size)[first : first + self.global_batch]
        if task in self.endless:
            block = block + epoch * size
        ranks = tuple(tuple(int(v) for v in block[r :: self.world_size]) for r in range(self.world_size))
        return StepPlan(task, batch, ranks)

    def clip_rng(self, epoch: int, i: int, rank: int, clip: int) -> np.random.Generator:
        """The generator that cuts clip `clip` of rank `rank` at step `i`: keyed by the sample's place in the global
        batch, so runs that shard a step differently cut the same clips."""
        place = clip * self.world_size + rank
        return np.random.default_rng([self.seed, epoch, i, place, 1])

    @cached_property
    def _sequence(self) -> tuple[tuple[str, int], ...]:
        """(task, batch of that task) of every step of an epoch: draws from `probs`, an exhausted task drawn gets
        probability 0 (the draw is spent, as published), until every task with probability > 0 is exhausted."""
        tasks = self.tasks
        probs = [float(self.probs[t]) for t in tasks]
        left = [self.batches(t) for t in tasks]
        used = [0] * len(tasks)
        uniform = np.random.default_rng([self.seed]).random(sum(left) + len(tasks)).tolist()
        steps = []
        for u in uniform:
            if not any(probs):
                break
            k = _pick(u, probs)
            if left[k] == 0:
                probs[k] = 0.0
                continue
            steps.append((tasks[k], used[k]))
            left[k] -= 1
            used[k] += 1
        return tuple(steps)


def _pick(u: float, probs: list[float]) -> int:
    """Where u in [0, 1) falls when [0, 1) is cut into parts proportional to `probs`; a zero part is never hit."""
    cumulative = list(accumulate(probs))
    last = max(j for j, p in enumerate(probs) if p > 0)
    return bisect_right(cumulative, u * cumulative[-1], hi=last)


@lru_cache(maxsize=16)
def _order(seed: int, epoch: int, task_index: int, size: int) -> np.ndarray:
    """The shuffled sample indices (size,) of one task in one epoch."""
    return np.random.default_rng([seed, epoch, task_index, 0]).permutation(size)
