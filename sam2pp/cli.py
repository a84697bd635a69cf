"""The `sam2pp` command: track a video from a prompt file, evaluate predictions, or run the embedded demo.

Only argparse loads before a command runs (torch is imported by the commands), so `--help` answers at once.
Commands whose parser module imports torch are listed in `LAZY_COMMANDS`: their parser is built only when they run.
"""

from __future__ import annotations

import argparse
import sys
from importlib import import_module
from pathlib import Path

from . import __version__

DEMO_SAMPLE = "synth-shapes"


def _checkpoint_file(checkpoint: str | None) -> str | None:
    """`checkpoint` once it is known to be a file (a folder or a missing path is an error naming it)."""
    from .checkpoint import checkpoint_file

    return None if checkpoint is None else str(checkpoint_file(checkpoint))


def _predictor(args: argparse.Namespace):
    """--checkpoint with --config, else --model (default: the published weights, or `sam2pp-demo` with a one-line
    warning on stderr when they cannot be had)."""
    from .checkpoint import build_model
    from .demo import choose_model
    from .predictor.video_predictor import VideoPredictor

    if args.checkpoint is not None:
        checkpoint, config = args.checkpoint, args.config or "sam2pp_hiera_b+"
    else:
        chosen = choose_model(args.model or "MCG-NJU/SAM2-Plus")
        if chosen.warning:
            print(f"warning: {chosen.warning}", file=sys.stderr)
        checkpoint, config = chosen.checkpoint, args.config or chosen.config
    return VideoPredictor(build_model(config, checkpoint=checkpoint, device=args.device), **_predictor_options(args))


def _predictor_options(args: argparse.Namespace) -> dict:
    """`VideoPredictor` options from --threads and --compile; the commands never re-prompt a tracked frame, so they
    keep only the memories later frames read (a session of any length then needs the same memory)."""
    return {"threads": args.threads, "compile_image_encoder": args.compile, "compile_step": args.compile,
            "memory_bank": "window"}


def _preview(args: argparse.Namespace) -> dict:
    """`track_video`'s preview arguments from --no-preview and --preview-size."""
    if args.preview_size < 0:
        raise ValueError(f"--preview-size must be a width in pixels >= 0 (0: the video's size), "
                         f"got {args.preview_size}")
    return {"preview": None if args.no_preview else "preview.gif", "preview_width": args.preview_size or None}


def cmd_track(args: argparse.Namespace) -> int:
    """Check every path first (inputs, checkpoint, outputs), so a bad one fails before the model loads."""
    from .track import prepare_out, prompt_files, track_video, video_name

    if not Path(args.video).exists():
        raise FileNotFoundError(f"video {args.video} does not exist")
    if args.model and args.checkpoint:
        raise ValueError("give --model or --checkpoint, not both")
    objects = len(prompt_files(args.task, args.prompt))
    _checkpoint_file(args.checkpoint)
    preview = _preview(args)
    prepare_out(Path(args.out), args.task, video_name(args.video), preview["preview"], args.overwrite, objects)
    predictor = _predictor(args)
    out = track_video(predictor, args.video, args.task, args.prompt, args.out, frame=args.frame,
                      overwrite=args.overwrite, **preview)
    print(f"tracked {out.frames} frames; wrote {len(out.files)} files under {args.out}; preview {out.preview}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .eval import run_eval

    run_eval(args.mode, args.gt, args.pred, json_path=args.json)
    return 0


def demo_sample() -> Path:
    """The shipped sample clip (regenerated from its seed when the package runs outside its repository)."""
    from .data.samples import sample_folder

    return sample_folder(DEMO_SAMPLE)


def cmd_demo(args: argparse.Namespace) -> int:
    """Track the shipped sample at all three granularities with the shipped demo model, on the CPU, offline."""
    from .checkpoint import DEMO_MODEL, PACKAGED_MODELS, build_model, packaged_checkpoint
    from .predictor.video_predictor import VideoPredictor
    from .track import track_video

    sample = demo_sample()
    checkpoint = _checkpoint_file(args.checkpoint) or packaged_checkpoint(DEMO_MODEL)
    model = build_model(args.config or PACKAGED_MODELS[DEMO_MODEL][0], checkpoint=checkpoint, device=args.device)
    print(f"model: {args.checkpoint or DEMO_MODEL + ' (shipped with sam2pp, trained on synthetic clips)'}")
    predictor = VideoPredictor(model, **_predictor_options(args))
    video = sample / "JPEGImages" / DEMO_SAMPLE
    prompts = {
        "mask": sample / "Annotations" / DEMO_SAMPLE / "00000.png",
        "box": sample / "Boxes" / f"{DEMO_SAMPLE}.txt",
        "point": sample / "Points" / f"{DEMO_SAMPLE}.npz",
    }
    for task, prompt in prompts.items():
        out = track_video(predictor, video, task, prompt, Path(args.out) / task, overwrite=True, **_preview(args))
        print(f"{task:>5}: {out.frames} frames -> {out.files[0].parent}  preview: {out.preview}")
    return 0


LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "train": (".training.command", "train or fine-tune SAM 2++ (published recipe); also under torchrun"),
    "ablate": (".training.ablation_command",
               "ablate the task-adaptive memory: train shared / per-task module layouts, print one table"),
    "benchmark": (".benchmark.command", "run and score a whole benchmark in its own layout; also under torchrun"),
}
"""Command -> (module with `add_parser(sub)`, one-line help). The module is imported only when its command runs,
because importing it imports torch; `sam2pp --help` lists the command with this line."""

