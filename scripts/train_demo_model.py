"""Train the shipped demo model from its seed, export it in half precision, and measure it on held-out clips.

    python scripts/train_demo_model.py [--run runs/demo] [--export sam2pp/models/sam2pp_demo.pt] [--videos 8]

1. `sam2pp train demo_images` into `<run>/images` (single frames: promptable segmentation), then `sam2pp train demo`
   from its checkpoint into `<run>/video` (each stage resumes when interrupted: the run can span several sittings);
2. the final weights in float16 to `--export` (checked: tracking with them stays within 1e-2 of float32);
3. held-out synthetic clips (seeds never used in training, the training generator's settings) tracked from their
   first frame and scored with `sam2pp eval`, next to the copy-the-first-frame baseline on the same clips, printed
   as the README's table and written to `<run>/heldout.json`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from sam2pp.checkpoint import build_model, read_checkpoint
from sam2pp.training import ValidationConfig, load_config, train
from sam2pp.training.validation import baseline_scores, held_out_root, validate

HELD_OUT_SEEDS = tuple(range(700001, 700033))
TASK_METRICS = {"mask": ("J&F-Mean", "J-Mean", "F-Mean"), "box": ("AUC", "AO", "SR50"),
                "point": ("AJ", "delta_avg", "OA")}


def export_half(checkpoint: Path, out: Path) -> Path:
    """The checkpoint's floating-point tensors in float16, as `{"model": state_dict}`."""
    state = {k: v.half() if v.is_floating_point() else v for k, v in read_checkpoint(checkpoint).items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": state}, out)
    return out


def held_out(config, run: Path, videos: int) -> tuple[Path, dict, dict]:
    """Scores of the trained model and of the baseline on `videos` held-out clips."""
    val = ValidationConfig(synthetic_seeds=HELD_OUT_SEEDS[:videos], synthetic_frames=config.validation.synthetic_frames,
                           max_videos=videos)
    root = held_out_root(val, run / "heldout", config.data.synthetic)
    model = build_model(config.model, checkpoint=run / "checkpoint.pt")
    scores = validate(model, root, run / "heldout" / "model", val.tasks, videos)
    return root, scores, baseline_scores(root, run / "heldout" / "baseline", val.tasks, videos)


def table(scores: dict, baseline: dict) -> str:
    rows = ["| task | metric | sam2pp-demo | copy first frame |", "|---|---|---|---|"]
    for task, keys in TASK_METRICS.items():
        rows += [f"| {task} | {k} | {scores[task][k]:.3f} | {baseline[task][k]:.3f} |" for k in keys]
    return "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", default="runs/demo", help="training folder (resumed when it holds resume.pt)")
    p.add_argument("--export", default="sam2pp/models/sam2pp_demo.pt", help="where the float16 checkpoint goes")
    p.add_argument("--videos", type=int, default=8, help="held-out clips per task")
    args = p.parse_args()
    images, config, root = load_config("demo_images"), load_config("demo"), Path(args.run)
    first = train(images, root / "images", resume=True)
    config.init, run = str(root / "images" / "checkpoint.pt"), root / "video"
    result = train(config, run, resume=True)
    seconds = sum(r["seconds"] for r in first.history + result.history)
    print(f"trained {images.steps} + {config.steps} steps in {seconds / 3600:.2f} h of step time")
    export_half(run / "checkpoint.pt", Path(args.export))
    root, scores, baseline = held_out(config, run, args.videos)
    print(table(scores, baseline))
    (run / "heldout.json").write_text(json.dumps({"videos": args.videos, "root": str(root), "model": scores,
                                                  "baseline": baseline, "step_seconds": seconds}, indent=2))


if __name__ == "__main__":
    main()
