"""The synthetic generator: determinism, ground-truth consistency, the scripted events, the opt-in events of
training clips, the written layout, and that the shipped data_samples/ are what the script regenerates."""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sam2pp.data.synthetic import (
    SHIPPED_SAMPLES,
    TRAINING_SPEC,
    SyntheticSpec,
    SyntheticVideo,
    box_file_name,
    make_video,
)
from sam2pp.io.formats import list_frames, read_boxes_txt, read_palette_png, read_points_npz
from conftest import ROOT, need

SAMPLES = ROOT / "data_samples"
SMALL = dict(num_frames=16, size=(128, 96), num_objects=3, points_per_object=3)
OPTIONS = [dict(distractors=1), dict(reentry=True), dict(rotation=1.0), dict(scaling=0.3), dict(wander=0.1),
           dict(zoom=0.3), dict(shake=2.0), dict(brightness=0.3), dict(clutter=3)]


@pytest.fixture(scope="module")
def video() -> SyntheticVideo:
    return make_video(seed=3, num_frames=24, size=(240, 144), num_objects=4, points_per_object=3)


@pytest.fixture(scope="module")
def rich() -> SyntheticVideo:
    """A training clip: every opt-in event on."""
    return dataclasses.replace(TRAINING_SPEC, seed=5, size=(160, 120), points_per_object=3).generate()


def test_shapes_and_dtypes(video: SyntheticVideo) -> None:
    assert video.frames.shape == (24, 144, 240, 3) and video.frames.dtype == np.uint8
    assert video.masks.shape == (24, 144, 240) and video.masks.dtype == np.uint8
    assert video.boxes_xywh.shape == (4, 24, 4)
    assert video.points.shape == (24, 12, 2) and video.points.dtype == np.float32
    assert video.visibs.shape == (24, 12) and video.visibs.dtype == bool
    assert video.obj_ids == (1, 2, 3, 4)
    assert video.point_obj_ids.tolist() == [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]
    assert video.size == (240, 144)
    assert set(np.unique(video.masks)) <= {0, 1, 2, 3, 4}


def test_same_seed_same_video_other_seed_other_video(video: SyntheticVideo) -> None:
    again = make_video(seed=3, num_frames=24, size=(240, 144), num_objects=4, points_per_object=3)
    for name in ("frames", "masks", "points", "visibs"):
        np.testing.assert_array_equal(getattr(again, name), getattr(video, name))
    np.testing.assert_array_equal(again.boxes_xywh, video.boxes_xywh)
    other = make_video(seed=4, num_frames=24, size=(240, 144), num_objects=4, points_per_object=3)
    assert not np.array_equal(other.masks, video.masks)


