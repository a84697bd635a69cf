"""VideoPredictor behaviour beyond parity: several objects and tasks, corrections, video inputs, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import sam2pp
from sam2pp.data.synthetic import make_video
from sam2pp.io.overlay import write_animation

FRAMES = 6


@pytest.fixture(scope="module")
def clip():
    return make_video(seed=3, num_frames=FRAMES, size=(160, 96), num_objects=2, points_per_object=1)


@pytest.fixture(scope="module")
def predictor():
    torch.manual_seed(0)
    return sam2pp.VideoPredictor(sam2pp.build_model("sam2pp_tiny"))


def prompt_all(predictor, state, clip, tasks=("mask", "box", "point")):
    """Object 1 by its mask, object 2 by its box, object 7 by a track point; only the requested tasks."""
    if "mask" in tasks:
        predictor.add_mask(state, 0, 1, clip.masks[0] == 1)
    if "box" in tasks:
        predictor.add_box(state, 0, 2, clip.boxes_xyxy[1, 0])
    if "point" in tasks:
        predictor.add_track_point(state, 0, 7, clip.points[0, 0], radius=8, sigma=3)


def run(predictor, frames, clip, tasks):
    state = predictor.init_state(frames)
    prompt_all(predictor, state, clip, tasks)
    return list(predictor.propagate(state, progress=False))


def test_mixed_tasks_track_as_each_task_alone(predictor, clip):
    mixed = run(predictor, clip.frames, clip, ("mask", "box", "point"))
    assert mixed[0].obj_ids == [1, 2, 7] and mixed[0].tasks == ["mask", "box", "point"]
    for row, task in enumerate(("mask", "box", "point")):
        alone = run(predictor, clip.frames, clip, (task,))
        for a, b in zip(mixed, alone, strict=True):
            np.testing.assert_allclose(a.low_res_logits[row], b.low_res_logits[0], atol=1e-5)
            np.testing.assert_allclose(a.object_score_logits[row], b.object_score_logits[0], atol=1e-5)
    last = mixed[-1]
    assert np.isnan(last.boxes_xyxy[[0, 2]]).all() and np.isfinite(last.boxes_xyxy[1]).all()
    assert np.isnan(last.points_xy[:2]).all() and np.isfinite(last.points_xy[2]).all()
    assert last.mask_logits.shape == (3, 96, 160) and last.masks.dtype == bool


def test_image_encoder_runs_once_per_frame_for_all_objects(predictor, clip):
    calls = []
    hook = predictor.model.image_encoder[None].register_forward_hook(lambda *a: calls.append(1))
    try:
        run(predictor, clip.frames, clip, ("mask", "box", "point"))
    finally:
        hook.remove()
    assert len(calls) == FRAMES


def test_object_added_mid_video_and_removed(predictor, clip):
    state = predictor.init_state(clip.frames)
    predictor.add_mask(state, 0, 1, clip.masks[0] == 1)
    first = list(predictor.propagate(state, progress=False))
    added = predictor.add_mask(state, 3, 2, clip.masks[3] == 2)
    assert added.obj_ids == [1, 2] and added.visible[1]
    want = clip.masks[3] == 2  # the prompt comes back, resampled through the model's 256 px and 64 px grids
    assert (added.masks[1] & want).sum() / (added.masks[1] | want).sum() > 0.95
    second = list(predictor.propagate(state, start_frame=3, progress=False))
    assert [r.frame_idx for r in second] == [3, 4, 5] and second[0].obj_ids == [1, 2]
    predictor.remove_object(state, 2)
    assert state.obj_ids == [1]
    again = list(predictor.propagate(state, progress=False))
    np.testing.assert_allclose(again[-1].low_res_logits, first[-1].low_res_logits, atol=1e-5)
    predictor.reset_state(state)
    assert state.obj_ids == []
    with pytest.raises(RuntimeError, match="no object has a prompt"):
        next(predictor.propagate(state, progress=False))


@pytest.mark.parametrize("keep", [False, True])
def test_correction_click_survives_propagation_only_when_kept_as_conditioning(clip, keep):
    torch.manual_seed(0)
    predictor = sam2pp.VideoPredictor(sam2pp.build_model("sam2pp_tiny"), add_all_frames_to_correct_as_cond=keep)
    state = predictor.init_state(clip.frames)
    predictor.add_mask(state, 0, 1, clip.masks[0] == 1)
    tracked = {r.frame_idx: r for r in predictor.propagate(state, progress=False)}
    corrected = predictor.add_points(state, 3, 1, [[5.0, 5.0]], [1])
    assert not np.allclose(corrected.low_res_logits, tracked[3].low_res_logits)
    after = {r.frame_idx: r for r in predictor.propagate(state, progress=False)}
    same_as_correction = np.allclose(after[3].low_res_logits, corrected.low_res_logits, atol=1e-6)
    assert same_as_correction == keep
    assert (3 in state.object(1).memory.cond) == keep


def test_reverse_propagation_and_frame_window(predictor, clip):
    state = predictor.init_state(clip.frames)
    predictor.add_box(state, 4, 2, clip.boxes_xyxy[1, 4])
    assert [r.frame_idx for r in predictor.propagate(state, reverse=True, progress=False)] == [4, 3, 2, 1, 0]
    assert [r.frame_idx for r in predictor.propagate(state, start_frame=1, max_frames=2, progress=False)] == [1, 2, 3]


def test_video_sources_agree(predictor, clip, tmp_path):
    """A uint8 array, a folder of PNG frames and a list of paths give the same frames and results."""
    from PIL import Image

    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(clip.frames):
        Image.fromarray(frame).save(folder / f"{i}.png")
    a = run(predictor, clip.frames, clip, ("mask",))
    b = run(predictor, str(folder), clip, ("mask",))
    c = run(predictor, sorted(folder.glob("*.png"), key=lambda p: int(p.stem)), clip, ("mask",))
    for x, y, z in zip(a, b, c):
        np.testing.assert_array_equal(x.low_res_logits, y.low_res_logits)
        np.testing.assert_array_equal(x.low_res_logits, z.low_res_logits)


def test_video_file_is_decoded_lazily(predictor, clip, tmp_path):
    path = write_animation(tmp_path / "clip.mp4", list(clip.frames), fps=5, progress=False)
    state = predictor.init_state(path, cache_size=2)
    assert (state.num_frames, state.video_width, state.video_height) == (FRAMES, 160, 96)
    assert np.abs(state.frame(4).astype(int) - clip.frames[4]).mean() < 12  # lossy H.264
    assert np.array_equal(state.frame(2), state.frame(2))
    for i in range(FRAMES):
        state.frames.model_input(i, 256)
    assert len(state.frames._cache) == 2


class TestBadInput:
    @pytest.fixture()
    def state(self, predictor, clip):
        return predictor.init_state(clip.frames)

    def test_mask_of_wrong_size(self, predictor, state):
        with pytest.raises(ValueError, match="mask is 10x10 but the video is 160x96"):
            predictor.add_mask(state, 0, 1, np.ones((10, 10), bool))
        with pytest.raises(ValueError, match="mask must be 2-D"):
            predictor.add_mask(state, 0, 1, np.ones((96, 160, 3), bool))
        assert state.obj_ids == []  # nothing half-added

    def test_box_outside_or_inverted(self, predictor, state):
        with pytest.raises(ValueError, match="x1 < x0"):
            predictor.add_box(state, 0, 1, [50, 10, 20, 40])
        with pytest.raises(ValueError, match="outside the 160x96 frame"):
            predictor.add_box(state, 0, 1, [10, 10, 200, 40])
        with pytest.raises(ValueError, match="4 numbers"):
            predictor.add_box(state, 0, 1, [10, 10, 20])

    def test_frame_out_of_range(self, predictor, state):
        with pytest.raises(IndexError, match=r"frame index 6 is out of range: the video has 6 frames \(0..5\)"):
            predictor.add_track_point(state, 6, 0, [5, 5])
        with pytest.raises(IndexError, match="frame index -1"):
            predictor.add_points(state, -1, 0, [[5, 5]], [1])

    def test_unknown_object_and_second_task(self, predictor, state, clip):
        with pytest.raises(KeyError, match=r"unknown object id 9; this session has objects \[\]"):
            predictor.remove_object(state, 9)
        predictor.add_mask(state, 0, 1, clip.masks[0] == 1)
        with pytest.raises(ValueError, match="object 1 is tracked with task 'mask'; it cannot take a 'box' prompt"):
            predictor.add_box(state, 0, 1, [10, 10, 20, 20])
        with pytest.raises(ValueError, match="non-negative integers"):
            predictor.add_mask(state, 0, -2, clip.masks[0] == 1)
        assert state.obj_ids == [1] and state.object(1).task == "mask"

    def test_points_shapes_and_labels(self, predictor, state):
        with pytest.raises(ValueError, match=r"labels must have shape \(2,\)"):
            predictor.add_points(state, 0, 1, [[1, 2], [3, 4]], [1])
        with pytest.raises(ValueError, match="points must have shape"):
            predictor.add_points(state, 0, 1, [[1, 2, 3]], [1])
        with pytest.raises(ValueError, match="use add_box"):
            predictor.add_points(state, 0, 1, [[1, 2], [3, 4]], [2, 3])
        with pytest.raises(ValueError, match="outside"):
            predictor.add_track_point(state, 0, 1, [500, 5])

    def test_empty_or_unreadable_video(self, predictor, tmp_path):
        (tmp_path / "empty").mkdir()
        with pytest.raises(ValueError, match="no frames"):
            predictor.init_state(tmp_path / "empty")
        (tmp_path / "bad").mkdir()
        (tmp_path / "bad" / "0.jpg").write_bytes(b"not an image")
        with pytest.raises(ValueError, match="cannot read image"):
            predictor.init_state(tmp_path / "bad")
        (tmp_path / "broken.mp4").write_bytes(b"\x00" * 64)
        with pytest.raises(ValueError, match="cannot read video"):
            predictor.init_state(tmp_path / "broken.mp4")
        with pytest.raises(FileNotFoundError, match="does not exist"):
            predictor.init_state(tmp_path / "nowhere.mp4")
        with pytest.raises(ValueError, match=r"uint8 \(T, H, W, 3\)"):
            predictor.init_state(np.zeros((2, 8, 8), np.uint8))


def test_box_as_segmentation_prompt_and_non_overlap(clip):
    torch.manual_seed(0)
    predictor = sam2pp.VideoPredictor(sam2pp.build_model("sam2pp_tiny"), non_overlap_masks=True)
    state = predictor.init_state(clip.frames)
    first = predictor.add_box(state, 0, 1, clip.boxes_xyxy[0, 0], task="mask")
    assert first.tasks == ["mask"] and np.isnan(first.boxes_xyxy).all()
    predictor.add_box(state, 0, 2, clip.boxes_xyxy[0, 0], task="mask")
    for r in predictor.propagate(state, progress=False):
        assert not (r.masks[0] & r.masks[1]).any()
    assert r.label_map().shape == (96, 160)


def test_tracks_under_bfloat16_autocast(predictor, clip):
    """The dtype path the published tools use on CUDA (bf16 autocast), exercised on the CPU."""
    plain = run(predictor, clip.frames, clip, ("mask", "box", "point"))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = run(predictor, clip.frames, clip, ("mask", "box", "point"))
    for a, b in zip(plain, mixed):
        assert b.mask_logits.dtype == np.float32 and np.isfinite(b.mask_logits).all()
        assert np.isfinite(b.object_score_logits).all()
        agree = (a.masks == b.masks).mean()
        assert agree > 0.97, f"frame {a.frame_idx}: bf16 masks agree with float32 on only {agree:.1%} of pixels"


def test_a_track_point_is_drawn_with_the_model_configs_disc_by_default(predictor, clip):
    cfg = predictor.model.config
    assert (cfg.point_prompt_radius, cfg.point_prompt_sigma) == (12, 4.0)  # sam2pp_tiny: 50 / 16 at 1024, scaled
    defaults, explicit, other = (predictor.init_state(clip.frames[:2]) for _ in range(3))
    got = predictor.add_track_point(defaults, 0, 1, clip.points[0, 0]).low_res_logits
    np.testing.assert_array_equal(got, predictor.add_track_point(explicit, 0, 1, clip.points[0, 0], 12, 4.0)
                                  .low_res_logits)
    assert not np.array_equal(got, predictor.add_track_point(other, 0, 1, clip.points[0, 0], 50, 16).low_res_logits)


@pytest.mark.parametrize(("radius", "sigma", "distinct"), [(12, 4.0, True), (5, 2.0, False), (1, 0.5, False)])
def test_a_point_prompts_memory_keeps_the_point_only_for_a_wide_enough_disc(predictor, radius, sigma, distinct):
    """The prompt's memory is encoded from its 4x down-sampled logits, binarized: the tiny preset's default disc
    survives that, so two points get two memories; a smaller disc leaves every point the same, empty memory (why the
    demo model trains and tracks points with radius 12)."""
    frames = np.full((2, 128, 128, 3), 120, np.uint8)
    state = predictor.init_state(frames)
    for obj_id, xy in enumerate([(30.0, 40.0), (90.0, 70.0)]):
        predictor.add_track_point(state, 0, obj_id, xy, radius, sigma)
    list(predictor.propagate(state, max_frames=0, progress=False))
    memories = [state.object(i).memory.cond[0].maskmem_features for i in (0, 1)]
    assert (not torch.equal(*memories)) == distinct
