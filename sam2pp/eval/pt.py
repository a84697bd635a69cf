"""TAP-Vid point-tracking scores (`query_mode='first'`): AJ, delta_avg, OA, Jaccard_d, pts_within_d.

Conventions (../shared/metrics/README.md; SAM2-Plus `evaluate_jaccard_from_npz` = tapnet metrics):
- coordinates are truncated to integers (as SAM2-Plus does), then rescaled to 256x256 with each
  file's own `size` (W, H); a prediction file without `size` uses the GT's;
- a point's query frame is its first GT-visible frame and only later frames are scored; a point that
  is never visible is not scored;
- within d means squared distance < d^2 for d in 1, 2, 4, 8, 16; counts are pooled over the points
  and frames of a video; the dataset value is the mean over videos;
- when a video has no GT-visible scored point, its pts_within and Jaccard are 0 (SAM2-Plus's rule).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from natsort import natsorted
from tqdm.auto import tqdm

from sam2pp.eval.report import EvalResult
from sam2pp.io.formats import PointTracks, is_hidden, read_points_npz

THRESHOLDS = (1, 2, 4, 8, 16)
RESCALE = 256.0
PT_KEYS = ("AJ", "delta_avg", "OA", *(f"Jaccard_{d}" for d in THRESHOLDS),
           *(f"pts_within_{d}" for d in THRESHOLDS))


def evaluate_pt(gt_dir: str | Path, pred_dir: str | Path, progress: bool = True) -> EvalResult:
    """Score `PRED/<video>.npz` against `GT/<video>.npz` (CONTRACT.md section 4)."""
    gt_dir, pred_dir = Path(gt_dir), Path(pred_dir)
    videos = _list_videos(gt_dir, pred_dir)
    per_video = {}
    for video in tqdm(videos, desc="eval pt", unit="video", disable=not progress):
        gt = read_points_npz(gt_dir / f"{video}.npz")
        if gt.size is None:
            raise ValueError(f"{gt_dir / f'{video}.npz'}: GT needs `size` (W, H) to rescale to 256x256")
        per_video[video] = score_video(video, gt, read_points_npz(pred_dir / f"{video}.npz"))
    summary = {key: float(np.mean([row[key] for row in per_video.values()])) for key in PT_KEYS}
    return EvalResult("pt", summary, per_video)


def _list_videos(gt_dir: Path, pred_dir: Path) -> list[str]:
    for folder, role in ((gt_dir, "GT"), (pred_dir, "prediction")):
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: {role} folder not found")
    videos = natsorted(p.stem for p in gt_dir.glob("*.npz") if not is_hidden(p))
    if not videos:
        raise ValueError(f"{gt_dir}: no point files (expected GT/<video>.npz)")
    missing = [v for v in videos if not (pred_dir / f"{v}.npz").is_file()]
    if missing:
        raise ValueError(f"{pred_dir}: missing prediction file(s) for video(s) {missing}")
    return videos


def score_video(video: str, gt: PointTracks, pred: PointTracks) -> dict[str, float]:
    """TAP-Vid metrics of one video, pooled over its points and scored frames."""
    if pred.trajs_2d.shape != gt.trajs_2d.shape:
        raise ValueError(f"video {video!r}: prediction has (T, N) = {pred.trajs_2d.shape[:2]}, "
                         f"GT has {gt.trajs_2d.shape[:2]}")
    bad = gt.visibs & np.isnan(gt.trajs_2d).any(axis=-1)
    if bad.any():
        t, n = np.argwhere(bad)[0]
        raise ValueError(f"video {video!r}, frame {t}: GT point {n} is visible but has NaN coordinates")
    gt_xy = _rescaled(gt.trajs_2d, gt.size)
    pred_xy = _rescaled(pred.trajs_2d, pred.size or gt.size)
    scored = scored_frames(gt.visibs)
    if not scored.any():
        raise ValueError(f"video {video!r}: nothing to score (no point is GT-visible before the last frame)")
    return tapvid_metrics(gt_xy, gt.visibs, pred_xy, pred.visibs, scored)


def _rescaled(trajs: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Truncate pixel coordinates to integers and map them to a 256x256 frame. (T, N, 2) -> float64."""
    return np.trunc(trajs.astype(np.float64)) * (RESCALE / np.asarray(size, dtype=np.float64))


def scored_frames(visibs: np.ndarray) -> np.ndarray:
    """(T, N) bool: frames strictly after each point's first GT-visible frame (none if never visible)."""
    seen = np.cumsum(visibs, axis=0) > 0
    return np.concatenate([np.zeros_like(seen[:1]), seen[:-1]], axis=0)


def tapvid_metrics(gt_xy: np.ndarray, gt_vis: np.ndarray, pred_xy: np.ndarray, pred_vis: np.ndarray,
                   scored: np.ndarray) -> dict[str, float]:
    """Pooled TAP-Vid metrics from (T, N, 2) coordinates, (T, N) visibilities and the (T, N) scored mask."""
    with np.errstate(invalid="ignore"):
        sq_dist = np.sum((pred_xy - gt_xy) ** 2, axis=-1)
    gt_visible = gt_vis & scored
    num_visible = np.count_nonzero(gt_visible)
    row = {"OA": np.count_nonzero((pred_vis == gt_vis) & scored) / np.count_nonzero(scored)}
    for d in THRESHOLDS:
        with np.errstate(invalid="ignore"):
            close = sq_dist < d * d
        correct = np.count_nonzero(close & gt_visible)
        true_pos = np.count_nonzero(close & gt_visible & pred_vis)
        false_pos = np.count_nonzero(pred_vis & scored & ~(gt_vis & close))
        row[f"pts_within_{d}"] = correct / num_visible if num_visible else 0.0
        row[f"Jaccard_{d}"] = true_pos / (num_visible + false_pos) if num_visible + false_pos else 0.0
    row["AJ"] = float(np.mean([row[f"Jaccard_{d}"] for d in THRESHOLDS]))
    row["delta_avg"] = float(np.mean([row[f"pts_within_{d}"] for d in THRESHOLDS]))
    return {key: float(row[key]) for key in PT_KEYS}
