"""Training video datasets: both folder layouts and the synthetic source yield the published clips, and `scan`
names every bad file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sam2pp.data.synthetic import SyntheticSpec, make_video
from sam2pp.io.formats import (
    PointTracks,
    box_absent,
    write_boxes_txt,
    write_palette_png,
    write_points_npz,
    xyxy_to_xywh,
)
from sam2pp.training.clip import RawClip
from sam2pp.training.data import (
    DatasetError,
    FolderDataset,
    Resampled,
    SyntheticDataset,
    open_dataset,
    scan,
)

SIZE = (64, 48)  # W, H
FRAMES = 10


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def write_section4(root: Path, names=("a", "b")) -> dict:
    """Synthetic videos in the section-4 layout; returns name -> SyntheticVideo."""
    videos = {}
    for i, name in enumerate(names):
        video = make_video(seed=10 + i, num_frames=FRAMES, size=SIZE, num_objects=3, points_per_object=2)
        video.write(root, name, quality=95)
        videos[name] = video
    return videos


def write_tag(root: Path, names=("a", "b"), split: str = "train") -> dict:
    """The Tracking-Any-Granularity layout: <root>/<split>/{JPEGImages,...,Visibles}, <root>/ImageSets/<split>.txt."""
    videos = write_section4(root / split, names)
    for name, video in videos.items():
        (root / split / "Visibles").mkdir(exist_ok=True)
        flags = (~box_absent(video.boxes_xywh[0])).astype(int)
        (root / split / "Visibles" / f"{name}.txt").write_text("\n".join(map(str, flags)) + "\n")
    (root / "ImageSets").mkdir()
    (root / "ImageSets" / f"{split}.txt").write_text("\n".join(names) + "\n")
    return videos


@pytest.fixture
def section4(tmp_path):
    return tmp_path, write_section4(tmp_path)


@pytest.fixture
def tag(tmp_path):
    return tmp_path, write_tag(tmp_path)


def check_clip(clip: RawClip, task: str, num_frames: int) -> None:
    t, n = num_frames, clip.num_objects
    assert clip.task == task and n >= 1
    assert clip.frames.shape == (t, 3, SIZE[1], SIZE[0]) and clip.frames.dtype == torch.uint8
    assert clip.visible.shape == (t, n) and clip.visible.dtype == torch.bool
    assert len(clip.obj_ids) == n
    if task == "point":
        assert clip.masks is None and clip.boxes_xyxy is None
        assert clip.points_xy.shape == (t, n, 2) and clip.points_xy.dtype == torch.float32
    else:
        assert clip.masks.shape == (t, n, SIZE[1], SIZE[0]) and clip.masks.dtype == torch.bool
        assert clip.points_xy is None
    if task == "box":
        assert clip.boxes_xyxy.shape == (t, n, 4) and clip.boxes_xyxy.dtype == torch.float32
    assert clip.visible[0].all(), "every sampled object is visible in the first frame"


def assert_matches_video(clip: RawClip, video) -> None:
    """Frames, masks, boxes and points of the clip against the generator's ground truth."""
    frames = slice(clip.start, clip.start + clip.num_frames)
    truth = torch.from_numpy(video.frames[frames]).permute(0, 3, 1, 2).float()
    assert (clip.frames.float() - truth).abs().mean() < 6, "JPEG frames close to the generated ones"
    if clip.task == "point":
        for t in range(clip.num_frames):
            for n, point in enumerate(clip.obj_ids):
                if clip.visible[t, n]:
                    x, y = np.round(clip.points_xy[t, n].numpy()).astype(int)
                    assert video.masks[clip.start + t, y, x] == video.point_obj_ids[point], "point on its object"
                else:
                    assert (clip.points_xy[t, n] == 0).all()
        return
    ids = torch.from_numpy(video.masks[frames])
    for n, obj_id in enumerate(clip.obj_ids):
        expected = ids == obj_id
        if clip.task == "box":
            expected &= clip.visible[:, n, None, None]
        assert torch.equal(clip.masks[:, n], expected)
    if clip.task == "box":
        for t in range(clip.num_frames):
            mask = clip.masks[t, 0]
            if not clip.visible[t, 0]:
                assert (clip.boxes_xyxy[t, 0] == 0).all() and not mask.any()
                continue
            ys, xs = torch.nonzero(mask, as_tuple=True)
            tight = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
            assert clip.boxes_xyxy[t, 0].tolist() == [float(v) for v in tight], "box = the mask's extent"
    else:
        assert torch.equal(clip.visible, clip.masks.flatten(2).any(-1))


