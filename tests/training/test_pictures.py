"""Training pictures: the prediction grid and the loss curves."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sam2pp.training.clip import Clip, StepOutput
from sam2pp.training.pictures import best_candidate, loss_curves, prediction_grid, trailing_mean


def test_trailing_mean_averages_the_last_values():
    np.testing.assert_allclose(trailing_mean(np.array([1.0, 2, 3, 4, 5]), 2), [1, 1.5, 2.5, 3.5, 4.5])
    np.testing.assert_allclose(trailing_mean(np.array([4.0, 2]), 10), [4, 3])


def test_best_candidate_follows_the_predicted_iou():
    masks = torch.stack([torch.full((1, 8, 8), float(m)) for m in range(3)], dim=1)
    step = StepOutput(masks, torch.tensor([[0.1, 0.9, 0.3]]), torch.ones(1, 1),
                      torch.tensor([[[0, 0, 0.5, 0.5], [0, 0, 1, 1], [0.5, 0.5, 1, 1]]]))
    kept = best_candidate(step)
    assert kept["masks"].unique().item() == 1.0
    assert kept["boxes"].tolist() == [[0, 0, 8, 8]]


@pytest.mark.parametrize("task", ["mask", "box", "point"])
def test_grid_shows_ground_truth_above_predictions(task):
    t, n, s = 3, 2, 32
    masks = torch.zeros(t, n, s, s)
    masks[:, 0, 4:12, 4:12] = 1
    clip = Clip(task, torch.zeros(t, 3, s, s), masks, torch.ones(t, n, dtype=torch.bool),
                boxes_xyxy=torch.tensor([4.0, 4, 12, 12]).expand(t, n, 4) if task == "box" else None,
                points_xy=torch.tensor([8.0, 8]).expand(t, n, 2) if task == "point" else None)
    step = StepOutput(masks[0][:, None] * 20 - 10, torch.ones(n, 1), torch.ones(n, 1),
                      torch.rand(n, 1, 4) if task == "box" else None)
    grid = prediction_grid(clip, [[step]] * t)
    assert grid.shape == (2 * s, t * s, 3) and grid.dtype == np.uint8
    assert not np.array_equal(grid[:s], np.zeros_like(grid[:s]))


def test_loss_curves_have_one_mean_line_per_task():
    history = [{"step": i, "task": ("mask", "box")[i % 2], "losses": {"core_loss": 10.0 / i}} for i in range(1, 9)]
    fig = loss_curves(history, smooth=3)
    labels = [line.get_label() for line in fig.axes[0].get_lines() if not line.get_label().startswith("_")]
    assert labels == ["mask (mean of 3)", "box (mean of 3)"]
