"""The `sam2pp` command line: track on the real horsejump clip for every task, eval, demo, and errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from conftest import DATA, PARITY, SHARED, need
from sam2pp.cli import main
from sam2pp.io import read_boxes_txt, read_palette_png, read_points_npz

CLIP = "horsejump-low"


@pytest.fixture(scope="module")
def tiny():
    return need(PARITY / "tiny")


@pytest.mark.parametrize(
    "task, prompt",
    [("mask", f"Annotations/{CLIP}/00000.png"), ("box", f"Boxes/{CLIP}.txt"), ("point", f"Points/{CLIP}.npz")],
)
def test_track_writes_contract_files_for_each_task(tmp_path, tiny, task, prompt):
    clip = need(DATA / CLIP)
    code = main(["track", str(clip / "JPEGImages" / CLIP), "--task", task, "--prompt", str(clip / prompt),
                 "--checkpoint", str(tiny / "checkpoint.pt"), "--config", str(tiny / "config.json"),
                 "--out", str(tmp_path)])
    assert code == 0
    frames = 24
    if task == "mask":
        pngs = sorted((tmp_path / "Annotations" / CLIP).glob("*.png"))
        assert [p.stem for p in pngs] == [f"{i:05d}" for i in range(frames)]
        ids = read_palette_png(pngs[5])
        assert ids.shape == (1080, 1920) and set(np.unique(ids)) <= {0, 1} and (ids == 1).any()
        assert Image.open(pngs[5]).mode == "P"
    elif task == "box":
        boxes = read_boxes_txt(tmp_path / "Boxes" / f"{CLIP}.txt")
        assert boxes.shape == (frames, 4) and np.isfinite(boxes).all() and (boxes[:, 2:] >= 0).all()
    else:
        tracks = read_points_npz(tmp_path / "Points" / f"{CLIP}.npz")
        assert tracks.trajs_2d.shape == (frames, 1, 2) and tracks.visibs.shape == (frames, 1)
        assert tuple(tracks.size) == (1920, 1080)
        assert ((tracks.trajs_2d >= 0) & (tracks.trajs_2d < [1920, 1080])).all()
    preview = Image.open(tmp_path / "preview.gif")
    assert preview.n_frames > 1 and preview.size == (960, 540)  # downscaled to --preview-size (960) by default


def test_eval_prints_and_writes_json(tmp_path, capsys):
    case = need(SHARED / "metrics" / "sot")
    golden = json.loads((case / "golden.json").read_text())
    name, spec = next(iter(golden["cases"].items()))
    code = main(["eval", "sot", "--gt", str(case / spec["gt"]), "--pred", str(case / spec["pred"]),
                 "--json", str(tmp_path / "m.json")])
    assert code == 0
    written = json.loads((tmp_path / "m.json").read_text())
    for key, value in spec["metrics"].items():
        assert written[key] == pytest.approx(value, abs=1e-3)
    assert "AUC" in capsys.readouterr().out


def test_errors_are_reported_not_raised(tmp_path, tiny, capsys):
    clip = need(DATA / CLIP)
    bad = tmp_path / "prompt.txt"
    bad.write_text("nan,nan,nan,nan\n")
    code = main(["track", str(clip / "JPEGImages" / CLIP), "--task", "box", "--prompt", str(bad),
                 "--checkpoint", str(tiny / "checkpoint.pt"), "--config", str(tiny / "config.json"),
                 "--out", str(tmp_path / "out")])
    assert code == 2
    assert "marks the target absent on frame 0" in capsys.readouterr().err
    assert main(["track", str(clip / "JPEGImages" / CLIP), "--task", "mask", "--prompt", str(tmp_path / "none.png"),
                 "--checkpoint", str(tiny / "checkpoint.pt"), "--config", str(tiny / "config.json"),
                 "--out", str(tmp_path / "out")]) == 2
    assert "prompt file" in capsys.readouterr().err
    rgb = tmp_path / "rgb.png"
    Image.new("RGB", (1920, 1080)).save(rgb)
    npz = tmp_path / "points.npz"
    np.savez(npz, wrong=np.zeros(3))
    for task, prompt in (("mask", rgb), ("point", npz)):
        assert main(["track", str(clip / "JPEGImages" / CLIP), "--task", task, "--prompt", str(prompt),
                     "--checkpoint", str(tiny / "checkpoint.pt"), "--config", str(tiny / "config.json"),
                     "--out", str(tmp_path / "out")]) == 2
        assert str(prompt) in capsys.readouterr().err


def test_demo_runs_offline_on_the_shipped_sample(tmp_path):
    assert main(["demo", "--out", str(tmp_path)]) == 0
    assert len(list((tmp_path / "mask" / "Annotations" / "synth-shapes").glob("*.png"))) == 48
    assert read_boxes_txt(tmp_path / "box" / "Boxes" / "synth-shapes.txt").shape == (48, 4)
    assert read_points_npz(tmp_path / "point" / "Points" / "synth-shapes.npz").trajs_2d.shape[0] == 48
    for task in ("mask", "box", "point"):
        assert Image.open(tmp_path / task / "preview.gif").n_frames > 1


# ---- paths, outputs and prompts, on a small synthetic clip with the tiny preset -----------------------------------

SMALL = 3


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A 3-frame clip folder `clip/` (with a sub-folder `sub/`), its box and points prompts, and a tiny checkpoint."""
    import torch

    from sam2pp.checkpoint import build_model
    from sam2pp.data.synthetic import make_video
    from sam2pp.io import PointTracks, write_boxes_txt, write_points_npz

    root = tmp_path_factory.mktemp("small")
    video = make_video(seed=4, num_frames=SMALL, size=(64, 48), num_objects=1, points_per_object=1)
    frames = root / "clip"
    (frames / "sub").mkdir(parents=True)
    for t, frame in enumerate(video.frames):
        Image.fromarray(frame).save(frames / f"{t:05d}.png")
    write_boxes_txt(root / "box.txt", video.boxes_xywh[0])
    trajs = np.array([[[20, 20], [40, 30], [5, 5]]] * SMALL, np.float32)
    visibs = np.array([[True, False, False], [True, False, False], [True, True, False]])
    write_points_npz(root / "points.npz", PointTracks(trajs, visibs, video.size))
    torch.manual_seed(0)
    torch.save({"model": build_model("sam2pp_tiny").state_dict()}, root / "tiny.pt")
    return root


