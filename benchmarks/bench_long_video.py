"""Peak memory of `sam2pp track` and `sam2pp benchmark` over long videos: it should not grow with the length.

Each case (command x task x frame count) runs the command in a fresh process (this script with --child), which
prints its own peak resident set size (`resource.getrusage(RUSAGE_SELF).ru_maxrss`) once the command returns, so
one case's memory never inflates the next. The video is a folder of small JPEGs, a square drifting over noise, with
the section-4 prompt files beside it (the first frame's mask, a box and a point track for every frame), made once per
length in a temporary folder and read by both commands (`benchmark` sees a section-4 folder of one video; its mask
task scores nothing, as only the first frame is annotated, its box and point tasks score every frame). The model is
the shipped `sam2pp-demo` (sam2pp_tiny, 256 px) on the CPU, one thread; `track` writes its default preview.

    python benchmarks/bench_long_video.py [--frames 600 3000 10000] [--commands track benchmark] [--tasks mask]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

VIDEO = "long"
SQUARE = 48  # side of the drifting square, in pixels


@dataclass(frozen=True)
class Case:
    command: str
    task: str
    frames: int


@dataclass(frozen=True)
class Measurement:
    case: Case
    peak_mib: float
    seconds: float


def square_corner(t: int, size: int) -> tuple[int, int]:
    """Top-left corner of the square on frame t: it bounces along a diagonal, so it never leaves the frame."""
    span = size - SQUARE
    x = t % (2 * span)
    return (x if x < span else 2 * span - x), size // 4


def make_folder(root: Path, frames: int, size: int) -> Path:
    """A section-4 folder of one video `long`: JPEG frames, the mask of frame 0, and a box and a point per frame."""
    from sam2pp.io import PointTracks, write_boxes_txt, write_palette_png, write_points_npz

    folder = root / "JPEGImages" / VIDEO
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 80, (size, size, 3), dtype=np.uint8)
    boxes = np.zeros((frames, 4), dtype=np.float64)
    for t in tqdm(range(frames), desc=f"writing {frames} frames", unit="frame", leave=False):
        x, y = square_corner(t, size)
        frame = np.roll(noise, t, axis=1)
        frame[y:y + SQUARE, x:x + SQUARE] = (220, 200, 60)
        Image.fromarray(frame).save(folder / f"{t:05d}.jpg", quality=90)
        boxes[t] = (x, y, SQUARE, SQUARE)
    mask = np.zeros((size, size), dtype=np.uint8)
    x, y = square_corner(0, size)
    mask[y:y + SQUARE, x:x + SQUARE] = 1
    write_palette_png(root / "Annotations" / VIDEO / "00000.png", mask)
    write_boxes_txt(root / "Boxes" / f"{VIDEO}.txt", boxes)
    centres = (boxes[:, None, :2] + SQUARE / 2).astype(np.float32)
    write_points_npz(root / "Points" / f"{VIDEO}.npz", PointTracks(centres, np.ones((frames, 1), bool), (size, size)))
    return root


def command_args(case: Case, root: Path, out: Path) -> list[str]:
    """The `sam2pp` arguments of a case, as a user would type them."""
    if case.command == "benchmark":
        return ["benchmark", str(root), "--task", case.task, "--model", "sam2pp-demo", "--device", "cpu",
                "--out", str(out)]
    prompt = {"mask": root / "Annotations" / VIDEO / "00000.png", "box": root / "Boxes" / f"{VIDEO}.txt",
              "point": root / "Points" / f"{VIDEO}.npz"}[case.task]
    return ["track", str(root / "JPEGImages" / VIDEO), "--task", case.task, "--prompt", str(prompt), "--model",
            "sam2pp-demo", "--out", str(out)]


def child(args: list[str]) -> None:
    """Run one command in this process, then print its peak RSS in KiB (Linux reports ru_maxrss in KiB)."""
    from sam2pp.cli import main

    code = main(args)
    if code != 0:
        sys.exit(code)
    print(f"PEAK_RSS_KIB {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}")


def measure(case: Case, root: Path, work: Path) -> Measurement:
    """Run the case in a fresh process; its progress bars show on stderr."""
    args = command_args(case, root, work / f"{case.command}-{case.task}-{case.frames}")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--child", *args], env=env, stdout=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{case}: exit status {done.returncode}\n{done.stdout}")
    peak = next(line for line in done.stdout.splitlines() if line.startswith("PEAK_RSS_KIB"))
    return Measurement(case, int(peak.split()[1]) / 1024, seconds)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, nargs="+", default=[600, 3000, 10000], help="video lengths")
    p.add_argument("--commands", nargs="+", choices=("track", "benchmark"), default=["track", "benchmark"])
    p.add_argument("--tasks", nargs="+", choices=("mask", "box", "point"), default=["mask"])
    p.add_argument("--size", type=int, default=256, help="frame side in pixels (default 256)")
    args = p.parse_args()
    if min(args.frames) < 2 or args.size <= SQUARE:
        p.error(f"--frames must be at least 2 and --size more than {SQUARE}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="sam2pp-long-") as tmp:
        for frames in args.frames:
            root = make_folder(Path(tmp) / f"video{frames}", frames, args.size)
            for command in args.commands:
                for task in args.tasks:
                    m = measure(Case(command, task, frames), root, Path(tmp))
                    rows.append(m)
                    print(f"{command:>9} {task:>5} {frames:>6} frames: peak RSS {m.peak_mib:8.1f} MiB "
                          f"({m.seconds:.0f} s)", flush=True)
    print(f"\n{'command':>9} {'task':>5} " + " ".join(f"{f:>9}" for f in args.frames) + "  (peak RSS, MiB)")
    for command in args.commands:
        for task in args.tasks:
            peaks = [m.peak_mib for m in rows if (m.case.command, m.case.task) == (command, task)]
            spread = max(peaks) - min(peaks)
            print(f"{command:>9} {task:>5} " + " ".join(f"{v:9.1f}" for v in peaks) + f"  spread {spread:.1f}")


if __name__ == "__main__":
    main()
