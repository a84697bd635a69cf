"""Using the `sam2pp` command: fast help on every option, --version, several box files, previews, threads, hints."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from PIL import Image

from sam2pp import __version__
from sam2pp.cli import LAZY_COMMANDS, main, parser
from sam2pp.io import read_boxes_txt

FRAMES = 3


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 3-frame 64x48 clip `frames/` with two objects' box files and a tiny checkpoint."""
    from sam2pp.checkpoint import build_model
    from sam2pp.data.synthetic import make_video
    from sam2pp.io import write_boxes_txt

    root = tmp_path_factory.mktemp("clip")
    video = make_video(seed=4, num_frames=FRAMES, size=(64, 48), num_objects=2, points_per_object=1)
    (root / "frames").mkdir()
    for t, frame in enumerate(video.frames):
        Image.fromarray(frame).save(root / "frames" / f"{t:05d}.png")
    for k, boxes in enumerate(video.boxes_xywh, start=1):
        write_boxes_txt(root / f"box{k}.txt", boxes)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        torch.save({"model": build_model("sam2pp_tiny").state_dict()}, root / "tiny.pt")
    return root


def track(clip, out, *extra) -> int:
    return main(["track", str(clip / "frames"), "--task", "box", "--checkpoint", str(clip / "tiny.pt"), "--config",
                 "sam2pp_tiny", "--out", str(out), *extra])


@pytest.mark.parametrize("args", [["--help"], ["track", "--help"], ["eval", "--help"], ["demo", "--help"]])
def test_help_does_not_import_torch(args):
    code = ("import sys\nfrom sam2pp.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60)
    assert done.stderr.strip().splitlines()[-1] == "False", done.stderr
    assert "usage: sam2pp" in done.stdout


def test_version_and_python_dash_m():
    done = subprocess.run([sys.executable, "-m", "sam2pp", "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == f"sam2pp {__version__}"


@pytest.mark.parametrize("command", ["track", "eval", "demo", *LAZY_COMMANDS])
def test_every_option_has_help(command):
    sub = next(a for a in parser([command])._actions if a.dest == "command").choices[command]
    missing = [a.dest for a in sub._actions if not a.help]
    assert not missing, f"sam2pp {command}: options without help: {missing}"


def test_track_help_says_the_prompt_formats():
    sub = next(a for a in parser(["track"])._actions if a.dest == "command").choices["track"]
    text = sub.format_help()
    assert "x,y,w,h" in text and "palette PNG" in text and "trajs_2d" in text


def test_several_box_files_are_tracked_in_one_run(clip, tmp_path):
    assert track(clip, tmp_path, "--prompt", str(clip / "box1.txt"), "--prompt", str(clip / "box2.txt")) == 0
    boxes = [read_boxes_txt(tmp_path / "Boxes" / name) for name in ("frames.txt", "frames_2.txt")]
    assert [b.shape for b in boxes] == [(FRAMES, 4), (FRAMES, 4)]
    assert track(clip, tmp_path / "b", "--prompt", str(clip / "box1.txt"), str(clip / "box2.txt")) == 0
    assert sorted(p.name for p in (tmp_path / "b" / "Boxes").iterdir()) == ["frames.txt", "frames_2.txt"]


def test_a_mask_run_takes_one_prompt_file(clip, tmp_path, capsys):
    args = ["track", str(clip / "frames"), "--task", "mask", "--prompt", str(clip / "box1.txt"), str(clip / "box2.txt"),
            "--out", str(tmp_path)]
    assert main(args) == 2
    assert "takes one prompt file" in capsys.readouterr().err


def test_preview_size_and_no_preview(clip, tmp_path):
    assert track(clip, tmp_path / "small", "--prompt", str(clip / "box1.txt"), "--preview-size", "32") == 0
    assert Image.open(tmp_path / "small" / "preview.gif").size == (32, 24)
    assert track(clip, tmp_path / "none", "--prompt", str(clip / "box1.txt"), "--no-preview") == 0
    assert not (tmp_path / "none" / "preview.gif").exists() and (tmp_path / "none" / "Boxes" / "frames.txt").is_file()


@pytest.mark.parametrize("flag", [True, False])
def test_compile_option_compiles_the_image_encoder_and_the_step(clip, tmp_path, monkeypatch, flag):
    """--compile reaches the predictor (which then compiles nothing here: test_long_videos tests compiling)."""
    from sam2pp.predictor.video_predictor import VideoPredictor

    seen, init = [], VideoPredictor.__init__

    def spy(self, model, **options):
        seen.append((options["compile_image_encoder"], options["compile_step"]))
        init(self, model, **{**options, "compile_image_encoder": False, "compile_step": False})

    monkeypatch.setattr(VideoPredictor, "__init__", spy)
    assert track(clip, tmp_path, "--prompt", str(clip / "box1.txt"), "--no-preview", *["--compile"] * flag) == 0
    assert seen == [(flag, flag)]


def test_threads_option_sets_torchs_thread_count(clip, tmp_path):
    before = torch.get_num_threads()
    try:
        assert track(clip, tmp_path, "--prompt", str(clip / "box1.txt"), "--no-preview", "--threads", "2") == 0
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_a_checkpoint_that_does_not_fit_the_config_hints_at_config(clip, tmp_path, capsys):
    weights = torch.load(clip / "tiny.pt", weights_only=True)["model"]
    weights.pop(next(iter(weights)))
    torch.save({"model": weights}, tmp_path / "partial.pt")
    args = ["track", str(clip / "frames"), "--task", "box", "--prompt", str(clip / "box1.txt"), "--checkpoint",
            str(tmp_path / "partial.pt"), "--config", "sam2pp_tiny", "--out", str(tmp_path / "out")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "missing (1)" in err
    assert "hint: the checkpoint's keys do not fit the sam2pp_tiny config; pass --config" in err
