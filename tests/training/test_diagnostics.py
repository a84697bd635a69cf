"""The training diagnostics: the memory probes swap, record and zero what they say, and prompted-frame IoU scores
single-frame prompts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sam2pp.data.synthetic import make_video
from sam2pp.demo import random_model
from sam2pp.predictor.video_predictor import VideoPredictor
from sam2pp.training.diagnostics import PROBES, ProbeTracker, probe_memory, prompted_frame_iou


@pytest.fixture(scope="module")
def model():
    return random_model("sam2pp_tiny", seed=5, device=torch.device("cpu"))


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("clips")
    for seed in (3, 4):
        make_video(seed=seed, num_frames=4, size=(160, 120), num_objects=2).write(root, f"v{seed}")
    return root


def track(model, tracker: ProbeTracker | None, video: np.ndarray, mask: np.ndarray) -> list[np.ndarray]:
    """Per frame: the mask logits and the object score (random weights may call the object absent, -1024 logits);
    `tracker` None tracks with the predictor's own."""
    predictor = VideoPredictor(model)
    predictor.tracker = tracker or predictor.tracker
    state = predictor.init_state(video)
    predictor.add_mask(state, 0, 1, mask)
    return [np.append(r.mask_logits[0].ravel(), r.object_score_logits[0])
            for r in predictor.propagate(state, progress=False)]


def test_foreign_memory_writes_the_donors_memories_and_changes_the_tracking(model):
    a = make_video(seed=3, num_frames=4, size=(160, 120), num_objects=2)
    b = make_video(seed=4, num_frames=4, size=(160, 120), num_objects=2)
    donor = ProbeTracker(model, "record")
    track(model, donor, b.frames, b.masks[0] == 1)
    assert len(donor.written) == 4  # the prompted frame and the three tracked ones
    own = ProbeTracker(model, "record")
    plain = track(model, own, a.frames, a.masks[0] == 1)
    foreign = ProbeTracker(model, "foreign", donor.written)
    swapped = track(model, foreign, a.frames, a.masks[0] == 1)
    assert all(torch.equal(x, y) for x, y in zip(foreign.written, donor.written))
    assert not torch.equal(own.written[0], donor.written[0])
    assert np.array_equal(plain[0], swapped[0])  # the prompted frame reads no memory
    assert not np.array_equal(plain[-1], swapped[-1])


def test_zeroed_pointers_change_the_tracking_and_recording_changes_nothing(model):
    a = make_video(seed=3, num_frames=3, size=(160, 120), num_objects=1)
    reference = track(model, ProbeTracker(model, "record"), a.frames, a.masks[0] == 1)
    plain = track(model, None, a.frames, a.masks[0] == 1)
    zeroed = track(model, ProbeTracker(model, "no_pointers"), a.frames, a.masks[0] == 1)
    assert all(np.array_equal(x, y) for x, y in zip(reference, plain))
    assert not np.array_equal(reference[-1], zeroed[-1])


def test_probe_arguments_are_checked(model):
    with pytest.raises(ValueError, match="donor"):
        ProbeTracker(model, "foreign")
    with pytest.raises(ValueError, match="probe mode"):
        ProbeTracker(model, "shuffled")


def test_probe_memory_scores_every_probe_and_task(model, folder, tmp_path):
    scores = probe_memory(model, folder, tmp_path, tasks=("mask", "box"), videos=2)
    assert set(scores) == set(PROBES)
    for probe in PROBES:
        assert 0 <= scores[probe]["mask"]["J&F-Mean"] <= 1
        assert 0 <= scores[probe]["box"]["AO"] <= 1


def test_prompted_frame_iou_counts_objects_and_the_mask_prompt_is_nearly_exact(model, folder):
    result = prompted_frame_iou(model, folder, videos=2, every=2, min_pixels=64)
    assert result.objects == 8  # 2 videos x frames 0 and 2 x 2 objects, all large
    assert result.iou["mask"] > 0.9  # a mask prompt is output as it is, up to the model's resolution
    assert 0 <= result.iou["click"] <= 1 and 0 <= result.iou["box"] <= 1
    with pytest.raises(ValueError, match="unknown prompt"):
        prompted_frame_iou(model, folder, prompts=("scribble",))
