"""Probes of what a trained model has learned, for `docs/training-diagnostics.md`.

Two questions a plateau raises that a loss curve cannot answer:

- **Does it read its memory?** Held-out clips are tracked as they are, with every spatial memory replaced by the
  memory the model wrote at the same place in another clip ("foreign_memory"), and with every object pointer zeroed
  ("no_pointers"). A model that tracks as well without its own memories has learned to segment salient objects,
  not to follow one.
- **Is the image stage good enough?** The IoU of the mask decoded from one prompt (a click, a box, the mask itself)
  on single held-out frames, with no memory: video stages cannot track better than their first frame segments.

Both score with the code of `sam2pp eval` / the predictor, on the section-4 folders that validation writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ..eval import evaluate
from ..io.formats import list_frames, read_palette_png
from ..modeling.tracker import FrameMemory, Tracker
from ..predictor.video_predictor import VideoPredictor
from ..track import track_video
from .validation import TASK_EVAL, truth_subset, videos_for

PROBES = ("as_is", "foreign_memory", "no_pointers")
PROBE_MODES = {"as_is": "record", "foreign_memory": "foreign", "no_pointers": "no_pointers"}
PROMPTS = ("click", "box", "mask")


class ProbeTracker(Tracker):
    """The inference tracker with its memories swapped or its object pointers zeroed.

    mode "record" tracks as the plain tracker does and keeps every memory it writes, in order; "foreign" writes, in
    place of its k-th memory, the k-th memory of the run it was given (`donor`, cycled when it is shorter: clips of
    the same generator have the same frames and about the same objects, so the k-th memory is the same object slot
    and frame); "no_pointers" reads zero object pointers (their temporal encodings stay).
    """

    def __init__(self, model, mode: str = "record", donor: list[Tensor] | None = None):
        if mode not in ("record", "foreign", "no_pointers"):
            raise ValueError(f"unknown probe mode {mode!r}")
        if mode == "foreign" and not donor:
            raise ValueError("the foreign-memory probe needs the memories of a donor run")
        super().__init__(model)
        self.mode, self.donor, self.written = mode, donor or [], []

    def _store_memory(self, task: str, frame: FrameMemory, feats: Tensor, pos: Tensor) -> None:
        if self.mode == "foreign":
            feats = self.donor[len(self.written) % len(self.donor)].to(feats.device)
        if self.mode in ("record", "foreign"):
            self.written.append(feats.detach().clone())
        super()._store_memory(task, frame, feats, pos)

    def _object_pointers(self, *args, **kwargs):
        ptrs, pos = super()._object_pointers(*args, **kwargs)
        if self.mode == "no_pointers":
            ptrs = [torch.zeros_like(p) for p in ptrs]
        return ptrs, pos


def probe_memory(model: nn.Module, root: Path, out: Path, tasks=tuple(TASK_EVAL), videos: int = 8) -> dict:
    """{probe: {task: metrics}} over the first `videos` clips of the section-4 folder `root` (the model is left in
    eval mode); the foreign memories of clip i are those clip i + 1 (cyclically) wrote when tracked as it is."""
    model.eval()
    scores: dict[str, dict] = {p: {} for p in PROBES}
    for task in tasks:
        names = videos_for(root, task, videos)
        if len(names) < 2:
            raise ValueError(f"{root}: the memory probe needs at least 2 {task} videos, found {len(names)}")
        gt = truth_subset(root, task, names, out / "gt" / task)
        written: dict[str, list[Tensor]] = {}
        for probe in PROBES:  # "as_is" first: it records the memories the foreign probe hands on
            pred = out / probe / task
            for i, name in enumerate(names):
                donor = written[names[(i + 1) % len(names)]] if probe == "foreign_memory" else None
                tracker = ProbeTracker(model, PROBE_MODES[probe], donor)
                _track(model, tracker, root, task, name, pred)
                if probe == "as_is":
                    written[name] = tracker.written
            scores[probe][task] = evaluate(TASK_EVAL[task][0], gt, pred / TASK_EVAL[task][1], progress=False).summary
    return scores


def _track(model, tracker: Tracker, root: Path, task: str, name: str, pred: Path) -> None:
    predictor = VideoPredictor(model)
    predictor.tracker = tracker
    prompt = TASK_EVAL[task][2](root, name)
    track_video(predictor, root / "JPEGImages" / name, task, prompt, pred, preview=None, progress=False,
                overwrite=True)


@dataclass
class PromptedIoU:
    """Mean IoU of the mask decoded from each kind of prompt on single frames, and how many objects it averages."""

    iou: dict[str, float] = field(default_factory=dict)
    objects: int = 0


def prompted_frame_iou(model: nn.Module, root: Path, videos: int = 8, every: int = 6, min_pixels: int = 64,
                       prompts=PROMPTS) -> PromptedIoU:
    """Every `every`-th frame of the first `videos` clips under `root`: each object with at least `min_pixels`
    pixels is prompted alone on that frame (no memory) by a click on its mask pixel nearest to the mask's centroid,
    by its tight box (the mask task's box prompt), or by its mask; the decoded mask is scored against the truth."""
    unknown = sorted(set(prompts) - set(PROMPTS))
    if unknown:
        raise ValueError(f"unknown prompt kinds {unknown}; known: {list(PROMPTS)}")
    model.eval()
    predictor = VideoPredictor(model)
    totals = {p: [] for p in prompts}
    for name in videos_for(root, "mask", videos):
        frames = list_frames(root / "JPEGImages" / name)
        masks = list_frames(root / "Annotations" / name)
        for t in range(0, len(frames), every):
            labels = read_palette_png(masks[t])
            state = predictor.init_state([frames[t]])
            for obj_id in (int(i) for i in np.unique(labels) if i != 0):
                truth = labels == obj_id
                if truth.sum() < min_pixels:
                    continue
                for kind in prompts:
                    mask = prompt_alone(predictor, state, kind, obj_id, truth)
                    totals[kind].append(_iou(mask, truth))
    count = len(next(iter(totals.values()), []))
    return PromptedIoU({k: float(np.mean(v)) if v else float("nan") for k, v in totals.items()}, count)


def prompt_alone(predictor: VideoPredictor, state, kind: str, obj_id: int, truth: np.ndarray) -> np.ndarray:
    """The mask decoded on frame 0 of `state`, every earlier prompt forgotten, from one prompt of `kind` made from
    the object's true mask `truth`: a click on its pixel nearest the centroid, its tight box, or the mask itself."""
    predictor.reset_state(state)
    ys, xs = np.nonzero(truth)
    if kind == "click":
        k = int(np.argmin((xs - xs.mean()) ** 2 + (ys - ys.mean()) ** 2))
        result = predictor.add_points(state, 0, obj_id, [[xs[k], ys[k]]], [1])
    elif kind == "box":
        result = predictor.add_box(state, 0, obj_id, [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], task="mask")
    else:
        result = predictor.add_mask(state, 0, obj_id, truth)
    return result.masks[result.index(obj_id)]


def _iou(pred: np.ndarray, truth: np.ndarray) -> float:
    union = np.logical_or(pred, truth).sum()
    return float(np.logical_and(pred, truth).sum() / union) if union else 1.0