@pytest.mark.parametrize("clip", ["video", "rich"])
def test_boxes_are_the_tight_boxes_of_the_masks(clip: str, request: pytest.FixtureRequest) -> None:
    video = request.getfixturevalue(clip)
    for o, obj_id in enumerate(video.obj_ids):
        for t in range(video.num_frames):
            ys, xs = np.nonzero(video.masks[t] == obj_id)
            if len(xs) == 0:
                assert np.isnan(video.boxes_xywh[o, t]).all()
            else:
                expected = [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
                np.testing.assert_array_equal(video.boxes_xywh[o, t], expected)


@pytest.mark.parametrize("clip", ["video", "rich"])
def test_visible_points_lie_on_their_object_and_hidden_ones_do_not(clip: str, request: pytest.FixtureRequest) -> None:
    video = request.getfixturevalue(clip)
    width, height = video.size
    col = np.round(video.points[..., 0]).astype(int)
    row = np.round(video.points[..., 1]).astype(int)
    x, y = video.points[..., 0], video.points[..., 1]
    inside = (col >= 0) & (col < width) & (row >= 0) & (row < height) & (x >= 0) & (x <= width) & (y >= 0)
    inside &= y <= height  # a point beyond the frame's edge is hidden even when its nearest pixel is in the frame
    t, n = np.nonzero(video.visibs)
    assert (video.masks[t, row[t, n], col[t, n]] == video.point_obj_ids[n]).all()
    t, n = np.nonzero(~video.visibs & inside)
    assert (video.masks[t, row[t, n], col[t, n]] != video.point_obj_ids[n]).all()


def test_points_move_with_their_object(video: SyntheticVideo) -> None:
    """A point's displacement follows its object's box centre, not the other objects'."""
    centres = video.boxes_xyxy[..., :2] / 2 + video.boxes_xyxy[..., 2:] / 2  # (O, T, 2)
    first, last = 0, 10
    for n, owner in enumerate(video.point_obj_ids):
        moved = video.points[last, n] - video.points[first, n]
        box_moved = centres[owner - 1, last] - centres[owner - 1, first]
        if np.isfinite(box_moved).all() and video.visibs[[first, last], n].all():
            assert np.linalg.norm(moved - box_moved) < 0.5 * np.linalg.norm(box_moved) + 12


def test_scripted_events_happen() -> None:
    """Object 1 changes scale, object 2 hides part of it, object 3 leaves the frame for good."""
    video = SHIPPED_SAMPLES["synth-shapes"].generate()
    area = (video.masks == 1).sum(axis=(1, 2))
    assert not 0.8 < area[-1] / area[0] < 1.25
    on_main = video.point_obj_ids == 1
    assert not video.visibs[:, on_main].all(), "no point of object 1 is ever occluded"
    gone = np.isnan(video.boxes_xywh[2, :, 0])
    assert not gone[0] and gone[-1]
    assert gone[np.argmax(gone):].all(), "object 3 came back after leaving"
    assert not video.visibs[-1, video.point_obj_ids == 3].any()


def test_frames_are_textured_not_flat(video: SyntheticVideo) -> None:
    background = video.frames[0][video.masks[0] == 0].astype(float)
    assert background.std(axis=0).min() > 5
    assert not np.array_equal(video.frames[0], video.frames[-1])


@pytest.mark.parametrize(
    "kwargs",
    [dict(num_frames=1), dict(size=(16, 200)), dict(num_objects=0), dict(points_per_object=-1),
     dict(distractors=-1), dict(distractors=1, num_objects=255), dict(rotation=-0.5), dict(zoom=float("nan")),
     dict(brightness=0.6), dict(clutter=-2)],
)
def test_bad_arguments_are_named(kwargs: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        make_video(**kwargs)


def test_spec_fields_are_the_arguments_of_make_video_with_the_same_defaults() -> None:
    parameters = inspect.signature(make_video).parameters
    assert [f.name for f in dataclasses.fields(SyntheticSpec)] == list(parameters)
    for f in dataclasses.fields(SyntheticSpec):
        assert f.default == parameters[f.name].default, f.name


def test_training_spec_turns_every_option_on(rich: SyntheticVideo) -> None:
    plain = SyntheticSpec()
    for name in ("distractors", "reentry", "rotation", "scaling", "wander", "zoom", "shake", "brightness", "clutter"):
        assert getattr(TRAINING_SPEC, name) != getattr(plain, name), name
    assert rich.obj_ids == (1, 2, 3, 4) and rich.distractor_of == {4: 1}
    assert set(rich.point_obj_ids.tolist()) == {1, 2, 3, 4}


@pytest.mark.parametrize("option", OPTIONS, ids=lambda option: next(iter(option)))
def test_each_option_changes_the_video_and_switched_off_changes_nothing(option: dict) -> None:
    base = make_video(seed=2, **SMALL)
    off = make_video(seed=2, **SMALL, **{name: type(value)() for name, value in option.items()})
    for name in ("frames", "masks", "points", "visibs"):
        np.testing.assert_array_equal(getattr(off, name), getattr(base, name))
    on = make_video(seed=2, **SMALL, **option)
    assert not np.array_equal(on.frames, base.frames)
    name = next(iter(option))
    assert np.array_equal(on.masks, base.masks) == (name in ("brightness", "clutter"))
    moves_the_objects = name not in ("brightness", "clutter", "distractors")
    assert np.array_equal(on.points[:, : base.points.shape[1]], base.points) != moves_the_objects


def test_rich_clips_are_deterministic(rich: SyntheticVideo) -> None:
    spec = dataclasses.replace(TRAINING_SPEC, seed=5, size=(160, 120), points_per_object=3)
    again = spec.generate()
    for name in ("frames", "masks", "points", "visibs", "point_obj_ids"):
        np.testing.assert_array_equal(getattr(again, name), getattr(rich, name))
    np.testing.assert_array_equal(again.boxes_xywh, rich.boxes_xywh)
    assert not np.array_equal(dataclasses.replace(spec, seed=6).generate().masks, rich.masks)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reentering_object_is_gone_for_a_while_then_seen_again(seed: int) -> None:
    video = make_video(seed=seed, reentry=True, **SMALL)
    seen = ~np.isnan(video.boxes_xywh[2, :, 0])
    left = int(np.argmin(seen))
    assert seen[0] and not seen[left], "object 3 never left"
    assert seen[left:].any(), "object 3 never came back"
    assert seen[-1]
    points_seen = video.visibs[:, video.point_obj_ids == 3].any(axis=1)
    assert not points_seen[~seen].any()
    assert points_seen[0] and points_seen[left:].any()


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_distractors_look_alike_have_their_own_ids_and_pass_close(seed: int) -> None:
    video = make_video(seed=seed, distractors=2, **SMALL)
    assert video.obj_ids == (1, 2, 3, 4, 5) and video.distractor_of == {4: 1, 5: 2}
    assert video.point_obj_ids.tolist() == [1] * 3 + [2] * 3 + [3] * 3 + [4] * 3 + [5] * 3
    colour = {obj_id: video.frames[video.masks == obj_id].mean(axis=0) for obj_id in video.obj_ids}
    for distractor, model in video.distractor_of.items():
        assert (video.masks == distractor).any()
        gaps = {obj_id: np.abs(colour[distractor] - colour[obj_id]).max() for obj_id in (1, 2, 3)}
        assert gaps[model] < 25 and gaps[model] == min(gaps.values()), gaps
        a, b = video.boxes_xyxy[distractor - 1], video.boxes_xyxy[model - 1]
        overlap_x = np.minimum(a[:, 2], b[:, 2]) > np.maximum(a[:, 0], b[:, 0])
        overlap_y = np.minimum(a[:, 3], b[:, 3]) > np.maximum(a[:, 1], b[:, 1])
        assert (overlap_x & overlap_y).any(), f"distractor {distractor} never came near object {model}"


def test_distractors_leave_the_other_objects_alone() -> None:
    base = make_video(seed=4, **SMALL)
    video = make_video(seed=4, distractors=1, **SMALL)
    np.testing.assert_array_equal(video.points[:, :9], base.points)
    elsewhere = video.masks != 4
    np.testing.assert_array_equal(video.masks[elsewhere], base.masks[elsewhere])


def test_zoom_enlarges_and_light_only_changes_colours() -> None:
    base = make_video(seed=3, **SMALL)
    zoomed = make_video(seed=3, zoom=0.3, **SMALL)
    assert ((zoomed.masks == 1).sum(axis=(1, 2)) >= (base.masks == 1).sum(axis=(1, 2))).all()
    assert (zoomed.masks == 1).sum() > 1.05 * (base.masks == 1).sum()
    lit = make_video(seed=3, brightness=0.3, **SMALL)
    ratio = lit.frames.mean(axis=(1, 2, 3)) / base.frames.mean(axis=(1, 2, 3))
    assert ratio[0] == pytest.approx(1, abs=1e-3)
    assert np.abs(ratio - 1).max() > 0.03 and (np.abs(ratio - 1) < 0.32).all()


def test_write_round_trips_through_the_contract_formats(video: SyntheticVideo, tmp_path: Path) -> None:
    files = video.write(tmp_path, "clip")
    frames = list_frames(tmp_path / "JPEGImages" / "clip")
    assert [p.name for p in frames[:2]] == ["00000.jpg", "00001.jpg"] and len(frames) == video.num_frames
    decoded = np.stack([np.asarray(Image.open(p)) for p in frames]).astype(float)
    assert np.abs(decoded - video.frames).mean() < 4
    masks = np.stack([read_palette_png(p) for p in list_frames(files.annotations)])
    np.testing.assert_array_equal(masks, video.masks)
    assert [p.name for p in files.boxes] == ["clip.txt", "clip_2.txt", "clip_3.txt", "clip_4.txt"]
    for o, path in enumerate(files.boxes):
        np.testing.assert_array_equal(read_boxes_txt(path), video.boxes_xywh[o])
    tracks = read_points_npz(files.points)
    np.testing.assert_array_equal(tracks.trajs_2d, video.points)
    np.testing.assert_array_equal(tracks.visibs, video.visibs)
    assert tracks.size == video.size


def test_box_file_names() -> None:
    assert box_file_name("cat", 1) == "cat.txt"
    assert box_file_name("cat", 7) == "cat_7.txt"


def _load_script():
    path = ROOT / "scripts" / "make_data_samples.py"
    spec = importlib.util.spec_from_file_location("make_data_samples", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(SHIPPED_SAMPLES))
def test_script_reproduces_the_shipped_sample(name: str, tmp_path: Path) -> None:
    shipped = need(SAMPLES / name)
    _load_script().main(["--out", str(tmp_path), "--only", name])
    fresh = tmp_path / name
    names = sorted(p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(shipped) for p in shipped.rglob("*") if p.is_file())
    for rel in names:
        if rel.suffix == ".png":
            ours, theirs = read_palette_png(fresh / rel), read_palette_png(shipped / rel)
            np.testing.assert_array_equal(ours, theirs, err_msg=str(rel))
        elif rel.suffix == ".txt":
            assert (fresh / rel).read_text() == (shipped / rel).read_text(), rel
        elif rel.suffix == ".npz":
            ours, theirs = read_points_npz(fresh / rel), read_points_npz(shipped / rel)
            np.testing.assert_array_equal(ours.trajs_2d, theirs.trajs_2d)
            np.testing.assert_array_equal(ours.visibs, theirs.visibs)
            assert ours.size == theirs.size
        else:
            ours = np.asarray(Image.open(fresh / rel)).astype(int)
            theirs = np.asarray(Image.open(shipped / rel)).astype(int)
            assert np.abs(ours - theirs).mean() < 2, rel
