"""Many objects: the objects of one task go through memory attention and the memory encoder as one batch, with the
outputs of tracking them one at a time."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import sam2pp

SIZE = 64  # the tiny preset at 64 px: tracking takes milliseconds per frame
LOGIT_ATOL = 1e-5


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return sam2pp.build_model(dataclasses.replace(sam2pp.configs.get("sam2pp_tiny"), image_size=SIZE))


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    """(16, 48, 48, 3) uint8: four bright bars drifting over noise."""
    rng = np.random.default_rng(1)
    video = rng.integers(0, 60, (16, 48, 48, 3), dtype=np.uint8)
    for t in range(16):
        for k in range(4):
            video[t, 2 + 11 * k: 9 + 11 * k, 4 + t: 20 + t] = 180 + 15 * k
    return video


def prompt(p, state, frames):
    """Four mask objects (two prompted on frame 0, two on frame 5: their memories differ in layout on most frames
    before 12), two boxes and two track points."""
    for k, f in enumerate((0, 0, 5, 5)):
        p.add_mask(state, f, k, frames[f, ..., 0] == 180 + 15 * k)
    p.add_box(state, 0, 10, (3, 1, 21, 10))
    p.add_box(state, 0, 11, (3, 24, 21, 32))
    p.add_track_point(state, 0, 20, (10, 5), radius=6, sigma=2)
    p.add_track_point(state, 0, 21, (12, 38), radius=6, sigma=2)


def run(net, frames, **kwargs):
    p = sam2pp.VideoPredictor(net, **kwargs)
    state = p.init_state(frames)
    prompt(p, state, frames)
    results = list(p.propagate(state, progress=False))
    return results + list(p.propagate(state, start_frame=5, reverse=True, progress=False))


def test_batched_objects_equal_one_at_a_time(net, frames):
    batched, single = run(net, frames), run(net, frames, batch_objects=False)
    assert [r.frame_idx for r in batched] == [r.frame_idx for r in single] and len(batched) == 22
    for a, b in zip(batched, single):
        where = f"frame {a.frame_idx}"
        np.testing.assert_allclose(a.low_res_logits, b.low_res_logits, atol=LOGIT_ATOL, rtol=0, err_msg=where)
        np.testing.assert_allclose(a.object_score_logits, b.object_score_logits, atol=LOGIT_ATOL, rtol=0,
                                   err_msg=where)
        np.testing.assert_allclose(a.boxes_xyxy, b.boxes_xyxy, atol=1e-3, rtol=0, err_msg=where)
        np.testing.assert_array_equal(a.points_xy, b.points_xy, err_msg=where)


def test_memory_attention_runs_once_per_task_and_memory_layout(net, frames, monkeypatch):
    calls = []
    attend = net.attend_memory

    def counting(task, vision, *args):
        calls.append((task, vision.shape[0]))
        return attend(task, vision, *args)

    monkeypatch.setattr(net, "attend_memory", counting)
    p = sam2pp.VideoPredictor(net)
    state = p.init_state(frames)
    prompt(p, state, frames)
    batches = {}
    for result in p.propagate(state, progress=False):
        batches[result.frame_idx] = sorted(calls)
        calls.clear()
    assert batches[0] == [("mask", 2)]  # the masks prompted on frame 5; the others are conditioning outputs
    assert batches[5] == [("box", 2), ("mask", 2), ("point", 2)]
    assert batches[8] == [("box", 2), ("mask", 2), ("mask", 2), ("point", 2)]  # two memory layouts
    assert batches[13] == [("box", 2), ("mask", 4), ("point", 2)]
