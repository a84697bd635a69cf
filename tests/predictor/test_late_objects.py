"""Objects whose first prompt is not on the first tracked frame (issue 12, item 1).

Before such an object has an object pointer, its memory tokens are the stored memories alone, kept in bfloat16 as
published; they must be computed in float32 on the CPU (a bfloat16/float matmul used to raise and yield nothing).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import sam2pp
from sam2pp.data.synthetic import make_video

FRAMES = 6


@pytest.fixture(scope="module")
def clip():
    return make_video(seed=5, num_frames=FRAMES, size=(160, 96), num_objects=2, points_per_object=1)


@pytest.fixture(scope="module")
def predictor():
    torch.manual_seed(0)
    return sam2pp.VideoPredictor(sam2pp.build_model("sam2pp_tiny"))


def test_second_object_prompted_later_is_tracked(predictor, clip):
    state = predictor.init_state(clip.frames)
    predictor.add_mask(state, 0, 1, clip.masks[0] == 1)
    predictor.add_mask(state, 3, 2, clip.masks[3] == 2)
    results = list(predictor.propagate(state, progress=False))
    assert [r.frame_idx for r in results] == list(range(FRAMES))
    assert all(np.isfinite(r.mask_logits).all() for r in results)


@pytest.mark.parametrize("task", ["mask", "box", "point"])
def test_propagation_from_frame_zero_with_a_later_prompt(predictor, clip, task):
    state = predictor.init_state(clip.frames)
    if task == "mask":
        predictor.add_mask(state, 2, 1, clip.masks[2] == 1)
    elif task == "box":
        predictor.add_box(state, 2, 1, clip.boxes_xyxy[0, 2])
    else:
        predictor.add_track_point(state, 2, 1, clip.points[2, 0], radius=8, sigma=3)
    results = list(predictor.propagate(state, start_frame=0, progress=False))
    assert [r.frame_idx for r in results][-1] == FRAMES - 1
    assert len(results) >= FRAMES - 2


def test_reverse_from_the_last_frame_with_the_prompt_on_frame_zero(predictor, clip):
    state = predictor.init_state(clip.frames)
    predictor.add_mask(state, 0, 1, clip.masks[0] == 1)
    results = list(predictor.propagate(state, start_frame=FRAMES - 1, reverse=True, progress=False))
    assert [r.frame_idx for r in results] == list(range(FRAMES - 1, -1, -1))
    assert all(np.isfinite(r.mask_logits).all() for r in results)
