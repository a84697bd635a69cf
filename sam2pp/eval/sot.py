"""Single-object tracking scores: LaSOT/OTB `AUC`, `Precision`, `NormPrecision` and GOT-10k `AO`, `SR50`, `SR75`.

Conventions (../shared/metrics/README.md; pytracking with LaSOT rules, got-10k toolkit):
- LaSOT/OTB: absent GT frames (NaN, w <= 0 or h <= 0) stay in the denominator as failures; frame 0's
  prediction is replaced by the GT; from frame 1 on a prediction with w = 0 or h = 0 is replaced by
  the previous frame's (already replaced) box; fractions per sequence, then the mean over sequences.
- GOT-10k: frame 0 and absent GT frames are dropped; boxes are clipped to the image when its size is
  known; IoUs of all sequences are pooled before averaging.

The image size of `<video>` is read from an optional `GT/<video>.size` text file holding `W,H`
(the got-10k toolkit takes it from its `meta_info.ini`). Without it boxes are not clipped, which gives
the toolkit's numbers whenever every box lies inside its image.
Predictions must be finite with w, h >= 0 and have as many lines as the GT (pytracking and got-10k
reject anything else); write `0,0,0,0` for "no box".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from natsort import natsorted
from tqdm.auto import tqdm

from sam2pp.eval.report import EvalResult
from sam2pp.io.formats import box_absent, is_hidden, read_boxes_txt, read_text

SUCCESS_THRESHOLDS = np.arange(21) * 0.05  # IoU > t, t in 0, 0.05, ..., 1
PRECISION_PX = 20.0  # centre error <= 20 px
NORM_PRECISION = 0.20  # size-normalized centre error <= 0.2
SOT_KEYS = ("AUC", "Precision", "NormPrecision", "AO", "SR50", "SR75")


@dataclass
class SequenceScores:
    """Scores of one sequence: LaSOT fractions and the GOT-10k IoUs that enter the pooled mean."""

    auc: float
    precision: float
    norm_precision: float
    got_ious: np.ndarray  # (K,) IoU of scored frames (frame 0 and absent frames dropped)

    def as_dict(self) -> dict[str, float]:
        row = {"AUC": self.auc, "Precision": self.precision, "NormPrecision": self.norm_precision}
        if self.got_ious.size:
            row.update(_got_summary(self.got_ious))
        return row


def evaluate_sot(gt_dir: str | Path, pred_dir: str | Path, progress: bool = True) -> EvalResult:
    """Score `PRED/<video>.txt` against `GT/<video>.txt` (x,y,w,h per line, CONTRACT.md section 4)."""
    gt_dir, pred_dir = Path(gt_dir), Path(pred_dir)
    videos = _list_videos(gt_dir, pred_dir)
    scores: dict[str, SequenceScores] = {}
    for video in tqdm(videos, desc="eval sot", unit="video", disable=not progress):
        gt = read_boxes_txt(gt_dir / f"{video}.txt")
        pred = read_boxes_txt(pred_dir / f"{video}.txt")
        scores[video] = score_sequence(video, gt, pred, read_image_size(gt_dir / f"{video}.size"))
    summary = {
        "AUC": float(np.mean([s.auc for s in scores.values()])),
        "Precision": float(np.mean([s.precision for s in scores.values()])),
        "NormPrecision": float(np.mean([s.norm_precision for s in scores.values()])),
    }
    pooled = np.concatenate([s.got_ious for s in scores.values()])
    if not pooled.size:
        raise ValueError(f"{gt_dir}: no frame after frame 0 with a present target; GOT-10k scores are undefined")
    summary.update(_got_summary(pooled))
    return EvalResult("sot", summary, {video: s.as_dict() for video, s in scores.items()})


def _list_videos(gt_dir: Path, pred_dir: Path) -> list[str]:
    for folder, role in ((gt_dir, "GT"), (pred_dir, "prediction")):
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: {role} folder not found")
    videos = natsorted(p.stem for p in gt_dir.glob("*.txt") if not is_hidden(p))
    if not videos:
        raise ValueError(f"{gt_dir}: no box files (expected GT/<video>.txt)")
    missing = [v for v in videos if not (pred_dir / f"{v}.txt").is_file()]
    if missing:
        raise ValueError(f"{pred_dir}: missing prediction file(s) for video(s) {missing}")
    return videos


def read_image_size(path: Path) -> tuple[float, float] | None:
    """`W,H` (comma or whitespace) of an optional `.size` file; None when the file does not exist."""
    if not path.is_file():
        return None
    text = read_text(path, "image size file")
    try:
        width, height = (float(f) for f in text.replace(",", " ").split())
    except ValueError as err:
        raise ValueError(f"{path}: expected two numbers W,H, got {text.strip()!r}") from err
    if width <= 0 or height <= 0:
        raise ValueError(f"{path}: image size must be positive, got {width}x{height}")
    return width, height


def score_sequence(video: str, gt: np.ndarray, pred: np.ndarray,
                   image_size: tuple[float, float] | None = None) -> SequenceScores:
    """Scores of one sequence from (T, 4) xywh GT and predictions."""
    _check_prediction(video, gt, pred)
    present = ~box_absent(gt)
    auc, precision, norm_precision = lasot_scores(gt, pred, present)
    got = iou(_clip(pred[1:], image_size), _clip(gt[1:], image_size))[present[1:]]
    return SequenceScores(auc, precision, norm_precision, got)


def _check_prediction(video: str, gt: np.ndarray, pred: np.ndarray) -> None:
    if len(pred) != len(gt):
        raise ValueError(f"video {video!r}: prediction has {len(pred)} lines, GT has {len(gt)}")
    bad = np.isnan(pred).any(axis=1) | (pred[:, 2:] < 0).any(axis=1)
    if bad.any():
        frames = np.flatnonzero(bad)
        raise ValueError(f"video {video!r}: prediction at frame(s) {frames[:5].tolist()} is NaN or has a "
                         "negative size (write 0,0,0,0 for 'no box')")


def lasot_scores(gt: np.ndarray, pred: np.ndarray, present: np.ndarray) -> tuple[float, float, float]:
    """AUC, Precision and NormPrecision of one sequence (pytracking, LaSOT rules). (T, 4) xywh inputs."""
    pred = _hold_degenerate(pred)
    pred[0] = gt[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        overlap = np.where(present, iou(pred, gt), -1.0)
        offset = _centre(pred) - _centre(gt)
        centre_err = np.where(present, np.hypot(offset[:, 0], offset[:, 1]), np.inf)
        norm_offset = offset / gt[:, 2:]
        norm_err = np.where(present, np.hypot(norm_offset[:, 0], norm_offset[:, 1]), np.inf)
    success = (overlap[:, None] > SUCCESS_THRESHOLDS[None, :]).mean(axis=0)
    return float(success.mean()), float(np.mean(centre_err <= PRECISION_PX)), float(np.mean(norm_err <= NORM_PRECISION))


def _hold_degenerate(pred: np.ndarray) -> np.ndarray:
    """Replace each box with w = 0 or h = 0 (from frame 1 on) by the latest earlier box that is kept."""
    replace = (pred[:, 2:] == 0).any(axis=1)
    replace[0] = False
    source = np.maximum.accumulate(np.where(replace, 0, np.arange(len(pred))))
    return pred[source].copy()


def _centre(xywh: np.ndarray) -> np.ndarray:
    """Pixel-centre convention of OTB/LaSOT: x + (w - 1) / 2. (T, 4) -> (T, 2)"""
    return xywh[:, :2] + 0.5 * (xywh[:, 2:] - 1.0)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of (T, 4) xywh boxes; 0 when the union is empty. -> (T,)"""
    top_left = np.maximum(a[:, :2], b[:, :2])
    bottom_right = np.minimum(a[:, :2] + a[:, 2:], b[:, :2] + b[:, 2:])
    inter = np.clip(bottom_right - top_left, 0, None).prod(axis=1)
    union = a[:, 2:].prod(axis=1) + b[:, 2:].prod(axis=1) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def _clip(xywh: np.ndarray, image_size: tuple[float, float] | None) -> np.ndarray:
    """Clip boxes to the image as the got-10k toolkit does: x to [0, W], then w to [0, W - x]."""
    if image_size is None:
        return xywh
    width, height = image_size
    x = np.clip(xywh[:, 0], 0, width)
    y = np.clip(xywh[:, 1], 0, height)
    w = np.clip(xywh[:, 2], 0, width - x)
    h = np.clip(xywh[:, 3], 0, height - y)
    return np.stack([x, y, w, h], axis=1)


def _got_summary(ious: np.ndarray) -> dict[str, float]:
    return {"AO": float(ious.mean()), "SR50": float(np.mean(ious > 0.5)), "SR75": float(np.mean(ious > 0.75))}
