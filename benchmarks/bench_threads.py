"""Seconds per tracked frame on the CPU by intra-op thread count: the measurement behind `sam2pp.threads`' default.

Each (config, threads) case runs in a fresh process (torch's thread pool is per process), tracks one mask object
through a synthetic clip with random weights, and times the frames after the first (warm-up) one. Run it as the
machine is normally used (e.g. beside another busy process) to see what a user sees.

    python benchmarks/bench_threads.py [--configs sam2pp_tiny sam2pp_hiera_b+] [--threads 1 2] [--frames 6 3]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor

TARGET = 1  # the synthetic clip's main object


def seconds_per_frame(config: str, threads: int, frames: int) -> float:
    """Track `frames` frames on `threads` threads; the mean seconds of each frame after the first."""
    from sam2pp.data.synthetic import make_video
    from sam2pp.demo import random_model
    from sam2pp.predictor.video_predictor import VideoPredictor

    import torch

    video = make_video(seed=7, num_frames=frames + 1)
    predictor = VideoPredictor(random_model(config, seed=0, device=torch.device("cpu")), threads=threads)
    state = predictor.init_state(video.frames)
    predictor.add_mask(state, 0, TARGET, video.masks[0] == TARGET)
    stamps = [time.perf_counter() for _ in predictor.propagate(state, progress=False)]
    return (stamps[-1] - stamps[0]) / (len(stamps) - 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["sam2pp_tiny", "sam2pp_hiera_b+"])
    parser.add_argument("--threads", nargs="+", type=int, default=sorted({1, 2, os.cpu_count() or 1}))
    parser.add_argument("--frames", nargs="+", type=int, default=[6, 3],
                        help="frames timed per config (one number for all, or one per config)")
    args = parser.parse_args()
    frames = dict(zip(args.configs, args.frames * len(args.configs) if len(args.frames) == 1 else args.frames))
    print(f"propagate on the CPU ({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}), one mask object")
    print(f"{'config':<16} {'threads':>7} {'frames':>6} {'s/frame':>8}")
    context = multiprocessing.get_context("spawn")
    for config in args.configs:
        for threads in args.threads:
            with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
                seconds = pool.submit(seconds_per_frame, config, threads, frames[config]).result()
            print(f"{config:<16} {threads:>7} {frames[config]:>6} {seconds:>8.3f}", flush=True)


if __name__ == "__main__":
    main()
