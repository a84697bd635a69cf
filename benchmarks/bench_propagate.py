"""Frames per second and peak memory of `VideoPredictor.propagate`, one object per task, random weights.

Each case (config x task x frame count) runs in a fresh process, so one case's memory never inflates the next.
Peak memory is the rise above the memory in use when `propagate` starts: on CUDA the allocator's peak
(`torch.cuda.max_memory_allocated`), on the CPU the process's peak resident set size (`resource`) minus its
resident size at that moment. Video decoding is not timed: the frames are a synthetic uint8 array in memory.

    python benchmarks/bench_propagate.py [--device cpu] [--configs sam2pp_tiny sam2pp_hiera_b+] [--frames 8 32]

Other measurements (`--mode`), each on the chosen configs unless said:
    decode   seconds per frame (one mask object) over a folder of 1080p JPEGs (--video, or synthetic frames), an
             H.264 MP4 of the same frames, and the same frames at the model size in memory, interleaved over
             --repeats rounds for one and two torch threads (--threads), with the load average; also the folder
             decoded on the tracking thread (prefetch=0) and with `jpeg_draft`, the decoded frames in memory
             (results at the video's size, resized by the workers, no decoding), the model-size frames with a
             second process decoding the JPEGs beside them (whether a core is free for the frame work), and the
             milliseconds of each step of a frame's preprocessing, the published way and the way sam2pp does it
    draft    J&F and seconds per frame of a real clip (--video .../JPEGImages/<clip>, its masks in
             .../Annotations/<clip>) tracked by --model from its first mask, decoded exactly and with `jpeg_draft`
    objects  seconds per frame for 1, 3 and 8 mask objects: batched (the default), one at a time, and batched with
             the per-frame step compiled (`compile_step=True`; compiled before timing)
    compile  seconds per frame (and frames/s) of float32, bfloat16 autocast (CUDA only), autocast with the image
             encoder compiled (`compile_image_encoder=True`) and with the per-frame step compiled too
             (`compile_step=True`), compiled before timing and interleaved over --repeats rounds (one mask object);
             the published "vos_optimized" mode
    long     `sam2pp_tiny` over a long synthetic stream (--long-frames, default 10,000) with the window memory bank:
             the session's tensor bytes and the process's RSS every 1,000 frames
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from PIL import Image

from sam2pp.data.synthetic import SyntheticVideo, make_video
from sam2pp.demo import random_model
from sam2pp.eval.vos import evaluate_vos
from sam2pp.io.formats import list_frames, read_palette_png, write_palette_png
from sam2pp.io.overlay import write_animation
from sam2pp.kernels import connected_components
from sam2pp.predictor.preprocess import IMAGE_MEAN, IMAGE_STD
from sam2pp.predictor.preprocess import normalise
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


def seconds_per_frame(predictor: VideoPredictor, video, masks: list[np.ndarray], device: torch.device,
                      **init) -> float:
    """Prompt one mask object per entry of `masks` on frame 0 and time one propagation over the video."""
    state = predictor.init_state(video, **init)
    for obj_id, mask in enumerate(masks):
        predictor.add_mask(state, 0, obj_id, mask)
    start = time.perf_counter()
    count = sum(1 for _ in predictor.propagate(state, progress=False))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / count


def _load() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def _ms_per_call(fn, items, repeats: int = 3) -> float:
    """Best of `repeats` passes over `items`, in milliseconds per item."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, (time.perf_counter() - start) / len(items))
    return best * 1000