@pytest.mark.parametrize("task, max_objects", [("mask", 3), ("box", 1), ("point", 3)])
def test_section4_layout_yields_clips_consistent_with_the_video(section4, task, max_objects):
    root, videos = section4
    dataset = open_dataset(root, task)
    assert isinstance(dataset, FolderDataset) and dataset.videos == ["a", "b"] and len(dataset) == 2
    for seed in range(3):
        clip = dataset.sample(1, rng(seed), 4, max_objects)
        check_clip(clip, task, 4)
        assert clip.video == "b" and clip.num_objects <= max_objects
        assert_matches_video(clip, videos["b"])


def test_section4_box_task_reads_every_object_file_and_fills_boxes_without_masks(section4):
    root, videos = section4
    dataset = open_dataset(root, "box")
    assert sorted(dataset.files[0].boxes) == [1, 2, 3]
    picked = {i for s in range(6) for i in dataset.sample(0, rng(s), 3, 3).obj_ids}
    assert picked == {1, 2, 3}, "objects from Boxes/a.txt, a_2.txt and a_3.txt"

    for path in (root / "Annotations" / "a").iterdir():
        path.unlink()
    (root / "Annotations" / "a").rmdir()
    clip = open_dataset(root, "box").sample(0, rng(), 3, 1)
    for t in range(3):
        x1, y1, x2, y2 = clip.boxes_xyxy[t, 0].int().tolist()
        filled = torch.zeros(SIZE[1], SIZE[0], dtype=torch.bool)
        filled[y1:y2, x1:x2] = clip.visible[t, 0]
        assert torch.equal(clip.masks[t, 0], filled), "without PNGs the box target is the filled box"


@pytest.mark.parametrize("task", ["mask", "box", "point"])
def test_tag_layout_yields_clips_consistent_with_the_video(tag, task):
    root, videos = tag
    dataset = open_dataset(root, task)
    assert dataset.videos == ["a", "b"]
    assert all(f.listed_in == root / "ImageSets" / "train.txt" for f in dataset.files)
    clip = dataset.sample(0, rng(3), 5, 3)
    check_clip(clip, task, 5)
    assert_matches_video(clip, videos["a"])
    if task == "box":
        assert clip.obj_ids == (1,), "TAG has one box object per video"


def test_tag_visibles_hide_the_box(tag):
    root, videos = tag
    flags = ["1"] * FRAMES
    flags[3] = "0"
    (root / "train" / "Visibles" / "a.txt").write_text("\n".join(flags) + "\n")
    dataset = open_dataset(root, "box")
    covered = 0
    for seed in range(12):
        clip = dataset.sample(0, rng(seed), 4, 1)
        assert clip.start != 3, "a hidden box is never a first frame"
        hidden = 3 - clip.start
        if 0 < hidden < 4:
            covered += 1
            assert not clip.visible[hidden, 0] and (clip.boxes_xyxy[hidden, 0] == 0).all()
            assert not clip.masks[hidden, 0].any()
    assert covered


