"""`sam2pp track` in flat memory: the window bank, results written as they come and a bounded preview sample give
the files of the full-memory path (every memory and every frame's result held until the end), and keep no frame's
arrays; a checkpoint folder is named as a folder."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

import sam2pp.track
from sam2pp.cli import main
from sam2pp.data.synthetic import make_video
from sam2pp.io import PointTracks, write_boxes_txt, write_palette_png, write_points_npz
from sam2pp.io.formats import ordered_xyxy, xyxy_to_xywh
from sam2pp.predictor.results import FrameResult
from sam2pp.predictor.video_predictor import VideoPredictor
from sam2pp.track import PreviewSample, add_prompts, box_path, propagate_both_ways, render_preview, result_path

FRAMES = 40
PROMPT_FRAME = 5  # > 0: tracked forwards, then backwards from it
LATE_POINT_FRAME = 30  # point 1 is first visible here, beyond the memory window (15) of the prompt frame


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 40-frame clip of two moving objects, and its prompt files: a mask PNG and two one-line box files on frame 5,
    and a points file whose point 0 is visible from frame 5 and point 1 from frame 30."""
    root = tmp_path_factory.mktemp("clip")
    video = make_video(seed=3, num_frames=FRAMES, size=(96, 64), num_objects=2, points_per_object=1)
    frames = root / "clip"
    frames.mkdir()
    for t, frame in enumerate(video.frames):
        Image.fromarray(frame).save(frames / f"{t:05d}.jpg", quality=95)
    write_palette_png(root / "mask.png", video.masks[PROMPT_FRAME])
    for o in range(2):
        assert np.isfinite(video.boxes_xywh[o, PROMPT_FRAME]).all()
        write_boxes_txt(root / f"box{o + 1}.txt", video.boxes_xywh[o, PROMPT_FRAME][None])
    visibs = np.zeros((FRAMES, 2), dtype=bool)
    visibs[PROMPT_FRAME:, 0] = True
    visibs[LATE_POINT_FRAME:, 1] = True
    write_points_npz(root / "points.npz", PointTracks(video.points, visibs, video.size))
    return root


PROMPTS = {"mask": ["mask.png"], "box": ["box1.txt", "box2.txt"], "point": ["points.npz"]}


def full_memory_run(clip, task: str, out) -> None:
    """The path `sam2pp track` took before it ran in flat memory: every memory kept (bank "all"), every frame's
    result held, then written and drawn at the end."""
    predictor = VideoPredictor.from_pretrained("sam2pp-demo", memory_bank="all")
    state = predictor.init_state(clip / "clip")
    prompts = [clip / p for p in PROMPTS[task]]
    obj_ids = add_prompts(predictor, state, task, prompts, PROMPT_FRAME)
    first = min(t for obj in state.objects.values() for t in obj.prompts)
    results = propagate_both_ways(predictor, state, first, progress=False)
    assert [r.frame_idx for r in results] == list(range(FRAMES))
    if task == "mask":
        for r in results:
            write_palette_png(result_path(out, "mask", "clip") / f"{r.frame_idx:05d}.png",
                              r.label_map().astype(np.uint8))
    elif task == "box":
        for i, obj_id in enumerate(results[0].obj_ids):
            boxes = np.stack([r.boxes_xyxy[i] for r in results])
            write_boxes_txt(box_path(out, "clip", obj_id), xyxy_to_xywh(ordered_xyxy(boxes)))
    else:
        columns = max(obj_ids) + 1
        trajs = np.full((FRAMES, columns, 2), np.nan, dtype=np.float32)
        visibs = np.zeros((FRAMES, columns), dtype=bool)
        for r in results:
            trajs[r.frame_idx, r.obj_ids] = r.points_xy
            visibs[r.frame_idx, r.obj_ids] = r.visible
        write_points_npz(result_path(out, "point", "clip"), PointTracks(trajs, visibs, (96, 64)))
    render_preview(results, state, out / "preview.gif")