def track(small, video, task, out, *extra):
    prompt = {"box": small / "box.txt", "point": small / "points.npz"}[task]
    return main(["track", str(video), "--task", task, "--prompt", str(prompt), "--checkpoint", str(small / "tiny.pt"),
                 "--config", "sam2pp_tiny", "--out", str(out), *extra])


@pytest.fixture()
def no_model(monkeypatch):
    """Loading a model fails the test: the CLI must reject bad paths before it."""
    import sam2pp.cli

    def refuse(*_args, **_kwargs):
        raise AssertionError("the model was loaded before the paths were checked")

    monkeypatch.setattr(sam2pp.cli, "_predictor", refuse)


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_bad_paths_fail_in_one_line_before_tracking(small, tmp_path, capsys, no_model):
    (tmp_path / "file").write_text("not a folder")
    assert track(small, small / "clip", "box", tmp_path / "file") == 2
    assert "file is a file, so output folder" in one_line_error(capsys)
    (tmp_path / "out" / "preview.gif").mkdir(parents=True)
    assert track(small, small / "clip", "box", tmp_path / "out") == 2
    assert "preview.gif is a folder" in one_line_error(capsys)
    assert track(small, small / "missing", "box", tmp_path / "out2") == 2
    assert "video" in one_line_error(capsys)
    assert main(["track", str(small / "clip"), "--task", "box", "--prompt", str(small), "--checkpoint",
                 str(small / "tiny.pt"), "--out", str(tmp_path / "out3")]) == 2
    assert "is a folder" in one_line_error(capsys)
    assert main(["track", str(small / "clip"), "--task", "box", "--prompt", str(small / "box.txt"), "--checkpoint",
                 str(small), "--out", str(tmp_path / "out4")]) == 2
    assert f"checkpoint {small} is a folder" in one_line_error(capsys)


def test_eval_json_that_is_a_folder_fails_before_scoring(tmp_path, capsys, monkeypatch):
    import sam2pp.eval

    monkeypatch.setattr(sam2pp.eval, "evaluate", lambda *a, **k: pytest.fail("scored before checking --json"))
    (tmp_path / "m.json").mkdir()
    args = ["eval", "sot", "--gt", str(tmp_path), "--pred", str(tmp_path), "--json", str(tmp_path / "m.json")]
    assert main(args) == 2
    assert "m.json is a folder" in one_line_error(capsys)


def test_binary_box_prompt_names_the_file(small, tmp_path, capsys):
    binary = tmp_path / "box.txt"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff")
    assert main(["track", str(small / "clip"), "--task", "box", "--prompt", str(binary), "--checkpoint",
                 str(small / "tiny.pt"), "--config", "sam2pp_tiny", "--out", str(tmp_path / "out")]) == 2
    assert f"{binary}: not a text box file" in one_line_error(capsys)