MODEL_CHOICES = ("MCG-NJU/SAM2-Plus", "sam2pp-demo")
"""`track --model` names (checkpoint.HUB_MODELS and PACKAGED_MODELS; listed here so --help needs no torch)."""
COMPILE_HELP = ("run the image encoder and the per-frame step through torch.compile (the published vos_optimized "
                "mode): the first frames take a minute or more to compile, later ones are faster (about 15%% for "
                "the tiny model on one CPU core); for long videos and GPUs")
TASK_HELP = "mask (video object segmentation), box (single object tracking) or point (point tracking)"
PROMPT_HELP = ("the prompt, read at --frame: mask: a palette PNG, pixel value = object id (0 = background), every id "
               "is an object; box: a text file of x,y,w,h lines (top-left corner, width, height in pixels; one line "
               "per video frame, or a single line), one object per file: give several files (--prompt a.txt b.txt) "
               "to track several objects (ids 1, 2, ...); point: an .npz with trajs_2d (T, N, 2) x,y pixels and "
               "visibs (T, N) bool (T = 1 or the video's frame count), point n = object n")
OUT_HELP = ("output folder: mask: Annotations/<video>/<frame>.png (palette PNGs of object ids); box: "
            "Boxes/<video>.txt (x,y,w,h per frame), Boxes/<video>_<id>.txt for objects 2, 3, ... of several box "
            "files; point: Points/<video>.npz (trajs_2d, visibs, size); <video> is the name of the frame folder or "
            "video file; and preview.gif")


def _add_run_options(p: argparse.ArgumentParser, device_help: str) -> None:
    """Options shared by the commands that track: device, threads, preview."""
    p.add_argument("--device", default="cpu", help=device_help)
    p.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads per op (torch intra-op threads); default: 1 for a small model (input <= 512 px), "
                        "torch's own count (one per core) otherwise; OMP_NUM_THREADS also sets it")
    p.add_argument("--compile", action="store_true", help=COMPILE_HELP)
    p.add_argument("--preview-size", type=int, default=960, metavar="PX",
                   help="largest width of preview.gif in pixels (default 960; 0 keeps the video's size)")
    p.add_argument("--no-preview", action="store_true", help="do not write preview.gif")


def parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The command line parser; of `LAZY_COMMANDS`, only the one `argv` runs (default sys.argv) is built in full."""
    p = argparse.ArgumentParser(prog="sam2pp", description="SAM 2++: track anything at any granularity: masks, boxes "
                                "and points in videos. `sam2pp COMMAND --help` describes a command.")
    p.add_argument("--version", action="version", version=f"sam2pp {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("track", help="track a video from a prompt file, writing the benchmarks' file formats",
                       description="Prompt objects from a file on one frame, track them forwards and backwards "
                                   "through the whole video, and write the results in the formats the benchmarks "
                                   "ship (DAVIS masks, LaSOT/GOT-10k boxes, TAP-Vid points) and an animated preview.")
    t.add_argument("video", help="a folder of frames (JPEG or PNG, natural sort order) or a video file (.mp4, ...)")
    t.add_argument("--task", required=True, choices=["mask", "box", "point"], help=TASK_HELP)
    t.add_argument("--prompt", required=True, nargs="+", action="extend", metavar="FILE", help=PROMPT_HELP)
    t.add_argument("--frame", type=int, default=0,
                   help="frame the prompt is on (default 0); for a points file with one row per frame, each point is "
                        "prompted on the first frame from this one where it is visible")
    t.add_argument("--model", choices=MODEL_CHOICES,
                   help="MCG-NJU/SAM2-Plus: the published weights (hub cache, else downloaded; the default, replaced "
                        "by sam2pp-demo with a warning when they cannot be had) or sam2pp-demo: the small model "
                        "shipped with sam2pp (offline; trained on synthetic clips)")
    t.add_argument("--checkpoint", help="{'model': state_dict} file instead of --model")
    t.add_argument("--config", help="preset name (sam2pp_hiera_b+, sam2pp_tiny) or config .json of --checkpoint "
                                    "(default sam2pp_hiera_b+)")
    _add_run_options(t, "cpu (default), cuda or cuda:N")
    t.add_argument("--out", required=True, help=OUT_HELP)
    t.add_argument("--overwrite", action="store_true",
                   help="replace this video's results of an earlier run in --out (its frame PNGs are deleted first, "
                        "so no stale frame remains); without it, such results are an error")
    t.set_defaults(run=cmd_track)

    e = sub.add_parser("eval", help="score predictions against ground truth with the benchmark toolkits' metrics",
                       description="vos: DAVIS 2017 J&F; sot: OTB/LaSOT AUC and precision, GOT-10k AO and SR; "
                                   "pt: TAP-Vid AJ, delta_avg and OA. Videos are matched by name.")
    e.add_argument("mode", choices=["vos", "sot", "pt"], help="vos (masks), sot (boxes) or pt (points)")
    e.add_argument("--gt", required=True, metavar="DIR",
                   help="ground truth: vos: DIR/<video>/<frame>.png palette PNGs; sot: DIR/<video>.txt x,y,w,h lines; "
                        "pt: DIR/<video>.npz with trajs_2d, visibs and size (W, H)")
    e.add_argument("--pred", required=True, metavar="DIR",
                   help="predictions in the layout of --gt, e.g. the Annotations/, Boxes/ or Points/ folder that "
                        "`sam2pp track` wrote")
    e.add_argument("--json", metavar="FILE", help="also write the metrics as JSON here")
    e.set_defaults(run=cmd_eval)

    d = sub.add_parser("demo", help="track the shipped sample with the shipped sam2pp-demo model (offline, CPU)",
                       description="Track the shipped synthetic sample with a mask, a box and a point prompt and write "
                                   "each task's results and preview under --out/<task>/.")
    d.add_argument("--out", default="sam2pp_demo", help="output folder (earlier demo results there are replaced)")
    d.add_argument("--checkpoint", help="weights to use instead of the shipped sam2pp-demo model")
    d.add_argument("--config", help="config of --checkpoint (default sam2pp_tiny)")
    _add_run_options(d, "cpu (default) or cuda")
    d.set_defaults(run=cmd_demo)

    command = next((arg for arg in (sys.argv[1:] if argv is None else argv) if not arg.startswith("-")), None)
    for name, (module, summary) in LAZY_COMMANDS.items():
        if name == command:
            import_module(module, __package__).add_parser(sub)
        else:
            sub.add_parser(name, help=summary)
    return p


HINTED = ("track", "demo")  # the commands whose --config picks the model (`train` answers its own --init mismatch)


def _hint(args: argparse.Namespace, error: Exception) -> str:
    """The next step for an error that has an obvious one: a checkpoint that does not fit the config tried."""
    checkpoint = sys.modules.get(f"{__package__}.checkpoint")
    if checkpoint is None or not isinstance(error, checkpoint.CheckpointMismatchError) or args.command not in HINTED:
        return ""
    tried = args.config or {"track": "sam2pp_hiera_b+", "demo": "sam2pp_tiny"}.get(args.command, "the default")
    return (f"\nhint: the checkpoint's keys do not fit the {tried} config; pass --config with the preset "
            f"(sam2pp_hiera_b+, sam2pp_tiny) or the config .json the checkpoint was made with")


def main(argv: list[str] | None = None) -> int:
    args = parser(argv).parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, OSError, KeyError, IndexError, RuntimeError) as exc:
        print(f"sam2pp {args.command}: error: {exc}{_hint(args, exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
