"""DAVIS 2017 semi-supervised scores: region similarity J and boundary accuracy F.

Conventions (../shared/metrics/README.md, davis2017-evaluation):
- the frames are the GT PNGs of a video in natural order; the first and the last one are not scored;
  each prediction PNG is read under the GT file name (extra prediction files are ignored);
- the objects are ids 1..max(id in the first GT frame); a missing prediction id is an empty mask,
  a prediction id above the object count is an error; GT value 255 is "void" (ignored pixels);
- per object: Mean, Recall (fraction of frames > 0.5) and Decay (first quarter minus last quarter);
- the dataset value of each key is the mean over all objects of all videos.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from natsort import natsorted
from scipy import ndimage
from tqdm.auto import tqdm

from sam2pp.eval.report import EvalResult
from sam2pp.io.formats import is_hidden, read_palette_png

BOUNDARY_TOLERANCE = 0.008  # of the image diagonal
RECALL_THRESHOLD = 0.5
DECAY_BINS = 4
VOID_ID = 255
VOS_KEYS = ("J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")


@dataclass
class ObjectScores:
    """Per-frame J and F of one object over the scored frames. (N,) float64 each."""

    video: str
    obj_id: int
    j: np.ndarray
    f: np.ndarray

    def stats(self) -> dict[str, float]:
        jm, jr, jd = statistics(self.j)
        fm, fr, fd = statistics(self.f)
        return {"J&F-Mean": (jm + fm) / 2, "J-Mean": jm, "J-Recall": jr, "J-Decay": jd,
                "F-Mean": fm, "F-Recall": fr, "F-Decay": fd}


def evaluate_vos(gt_dir: str | Path, pred_dir: str | Path, progress: bool = True) -> EvalResult:
    """Score `PRED/<video>/*.png` against `GT/<video>/*.png` (CONTRACT.md section 4)."""
    gt_dir, pred_dir = Path(gt_dir), Path(pred_dir)
    videos = _list_videos(gt_dir, pred_dir)
    objects: list[ObjectScores] = []
    for video in tqdm(videos, desc="eval vos", unit="video", disable=not progress):
        objects.extend(score_video(video, gt_dir / video, pred_dir / video))
    if not objects:
        raise ValueError(f"{gt_dir}: no object to evaluate (every first GT frame is empty)")
    per_object = {f"{o.video}_{o.obj_id}": o.stats() for o in objects}
    summary = {key: float(np.mean([row[key] for row in per_object.values()])) for key in VOS_KEYS}
    summary["J&F-Mean"] = (summary["J-Mean"] + summary["F-Mean"]) / 2
    return EvalResult("vos", summary, per_object)


def _list_videos(gt_dir: Path, pred_dir: Path) -> list[str]:
    for folder, role in ((gt_dir, "GT"), (pred_dir, "prediction")):
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: {role} folder not found")
    videos = natsorted(p.name for p in gt_dir.iterdir() if p.is_dir() and not is_hidden(p))
    if not videos:
        raise ValueError(f"{gt_dir}: no video folders (expected GT/<video>/*.png)")
    missing = [v for v in videos if not (pred_dir / v).is_dir()]
    if missing:
        raise ValueError(f"{pred_dir}: missing prediction folder(s) for video(s) {missing}")
    return videos


def score_video(video: str, gt_folder: Path, pred_folder: Path) -> list[ObjectScores]:
    """J and F of every object of one video over its scored frames (all but the first and last)."""
    names = natsorted(p.name for p in gt_folder.iterdir() if p.suffix.lower() == ".png" and not is_hidden(p))
    if len(names) < 3:
        raise ValueError(f"video {video!r}: {len(names)} GT frame(s); at least 3 are needed "
                         "(the first and the last are not scored)")
    gt = _read_stack(gt_folder, names, video, "GT")
    pred = _read_stack(pred_folder, names, video, "prediction", shape=gt.shape[1:])
    void = gt == VOID_ID
    gt[void] = 0
    num_objects = int(gt[0].max())
    _check_prediction_ids(pred, num_objects, video, names)
    gt, pred, void = gt[1:-1], pred[1:-1], void[1:-1]
    radius = int(np.ceil(BOUNDARY_TOLERANCE * np.hypot(*gt.shape[1:])))
    scores = []
    for obj_id in range(1, num_objects + 1):
        gt_mask, pred_mask = gt == obj_id, pred == obj_id
        region = support(gt_mask | pred_mask)
        gt_mask, pred_mask, obj_void = gt_mask[region], pred_mask[region], void[region]
        j = jaccard(gt_mask, pred_mask, obj_void)
        f = boundary_f(gt_mask & ~obj_void, pred_mask & ~obj_void, radius)
        scores.append(ObjectScores(video, obj_id, j, f))
    return scores


def support(masks: np.ndarray) -> tuple[slice, slice, slice]:
    """Index of the (T, H, W) region holding every True pixel plus a one-pixel margin.

    J counts and `seg2bmap` boundaries are unchanged by cropping to it: boundaries only lie on or next
    to True pixels, and the margin (or the image edge) keeps the crop's edge rows and columns empty.
    An all-False stack gives a single-pixel region, which scores like the full empty frames.
    """
    rows = np.flatnonzero(masks.any(axis=(0, 2)))
    cols = np.flatnonzero(masks.any(axis=(0, 1)))
    if not rows.size:
        return np.s_[:, :1, :1]
    return np.s_[:, max(rows[0] - 1, 0):rows[-1] + 2, max(cols[0] - 1, 0):cols[-1] + 2]


def _read_stack(folder: Path, names: list[str], video: str, role: str,
                shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Read the PNGs `names` of one folder into (T, H, W) uint8, checking that every frame has one size."""
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise ValueError(f"video {video!r}: {role} frame(s) missing in {folder}: {missing[:5]}"
                         f"{' ...' if len(missing) > 5 else ''} ({len(missing)} of {len(names)})")
    frames = []
    for name in names:
        ids = read_palette_png(folder / name)
        expected = shape or (frames[0].shape if frames else ids.shape)
        if ids.shape != tuple(expected):
            raise ValueError(f"video {video!r}, frame {name}: {role} mask is {ids.shape[1]}x{ids.shape[0]} "
                             f"(WxH), expected {expected[1]}x{expected[0]}")
        frames.append(ids)
    return np.stack(frames)


