"""A prepared burst of training for a lent GPU: the demo curriculum on CUDA in bfloat16 with large batches, cut to a
time budget, its weights and scores written where the device tool brings them back.

    PYTHONPATH=. python scripts/gpu_burst.py --minutes 9 --out "$OUT" [--model sam2pp_small] [--init ckpt.pt]
                                            [--clips 16] [--device cuda] [--videos 8]

Stages (each from the previous stage's weights, each given its share of the budget): the `demo_images` stage
(single frames, promptable segmentation), then the `demo_video2`, `demo_video4` and `demo_video8` recipes, all with
`--clips` clips per step (the learning rate scaled by the square root of the batch over 1), `loss_peak` on for the
point task, and the curriculum's other settings unchanged. A stage stops when its share of time is spent; its last
checkpoint (saved every 25 steps) starts the next. At the end: `<out>/checkpoint.pt` (float32 weights),
`<out>/burst.json` (steps and seconds per stage, prompted-frame IoU and the held-out table). Run it from the
repository root with the package importable (`PYTHONPATH=.`); no network is needed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shutil
import time
from pathlib import Path

from sam2pp.checkpoint import build_model
from sam2pp.training import load_config, train
from sam2pp.training.demo_model import held_out_clips, score_held_out
from sam2pp.training.diagnostics import prompted_frame_iou

STAGES = (("demo_images", 0.4), ("demo_video2", 0.2), ("demo_video4", 0.2), ("demo_video8", 0.2))
SAVE_EVERY = 25
MAX_STEPS = 100_000


class _TimeUp(Exception):
    """Raised from the step callback when a stage's share of the budget is spent."""


def stage_config(name: str, args: argparse.Namespace, init: str | None):
    cfg = load_config(name)
    cfg.model, cfg.init, cfg.device, cfg.bf16 = args.model, init, args.device, True
    cfg.steps, cfg.save_every, cfg.picture_every = MAX_STEPS, SAVE_EVERY, 0
    cfg.data.clips_per_step = args.clips
    scale = math.sqrt(args.clips)
    o = cfg.optim
    cfg.optim = dataclasses.replace(o, lr=o.lr * scale, lr_end=o.lr_end * scale, vision_lr=o.vision_lr * scale,
                                    vision_lr_end=o.vision_lr_end * scale)
    cfg.loss.weights["point"] = dataclasses.replace(cfg.loss.weights["point"], peak=1.0)
    cfg.validation.tasks = ()
    return cfg


def run_stage(name: str, args: argparse.Namespace, init: str | None, seconds: float) -> dict:
    """Train one stage until its time is up; the learning rate follows the cosine of `MAX_STEPS`, so a stage cut
    short stays near its starting rate (a burst is a start, not a schedule)."""
    run = args.out / "runs" / name
    deadline = time.monotonic() + seconds
    steps = 0

    def on_step(record: dict) -> None:
        nonlocal steps
        steps = record["step"]
        if time.monotonic() > deadline and steps >= SAVE_EVERY and steps % SAVE_EVERY == 1:
            raise _TimeUp

    tic = time.monotonic()
    try:
        train(stage_config(name, args, init), run, progress=False, callback=on_step)
    except _TimeUp:
        pass
    return {"stage": name, "steps": steps - 1, "seconds": time.monotonic() - tic,
            "checkpoint": str(run / "checkpoint.pt")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=9.0)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--model", default="sam2pp_small")
    p.add_argument("--init", default=None)
    p.add_argument("--clips", type=int, default=16)
    p.add_argument("--device", default="cuda", help="cpu only to try the script out")
    p.add_argument("--videos", type=int, default=8, help="held-out clips per task scored at the end")
    args = p.parse_args()
    init, stages = args.init, []
    for name, share in STAGES:
        stages.append(run_stage(name, args, init, args.minutes * 60 * share))
        init = stages[-1]["checkpoint"]
        print(json.dumps(stages[-1]), flush=True)
    shutil.copy2(init, args.out / "checkpoint.pt")
    model = build_model(args.model, checkpoint=init, device=args.device)
    held_out = held_out_clips(args.out / "scoring", args.videos)
    report = {"model": args.model, "clips_per_step": args.clips, "stages": stages,
              "prompted_iou": dataclasses.asdict(prompted_frame_iou(model, held_out)),
              "held_out": dataclasses.asdict(score_held_out(model, args.out / "scoring", args.videos, progress=False))}
    (args.out / "burst.json").write_text(json.dumps(report, indent=2))
    shutil.rmtree(args.out / "scoring")
    shutil.rmtree(args.out / "runs")
    print(json.dumps(report["prompted_iou"]), json.dumps(report["held_out"]["model"]))


if __name__ == "__main__":
    main()
