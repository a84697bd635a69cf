"""Train the shipped demo model from its seed, export it in half precision, and measure it on held-out clips.

    python scripts/train_demo_model.py [--run runs/demo] [--export sam2pp/models/sam2pp_demo.pt] [--videos 8]

1. the curriculum `DEMO_STAGES` (sam2pp.training.config): `demo_images` (single frames: promptable segmentation)
   into `<run>/demo_images`, then video clips of 2, 4, 8, 12 and 4 frames, each from the previous stage's checkpoint
   (each resumes when interrupted: the run can span several sittings); the last stage's folder is `<run>/demo`;
2. the final weights to `--export`: float16 when it tracks within 1e-2 of float32 on a held-out clip (mask
   probabilities, box corners as fractions of the frame), else float32 (10.4 MiB, still under the 15 MB limit);
   the shipped model tracks within 4.4e-3 in float16 (5.3 MiB);
3. held-out synthetic clips (`sam2pp.training.demo_model`: seeds never used in training, the training generator's
   settings) tracked from their first frame and scored with `sam2pp eval`, next to the copy-the-first-frame baseline
   on the same clips, printed as the README's table and written to `<run>/demo/heldout.json`;
4. the same on a real clip (`--real`, default `../shared/data/horsejump-low` when it is there), without a target.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sam2pp.checkpoint import build_model
from sam2pp.data.synthetic import SyntheticVideo
from sam2pp.training import load_config, train
from sam2pp.training.config import DEMO_STAGES
from sam2pp.training.demo_model import (HALF_PRECISION_TOLERANCE, HELD_OUT_FRAMES, export_weights,
                                        half_precision_gap, score_clips, score_held_out)

REAL_CLIP = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "horsejump-low"
GAP_SEED = 700100
"""The held-out clip the float16 export is checked on (outside `HELD_OUT_SEEDS` and training's seeds)."""


def gap_clip(config) -> SyntheticVideo:
    return config.data.synthetic.spec(GAP_SEED, HELD_OUT_FRAMES).generate()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", default="runs/demo", help="training folder (resumed when it holds resume.pt)")
    p.add_argument("--export", default="sam2pp/models/sam2pp_demo.pt", help="where the shipped checkpoint goes")
    p.add_argument("--videos", type=int, default=8, help="held-out clips per task")
    p.add_argument("--real", type=Path, default=REAL_CLIP, help="a section-4 folder of real clips to report on too")
    args = p.parse_args()
    root, init, seconds, steps = Path(args.run), None, 0.0, []
    for stage in DEMO_STAGES:
        config = load_config(stage)
        config.init = init
        run = root / stage
        seconds += sum(r["seconds"] for r in train(config, run, resume=True).history)
        init, steps = str(run / "checkpoint.pt"), [*steps, str(config.steps)]
    print(f"trained {' + '.join(steps)} steps in {seconds / 3600:.2f} h of step time")
    shipped = export_weights(run / "checkpoint.pt", Path(args.export), half=True)
    clip = gap_clip(config)
    gap = half_precision_gap(config.model, run / "checkpoint.pt", shipped, clip.frames, clip.masks[0] == 1)
    if gap > HALF_PRECISION_TOLERANCE:
        shipped = export_weights(run / "checkpoint.pt", Path(args.export), half=False)
    precision = "float16" if gap <= HALF_PRECISION_TOLERANCE else "float32"
    print(f"float16 tracks within {gap:.2e} of float32: shipping {precision} ({shipped.stat().st_size / 2**20:.1f} "
          f"MiB) as {shipped}")
    model = build_model(config.model, checkpoint=shipped)
    scores = score_held_out(model, run / "heldout", args.videos)
    print(scores.table())
    report = {"videos": args.videos, "model": scores.model, "baseline": scores.baseline, "step_seconds": seconds,
              "half_precision_gap": gap, "precision": precision}
    if args.real.is_dir():
        real = score_clips(model, args.real, run / "real", 1)
        print(f"{args.real.name}:\n{real.table()}")
        report["real"] = {"root": args.real.name, "model": real.model, "baseline": real.baseline}
    (run / "heldout.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
