"""Copy a finished ablation grid's results into `docs/ablation/task_memory/` (what the README and notebook 06 show).

    python scripts/refresh_ablation_results.py [--grid runs/ablation_task_memory]

Copies the table (CSV, JSON), the two figures and each run's per-step losses (metrics.jsonl), not the checkpoints,
and prints the mean ± std table in Markdown for the README. Run it on purpose after `sam2pp ablate` finishes.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from sam2pp.training.ablation import AblationResult

DEST = Path(__file__).resolve().parents[1] / "docs" / "ablation" / "task_memory"
FILES = ("table.csv", "table.json", "loss_curves.png", "metrics.png")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--grid", default="runs/ablation_task_memory", help="the --out folder of `sam2pp ablate`")
    args = p.parse_args()
    grid = Path(args.grid)
    result = AblationResult.load(grid)
    if DEST.exists():
        shutil.rmtree(DEST)
    DEST.mkdir(parents=True)
    for name in FILES:
        shutil.copy2(grid / name, DEST / name)
    for row in result.rows:
        run = Path("runs") / row["variant"] / f"seed{row['seed']}"
        (DEST / run).mkdir(parents=True, exist_ok=True)
        shutil.copy2(grid / run / "metrics.jsonl", DEST / run / "metrics.jsonl")
    print(AblationResult.load(DEST).markdown(summary=True))


if __name__ == "__main__":
    main()
