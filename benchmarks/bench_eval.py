"""Time `sam2pp.eval.evaluate` on a DAVIS-sized synthetic benchmark (default 30 videos x 70 frames x 480p).

Prints seconds per mode; writing the synthetic folders is not timed.

    python benchmarks/bench_eval.py [--videos 30] [--frames 70] [--objects 2] [--points 256]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from sam2pp.eval import evaluate
from sam2pp.io import PointTracks, write_boxes_txt, write_palette_png, write_points_npz

HEIGHT, WIDTH = 480, 854


def _ellipses(t: int, num_objects: int, rng: np.random.Generator) -> np.ndarray:
    """(H, W) ids of `num_objects` ellipses drifting with the frame index t."""
    yy, xx = np.mgrid[:HEIGHT, :WIDTH]
    ids = np.zeros((HEIGHT, WIDTH), np.uint8)
    for obj in range(1, num_objects + 1):
        cy = HEIGHT * (0.3 + 0.4 * obj / (num_objects + 1)) + 2 * t
        cx = WIDTH * obj / (num_objects + 1) + 3 * t * (-1) ** obj
        ry, rx = 60 + 10 * obj, 90 + 5 * obj
        ids[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1] = obj
    noise = rng.uniform(size=ids.shape) < 0.002
    return np.where(noise, 0, ids).astype(np.uint8)


def write_vos(root: Path, videos: int, frames: int, objects: int, rng: np.random.Generator) -> None:
    for v in range(videos):
        for t in range(frames):
            gt = _ellipses(t, objects, rng)
            write_palette_png(root / "GT" / f"v{v:03d}" / f"{t:05d}.png", gt)
            write_palette_png(root / "PRED" / f"v{v:03d}" / f"{t:05d}.png", np.roll(gt, (t % 5, 3), axis=(0, 1)))


def write_sot(root: Path, videos: int, frames: int, rng: np.random.Generator) -> None:
    for v in range(videos):
        gt = np.column_stack([100 + np.cumsum(rng.normal(0, 3, (frames, 2)), axis=0),
                              np.full((frames, 2), 80.0)])
        write_boxes_txt(root / "GT" / f"v{v:03d}.txt", gt)
        write_boxes_txt(root / "PRED" / f"v{v:03d}.txt", gt + rng.normal(0, 4, gt.shape).clip(-30, 30))


def write_pt(root: Path, videos: int, frames: int, points: int, rng: np.random.Generator) -> None:
    for v in range(videos):
        xy = rng.uniform(0, [WIDTH, HEIGHT], (frames, points, 2))
        visibs = rng.uniform(size=(frames, points)) > 0.2
        gt = PointTracks(xy, visibs, (WIDTH, HEIGHT))
        pred = PointTracks(xy + rng.normal(0, 5, xy.shape), rng.uniform(size=visibs.shape) > 0.2, (WIDTH, HEIGHT))
        write_points_npz(root / "GT" / f"v{v:03d}.npz", gt)
        write_points_npz(root / "PRED" / f"v{v:03d}.npz", pred)


def _time(mode: str, root: Path) -> None:
    start = time.perf_counter()
    result = evaluate(mode, root / "GT", root / "PRED", progress=False)
    seconds = time.perf_counter() - start
    first_key = next(iter(result.summary))
    print(f"{mode}: {seconds:8.2f} s   ({len(result.per_sequence)} rows, {first_key} = {result.summary[first_key]:.4f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=30)
    parser.add_argument("--frames", type=int, default=70)
    parser.add_argument("--objects", type=int, default=2)
    parser.add_argument("--points", type=int, default=256)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print(f"writing {args.videos} videos x {args.frames} frames ({HEIGHT}x{WIDTH}) ...")
        write_vos(root / "vos", args.videos, args.frames, args.objects, rng)
        write_sot(root / "sot", args.videos, args.frames, rng)
        write_pt(root / "pt", args.videos, args.frames, args.points, rng)
        for mode in ("vos", "sot", "pt"):
            _time(mode, root / mode)


if __name__ == "__main__":
    main()
