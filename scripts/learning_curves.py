"""Learning curves for `docs/training-diagnostics.md`: one training run, scored on its own training videos and on
held-out videos as it trains, so that fitting and generalising are told apart.

    python scripts/learning_curves.py images --out runs/curves/images_tiny [--model sam2pp_tiny] [--steps 3000]
    python scripts/learning_curves.py video --out runs/curves/video_tiny --init runs/curves/images_tiny/run/checkpoint.pt

`--data fit64` (default) trains on `--videos` (64) fixed videos of the demo generator (seeds 810000 on, 16 frames,
written once under `<out>/data`: random windows, augmentation and prompts still vary); `--data endless` on the generator's
endless stream, as the demo presets do. Every `--every` steps the run's current weights are scored on the first 8
training videos ("train") and on 8 held-out videos ("held_out", `sam2pp.training.demo_model.held_out_clips`):

- `images`: the `demo_images` stage (single frames, mask and box tasks, clicks and boxes); scored by the IoU of the
  mask decoded from one click or one box on every 6th frame (`diagnostics.prompted_frame_iou`);
- `video`: the `demo_video12` recipe (first-frame prompts, every task) on `--frames`-frame clips; scored by tracking
  the whole videos (J&F, AO, delta_avg, as `sam2pp eval`).

Records go to `<out>/curves.jsonl` ({"step", "hours": step time so far, "split", "scores"}); runs resume where they
stopped. `scripts/plot_curves.py` draws them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from sam2pp.checkpoint import build_model
from sam2pp.training import load_config, train
from sam2pp.training.config import DataSource, ValidationConfig
from sam2pp.training.demo_model import held_out_clips
from sam2pp.training.diagnostics import prompted_frame_iou
from sam2pp.training.loop import read_history
from sam2pp.training.validation import validate

FIT_SEED = 810000
VIDEO_FRAMES = 16
SCORED_VIDEOS = 8
STAGES = {"images": ("demo_images", ("mask", "box")), "video": ("demo_video12", ("mask", "box", "point"))}


def write_videos(root: Path, count: int) -> Path:
    """`count` fixed rich synthetic videos in the section-4 layout under `root` (kept when already written)."""
    synthetic = load_config("demo").data.synthetic
    for i in range(count):
        name = f"fit-{FIT_SEED + i}"
        if not (root / "JPEGImages" / name).is_dir():
            synthetic.spec(FIT_SEED + i, VIDEO_FRAMES).generate().write(root, name)
    return root


def run_config(args: argparse.Namespace, data: Path):
    preset, tasks = STAGES[args.stage]
    cfg = load_config(preset)
    cfg.model, cfg.init, cfg.steps = args.model, args.init, args.steps
    if args.stage == "video":
        cfg.data.num_frames = args.frames
    cfg.data.clips_per_step = args.clips_per_step
    if args.data == "fit64":
        cfg.data.sources = tuple(DataSource(task, str(data), layout="section4") for task in tasks)
    cfg.optim = dataclasses.replace(cfg.optim, lr=args.lr, lr_end=args.lr / 10, vision_lr=args.lr,
                                    vision_lr_end=args.lr / 10, grad_clip_norm=args.grad_clip or None)
    cfg.loss.weights["point"] = dataclasses.replace(cfg.loss.weights["point"], peak=args.point_peak)
    cfg.validation = ValidationConfig(tasks=())
    cfg.save_every, cfg.picture_every = args.every, 0
    return cfg


def score(stage: str, model_name: str, checkpoint: Path, root: Path, out: Path) -> dict:
    model = build_model(model_name, checkpoint=checkpoint)
    if stage == "images":
        return dict(prompted_frame_iou(model, root, SCORED_VIDEOS, prompts=("click", "box")).iou)
    return validate(model, root, out, STAGES[stage][1], SCORED_VIDEOS, progress=False)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stage", choices=sorted(STAGES))
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--model", default="sam2pp_tiny")
    p.add_argument("--init", default=None)
    p.add_argument("--data", choices=("fit64", "endless"), default="fit64")
    p.add_argument("--videos", type=int, default=64, help="how many fixed videos --data fit64 trains on")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--clips-per-step", type=int, default=1)
    p.add_argument("--grad-clip", type=float, default=0.1, help="gradient clipping norm (0: off)")
    p.add_argument("--point-peak", type=float, default=0.0, help="weight of the point task's loss_peak")
    p.add_argument("--every", type=int, default=250)
    args = p.parse_args()
    data = write_videos(args.out / "data", args.videos)
    held_out = held_out_clips(args.out / "held_out", SCORED_VIDEOS)
    run, curves = args.out / "run", args.out / "curves.jsonl"
    done = {(r["step"], r["split"]) for r in map(json.loads, curves.read_text().splitlines())} \
        if curves.is_file() else set()
    hours = sum(r["seconds"] for r in read_history(run)) / 3600 if (run / "metrics.jsonl").is_file() else 0.0

    def record(step: int) -> None:
        for split, root in (("train", data), ("held_out", held_out)):
            if (step, split) in done:
                continue
            scores = score(args.stage, args.model, run / "checkpoint.pt", root, args.out / "scoring" / split)
            with curves.open("a") as f:
                f.write(json.dumps({"step": step, "hours": hours, "split": split, "scores": scores}) + "\n")
            print(f"step {step} {split}: {scores}", flush=True)

    def on_step(rec: dict) -> None:
        nonlocal hours
        hours += rec["seconds"] / 3600
        step = rec["step"] - 1  # the checkpoint of step k is written after step k + 1's callback
        if step > 0 and step % args.every == 0:
            record(step)

    train(run_config(args, data), run, resume=True, callback=on_step)
    record(args.steps)


if __name__ == "__main__":
    main()