def _check_prediction_ids(pred: np.ndarray, num_objects: int, video: str, names: list[str]) -> None:
    """DAVIS aborts on prediction ids above the first GT frame's maximum; so do we, naming the frame."""
    above = (pred > num_objects).any(axis=(1, 2))
    if above.any():
        t = int(np.argmax(above))
        raise ValueError(f"video {video!r}, frame {names[t]}: prediction holds id {int(pred[t].max())} but the "
                         f"first GT frame has {num_objects} object(s) (ids 1..{num_objects})")


def jaccard(gt: np.ndarray, pred: np.ndarray, void: np.ndarray | None = None) -> np.ndarray:
    """Per-frame IoU of (T, H, W) bool masks, void pixels excluded; 1 when both masks are empty. -> (T,)"""
    keep = np.ones_like(gt) if void is None else ~void
    inter = np.count_nonzero(gt & pred & keep, axis=(-2, -1))
    union = np.count_nonzero((gt | pred) & keep, axis=(-2, -1))
    return np.where(union == 0, 1.0, inter / np.maximum(union, 1))


def seg2bmap(masks: np.ndarray) -> np.ndarray:
    """One-pixel boundaries of (..., H, W) bool masks, as DAVIS's `_seg2bmap` defines them.

    A pixel is on the boundary when it differs from its right, lower or lower-right neighbour
    (outside the image counts as background); the last row and column compare along the edge only,
    and the bottom-right corner is never a boundary.
    """
    masks = masks.astype(bool)
    right = np.zeros_like(masks)
    down = np.zeros_like(masks)
    diag = np.zeros_like(masks)
    right[..., :, :-1] = masks[..., :, 1:]
    down[..., :-1, :] = masks[..., 1:, :]
    diag[..., :-1, :-1] = masks[..., 1:, 1:]
    bmap = (masks ^ right) | (masks ^ down) | (masks ^ diag)
    bmap[..., -1, :] = masks[..., -1, :] ^ right[..., -1, :]
    bmap[..., :, -1] = masks[..., :, -1] ^ down[..., :, -1]
    bmap[..., -1, -1] = False
    return bmap


def boundary_f(gt: np.ndarray, pred: np.ndarray, radius: int) -> np.ndarray:
    """Per-frame DAVIS boundary F-measure of (T, H, W) bool masks with a disk tolerance of `radius` px. -> (T,)"""
    gt_b, pred_b = seg2bmap(gt), seg2bmap(pred)
    return np.array([_frame_boundary_f(g, p, radius) for g, p in zip(gt_b, pred_b)], dtype=np.float64)


def _frame_boundary_f(gt_b: np.ndarray, pred_b: np.ndarray, radius: int) -> float:
    """F of one frame's boundary maps (H, W), with DAVIS's special cases for empty boundaries."""
    n_gt, n_pred = np.count_nonzero(gt_b), np.count_nonzero(pred_b)
    if n_gt == 0 and n_pred == 0:
        return 1.0
    if n_gt == 0 or n_pred == 0:
        return 0.0  # P=1, R=0 or P=0, R=1
    rows = np.flatnonzero((gt_b | pred_b).any(axis=1))
    cols = np.flatnonzero((gt_b | pred_b).any(axis=0))
    crop = np.s_[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    gt_b, pred_b = gt_b[crop], pred_b[crop]
    precision = np.count_nonzero(pred_b & within(gt_b, radius)) / n_pred
    recall = np.count_nonzero(gt_b & within(pred_b, radius)) / n_gt
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def within(points: np.ndarray, radius: int) -> np.ndarray:
    """Dilation of a (H, W) bool map by `skimage.morphology.disk(radius)`: pixels at Euclidean distance
    <= radius from a True pixel. The distance transform gives the same set as the disk dilation, in
    time independent of the radius."""
    return ndimage.distance_transform_edt(~points) <= radius


def statistics(values: np.ndarray) -> tuple[float, float, float]:
    """DAVIS Mean, Recall and Decay of per-frame values (N,).

    Decay splits the frames into 4 overlapping bins at round(linspace(1, N, 5)) - 1 and returns
    mean(first bin) - mean(last bin). (The toolkit stores those indices as uint8, which only differs
    from this for videos of more than 257 frames.)
    """
    mean = float(np.mean(values))
    recall = float(np.mean(values > RECALL_THRESHOLD))
    ids = (np.round(np.linspace(1, len(values), DECAY_BINS + 1) + 1e-10) - 1).astype(int)
    first = values[ids[0]:ids[1] + 1]
    last = values[ids[DECAY_BINS - 1]:ids[DECAY_BINS] + 1]
    return mean, recall, float(np.mean(first) - np.mean(last))
