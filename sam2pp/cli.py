"""The `sam2pp` command: track a video from a prompt file, evaluate predictions, or run the embedded demo."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEMO_SAMPLE = "synth-shapes"
DEMO_SEED = 0


def _predictor(checkpoint: str | None, config: str | None, device: str):
    from .predictor.video_predictor import VideoPredictor

    if checkpoint is None:
        return VideoPredictor.from_pretrained("MCG-NJU/SAM2-Plus", config=config, device=device)
    return VideoPredictor.from_checkpoint(checkpoint, config=config or "sam2pp_hiera_b+", device=device)


def cmd_track(args: argparse.Namespace) -> int:
    from .track import track_video

    out = track_video(_predictor(args.checkpoint, args.config, args.device), args.video, args.task, args.prompt,
                      args.out, frame=args.frame)
    print(f"tracked {len(out.results)} frames; wrote {len(out.files)} files under {args.out}; preview {out.preview}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .eval import run_eval

    run_eval(args.mode, args.gt, args.pred, json_path=args.json)
    return 0


def demo_sample() -> Path:
    """The shipped sample clip (regenerated from its seed when the package runs outside its repository)."""
    shipped = Path(__file__).resolve().parents[1] / "data_samples" / DEMO_SAMPLE
    if shipped.is_dir():
        return shipped
    from .data.synthetic import SHIPPED_SAMPLES

    folder = Path.home() / ".cache" / "sam2pp" / "data_samples" / DEMO_SAMPLE
    if not (folder / "JPEGImages").is_dir():
        SHIPPED_SAMPLES[DEMO_SAMPLE].generate().write(folder, DEMO_SAMPLE)
    return folder


def cmd_demo(args: argparse.Namespace) -> int:
    """Track the shipped sample at all three granularities with the small preset, on the CPU, offline."""
    from .checkpoint import build_model
    from .demo import random_model
    from .predictor.video_predictor import VideoPredictor
    from .track import track_video

    sample = demo_sample()
    if args.checkpoint:
        model = build_model(args.config or "sam2pp_tiny", checkpoint=args.checkpoint, device=args.device)
    else:
        model = random_model("sam2pp_tiny", DEMO_SEED, args.device)
        print("note: the demo model is the small sam2pp_tiny preset with seeded random weights: it exercises the whole "
              "pipeline offline; pass --checkpoint (or use VideoPredictor.from_pretrained) for real tracking")
    predictor = VideoPredictor(model)
    video = sample / "JPEGImages" / DEMO_SAMPLE
    prompts = {
        "mask": sample / "Annotations" / DEMO_SAMPLE / "00000.png",
        "box": sample / "Boxes" / f"{DEMO_SAMPLE}.txt",
        "point": sample / "Points" / f"{DEMO_SAMPLE}.npz",
    }
    for task, prompt in prompts.items():
        out = track_video(predictor, video, task, prompt, Path(args.out) / task)
        print(f"{task:>5}: {len(out.results)} frames -> {out.files[0].parent}  preview: {out.preview}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sam2pp", description="SAM 2++: track anything at any granularity.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("track", help="track a video from a prompt file, writing the contract's formats")
    t.add_argument("video", help="folder of frames or a video file")
    t.add_argument("--task", required=True, choices=["mask", "box", "point"])
    t.add_argument("--prompt", required=True, help="palette PNG (mask), box .txt (box) or points .npz (point)")
    t.add_argument("--frame", type=int, default=0, help="frame the prompt is on (default 0)")
    t.add_argument("--checkpoint", help="{'model': state_dict} file; default: download MCG-NJU/SAM2-Plus")
    t.add_argument("--config", help="preset name or config JSON (default sam2pp_hiera_b+)")
    t.add_argument("--device", default="cpu")
    t.add_argument("--out", required=True, help="output folder")
    t.set_defaults(run=cmd_track)

    e = sub.add_parser("eval", help="score predictions against ground truth with the benchmark toolkits' metrics")
    e.add_argument("mode", choices=["vos", "sot", "pt"])
    e.add_argument("--gt", required=True)
    e.add_argument("--pred", required=True)
    e.add_argument("--json", help="also write the metrics as JSON here")
    e.set_defaults(run=cmd_eval)

    d = sub.add_parser("demo", help="track the shipped sample with the small model (offline, CPU)")
    d.add_argument("--out", default="sam2pp_demo")
    d.add_argument("--checkpoint", help="weights for the demo model instead of the seeded random ones")
    d.add_argument("--config", help="config of --checkpoint (default sam2pp_tiny)")
    d.add_argument("--device", default="cpu")
    d.set_defaults(run=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError, KeyError, IndexError, RuntimeError) as exc:
        print(f"sam2pp {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
