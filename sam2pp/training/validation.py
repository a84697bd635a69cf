"""Validation with the benchmark metrics: track held-out clips with the model being trained, score with `sam2pp eval`.

Each task's videos are prompted on their first frame from the section-4 files (the first mask, the box file, the
points file), tracked by a `VideoPredictor` over the current weights, written in the section-4 layout and scored
by the same code as `sam2pp eval`: VOS J&F, SOT AUC / AO, PT AJ / delta_avg / OA.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from natsort import natsorted
from torch import nn
from tqdm.auto import tqdm

from ..eval import evaluate
from ..eval.baseline import copy_first_frame
from ..io.formats import list_frames
from ..predictor.video_predictor import VideoPredictor
from ..track import track_video
from .config import SyntheticData, ValidationConfig

# task -> (eval mode, the section-4 folder its files live in, the prompt file of a video)
TASK_EVAL = {
    "mask": ("vos", "Annotations", lambda root, v: list_frames(root / "Annotations" / v)[0]),
    "box": ("sot", "Boxes", lambda root, v: root / "Boxes" / f"{v}.txt"),
    "point": ("pt", "Points", lambda root, v: root / "Points" / f"{v}.npz"),
}


def held_out_root(config: ValidationConfig, out: Path, synthetic: SyntheticData) -> Path:
    """The validation folder: `config.root`, or synthetic clips like the training ones from seeds never used in
    training (training videos take seeds derived from (seed, index)), written once."""
    if config.root is not None:
        return Path(config.root)
    root = out / "validation" / "gt"
    for seed in config.synthetic_seeds:
        name = f"synth-{seed}"
        if not (root / "JPEGImages" / name).is_dir():
            synthetic.spec(seed, config.synthetic_frames).generate().write(root, name)
    return root


def videos_for(root: Path, task: str, limit: int) -> list[str]:
    """Videos under `root` that have the task's ground truth, natural order, at most `limit`."""
    _, folder, prompt = TASK_EVAL[task]
    names = natsorted(p.name for p in (root / "JPEGImages").iterdir() if p.is_dir())
    return [v for v in names if _has_truth(root, folder, v)][:limit]


def _has_truth(root: Path, folder: str, video: str) -> bool:
    if folder == "Annotations":
        return (root / folder / video).is_dir()
    suffix = ".txt" if folder == "Boxes" else ".npz"
    return (root / folder / f"{video}{suffix}").is_file()


def validate(model: nn.Module, root: Path, out: Path, tasks, max_videos: int, progress: bool = True) -> dict:
    """{task: {metric: value}} for the held-out videos under `root`; predictions go to `out/<task>/`.

    The model is switched to eval mode for tracking and back to training mode afterwards.
    """
    was_training = model.training
    predictor = VideoPredictor(model)
    scores = {}
    try:
        for task in tasks:
            scores[task] = _validate_task(predictor, root, out / task, task, max_videos, progress)
    finally:
        model.train(was_training)
    return scores


def _validate_task(predictor, root: Path, pred: Path, task: str, max_videos: int, progress: bool) -> dict:
    mode, folder, prompt = TASK_EVAL[task]
    videos = videos_for(root, task, max_videos)
    if pred.exists():
        shutil.rmtree(pred)
    for video in tqdm(videos, desc=f"validate {task}", unit="video", disable=not progress, leave=False):
        frames = root / "JPEGImages" / video
        if not list_frames(frames):
            raise ValueError(f"validation video {frames} has no frames")
        track_video(predictor, frames, task, prompt(root, video), pred, preview=None, progress=False)
    gt = truth_subset(root, task, videos, pred.parent / f"{task}_gt")
    return evaluate(mode, gt, pred / folder, progress=False).summary


def baseline_scores(root: Path, out: Path, tasks, max_videos: int) -> dict:
    """{task: {metric: value}} of the copy-the-first-frame baseline on the same videos as `validate`."""
    scores = {}
    for task in tasks:
        mode = TASK_EVAL[task][0]
        gt = truth_subset(root, task, videos_for(root, task, max_videos), out / f"{task}_gt")
        scores[task] = evaluate(mode, gt, copy_first_frame(gt, out / f"{task}_baseline", task), progress=False).summary
    return scores


def truth_subset(root: Path, task: str, videos: list[str], dst: Path) -> Path:
    """A fresh folder holding only `videos`' ground truth for `task` (eval scores every GT video it finds)."""
    if not videos:
        raise ValueError(f"validation folder {root} has no video with {TASK_EVAL[task][1]} ground truth for the "
                         f"{task} task")
    folder = TASK_EVAL[task][1]
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    for video in videos:
        if folder == "Annotations":
            shutil.copytree(root / folder / video, dst / video)
        else:
            name = f"{video}.txt" if folder == "Boxes" else f"{video}.npz"
            shutil.copy2(root / folder / name, dst / name)
    return dst
