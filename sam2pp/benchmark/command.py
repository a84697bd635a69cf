"""`sam2pp benchmark`: track and score every video of a benchmark in its own layout; also under `torchrun`."""

from __future__ import annotations

import argparse
from pathlib import Path

TASK_CHOICES = ("mask", "box", "point")


def add_parser(sub) -> None:
    from ..cli import COMPILE_HELP
    from ..training.data import LAYOUTS

    p = sub.add_parser(
        "benchmark",
        help="run and score a whole benchmark (DAVIS, YouTube-VOS, MOSE, TAG, LaSOT, GOT-10k, TAP-Vid); torchrun too",
        description="Track every video of DATASET_DIR in its own layout with the toolkits' protocols (VOS from each "
                    "object's first mask, SOT from the first box, TAP-Vid 'first' point queries), write the "
                    "predictions in that layout under OUT/predictions, score them with the code of `sam2pp eval`, "
                    "and write report.json, report.csv and report.html (with previews of the worst videos) under OUT. "
                    "A rerun "
                    "with the same OUT skips finished videos; a broken video is reported as failed. Scale out with "
                    "torchrun --nproc_per_node N -m sam2pp benchmark ... (one GPU per rank) and/or --shard i/n.",
    )
    p.add_argument("dataset", metavar="DATASET_DIR", help="benchmark root folder")
    p.add_argument("--task", required=True, choices=TASK_CHOICES,
                   help="mask (VOS: DAVIS, YouTube-VOS, MOSE, TAG), box (SOT: LaSOT, GOT-10k, TAG) or point (TAP-Vid, "
                        "TAG)")
    p.add_argument("--out", required=True, help="output folder (predictions, ground truth copy, records, report)")
    p.add_argument("--layout", default="auto", choices=("auto", *LAYOUTS), help="dataset layout (default: detected)")
    p.add_argument("--split", help="split to run (default: the layout's evaluation split: tag valid, davis2017 val, "
                                   "got10k val, lasot test)")
    p.add_argument("--model", help="hub model id (default MCG-NJU/SAM2-Plus; offline it must be in the hub cache), "
                                   "or sam2pp-demo: the small model shipped with the package (offline, on the CPU)")
    p.add_argument("--checkpoint", help="{'model': state_dict} file instead of --model")
    p.add_argument("--config", help="preset or config JSON of --checkpoint (default sam2pp_hiera_b+)")
    p.add_argument("--device", default="auto", help="auto (each rank's GPU when there is one), cpu or cuda")
    p.add_argument("--threads", type=int, metavar="N", help="CPU threads per op (default: as `sam2pp track`)")
    p.add_argument("--compile", action="store_true", help=COMPILE_HELP)
    p.add_argument("--shard", default="0/1", metavar="I/N", help="run the I-th of N shares of the videos (machines)")
    p.add_argument("--previews", type=int, default=4, metavar="N",
                   help="pictures of this many worst videos (default 4)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Exit status 1 when a video failed (the report says which and why), else 0."""
    from ..checkpoint import checkpoint_file
    from .runner import DEFAULT_MODEL, BenchmarkConfig, parse_shard, run_benchmark

    if args.model and args.checkpoint:
        raise ValueError("give --model or --checkpoint, not both")
    if args.checkpoint is not None:
        checkpoint_file(args.checkpoint)
    config = BenchmarkConfig(
        dataset=Path(args.dataset), task=args.task, out=Path(args.out), layout=args.layout, split=args.split,
        model=args.model or DEFAULT_MODEL, checkpoint=Path(args.checkpoint) if args.checkpoint else None,
        config=args.config, device=args.device, threads=args.threads, compile=args.compile,
        shard=parse_shard(args.shard),
        previews=args.previews,
    )
    result = run_benchmark(config)
    if result.report is None:
        return 0
    print(summary_text(result.report, config.out))
    return 1 if result.report["videos"]["failed"] else 0


def summary_text(report: dict, out: Path) -> str:
    videos = report["videos"]
    headline = "  ".join(f"{key} {value:.4f}" for key, value in report["headline"].items()) or "nothing scored"
    fps = f"{report['fps']:.1f}" if report["fps"] else "-"
    return (f"{report['benchmark']['task']} on {report['benchmark']['dataset']}: {headline}\n"
            f"{videos['total']} video{'s' * (videos['total'] != 1)}: {videos['scored']} scored, {videos['unscored']} "
            f"unscored, {videos['failed']} failed, {videos['pending']} pending; {fps} frames/s per process\n"
            f"report: {out / 'report.html'} (and report.json, report.csv)")
