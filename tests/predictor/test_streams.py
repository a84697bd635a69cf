"""Streaming input: frames pulled from an iterator or added one at a time give the offline outputs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import sam2pp

SIZE = 64  # the tiny preset at 64 px: tracking takes milliseconds per frame
FRAMES = 20  # at least max_obj_ptrs_in_encoder (16), as the offline equality needs


@pytest.fixture(scope="module")
def predictor():
    torch.manual_seed(0)
    return sam2pp.VideoPredictor(
        sam2pp.build_model(dataclasses.replace(sam2pp.configs.get("sam2pp_tiny"), image_size=SIZE)))


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    rng = np.random.default_rng(2)
    video = rng.integers(0, 60, (FRAMES, 40, 48, 3), dtype=np.uint8)
    for t in range(FRAMES):
        video[t, 10:22, 5 + t: 17 + t] = 220
    return video


def prompt(predictor, state, frames):
    predictor.add_mask(state, 0, 1, frames[0, ..., 0] > 200)
    predictor.add_box(state, 0, 2, (4, 9, 18, 23))


@pytest.fixture(scope="module")
def offline(predictor, frames):
    state = predictor.init_state(frames)
    prompt(predictor, state, frames)
    return list(predictor.propagate(state, progress=False))


def assert_same(got, want):
    assert [r.frame_idx for r in got] == [r.frame_idx for r in want]
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a.low_res_logits, b.low_res_logits, err_msg=f"frame {a.frame_idx}")
        np.testing.assert_array_equal(a.boxes_xyxy, b.boxes_xyxy, err_msg=f"frame {a.frame_idx}")


def test_an_iterator_of_frames_tracks_as_the_offline_video(predictor, frames, offline):
    pulled = []

    def camera():
        for t, frame in enumerate(frames):
            pulled.append(t)
            yield frame

    state = predictor.init_state(camera())
    assert state.num_frames == 0
    prompt(predictor, state, frames)  # pulls frame 0
    assert pulled == [0]
    results = []
    for result in predictor.propagate(state, progress=False):
        assert pulled[-1] <= result.frame_idx + 1  # frames are read as tracking reaches them, not ahead
        results.append(result)
    assert_same(results, offline)
    assert state.num_frames == FRAMES


def test_frames_added_one_at_a_time_track_as_the_offline_video(predictor, frames, offline):
    state = predictor.init_state()
    assert state.add_frame(frames[0]) == 0
    prompt(predictor, state, frames)
    results = list(predictor.propagate(state, progress=False))
    for frame in frames[1:]:
        i = state.add_frame(frame)
        results.extend(predictor.propagate(state, start_frame=i, max_frames=0, progress=False))
    assert_same(results, offline)


def test_a_stream_holds_only_its_last_frames_and_checks_what_it_gets(predictor, frames):
    state = predictor.init_state()
    for frame in frames:
        state.add_frame(frame)
    assert state.frame(FRAMES - 1).shape == (40, 48, 3)
    with pytest.raises(IndexError, match="frame 0 of the stream is no longer held: a stream keeps its last 8"):
        state.frame(0)
    with pytest.raises(ValueError, match="stream frame 20 is 10x40, unlike the first frame"):
        state.add_frame(frames[0][:, :10])
    with pytest.raises(ValueError, match="stream frame 20 must be uint8"):
        state.add_frame(frames[0].astype(np.float32))
    with pytest.raises(TypeError, match="add_frame needs a streaming session"):
        predictor.init_state(frames).add_frame(frames[0])
