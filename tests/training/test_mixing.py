"""Task mixing and sample order per step: published probabilities and exhaustion, determinism, rank sharding."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from sam2pp.training.mixing import DEFAULT_PROBS, EpochSchedule


def plans(schedule: EpochSchedule, epoch: int = 0) -> list:
    return [schedule.step(epoch, i) for i in range(schedule.steps_per_epoch(epoch))]


def test_task_frequencies_follow_the_probabilities_before_any_task_runs_out():
    schedule = EpochSchedule({"mask": 20000, "box": 20000, "point": 20000}, seed=1)
    counts = Counter(schedule.step(0, i).task for i in range(3000))
    for task, p in DEFAULT_PROBS.items():
        assert abs(counts[task] / 3000 - p) < 0.04, counts


def test_exhaustion_uses_every_batch_once_and_ends_the_epoch_when_all_are_used():
    sizes = {"mask": 30, "box": 6, "point": 40}
    schedule = EpochSchedule(sizes, seed=2)
    steps = plans(schedule)
    assert schedule.steps_per_epoch(0) == 76 == len(steps)
    for task, size in sizes.items():
        mine = [s for s in steps if s.task == task]
        assert [s.batch for s in mine] == list(range(size))
        assert sorted(s.indices[0][0] for s in mine) == list(range(size)), "each sample once per epoch"
    last_box = max(i for i, s in enumerate(steps) if s.task == "box")
    assert last_box < 40, "the small task is used up early"
    tail = Counter(s.task for s in steps[last_box + 1 :])
    assert set(tail) == {"mask", "point"}
    ratio = tail["point"] / (tail["point"] + tail["mask"])
    assert 0.4 < ratio < 0.75, "after exhaustion the rest keep their relative odds (0.4 / 0.7)"


def test_a_task_with_probability_zero_is_never_drawn():
    schedule = EpochSchedule({"mask": 10, "box": 10, "point": 10}, probs={"mask": 0.5, "box": 0.0, "point": 0.5})
    assert {s.task for s in plans(schedule)} == {"mask", "point"}
    assert schedule.steps_per_epoch(0) == 20


def test_incomplete_global_batches_are_dropped():
    schedule = EpochSchedule({"mask": 7, "point": 2}, clips_per_step=2, probs={"mask": 1.0, "point": 1.0})
    assert schedule.batches("mask") == 3 and schedule.batches("point") == 1
    assert schedule.steps_per_epoch(0) == 4
    used = [i for s in plans(schedule) if s.task == "mask" for i in s.indices[0]]
    assert len(used) == len(set(used)) == 6


def test_plans_are_a_pure_function_of_seed_epoch_and_step():
    sizes = {"mask": 12, "box": 5, "point": 9}
    first, second = EpochSchedule(sizes, seed=4), EpochSchedule(sizes, seed=4)
    forward = plans(first, epoch=3)
    backward = [second.step(3, i) for i in reversed(range(second.steps_per_epoch(3)))][::-1]
    assert forward == backward, "a resumed run (fresh object, any call order) continues exactly"
    next_epoch = plans(first, epoch=4)
    assert [s.task for s in next_epoch] == [s.task for s in forward], "task draws restart from the seed each epoch"
    assert [s.indices for s in next_epoch] != [s.indices for s in forward], "sample order is reshuffled each epoch"
    other_seed = plans(EpochSchedule(sizes, seed=5), epoch=3)
    assert [s.task for s in other_seed] != [s.task for s in forward]
    rng_a, rng_b = first.clip_rng(3, 2, 0, 0), second.clip_rng(3, 2, 0, 0)
    assert rng_a.integers(1 << 30) == rng_b.integers(1 << 30)


def test_two_ranks_with_one_clip_see_what_one_rank_with_two_clips_sees():
    sizes = {"mask": 21, "box": 8, "point": 30}
    single = EpochSchedule(sizes, seed=6, clips_per_step=2, world_size=1)
    double = EpochSchedule(sizes, seed=6, clips_per_step=1, world_size=2)
    assert single.steps_per_epoch(1) == double.steps_per_epoch(1) == 10 + 4 + 15
    for a, b in zip(plans(single, 1), plans(double, 1)):
        assert a.task == b.task and a.batch == b.batch
        assert len(a.indices) == 1 and len(a.indices[0]) == 2
        assert len(b.indices) == 2 and all(len(r) == 1 for r in b.indices)
        assert a.for_rank(0) == b.for_rank(0) + b.for_rank(1)
    for rank in range(2):
        a, b = single.clip_rng(1, 5, 0, rank), double.clip_rng(1, 5, rank, 0)
        assert np.array_equal(a.random(4), b.random(4)), "the same clip is cut the same way"
    assert not np.array_equal(single.clip_rng(1, 5, 0, 0).random(4), single.clip_rng(1, 5, 0, 1).random(4))


def test_ranks_take_every_world_th_sample_of_the_global_batch():
    schedule = EpochSchedule({"point": 24}, probs={"point": 1.0}, clips_per_step=3, world_size=2)
    assert schedule.global_batch == 6 and schedule.steps_per_epoch(0) == 4
    flat = []
    for plan in plans(schedule):
        r0, r1 = plan.for_rank(0), plan.for_rank(1)
        assert len(r0) == len(r1) == 3 and not set(r0) & set(r1)
        merged = [v for pair in zip(r0, r1) for v in pair]
        flat += merged
    assert sorted(flat) == list(range(24))


def test_endless_sources_get_new_indices_every_epoch():
    schedule = EpochSchedule({"box": 4}, probs={"box": 1.0}, endless=frozenset({"box"}))
    for epoch in (0, 2):
        used = sorted(i for s in plans(schedule, epoch) for i in s.indices[0])
        assert used == list(range(4 * epoch, 4 * epoch + 4))


@pytest.mark.parametrize("kwargs, words", [
    ({"sizes": {"segment": 3}}, "tasks"),
    ({"sizes": {"mask": -1}}, "non-negative"),
    ({"sizes": {"mask": 3}, "probs": {"box": 1.0}}, "no probability"),
    ({"sizes": {"mask": 3}, "probs": {"mask": 0.0}}, "positive sum"),
    ({"sizes": {"mask": 3}, "world_size": 0}, "positive"),
    ({"sizes": {"mask": 3}, "endless": frozenset({"box"})}, "endless"),
])
def test_bad_schedules_are_refused(kwargs, words):
    with pytest.raises(ValueError, match=words):
        EpochSchedule(**kwargs)


def test_steps_past_the_epoch_are_refused():
    schedule = EpochSchedule({"mask": 3}, probs={"mask": 1.0})
    with pytest.raises(IndexError, match="3 steps"):
        schedule.step(0, 3)
