"""`sam2pp ablate`: train every shared / per-task layout of the memory modules under one recipe and print the table."""

from __future__ import annotations

import argparse
import sys

from .ablation import DEFAULT_AXES, MODULES


def add_parser(sub) -> None:
    p = sub.add_parser(
        "ablate",
        help="ablate the task-adaptive memory: train shared / per-task module layouts, print one table",
        description="Train each variant of the grid (every shared / per-task combination of --axes; the other "
                    "modules keep the released layout) once per seed with the same data, budget and validation, "
                    "score each on the same held-out clips with the `sam2pp eval` metrics, and write table.csv, "
                    "table.json, loss_curves.png and metrics.png under --out (runs in --out/runs/<variant>/seed<k>/). "
                    "Rerunning on the same --out reads finished runs and resumes unfinished ones. Across GPUs: "
                    "--torchrun N prints one torchrun command per unfinished run; rerun ablate afterwards to score "
                    "them and build the table.",
    )
    p.add_argument("config", metavar="CONFIG_OR_PRESET", help="a training preset (tiny_cpu, smoke, ...) or a .json")
    p.add_argument("--out", required=True, help="the grid's folder")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="training seeds per variant (default 0 1)")
    p.add_argument("--workers", type=int, default=1, help="runs trained at once, in spawned processes (default 1)")
    p.add_argument("--axes", nargs="+", choices=MODULES, default=list(DEFAULT_AXES),
                   help="modules switched between shared and per task (default memory_attention memory_encoder)")
    p.add_argument("--steps", type=int, help="override the number of optimiser steps of every run")
    p.add_argument("--device", help="auto (default), cpu or cuda")
    p.add_argument("--threads", type=int, help="intra-op threads per run (OMP_NUM_THREADS wins)")
    p.add_argument("--torchrun", type=int, metavar="NPROC",
                   help="write the runs' configs and print a torchrun command (NPROC processes) per unfinished run "
                        "instead of training")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .ablation import AblationGrid, ablate, plan
    from .config import load_config

    config = load_config(args.config)
    for name in ("steps", "device", "threads"):
        value = getattr(args, name)
        if value is not None:
            setattr(config, name, value)
    grid = AblationGrid.over(args.axes)
    if args.torchrun is not None:
        for planned in plan(grid, config, args.out, args.seeds):
            if not planned.finished:
                print(f"torchrun --nproc_per_node {args.torchrun} -m sam2pp train {planned.folder / 'config.json'} "
                      f"--out {planned.folder} --resume")
        return 0
    try:
        result = ablate(grid, config, args.out, seeds=args.seeds, workers=args.workers)
    except KeyboardInterrupt:
        print("sam2pp ablate: interrupted; rerun the same command to continue (finished runs are read, not "
              "retrained; the others resume from their last resume point)", file=sys.stderr)
        return 130
    print(result.markdown())
    print()
    print(f"mean ± std over {len(args.seeds)} seed(s):")
    print(result.markdown(summary=True))
    print(f"\ntable: {result.table_csv}, {result.table_json}; curves: {result.curves_png}")
    return 0
