"""The shipped demo model (`sam2pp-demo`): its half-precision export and its measurement on held-out clips.

`scripts/train_demo_model.py` trains it; the quality test and the README table measure it here, the same way: rich
synthetic clips drawn from seeds that training never draws (training videos take seeds derived from the run's seed and
the clip index; `HELD_OUT_SEEDS` are fixed numbers far outside them), written in the section-4 layout, tracked from
their first-frame prompts and scored with the `sam2pp eval` code, next to the copy-the-first-frame baseline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..checkpoint import build_model, read_checkpoint
from ..predictor.video_predictor import VideoPredictor
from .config import ValidationConfig, load_config
from .validation import baseline_scores, held_out_root, validate

HELD_OUT_SEEDS = tuple(range(700001, 700033))
HELD_OUT_FRAMES = 24
TASK_METRICS = {"mask": ("J&F-Mean", "J-Mean", "F-Mean"), "box": ("AUC", "AO", "SR50"),
                "point": ("AJ", "delta_avg", "OA")}
HEADLINE = {"mask": "J&F-Mean", "box": "AO", "point": "delta_avg"}
"""The metric each task's target is set on (issue 9: J&F >= 0.75, AO >= 0.65, delta_avg >= 0.55)."""


@dataclass
class HeldOutScores:
    """{task: {metric: value}} of a model and of the copy-the-first-frame baseline on the same clips."""

    videos: int
    model: dict
    baseline: dict

    def margin(self, task: str) -> float:
        """The model's headline metric minus the baseline's."""
        return self.model[task][HEADLINE[task]] - self.baseline[task][HEADLINE[task]]

    def table(self, name: str = "sam2pp-demo") -> str:
        """A markdown table: one row per task and metric."""
        rows = [f"| task | metric | {name} | copy first frame |", "|---|---|---|---|"]
        for task, keys in TASK_METRICS.items():
            rows += [f"| {task} | {k} | {self.model[task][k]:.3f} | {self.baseline[task][k]:.3f} |" for k in keys]
        return "\n".join(rows)


def held_out_clips(folder: Path, videos: int) -> Path:
    """The first `videos` held-out clips (the `demo` preset's rich generator) under `folder`, written once."""
    if not 1 <= videos <= len(HELD_OUT_SEEDS):
        raise ValueError(f"videos must be between 1 and {len(HELD_OUT_SEEDS)}, got {videos}")
    val = ValidationConfig(synthetic_seeds=HELD_OUT_SEEDS[:videos], synthetic_frames=HELD_OUT_FRAMES)
    return held_out_root(val, folder, load_config("demo").data.synthetic)


def score_held_out(model: nn.Module, folder: Path, videos: int = 8, progress: bool = True) -> HeldOutScores:
    """`model` and the baseline on `videos` held-out clips; clips and predictions go under `folder`."""
    return score_clips(model, held_out_clips(folder, videos), folder, videos, progress)


def score_clips(model: nn.Module, root: Path, out: Path, videos: int, progress: bool = True) -> HeldOutScores:
    """`model` and the baseline on the first `videos` clips of the section-4 folder `root` (every task)."""
    tasks = tuple(TASK_METRICS)
    scores = validate(model, root, out / "model", tasks, videos, progress=progress)
    return HeldOutScores(videos, scores, baseline_scores(root, out / "baseline", tasks, videos))


HALF_PRECISION_TOLERANCE = 1e-2
"""The largest `half_precision_gap` at which the shipped file may be float16; above it, it stays float32."""


def export_weights(checkpoint: Path, out: Path, half: bool) -> Path:
    """The checkpoint's weights as `{"model": state_dict}`, floating-point tensors in float16 when `half`."""
    state = read_checkpoint(checkpoint)
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": state}, out)
    return out


def half_precision_gap(config: str, full: Path, half: Path, video: np.ndarray, mask: np.ndarray) -> float:
    """The largest difference, over every frame of `video` tracked from `mask` on frame 0, between the float32
    model and the model loaded from the float16 weights: of mask probabilities, and of box corners as fractions of
    the frame size."""
    outputs = [_track(build_model(config, checkpoint=path), video, mask) for path in (full, half)]
    return max(float(np.abs(a - b).max()) for a, b in zip(*outputs))


def _track(model: nn.Module, video: np.ndarray, mask: np.ndarray) -> list[np.ndarray]:
    predictor = VideoPredictor(model)
    state = predictor.init_state(video)
    predictor.add_mask(state, 0, 1, mask)
    predictor.add_box(state, 0, 2, _box_of(mask), task="box")
    scale = np.array([video.shape[2], video.shape[1]] * 2, dtype=np.float32)
    out = []
    for r in predictor.propagate(state, progress=False):
        out += [1 / (1 + np.exp(-np.clip(r.mask_logits, -30, 30))), np.nan_to_num(r.boxes_xyxy / scale)]
    return out


def _box_of(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float32)
