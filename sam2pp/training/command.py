"""`sam2pp train`: train or fine-tune from a preset or a JSON config; runs as is or under `torchrun`."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

TASK_CHOICES = ("mask", "box", "point")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train or fine-tune SAM 2++ (published recipe); also under torchrun",
        description="Train or fine-tune SAM 2++ with the published three-task recipe. CONFIG is a preset "
                    "(published, tiny_cpu, smoke, and the demo model's stages demo_images, demo_video2, "
                    "demo_video4, demo_video8, demo_video12, demo) or a JSON file written by TrainConfig.to_json. "
                    "Data folders use the section-4 layout (JPEGImages/<video>/*.jpg with Annotations/<video>/*.png, "
                    "Boxes/<video>.txt of x,y,w,h lines, Points/<video>.npz) or the Tracking-Any-Granularity "
                    "layout ({train,valid,test}/ with ImageSets). Tasks without data train on synthetic clips. "
                    "Writes checkpoint.pt ({'model': state_dict}, published keys), resume.pt, metrics.jsonl, "
                    "tensorboard/ and pictures/ under --out. "
                    "Multi-GPU: torchrun --nproc_per_node N -m sam2pp train ...",
    )
    p.add_argument("config", metavar="CONFIG_OR_PRESET", help="a preset name or a training config .json")
    p.add_argument("--out", help="output folder (checkpoints, logs, pictures); required unless --dump-config")
    p.add_argument("--init", help="checkpoint to start from ({'model': state_dict}; the published one included)")
    p.add_argument("--data", nargs="+", default=[], metavar="[TASK=]DIR",
                   help="data folders; TASK= limits one to a task (mask, box, point), else it serves every task "
                        "whose ground truth it has")
    p.add_argument("--split", default="train", help="split of a Tracking-Any-Granularity folder (default train)")
    p.add_argument("--val", metavar="DIR", help="held-out section-4 folder for validation (default: synthetic clips)")
    p.add_argument("--steps", type=int, help="override the number of optimiser steps")
    p.add_argument("--device", help="auto (default), cpu or cuda")
    p.add_argument("--threads", type=int, help="intra-op threads per process (OMP_NUM_THREADS wins)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its resume.pt (with the same config and data; device, "
                        "threads, logging, saving and validation settings may change)")
    p.add_argument("--overwrite", action="store_true",
                   help="start over in an --out that holds an earlier run, deleting its checkpoints and logs; "
                        "without it (or --resume), such a folder is an error")
    p.add_argument("--dump-config", action="store_true", help="print the resolved config as JSON and exit")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Errors that need more than `sam2pp train: error: <message>` are answered here: Ctrl-C with the command that
    continues the run, a diverged run in one line, a mismatched --init with what to change."""
    import json

    from ..checkpoint import CheckpointMismatchError
    from .config import load_config
    from .interrupt import TrainingInterrupted
    from .loop import train

    config = resolve(args, load_config(args.config))
    if args.dump_config:
        print(json.dumps(config.to_dict(), indent=2))
        return 0
    if args.out is None:
        raise ValueError("--out is required: the folder the run writes its checkpoints and logs to")
    try:
        result = train(config, args.out, resume=args.resume, overwrite=args.overwrite)
    except TrainingInterrupted as stop:
        print(f"sam2pp train: {stop}\ncontinue with: {resume_command(args)}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(f"sam2pp train: interrupted; the run continues from its last resume point in {args.out} (if one "
              f"was written) with: {resume_command(args)}", file=sys.stderr)
        return 130
    except FloatingPointError as err:
        print(f"sam2pp train: error: {err}", file=sys.stderr)
        return 2
    except CheckpointMismatchError as err:
        raise ValueError(f"--init {config.init}: {err}\nhint: --init must be a checkpoint of the training config's "
                         f"model ({config.model!r}); for another model, set \"model\" (a preset or a model config "
                         f".json) in a training config .json (`sam2pp train {args.config} --dump-config` prints "
                         f"one)") from err
    if result.history:
        last = result.history[-1]
        print(f"trained {last['step']} steps; checkpoint {result.checkpoint}")
    return 0


def resolve(args: argparse.Namespace, config):
    """The config with the command line's overrides applied."""
    from .config import DataSource

    for name in ("steps", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name} must be a positive integer, got {value}")
    sources = []
    for item in args.data:
        task, _, root = item.rpartition("=")
        if task and task not in TASK_CHOICES:
            raise ValueError(f"--data {item}: unknown task {task!r}; use mask=, box= or point=")
        tasks = [task] if task else tasks_with_truth(Path(root), args.split)
        if not tasks:
            raise ValueError(f"--data {root}: no Annotations/, Boxes/ or Points/ folder (section-4 layout) and no "
                             f"{args.split}/ split (Tracking-Any-Granularity layout) found there")
        sources.extend(DataSource(task=t, root=root, split=args.split) for t in tasks)
    if sources:
        config.data.sources = tuple(sources)
    for name in ("init", "steps", "device", "threads"):
        value = getattr(args, name)
        if value is not None:
            setattr(config, name, value)
    if args.val is not None:
        config.validation.root = args.val
    return config


def resume_command(args: argparse.Namespace) -> str:
    """The `sam2pp train` command that continues this run: the same arguments with --resume."""
    words = ["sam2pp", "train", args.config, "--out", args.out]
    options = {"--init": args.init, "--split": None if args.split == "train" else args.split, "--val": args.val,
               "--steps": args.steps, "--device": args.device, "--threads": args.threads}
    for flag, value in options.items():
        if value is not None:
            words += [flag, str(value)]
    if args.data:
        words += ["--data", *args.data]
    return shlex.join([*words, "--resume"])


def tasks_with_truth(root: Path, split: str) -> list[str]:
    """The tasks whose ground-truth folder a data folder has (either layout)."""
    base = root / split if (root / split / "JPEGImages").is_dir() else root
    folders = {"mask": "Annotations", "box": "Boxes", "point": "Points"}
    return [task for task, folder in folders.items() if (base / folder).is_dir()]