def write_staged_video(root: Path) -> None:
    """One section-4 video whose objects come and go: 1 always; 2 in frames 0-5; 3 with 3 pixels (too few);
    4 in frames 5-9. Box files and points follow the masks (point n rides on object n + 1)."""
    ids = np.zeros((FRAMES, SIZE[1], SIZE[0]), dtype=np.uint8)
    ids[:, 5:20, 5:20] = 1
    ids[:6, 25:35, 30:45] = 2
    ids[:, 40, 50:53] = 3
    ids[5:, 5:15, 40:60] = 4
    frames = root / "JPEGImages" / "v"
    frames.mkdir(parents=True)
    for t in range(FRAMES):
        Image.fromarray(np.full((SIZE[1], SIZE[0], 3), 20 * t, np.uint8)).save(frames / f"{t:05d}.jpg")
        write_palette_png(root / "Annotations" / "v" / f"{t:05d}.png", ids[t])
    for obj_id in (1, 2, 3, 4):
        boxes = np.full((FRAMES, 4), np.nan)
        for t in range(FRAMES):
            ys, xs = np.nonzero(ids[t] == obj_id)
            if len(xs):
                boxes[t] = xyxy_to_xywh([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        write_boxes_txt(root / "Boxes" / ("v.txt" if obj_id == 1 else f"v_{obj_id}.txt"), boxes)
    centres = np.array([[12, 12], [37, 30], [51, 40], [50, 10]], dtype=np.float32)
    visibs = np.stack([(ids[:, int(y), int(x)] == n + 1) for n, (x, y) in enumerate(centres)], axis=1)
    write_points_npz(root / "Points" / "v.npz", PointTracks(np.broadcast_to(centres, (FRAMES, 4, 2)), visibs, SIZE))


FIRST_FRAME_OBJECTS = {  # which objects each task may pick in a clip starting at frame t
    "mask": lambda t: {1, 2} if t < 5 else ({1, 2, 4} if t == 5 else {1, 4}),
    "box": lambda t: {1, 2, 3} if t < 5 else ({1, 2, 3, 4} if t == 5 else {1, 3, 4}),
    "point": lambda t: {0, 1, 2} if t < 5 else ({0, 1, 2, 3} if t == 5 else {0, 2, 3}),
}


@pytest.mark.parametrize("task", ["mask", "box", "point"])
def test_sampler_picks_only_objects_visible_in_the_first_frame(tmp_path, task):
    write_staged_video(tmp_path)
    dataset = open_dataset(tmp_path, task)
    starts, picked, absent_later = set(), set(), False
    for seed in range(40):
        clip = dataset.sample(0, rng(seed), 4, 2)
        allowed = FIRST_FRAME_OBJECTS[task](clip.start)
        assert set(clip.obj_ids) <= allowed and clip.num_objects == 2
        assert len(set(clip.obj_ids)) == 2, "objects drawn without replacement"
        assert clip.visible[0].all()
        starts.add(clip.start)
        picked |= set(clip.obj_ids)
        absent_later |= not clip.visible.all()
    assert starts == set(range(FRAMES - 4 + 1)), "every start is drawn"
    assert 3 not in picked if task == "mask" else 3 in picked, "mask objects need more than 5 pixels"
    assert absent_later, "objects may vanish after the first frame"


def test_sampling_is_deterministic_in_the_generator(section4):
    root, _ = section4
    dataset = open_dataset(root, "mask")
    first, again = dataset.sample(0, rng(7), 4, 3), dataset.sample(0, rng(7), 4, 3)
    assert (first.start, first.obj_ids) == (again.start, again.obj_ids)
    assert torch.equal(first.frames, again.frames) and torch.equal(first.masks, again.masks)
    draws = {(c.start, c.obj_ids) for c in (dataset.sample(0, rng(s), 4, 3) for s in range(8))}
    assert len(draws) > 1, "different generators give different clips"


def test_too_short_videos_are_swapped_for_another(tmp_path):
    write_section4(tmp_path, names=("long",))
    short = make_video(seed=3, num_frames=3, size=SIZE, num_objects=2)
    short.write(tmp_path, "short")
    dataset = open_dataset(tmp_path, "mask")
    assert dataset.videos == ["long", "short"]
    clip = dataset.sample(1, rng(), 6, 3)
    assert clip.video == "long" and clip.num_frames == 6
    with pytest.raises(DatasetError, match="no 11-frame clip"):
        dataset.sample(0, rng(), 11, 3)


def test_synthetic_source_is_endless_and_seeded():
    spec = SyntheticSpec(num_frames=FRAMES, size=SIZE, num_objects=3, points_per_object=2)
    dataset = SyntheticDataset("point", seed=5, length=4, spec=spec)
    assert len(dataset) == 4
    far = dataset.sample(1000, rng(1), 4, 3)
    assert far.video == "synthetic-5-1000", "indices past the nominal epoch are new videos"
    check_clip(far, "point", 4)
    same = SyntheticDataset("point", seed=5, length=4, spec=spec).sample(1000, rng(1), 4, 3)
    assert torch.equal(far.frames, same.frames) and torch.equal(far.points_xy, same.points_xy)
    other = dataset.sample(1001, rng(1), 4, 3)
    assert not torch.equal(far.frames, other.frames)
    reseeded = SyntheticDataset("point", seed=6, length=4, spec=spec).sample(1000, rng(1), 4, 3)
    assert not torch.equal(far.frames, reseeded.frames)
    for task in ("mask", "box"):
        check_clip(SyntheticDataset(task, seed=5, spec=spec).sample(2, rng(), 4, 3), task, 4)
    assert scan(dataset).frames == 4 * FRAMES and scan(dataset).objects == 4 * 6
    with pytest.raises(DatasetError, match="10-frame videos"):
        dataset.sample(0, rng(), 12, 3)


def test_synthetic_box_clip_matches_its_video():
    spec = SyntheticSpec(num_frames=FRAMES, size=SIZE, num_objects=3)
    dataset = SyntheticDataset("box", seed=2, spec=spec)
    clip = dataset.sample(4, rng(), 5, 1)
    video = make_video(**{**spec.__dict__, "seed": dataset.video_seed(4)})
    start = clip.start
    assert torch.equal(clip.frames, torch.from_numpy(video.frames[start : start + 5]).permute(0, 3, 1, 2))
    assert_matches_video(clip, video)


def test_resampled_dataset_has_the_nominal_length(section4):
    root, _ = section4
    dataset = Resampled(open_dataset(root, "point"), samples_per_epoch=5)
    assert len(dataset) == 5 and dataset.task == "point"
    assert [dataset.sample(i, rng(), 3, 1).video for i in range(4)] == ["a", "b", "a", "b"]
    assert scan(dataset).videos == 2


def test_open_dataset_detects_the_layout_or_says_what_it_looked_for(section4, tmp_path_factory):
    root, _ = section4
    assert open_dataset(root, "mask", layout="section4").videos == ["a", "b"]
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(DatasetError, match="JPEGImages"):
        open_dataset(empty, "mask")
    with pytest.raises(ValueError, match="layout"):
        open_dataset(root, "mask", layout="davis")
    with pytest.raises(ValueError, match="task"):
        open_dataset(root, "segment")


@pytest.mark.parametrize("task", ["mask", "box", "point"])
def test_scan_counts_a_clean_dataset(section4, task):
    root, _ = section4
    report = scan(open_dataset(root, task))
    assert (report.task, report.videos, report.frames) == (task, 2, 2 * FRAMES)
    assert report.objects == {"mask": 6, "box": 6, "point": 12}[task]


def _truncate(path: Path) -> None:
    path.write_text("\n".join(path.read_text().splitlines()[:-1]) + "\n")


def _replace_line(path: Path, index: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[index] = text
    path.write_text("\n".join(lines) + "\n")


def _cut(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _npz(path: Path, **arrays) -> None:
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _ok_tracks(frames: int = FRAMES, dims: int = 2) -> dict:
    return {"trajs_2d": np.full((frames, 3, dims), 5, np.float32), "visibs": np.ones((frames, 3), bool)}


# (layout, task, mutation of the root, the file the error must name, a word of the problem)
SCAN_PROBLEMS = {
    "frame without its mask": ("section4", "mask", lambda r: (r / "Annotations/a/00003.png").unlink(),
                               "Annotations/a/00003.png", "not found"),
    "mask size differs": ("section4", "mask", lambda r: write_palette_png(r / "Annotations/b/00002.png",
                                                                          np.zeros((10, 12), np.uint8)),
                          "Annotations/b/00002.png", "12x10"),
    "RGB mask": ("section4", "mask",
                 lambda r: Image.new("RGB", SIZE).save(r / "Annotations/a/00001.png"), "Annotations/a/00001.png",
                 "palette"),
    "frame size differs": ("section4", "point",
                           lambda r: Image.new("RGB", (32, 32)).save(r / "JPEGImages/a/00004.jpg"),
                           "JPEGImages/a/00004.jpg", "32x32"),
    "empty frame folder": ("section4", "mask", lambda r: (r / "JPEGImages/c").mkdir(), "JPEGImages/c", "no frames"),
    "box lines differ from frames": ("section4", "box", lambda r: _truncate(r / "Boxes/a_2.txt"), "Boxes/a_2.txt",
                                     "9 box lines for 10 frames"),
    "unparsable box line": ("section4", "box", lambda r: _replace_line(r / "Boxes/b.txt", 4, "1,2,three,4"),
                            "Boxes/b.txt", "line 5"),
    "points with wrong keys": ("section4", "point", lambda r: _npz(r / "Points/a.npz", tracks=np.zeros((10, 1, 2))),
                               "Points/a.npz", "trajs_2d"),
    "points with wrong shape": ("section4", "point", lambda r: _npz(r / "Points/a.npz", **_ok_tracks(dims=3)),
                                "Points/a.npz", "(T, N, 2)"),
    "points with wrong length": ("section4", "point", lambda r: _npz(r / "Points/b.npz", **_ok_tracks(frames=8)),
                                 "Points/b.npz", "8 frames"),
    "visible point outside the frame": ("section4", "point",
                                        lambda r: _npz(r / "Points/b.npz", trajs_2d=np.full((10, 1, 2), 99.0),
                                                       visibs=np.ones((10, 1), bool)),
                                        "Points/b.npz", "outside"),
    "visibles with wrong line count": ("tag", "box", lambda r: _truncate(r / "train/Visibles/a.txt"),
                                       "train/Visibles/a.txt", "9 visibility lines"),
    "visibles with a bad value": ("tag", "box", lambda r: _replace_line(r / "train/Visibles/b.txt", 0, "yes"),
                                  "train/Visibles/b.txt", "0 or 1"),
    "truncated JPEG frame": ("section4", "box", lambda r: _cut(r / "JPEGImages/a/00006.jpg"), "JPEGImages/a/00006.jpg",
                             "truncated"),
    "truncated mask": ("section4", "mask", lambda r: _cut(r / "Annotations/b/00005.png"), "Annotations/b/00005.png",
                       "Truncated"),
    "more masks than frames": ("section4", "mask", lambda r: (r / "JPEGImages/a/00009.jpg").unlink(), "Annotations/a",
                               "(00009.png)"),
    "first frame without its mask": ("section4", "mask", lambda r: (r / "Annotations/b/00000.png").unlink(),
                                     "Annotations/b/00000.png", "not found"),
    "points without visibs": ("section4", "point",
                              lambda r: _npz(r / "Points/a.npz", trajs_2d=_ok_tracks()["trajs_2d"]), "Points/a.npz",
                              "visibs"),
    "ImageSets entry without its folder": ("tag", "mask",
                                           lambda r: (r / "ImageSets/train.txt").write_text("a\nb\nghost\n"),
                                           "ImageSets/train.txt", "'ghost'"),
    "missing box file": ("tag", "box", lambda r: (r / "train/Boxes/b.txt").unlink(), "train/Boxes/b.txt",
                         "not found"),
}


@pytest.mark.parametrize("problem", list(SCAN_PROBLEMS))
def test_scan_names_the_bad_file(tmp_path, problem):
    layout, task, mutate, file, words = SCAN_PROBLEMS[problem]
    (write_section4 if layout == "section4" else write_tag)(tmp_path)
    scan(open_dataset(tmp_path, task))
    mutate(tmp_path)
    with pytest.raises(DatasetError) as caught:
        scan(open_dataset(tmp_path, task))
    assert len(caught.value.problems) == 1
    message = str(caught.value)
    assert str(tmp_path / file) in message and words in message, message


def test_scan_lists_every_problem(section4):
    root, _ = section4
    (root / "Annotations/a/00003.png").unlink()
    (root / "Annotations/b/00007.png").unlink()
    (root / "JPEGImages/c").mkdir()
    with pytest.raises(DatasetError) as caught:
        scan(open_dataset(root, "mask"))
    assert len(caught.value.problems) == 3
    for file in ("Annotations/a/00003.png", "Annotations/b/00007.png", "JPEGImages/c"):
        assert str(root / file) in str(caught.value)


def test_sampling_a_bad_file_raises_a_named_error(section4):
    root, _ = section4
    write_palette_png(root / "Annotations/a/00000.png", np.zeros((10, 12), np.uint8))
    dataset = open_dataset(root, "mask")
    with pytest.raises(DatasetError, match="00000.png: mask is 12x10"):
        for seed in range(20):
            dataset.sample(0, rng(seed), FRAMES, 3)


@pytest.mark.parametrize("task", ["mask", "box", "point"])
def test_the_real_clip_opens_in_the_section4_layout(shared_data, task):
    root = shared_data / "horsejump-low"
    dataset = open_dataset(root, task)
    report = scan(dataset)
    assert (report.videos, report.frames, report.objects) == (1, 24, 1)
    clip = dataset.sample(0, rng(), 2, 3)
    assert clip.video == "horsejump-low" and clip.obj_ids == ((0,) if task == "point" else (1,))
    assert clip.frames.shape == (2, 3, 1080, 1920) and clip.visible[0].all()
    if task == "box":
        x1, y1, x2, y2 = clip.boxes_xyxy[0, 0].tolist()
        ys, xs = torch.nonzero(clip.masks[0, 0], as_tuple=True)
        assert x1 <= xs.float().median() <= x2 and y1 <= ys.float().median() <= y2, "box around its mask"
    if task == "point":
        x, y = clip.points_xy[0, 0].tolist()
        assert 0 <= x <= 1920 and 0 <= y <= 1080
