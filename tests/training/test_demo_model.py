"""The shipped `sam2pp-demo` tracks: its held-out scores clear the bar, which the random-weight model does not."""

from __future__ import annotations

import pytest
import torch

import sam2pp
from sam2pp.data.synthetic import make_video
from sam2pp.demo import random_model
from sam2pp.training import load_config
from sam2pp.training.config import DEMO_STAGES
from sam2pp.training.data import SyntheticDataset
from sam2pp.training.demo_model import HEADLINE, HELD_OUT_SEEDS, export_weights, half_precision_gap, score_held_out

HELD_OUT_VIDEOS = 8
SHIPPED_MARGINS = {"mask": 0.12, "box": 0.08}
"""How far above copying the first frame the shipped model's headline metric (J&F, AO) must stay on the held-out
clips; it measured +0.173 (J&F 0.264) and +0.123 (AO 0.274). Issue 9's targets (J&F >= 0.75, AO >= 0.65,
delta_avg >= 0.55, each 0.2 above the baseline) are not reached yet, and points stay below the baseline: see the
README's demo-model section."""


def shortfalls(scores) -> list[str]:
    """Every way `scores` (a `HeldOutScores`) misses the bar, as readable lines."""
    return [f"{task} {HEADLINE[task]} {scores.model[task][HEADLINE[task]]:.3f} is only {scores.margin(task):+.3f} "
            f"above copying the first frame (bar {margin:+.2f})"
            for task, margin in SHIPPED_MARGINS.items() if scores.margin(task) < margin]


@pytest.fixture(scope="module")
def shipped_scores(tmp_path_factory):
    model = sam2pp.VideoPredictor.from_pretrained("sam2pp-demo").model
    return score_held_out(model, tmp_path_factory.mktemp("heldout"), HELD_OUT_VIDEOS, progress=False)


def test_the_shipped_demo_model_tracks_held_out_clips(shipped_scores):
    print("\n" + shipped_scores.table())
    assert not shortfalls(shipped_scores), "\n".join(shortfalls(shipped_scores))


def test_the_bar_fails_random_weights(tmp_path):
    scores = score_held_out(random_model("sam2pp_tiny", 0, torch.device("cpu")), tmp_path, 2, progress=False)
    assert len(shortfalls(scores)) == len(SHIPPED_MARGINS)


def test_held_out_seeds_are_never_drawn_in_training():
    """Training video i of the synthetic source has seed f(run seed, i); the demo runs draw far fewer than 50,000."""
    for preset in DEMO_STAGES:
        synthetic = load_config(preset).data.synthetic
        source = SyntheticDataset("mask", seed=synthetic.seed, length=synthetic.clips_per_epoch)
        assert not {source.video_seed(i) for i in range(50_000)} & set(HELD_OUT_SEEDS)


def test_half_precision_export_tracks_within_1e_2_of_float32(tmp_path):
    video = make_video(seed=3, num_frames=4, size=(96, 72), num_objects=1)
    full = tmp_path / "full.pt"
    torch.save({"model": random_model("sam2pp_tiny", 0, torch.device("cpu")).state_dict()}, full)
    half = export_weights(full, tmp_path / "half.pt", half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    gap = half_precision_gap("sam2pp_tiny", full, half, video.frames, video.masks[0] == 1)
    assert 0 < gap <= 1e-2
