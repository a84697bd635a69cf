"""Diagnose a trained model on held-out clips: does it segment its prompt on one frame, and does it read its memory?

    python scripts/diagnose_model.py --checkpoint sam2pp/models/sam2pp_demo.pt --out runs/diagnose \
        [--model sam2pp_tiny] [--videos 8] [--probe-videos 4] [--picture docs/images/diagnostics_prompted.png]

Prints and writes to `<out>/report.json`: the prompted-frame IoU of a click, a box and a mask prompt on every 6th
frame of `--videos` held-out clips (`sam2pp.training.diagnostics.prompted_frame_iou`), and every task's scores on
`--probe-videos` clips tracked as they are, with foreign memories and with zeroed object pointers
(`probe_memory`). `--picture` draws the first held-out frame's objects: the truth, then the mask decoded from a
click and from a box.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
from PIL import Image

from sam2pp.checkpoint import build_model
from sam2pp.io.formats import list_frames, read_palette_png
from sam2pp.predictor.video_predictor import VideoPredictor
from sam2pp.training.demo_model import HEADLINE, held_out_clips
from sam2pp.training.diagnostics import PROBES, probe_memory, prompt_alone, prompted_frame_iou
from sam2pp.training.validation import videos_for

OVERLAY = np.array([255, 80, 40], dtype=np.float32)


def picture(model, root: Path, path: Path, objects: int = 3) -> None:
    """Rows of (truth, click, box) overlays for the first objects of the first held-out frame."""
    predictor = VideoPredictor(model)
    name = videos_for(root, "mask", 1)[0]
    frame = list_frames(root / "JPEGImages" / name)[0]
    labels = read_palette_png(list_frames(root / "Annotations" / name)[0])
    image = np.asarray(Image.open(frame).convert("RGB"), dtype=np.float32)
    state = predictor.init_state([frame])
    rows = []
    for obj_id in [int(i) for i in np.unique(labels) if i != 0][:objects]:
        truth = labels == obj_id
        decoded = [prompt_alone(predictor, state, kind, obj_id, truth) for kind in ("click", "box")]
        rows.append(np.concatenate([_overlay(image, m) for m in (truth, *decoded)], 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, 0).astype(np.uint8)).save(path)


def _overlay(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.where(mask[..., None], 0.45 * image + 0.55 * OVERLAY, 0.6 * image)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--model", default="sam2pp_tiny")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--videos", type=int, default=8)
    p.add_argument("--probe-videos", type=int, default=4)
    p.add_argument("--picture", type=Path, default=None)
    args = p.parse_args()
    model = build_model(args.model, checkpoint=args.checkpoint)
    root = held_out_clips(args.out / "held_out", args.videos)
    prompted = prompted_frame_iou(model, root, args.videos)
    print(f"prompted-frame IoU over {prompted.objects} objects: "
          + ", ".join(f"{k} {v:.3f}" for k, v in prompted.iou.items()), flush=True)
    memory = probe_memory(model, root, args.out / "memory", videos=args.probe_videos)
    for task, metric in HEADLINE.items():
        print(f"{task} {metric}: " + ", ".join(f"{probe} {memory[probe][task][metric]:.3f}" for probe in PROBES))
    report = {"checkpoint": str(args.checkpoint), "prompted": dataclasses.asdict(prompted), "memory": memory}
    (args.out / "report.json").write_text(json.dumps(report, indent=2))
    if args.picture is not None:
        picture(model, root, args.picture)
        print(f"wrote {args.picture}")


if __name__ == "__main__":
    main()