def test_every_point_is_prompted_on_its_first_visible_frame(small, tmp_path):
    from sam2pp.eval import evaluate
    from sam2pp.predictor.video_predictor import VideoPredictor
    from sam2pp.track import add_prompts

    assert track(small, small / "clip", "point", tmp_path / "pred") == 0
    tracks = read_points_npz(tmp_path / "pred" / "Points" / "clip.npz")
    assert tracks.trajs_2d.shape == (SMALL, 3, 2)
    assert np.isfinite(tracks.trajs_2d[:, :2]).all()
    assert np.isnan(tracks.trajs_2d[:, 2]).all() and not tracks.visibs[:, 2].any()  # never visible: not tracked
    (tmp_path / "gt").mkdir()
    (tmp_path / "gt" / "clip.npz").write_bytes((small / "points.npz").read_bytes())
    assert set(evaluate("pt", tmp_path / "gt", tmp_path / "pred" / "Points", progress=False).summary) >= {"AJ", "OA"}
    predictor = VideoPredictor.from_checkpoint(small / "tiny.pt", config="sam2pp_tiny")
    state = predictor.init_state(small / "clip")
    assert add_prompts(predictor, state, "point", small / "points.npz", 0) == [0, 1, 2]
    assert {obj_id: list(obj.prompts) for obj_id, obj in state.objects.items()} == {0: [0], 1: [2]}


def test_outputs_are_named_after_the_resolved_folder(small, tmp_path, monkeypatch):
    monkeypatch.chdir(small / "clip")
    assert track(small, ".", "box", tmp_path / "a") == 0
    assert [p.name for p in (tmp_path / "a" / "Boxes").iterdir()] == ["clip.txt"]
    assert track(small, small / "clip" / "sub" / "..", "point", tmp_path / "b") == 0
    assert [p.name for p in (tmp_path / "b" / "Points").iterdir()] == ["clip.npz"]


def test_an_earlier_run_is_refused_or_replaced_whole(small, tmp_path, capsys):
    out = tmp_path / "out"
    stale = out / "Annotations" / "clip" / "00007.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"an earlier, longer run")
    mask = tmp_path / "mask.png"
    Image.fromarray(np.pad(np.ones((8, 8), np.uint8), ((10, 30), (20, 36))), mode="L").save(mask)
    args = ["track", str(small / "clip"), "--task", "mask", "--prompt", str(mask), "--checkpoint",
            str(small / "tiny.pt"), "--config", "sam2pp_tiny", "--out", str(out)]
    assert main(args) == 2
    err = one_line_error(capsys)
    assert "already holds mask results of an earlier run for 'clip'" in err and "--overwrite" in err
    assert stale.exists()
    assert main([*args, "--overwrite"]) == 0
    assert sorted(p.name for p in stale.parent.iterdir()) == [f"{t:05d}.png" for t in range(SMALL)]


# ---- --model: the published weights or the shipped demo model --------------------------------------------------------


def _offline_empty_hub(tmp_path, monkeypatch):
    import socket

    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: pytest.fail("the network was touched"))


def _box_track(small, out, *model_args):
    return main(["track", str(small / "clip"), "--task", "box", "--prompt", str(small / "box.txt"), *model_args,
                 "--out", str(out), "--no-preview"])


def test_model_sam2pp_demo_tracks_offline_without_a_warning(small, tmp_path, capsys, monkeypatch):
    _offline_empty_hub(tmp_path, monkeypatch)
    assert _box_track(small, tmp_path / "demo", "--model", "sam2pp-demo") == 0
    assert "warning" not in capsys.readouterr().err
    assert read_boxes_txt(tmp_path / "demo" / "Boxes" / "clip.txt").shape == (SMALL, 4)


def test_without_the_published_weights_the_demo_model_is_used_with_one_warning_line(small, tmp_path, capsys,
                                                                                     monkeypatch):
    _offline_empty_hub(tmp_path, monkeypatch)
    for args, out in (((), "default"), (("--model", "MCG-NJU/SAM2-Plus"), "asked")):
        assert _box_track(small, tmp_path / out, *args) == 0
        warning = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
        assert len(warning) == 1 and "MCG-NJU/SAM2-Plus" in warning[0] and "using sam2pp-demo" in warning[0]
    same = [read_boxes_txt(tmp_path / out / "Boxes" / "clip.txt") for out in ("default", "asked")]
    assert np.array_equal(*same)


def test_model_and_checkpoint_together_are_refused(small, tmp_path, capsys, no_model):
    assert _box_track(small, tmp_path / "out", "--model", "sam2pp-demo", "--checkpoint", str(small / "tiny.pt")) == 2
    assert "give --model or --checkpoint, not both" in one_line_error(capsys)