def bench_frame_steps(paths: list[Path], size: int) -> None:
    """Each step of preprocessing one frame on one thread: the published way (decode, convert to RGB, which copies,
    resize, /255 and mean/std in torch) against sam2pp's (no copy, a table look-up, or a draft decode)."""
    def decode(path, draft=False):
        image = Image.open(path)
        if draft:
            image.draft(None, (size, size))
        image.load()
        return image

    image, drafted = decode(paths[0]), decode(paths[0], draft=True)
    small = np.asarray(image.resize((size, size)))
    mean, std = torch.tensor(IMAGE_MEAN)[:, None, None], torch.tensor(IMAGE_STD)[:, None, None]

    def published_normalise(_):
        return (torch.from_numpy(small / 255.0).permute(2, 0, 1).float() - mean) / std

    steps = {
        f"JPEG decode {image.width}x{image.height}": lambda p: decode(p),
        f"JPEG draft decode -> {drafted.width}x{drafted.height}": lambda p: decode(p, draft=True),
        "JPEG decode + convert('RGB') (published)": lambda p: decode(p).convert("RGB"),
        f"resize -> {size} (bicubic)": lambda _: image.resize((size, size)),
        f"resize from draft -> {size}": lambda _: drafted.resize((size, size)),
        "normalise, published torch ops": published_normalise,
        "normalise, table look-up": lambda _: normalise(small),
    }
    print(f"preprocessing steps, ms per frame, one thread ({_load()})")
    for name, fn in steps.items():
        print(f"  {name:<44} {_ms_per_call(fn, paths):>7.2f}", flush=True)


def _decode_forever(paths: list[Path], size: int, stop) -> None:
    while not stop.is_set():
        for path in paths:
            Image.open(path).resize((size, size))


class DecodingBeside:
    """A second process decoding and resizing the frames in a loop while the block runs: the frame work of the JPEG
    folder without the workers' threads, a control that shows whether the machine has a core free for it."""

    def __init__(self, paths: list[Path], size: int):
        context = multiprocessing.get_context("spawn")
        self.stop = context.Event()
        self.process = context.Process(target=_decode_forever, args=(paths, size, self.stop), daemon=True)

    def __enter__(self):
        self.process.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.process.join()


def bench_decoding(config: str, device: torch.device, frames: int, video: Path | None, repeats: int,
                   thread_counts: list[int]) -> None:
    """A folder of 1080p JPEGs, an MP4 of the same frames and the same frames at the model size in memory, each
    tracked with one mask object, interleaved over `repeats` rounds for each thread count (median reported)."""
    model = random_model(config, seed=0, device=device)
    size = model.image_size
    with tempfile.TemporaryDirectory() as tmp:
        if video is None:
            clip = make_video(seed=7, num_frames=frames, size=(1920, 1080), num_objects=1)
            for t, frame in enumerate(clip.frames):
                Image.fromarray(frame).save(f"{tmp}/{t:05d}.jpg", quality=90)
            video = Path(tmp)
        paths = list_frames(video)[:frames]
        decoded = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
        height, width = decoded[0].shape[:2]
        mp4 = write_animation(Path(tmp) / "clip.mp4", decoded, fps=25, progress=False)
        at_model_size = np.stack([np.asarray(Image.fromarray(f).resize((size, size))) for f in decoded])
        full = grid_masks(1, width, height)
        small = grid_masks(1, size, size)
        bench_frame_steps(paths, size)
        variants = {  # name: source, its mask, VideoPredictor options, init_state options, decoding beside
            f"{width}x{height} JPEG folder": (paths, full, {}, {}, False),
            f"{width}x{height} MP4": (mp4, full, {}, {}, False),
            f"{size} px frames in memory": (at_model_size, small, {}, {}, False),
            f"{width}x{height} frames in memory": (np.stack(decoded), full, {}, {}, False),
            f"{width}x{height} JPEG, on demand": (paths, full, {"prefetch": 0}, {}, False),
            f"{width}x{height} JPEG, jpeg_draft": (paths, full, {}, {"jpeg_draft": True}, False),
            f"{size} px in memory, decoding beside": (at_model_size, small, {}, {}, True),
        }
        times: dict[tuple[int, str], list[float]] = {}
        loads = []
        for threads in thread_counts:  # untimed warm-up
            seconds_per_frame(VideoPredictor(model, threads=threads), at_model_size[:2], small, device)
        for round_ in range(repeats):
            loads.append(os.getloadavg()[0])
            for threads in thread_counts:
                for name, (source, mask, options, init, beside) in variants.items():
                    predictor = VideoPredictor(model, threads=threads, **options)
                    with DecodingBeside(paths, size) if beside else contextlib.nullcontext():
                        sec = seconds_per_frame(predictor, source, mask, device, **init)
                    times.setdefault((threads, name), []).append(sec)
            print(f"round {round_ + 1}/{repeats} done ({_load()})", flush=True)
        print(f"{config}, {len(paths)} frames, median of {repeats} interleaved rounds, seconds per frame; "
              f"1-minute load {min(loads):.2f}..{max(loads):.2f} over the rounds")
        print(f"{'threads':>7}  {'source':<32} {'s/frame':>8} {'min':>8} {'vs memory':>9}")
        for threads in thread_counts:
            base = statistics.median(times[threads, f"{size} px frames in memory"])
            for name in variants:
                runs = times[threads, name]
                print(f"{threads:>7}  {name:<32} {statistics.median(runs):>8.4f} {min(runs):>8.4f} "
                      f"{statistics.median(runs) / base:>8.2f}x", flush=True)


