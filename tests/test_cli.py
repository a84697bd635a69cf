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
    assert preview.n_frames > 1 and preview.size == (1920, 1080)


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
