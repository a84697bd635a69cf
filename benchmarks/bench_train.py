"""Training speed and memory of a preset: clips per second and peak resident memory, on 1 and 2 ranks.

Each run is a fresh process (`sam2pp train`, or `torchrun` for 2 ranks) training `--steps` steps without validation;
the runs of the variants are interleaved `--repeats` times, since this machine is shared and noisy. Clips/s is the
mean over the steps after the first (warm-up) from the run's metrics.jsonl, counting the clips of every rank; peak
memory is rank 0's peak resident set (CPU) or allocator peak (CUDA) as the run logs it, so per rank.

    python benchmarks/bench_train.py [--preset tiny_cpu] [--steps 6] [--repeats 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from sam2pp.training.config import load_config


def run(preset: str, ranks: int, steps: int, threads: int, root: Path) -> dict:
    cfg = load_config(preset)
    cfg.steps, cfg.save_every, cfg.picture_every, cfg.threads = steps, steps, 0, threads
    cfg.validation.tasks = ()
    out = Path(tempfile.mkdtemp(dir=root))
    config_file = out / "config_in.json"
    cfg.to_json(config_file)
    command = [sys.executable, "-m", "sam2pp", "train", str(config_file), "--out", str(out / "run")]
    if ranks > 1:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}",
                   "-m", "sam2pp", "train", str(config_file), "--out", str(out / "run")]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records = [json.loads(line) for line in (out / "run" / "metrics.jsonl").read_text().splitlines()]
    timed = records[1:] or records
    return {
        "clips_per_s": sum(r["clips_per_s"] for r in timed) / len(timed),
        "s_per_step": sum(r["seconds"] for r in timed) / len(timed),
        "peak_mib": max(r["peak_mib"] for r in records),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="tiny_cpu")
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    args = p.parse_args()
    results: dict[int, list[dict]] = {r: [] for r in args.ranks}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for ranks in args.ranks:
                results[ranks].append(run(args.preset, ranks, args.steps, args.threads, Path(tmp)))
                print(f"repeat {repeat + 1}, {ranks} rank(s): {results[ranks][-1]}", flush=True)
    print(f"\n{args.preset}, {args.steps} steps, {args.threads} thread(s) per rank")
    print(f"{'ranks':>5}  {'clips/s':>8}  {'s/step':>7}  {'peak MiB per rank':>20}")
    for ranks, rows in results.items():
        best = max(rows, key=lambda r: r["clips_per_s"])
        print(f"{ranks:>5}  {best['clips_per_s']:>8.3f}  {best['s_per_step']:>7.2f}  {best['peak_mib']:>20.0f}")


if __name__ == "__main__":
    main()
