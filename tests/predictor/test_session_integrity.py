"""A session stays consistent: failed prompts change nothing, propagation notices changed objects, arguments are
checked as documented."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

import sam2pp
from sam2pp.data.synthetic import make_video

FRAMES = 4


@pytest.fixture(scope="module")
def clip():
    return make_video(seed=5, num_frames=FRAMES, size=(96, 64), num_objects=2, points_per_object=1)


@pytest.fixture(scope="module")
def predictor():
    torch.manual_seed(0)
    return sam2pp.VideoPredictor(sam2pp.build_model("sam2pp_tiny"))


def snapshot(state) -> dict:
    """What a session holds per object: task, prompted frames, pending and memory frames."""
    return {
        obj_id: (obj.task, sorted(obj.prompts), sorted(obj.pending.cond), sorted(obj.pending.non_cond),
                 sorted(obj.memory.cond), sorted(obj.memory.non_cond))
        for obj_id, obj in state.objects.items()
    }


def test_prompt_on_an_undecodable_frame_leaves_no_object(predictor, clip, tmp_path):
    for t, frame in enumerate(clip.frames):
        Image.fromarray(frame).save(tmp_path / f"{t:05d}.png")
    (tmp_path / "00003.png").write_bytes(b"not an image")
    state = predictor.init_state(tmp_path)
    predictor.add_mask(state, 0, 1, clip.masks[0] == 1)
    before = snapshot(state)
    with pytest.raises(ValueError, match="00003.png"):
        predictor.add_box(state, 3, 5, clip.boxes_xyxy[1, 0])
    assert snapshot(state) == before
    assert [r.frame_idx for r in predictor.propagate(state, max_frames=2, progress=False)] == [0, 1, 2]


PROMPTS = {
    "new object": lambda predictor, state, clip: predictor.add_track_point(state, 2, 2, clip.points[2, 0]),
    "new frame of an object": lambda predictor, state, clip: predictor.add_mask(state, 2, 1, clip.masks[2] == 1),
    "more clicks on a frame": lambda predictor, state, clip: predictor.add_points(state, 0, 1, [[9.0, 9.0]], [1],
                                                                                 clear_old_points=False),
}


@pytest.mark.parametrize("prompt", PROMPTS.values(), ids=PROMPTS.keys())
def test_interrupt_inside_the_model_changes_nothing(predictor, clip, monkeypatch, prompt):
    state = predictor.init_state(clip.frames)
    predictor.add_mask(state, 0, 1, clip.masks[0] == 1)
    before, mask_prompt = snapshot(state), state.object(1).prompts[0]

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(predictor.model, "encode_image", interrupted)
        patch.setattr(predictor.tracker, "step", interrupted)
        with pytest.raises(KeyboardInterrupt):
            prompt(predictor, state, clip)
    assert snapshot(state) == before and state.object(1).prompts[0] is mask_prompt
    assert len(list(predictor.propagate(state, progress=False))) == FRAMES


def test_adding_or_removing_an_object_during_propagation_says_so(predictor, clip):
    state = predictor.init_state(clip.frames)
    predictor.add_mask(state, 0, 1, clip.masks[0] == 1)
    run = predictor.propagate(state, progress=False)
    next(run)
    predictor.add_mask(state, 1, 2, clip.masks[1] == 2)
    with pytest.raises(RuntimeError, match=r"changed during propagation \(objects added: \[2\], removed: \[\]\)"):
        next(run)
    results = list(predictor.propagate(state, progress=False))
    assert len(results) == FRAMES and results[-1].obj_ids == [1, 2]
    run = predictor.propagate(state, progress=False)
    next(run)
    predictor.remove_object(state, 1)
    with pytest.raises(RuntimeError, match=r"objects added: \[\], removed: \[1\]"):
        next(run)


def test_a_correction_during_propagation_does_not_stop_it(predictor, clip):
    state = predictor.init_state(clip.frames)
    predictor.add_mask(state, 0, 1, clip.masks[0] == 1)
    run = predictor.propagate(state, progress=False)
    next(run)
    predictor.add_points(state, 2, 1, [[10.0, 10.0]], [1])
    assert [r.frame_idx for r in run] == [1, 2, 3]


def test_frame_index_and_max_frames_must_be_integers(predictor, clip):
    state = predictor.init_state(clip.frames)
    with pytest.raises(TypeError, match="frame index must be an integer, got True"):
        predictor.add_mask(state, True, 1, clip.masks[1] == 1)
    with pytest.raises(TypeError, match="got 1.0"):
        state.frame(1.0)
    assert state.obj_ids == []
    predictor.add_mask(state, 1, 1, clip.masks[1] == 1)
    with pytest.raises(ValueError, match="max_frames must be an integer >= 0, got True"):
        next(predictor.propagate(state, max_frames=True, progress=False))
    with pytest.raises(TypeError, match="frame index must be an integer"):
        next(predictor.propagate(state, start_frame=False, progress=False))


def test_max_frames_counts_as_documented(predictor, clip):
    """start_frame and max_frames frames after it, as the published predictor counts and the docstring says."""
    assert "up to max_frames + 1 results" in " ".join(sam2pp.VideoPredictor.propagate.__doc__.split())
    state = predictor.init_state(clip.frames)
    predictor.add_mask(state, 0, 1, clip.masks[0] == 1)
    for k in (0, 2):
        assert len(list(predictor.propagate(state, max_frames=k, progress=False))) == k + 1
