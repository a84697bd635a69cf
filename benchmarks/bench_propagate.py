"""Frames per second and peak memory of `VideoPredictor.propagate`, one object per task, random weights.

Each case (config x task x frame count) runs in a fresh process, so one case's memory never inflates the next.
Peak memory is the rise above the memory in use when `propagate` starts: on CUDA the allocator's peak
(`torch.cuda.max_memory_allocated`), on the CPU the process's peak resident set size (`resource`) minus its
resident size at that moment. Video decoding is not timed: the frames are a synthetic uint8 array in memory.

    python benchmarks/bench_propagate.py [--device cpu] [--configs sam2pp_tiny sam2pp_hiera_b+] [--frames 8 32]
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sam2pp.data.synthetic import SyntheticVideo, make_video
from sam2pp.demo import random_model
from sam2pp.kernels import connected_components
from sam2pp.predictor.video_predictor import VideoPredictor

TASKS = ("mask", "box", "point")
TARGET = 1  # the synthetic clip's main object


@dataclass(frozen=True)
class Case:
    config: str
    task: str
    frames: int
    device: str


@dataclass(frozen=True)
class Measurement:
    case: Case
    seconds: float
    peak_mib: float

    @property
    def fps(self) -> float:
        return self.case.frames / self.seconds


def add_prompt(predictor: VideoPredictor, state, task: str, video: SyntheticVideo) -> None:
    """Object 1 on frame 0, prompted with its ground truth in the way of `task`."""
    if task == "mask":
        predictor.add_mask(state, 0, TARGET, video.masks[0] == TARGET)
    elif task == "box":
        predictor.add_box(state, 0, TARGET, video.boxes_xyxy[video.obj_ids.index(TARGET), 0], task="box")
    else:
        first_point = int(np.flatnonzero(video.point_obj_ids == TARGET)[0])
        predictor.add_track_point(state, 0, TARGET, video.points[0, first_point])


def measure(case: Case, video: SyntheticVideo) -> Measurement:
    """Build the model, prompt frame 0, then time one propagation over every frame (runs in a child process)."""
    device = torch.device(case.device)
    predictor = VideoPredictor(random_model(case.config, seed=0, device=device))
    connected_components(torch.zeros(1, 1, 8, 8, dtype=torch.bool, device=device))  # load the compiled op now
    if device.type == "cuda":
        _warm_up(predictor, video, case.task)
    state = predictor.init_state(video.frames[: case.frames])
    add_prompt(predictor, state, case.task, video)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    else:
        before = _rss_bytes()
    start = time.perf_counter()
    for _ in predictor.propagate(state, progress=False):
        pass
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else _peak_rss_bytes()
    return Measurement(case, seconds, (peak - before) / 2**20)


def _warm_up(predictor: VideoPredictor, video: SyntheticVideo, task: str) -> None:
    """Two frames first, so CUDA context creation and kernel selection are not timed."""
    state = predictor.init_state(video.frames[:2])
    add_prompt(predictor, state, task, video)
    for _ in predictor.propagate(state, progress=False):
        pass


def _rss_bytes() -> int:
    """Resident set size now (Linux /proc); elsewhere the peak so far, which makes the rise a lower bound."""
    statm = Path("/proc/self/statm")
    if statm.is_file():
        return int(statm.read_text().split()[1]) * resource.getpagesize()
    return _peak_rss_bytes()


def _peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB elsewhere


def run_isolated(case: Case, video: SyntheticVideo) -> Measurement:
    """`measure` in a fresh spawned process: its peak RSS belongs to this case alone."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(measure, case, video).result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--configs", nargs="+", default=["sam2pp_tiny", "sam2pp_hiera_b+"])
    parser.add_argument("--frames", nargs="+", type=int, default=[8, 32])
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    args = parser.parse_args()
    if min(args.frames) < 1:
        parser.error(f"--frames must be positive, got {args.frames}")
    video = make_video(seed=7, num_frames=max(max(args.frames), 2))
    memory = "peak MiB (allocator)" if args.device.startswith("cuda") else "peak MiB (RSS rise)"
    threads = "" if args.device.startswith("cuda") else f", {torch.get_num_threads()} threads"
    print(f"propagate on {args.device}{threads}, one object, {video.size[0]}x{video.size[1]} frames, random weights")
    header = f"{'config':<16} {'task':<6} {'frames':>6} {'seconds':>8} {'fps':>7} {memory:>20}"
    print(header)
    print("-" * len(header))
    for config in args.configs:
        for frames in args.frames:
            for task in args.tasks:
                m = run_isolated(Case(config, task, frames, args.device), video)
                print(f"{config:<16} {task:<6} {frames:>6} {m.seconds:>8.2f} {m.fps:>7.2f} {m.peak_mib:>20.1f}",
                      flush=True)


if __name__ == "__main__":
    main()