def bench_draft_quality(video: Path, model_id: str, device: torch.device) -> None:
    """Track a DAVIS-layout clip from its first annotated frame, decoded exactly and with `jpeg_draft`; J&F of each
    against the annotations, and seconds per frame (best of two runs each, interleaved)."""
    annotations = Path(str(video).replace("JPEGImages", "Annotations"))
    first = read_palette_png(list_frames(annotations)[0])
    model = VideoPredictor.from_pretrained(model_id, device=device).model
    print(f"{model_id} on {video} ({_load()})")
    with tempfile.TemporaryDirectory() as tmp:
        best: dict[bool, float] = {}
        for draft in (False, True, False, True):
            predictor = VideoPredictor(model)
            state = predictor.init_state(video, jpeg_draft=draft)
            for obj_id in np.unique(first[first > 0]):
                predictor.add_mask(state, 0, int(obj_id), first == obj_id)
            out = Path(tmp) / ("draft" if draft else "exact") / video.name
            out.mkdir(parents=True, exist_ok=True)
            start = time.perf_counter()
            results = list(predictor.propagate(state, progress=False))
            best[draft] = min(best.get(draft, float("inf")), (time.perf_counter() - start) / len(results))
            for r in results:
                write_palette_png(out / f"{state.frames.names[r.frame_idx][:-4]}.png", r.label_map().astype(np.uint8))
        for draft in (False, True):
            scores = evaluate_vos(annotations.parent, Path(tmp) / ("draft" if draft else "exact"), progress=False)
            print(f"  {'jpeg_draft' if draft else 'exact':<10} J&F {scores.summary['J&F-Mean']:.4f} "
                  f"J {scores.summary['J-Mean']:.4f} F {scores.summary['F-Mean']:.4f} {best[draft]:.4f} s/frame")


def _warm_up_masks(model, video: SyntheticVideo, masks: list[np.ndarray], device: torch.device) -> None:
    """On CUDA, track two frames first (both object paths) so context creation and kernel selection are untimed."""
    if device.type == "cuda":
        for batch in (True, False):
            seconds_per_frame(VideoPredictor(model, batch_objects=batch), video.frames[:2], masks, device)


