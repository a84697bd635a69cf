"""Pictures of training: a clip's ground truth above its predictions, and loss curves per task.

The prediction of a frame is its last decoder run's best candidate (highest predicted IoU), as the tracker keeps
it: masks where the logits are > 0, the box head's box, the point at the arg-max of the heat map.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..io.formats import ordered_xyxy
from ..io.overlay import draw_overlay
from ..predictor.preprocess import IMAGE_MEAN, IMAGE_STD
from .clip import Clip, ClipOutputs, StepOutput

_MEAN = torch.tensor(IMAGE_MEAN).view(3, 1, 1)
_STD = torch.tensor(IMAGE_STD).view(3, 1, 1)


def frame_image(clip: Clip, t: int) -> np.ndarray:
    """Frame t of a clip as uint8 (S, S, 3), the normalisation undone."""
    image = clip.frames[t].detach().float().cpu() * _STD + _MEAN
    return (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


def best_candidate(step: StepOutput) -> dict[str, Tensor]:
    """The kept candidate of a decoder run: masks (N, S, S) logits, boxes (N, 4) pixels or None, score (N,)."""
    best = step.ious.argmax(dim=1)
    rows = torch.arange(best.shape[0])
    size = step.masks.shape[-1]
    boxes = None if step.boxes_xyxy_norm is None else step.boxes_xyxy_norm[rows, best] * size
    return {"masks": step.masks[rows, best], "boxes": boxes, "score": step.object_score_logits[:, 0]}


def _argmax_xy(logits: Tensor) -> Tensor:
    """(N, S, S) -> (N, 2) pixel (x, y) of each map's maximum."""
    size = logits.shape[-1]
    flat = logits.flatten(1).argmax(dim=1)
    return torch.stack([flat % size, flat // size], dim=1).float()


def _draw(task: str, image: np.ndarray, masks: Tensor, boxes: Tensor | None, points: Tensor | None,
          visible: Tensor) -> np.ndarray:
    vis = visible.cpu().numpy()
    if task == "mask":
        return draw_overlay(image, masks=(masks > 0.5).cpu().numpy() & vis[:, None, None])
    if task == "box":
        return draw_overlay(image, masks=(masks > 0.5).cpu().numpy() & vis[:, None, None],
                            boxes_xyxy=np.where(vis[:, None], ordered_xyxy(boxes.cpu().numpy()), np.nan), alpha=0.25)
    return draw_overlay(image, points_xy=points.cpu().numpy(), visible=vis)


def prediction_grid(clip: Clip, outputs: ClipOutputs, max_frames: int = 8) -> np.ndarray:
    """uint8 image: the ground truth of up to `max_frames` frames on the top row, the predictions below."""
    top, bottom = [], []
    with torch.no_grad():
        for t in range(min(clip.num_frames, max_frames)):
            image = frame_image(clip, t)
            gt_points = None if clip.points_xy is None else clip.points_xy[t]
            gt_boxes = None if clip.boxes_xyxy is None else clip.boxes_xyxy[t]
            top.append(_draw(clip.task, image, clip.masks[t], gt_boxes, gt_points, clip.visible[t]))
            kept = best_candidate(outputs[t][-1])
            shown = kept["score"] > 0
            prob = torch.sigmoid(kept["masks"].float())
            points = _argmax_xy(kept["masks"].float()) if clip.task == "point" else None
            bottom.append(_draw(clip.task, image, prob, kept["boxes"], points, shown))
    return np.concatenate([np.concatenate(top, axis=1), np.concatenate(bottom, axis=1)], axis=0)


def trailing_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of each value and the `window - 1` before it (fewer at the start)."""
    sums = np.cumsum(np.insert(values, 0, 0.0))
    counts = np.minimum(np.arange(1, len(values) + 1), window)
    return (sums[1:] - sums[np.arange(1, len(values) + 1) - counts]) / counts


def loss_curves(history: list[dict], key: str = "core_loss", smooth: int = 10):
    """A matplotlib figure of `key` per task over steps (raw, and a trailing mean over `smooth` steps)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    for task in ("mask", "box", "point"):
        rows = [(r["step"], r["losses"][key]) for r in history if r["task"] == task and key in r["losses"]]
        if not rows:
            continue
        steps, values = map(np.asarray, zip(*rows))
        line, = ax.plot(steps, values, alpha=0.25)
        ax.plot(steps, trailing_mean(values, smooth), color=line.get_color(), label=f"{task} (mean of {smooth})")
    ax.set_xlabel("step")
    ax.set_ylabel(key)
    ax.set_yscale("log")
    ax.legend(loc="upper right")
    fig.tight_layout()
    return fig
