"""Prints milliseconds per connected_components call for the compiled CPU op, the scipy fallback and CUDA.

Usage: python benchmarks/bench_kernels.py [--size 1080x1920] [--batch 1] [--repeats 20]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from sam2pp import kernels


def blob_masks(batch: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """(batch, 1, H, W) uint8 masks of irregular regions, like thresholded mask logits."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.rand(batch, 1, height // 16 + 1, width // 16 + 1, generator=generator)
    noise = F.interpolate(noise, size=(height, width), mode="bilinear", align_corners=False)
    return (noise > 0.5).to(torch.uint8)


def ms_per_call(op: Callable[[torch.Tensor], object], masks: torch.Tensor, repeats: int) -> float:
    """Median wall time of one call after a warm-up, synchronising CUDA around each."""
    op(masks)
    times = []
    for _ in range(repeats):
        if masks.is_cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        op(masks)
        if masks.is_cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return 1000 * sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1080x1920", help="HxW")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    height, width = (int(part) for part in args.size.split("x"))
    masks = blob_masks(args.batch, height, width)
    print(f"masks {tuple(masks.shape)}, foreground {masks.float().mean():.2f}, median of {args.repeats} calls")

    cpu = kernels.build_extension(with_cuda=False).connected_components
    print(f"  cpu extension   {ms_per_call(cpu, masks, args.repeats):9.3f} ms")
    print(f"  scipy fallback  {ms_per_call(kernels._fallback, masks, max(3, args.repeats // 4)):9.3f} ms")
    if torch.cuda.is_available():
        cuda = kernels.build_extension(with_cuda=True).connected_components
        on_gpu = masks.cuda()
        print(f"  cuda extension  {ms_per_call(cuda, on_gpu, args.repeats):9.3f} ms  ({torch.cuda.get_device_name()})")
    else:
        print("  cuda extension  skipped: no CUDA device")


if __name__ == "__main__":
    main()