def grid_masks(n: int, width: int, height: int) -> list[np.ndarray]:
    """`n` disjoint rectangles on a grid of the frame."""
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    masks = []
    for k in range(n):
        r, c = divmod(k, cols)
        m = np.zeros((height, width), bool)
        m[r * height // rows + 4: (r + 1) * height // rows - 4, c * width // cols + 4: (c + 1) * width // cols - 4] = 1
        masks.append(m)
    return masks


def bench_objects(config: str, device: torch.device, frames: int) -> None:
    """1, 3 and 8 mask objects: batched, one at a time, and batched with the step compiled (each ratio against the
    same mode's one object)."""
    video = make_video(seed=7, num_frames=frames)
    model = random_model(config, seed=0, device=device)
    width, height = video.size
    _warm_up_masks(model, video, grid_masks(8, width, height), device)
    modes = {"batched": VideoPredictor(model), "one at a time": VideoPredictor(model, batch_objects=False),
             "compiled step": VideoPredictor(model, compile_step=True)}
    for n in (1, 3, 8) * 2:  # compile every batch size now, untimed (twice: graphs guard on caches the first fills)
        seconds_per_frame(modes["compiled step"], video.frames, grid_masks(n, width, height), device)
    single = {}
    for n in (1, 3, 8):
        for mode, predictor in modes.items():
            sec = seconds_per_frame(predictor, video.frames, grid_masks(n, width, height), device)
            single.setdefault(mode, sec)
            print(f"{config:<16} {n} objects {mode:<14} {sec:>8.3f} s/frame {sec / single[mode]:>6.2f}x one object",
                  flush=True)


def bench_compile(config: str, device: torch.device, frames: int, repeats: int = 3) -> None:
    """Eager float32, autocast, autocast + compiled image encoder, and + compiled step, interleaved `repeats` times
    (best of each)."""
    video = make_video(seed=7, num_frames=frames)
    mask = [video.masks[0] == TARGET]
    model = random_model(config, seed=0, device=device)
    variants = {"float32": VideoPredictor(model, autocast=False)}
    if device.type == "cuda":
        variants["bf16 autocast"] = VideoPredictor(model)
    variants["compiled encoder"] = VideoPredictor(model, compile_image_encoder=True)
    variants["compiled + step"] = VideoPredictor(model, compile_image_encoder=True, compile_step=True)
    for name in ("compiled encoder", "compiled + step") * 2:  # compile now, untimed (twice, as in bench_objects)
        seconds_per_frame(variants[name], video.frames, mask, device)
    best = {name: float("inf") for name in variants}
    for _ in range(repeats):
        for name, predictor in variants.items():
            best[name] = min(best[name], seconds_per_frame(predictor, video.frames, mask, device))
    for name, sec in best.items():
        print(f"{config:<16} {name:<18} {sec:>8.4f} s/frame {1 / sec:>8.1f} frames/s", flush=True)


def bench_long(device: torch.device, frames: int) -> None:
    """`sam2pp_tiny` over a long stream of small synthetic frames, window memory bank: bytes and RSS stay flat."""
    clip = make_video(seed=7, num_frames=50, size=(128, 96), num_objects=1)
    predictor = VideoPredictor(random_model("sam2pp_tiny", seed=0, device=device), memory_bank="window")
    state = predictor.init_state(clip.frames[t % len(clip.frames)] for t in range(frames))
    predictor.add_mask(state, 0, TARGET, clip.masks[0] == TARGET)
    start = time.perf_counter()
    print(f"{'frame':>6} {'state MiB':>10} {'RSS MiB':>8} {'s/frame':>8}")
    for result in predictor.propagate(state, progress=False):
        t = result.frame_idx
        if t % 1000 == 0 and t > 0 or t == frames - 1:
            print(f"{t:>6} {state.tensor_bytes() / 2**20:>10.2f} {_rss_bytes() / 2**20:>8.1f} "
                  f"{(time.perf_counter() - start) / t:>8.4f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--configs", nargs="+", default=["sam2pp_tiny", "sam2pp_hiera_b+"])
    parser.add_argument("--frames", nargs="+", type=int, default=[8, 32])
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    parser.add_argument("--mode", choices=("speed", "decode", "draft", "objects", "compile", "long"), default="speed")
    parser.add_argument("--model", default="sam2pp-demo", help="--mode draft: the trained model to track with")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds of --mode compile and decode")
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2], help="--mode decode: torch thread counts")
    parser.add_argument("--video", type=Path, help="--mode decode: a folder of JPEG frames (default: synthetic 1080p)")
    parser.add_argument("--long-frames", type=int, default=10_000)
    args = parser.parse_args()
    if min(args.frames) < 1:
        parser.error(f"--frames must be positive, got {args.frames}")
    device = torch.device(args.device)
    threads = "" if device.type == "cuda" else f", {torch.get_num_threads()} threads"
    if args.mode != "speed":
        print(f"{args.mode} on {args.device}{threads}, {'trained' if args.mode == 'draft' else 'random'} weights")
        if args.mode == "long":
            bench_long(device, args.long_frames)
        if args.mode == "draft":
            bench_draft_quality(args.video, args.model, device)
        for config in args.configs if args.mode not in ("long", "draft") else []:
            if args.mode == "compile":
                bench_compile(config, device, max(args.frames), args.repeats)
            elif args.mode == "decode":
                bench_decoding(config, device, max(args.frames), args.video, args.repeats, args.threads)
            else:
                bench_objects(config, device, max(args.frames))
        return
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