def files_of(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("task", ["mask", "box", "point"])
def test_track_writes_the_files_of_the_full_memory_path(clip, tmp_path, task):
    args = ["track", str(clip / "clip"), "--task", task, "--prompt", *(str(clip / p) for p in PROMPTS[task]),
            "--frame", str(PROMPT_FRAME), "--model", "sam2pp-demo", "--out", str(tmp_path / "flat")]
    assert main(args) == 0
    full_memory_run(clip, task, tmp_path / "full")
    flat, full = files_of(tmp_path / "flat"), files_of(tmp_path / "full")
    assert sorted(flat) == sorted(full)
    assert len(flat) == {"mask": FRAMES + 1, "box": 3, "point": 2}[task]
    for name in full:
        assert flat[name] == full[name], name
    if task == "point":
        tracks = sam2pp.io.read_points_npz(tmp_path / "flat" / "Points" / "clip.npz")
        assert np.isfinite(tracks.trajs_2d).all()  # both points tracked on every frame


@pytest.mark.parametrize("task", ["mask", "box", "point"])
def test_benchmark_predictions_equal_those_of_keeping_every_memory(tmp_path, task):
    """`sam2pp benchmark` tracks with the window bank; object 2 (its mask, its points) first appears on frame 30, so
    object 1 is tracked past the window before object 2 joins the propagation."""
    from sam2pp.benchmark import BenchmarkConfig, open_benchmark
    from sam2pp.benchmark.protocols import PROTOCOLS
    from sam2pp.benchmark.runner import load_predictor
    from sam2pp.training.distributed import World

    video = make_video(seed=3, num_frames=FRAMES, size=(96, 64), num_objects=2, points_per_object=2)
    before = video.masks[:LATE_POINT_FRAME]
    before[before == 2] = 0
    video.visibs[:LATE_POINT_FRAME, video.point_obj_ids == 2] = False
    video.write(tmp_path / "data", "clip")
    plan = PROTOCOLS[task].prepare(open_benchmark(tmp_path / "data", task, "auto", None).video("clip"))
    config = BenchmarkConfig(dataset=tmp_path / "data", task=task, out=tmp_path, model="sam2pp-demo", device="cpu",
                             progress=False)
    predictor = load_predictor(config, World())
    assert predictor.memory_bank == "window"
    written = {}
    for bank in ("window", "all"):
        predictor.memory_bank = bank
        PROTOCOLS[task].track(predictor, plan, tmp_path / bank)
        written[bank] = files_of(tmp_path / bank)
    assert len(written["all"]) == {"mask": FRAMES, "box": 1, "point": 1}[task]
    assert written["window"] == written["all"]


def arrays_in(value):
    """Every numpy array and FrameResult in nested dataclasses, lists, tuples and dicts."""
    if isinstance(value, (np.ndarray, FrameResult)):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from arrays_in(getattr(value, f.name))
    elif isinstance(value, dict):
        for v in value.values():
            yield from arrays_in(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from arrays_in(v)


def test_track_keeps_no_frame_results_and_a_window_of_memories(clip, tmp_path, monkeypatch):
    """What `sam2pp track` holds once a 40-frame clip is tracked: no frame's arrays in what the run returns, and per
    object only the memories near its prompt and behind the last frame, not one per frame."""
    states, outputs = [], []
    init_state, track_video = VideoPredictor.init_state, sam2pp.track.track_video
    monkeypatch.setattr(VideoPredictor, "init_state",
                        lambda self, *a, **k: states.append(init_state(self, *a, **k)) or states[-1])
    monkeypatch.setattr(sam2pp.track, "track_video", lambda *a, **k: outputs.append(track_video(*a, **k)) or outputs[-1])
    args = ["track", str(clip / "clip"), "--task", "box", "--prompt", str(clip / "box1.txt"), "--model",
            "sam2pp-demo", "--out", str(tmp_path), "--no-preview"]  # the one-line box file's box on frame 0
    assert main(args) == 0
    (state,), (out,) = states, outputs
    assert out.frames == FRAMES and out.obj_ids == [1] and out.preview is None
    assert list(arrays_in(out)) == []
    window = VideoPredictor.from_pretrained("sam2pp-demo").tracker.memory_window()
    memory = state.object(1).memory
    assert list(memory.cond) == [0]
    assert sorted(memory.non_cond) == [t for t in range(1, FRAMES) if t <= window or t >= FRAMES - 1 - window]
    assert len(memory.non_cond) < FRAMES - 1


def fake_result(t: int, seed: int) -> FrameResult:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(2, 6, 10)).astype(np.float32)
    return FrameResult(t, [1, 2], ["mask", "box"], logits, logits > 0, rng.normal(size=(2, 4)).astype(np.float32),
                       np.full((2, 2), np.nan, np.float32), np.ones(2, np.float32), np.ones(2, bool),
                       rng.normal(size=(2, 2, 2)).astype(np.float32))


def test_the_preview_sample_keeps_a_bounded_share_of_frames_without_their_logits():
    sample = PreviewSample(48, limit=8)
    for t in range(48):
        sample.add(fake_result(t, t))
    sample.add(fake_result(0, 100))  # the prompt frame again, from the backward pass: the later result counts
    given = {0: fake_result(0, 100), **{t: fake_result(t, t) for t in range(1, 48)}}
    kept = list(sample)
    assert [r.frame_idx for r in kept] == [0, 7, 13, 20, 27, 34, 40, 47] == sorted(sample.frames)
    for r in kept:
        want = given[r.frame_idx]
        np.testing.assert_array_equal(r.masks, want.masks)
        np.testing.assert_array_equal(r.boxes_xyxy, want.boxes_xyxy)
        assert r.mask_logits.size == 0 and r.low_res_logits.size == 0
    assert len(PreviewSample(5, limit=8)) == 0 and PreviewSample(5, limit=8).frames == frozenset(range(5))


def test_a_checkpoint_folder_is_named_as_a_folder_with_the_file_expected(tmp_path, capsys):
    with pytest.raises(IsADirectoryError) as empty:
        VideoPredictor.from_checkpoint(tmp_path, config="sam2pp_tiny")
    message = str(empty.value)
    assert f"checkpoint {tmp_path} is a folder, not a checkpoint file" in message
    assert "checkpoint.pt of a `sam2pp train` run folder" in message and "does not exist" not in message
    (tmp_path / "checkpoint.pt").write_bytes(b"")
    with pytest.raises(IsADirectoryError, match=f"did you mean {tmp_path / 'checkpoint.pt'}"):
        VideoPredictor.from_checkpoint(tmp_path, config="sam2pp_tiny")
    assert main(["benchmark", str(tmp_path), "--task", "box", "--out", str(tmp_path / "out"), "--checkpoint",
                 str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"checkpoint {tmp_path} is a folder" in err and "did you mean" in err
