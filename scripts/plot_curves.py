"""Draw the learning curves that `scripts/learning_curves.py` wrote: one panel per metric, training videos solid,
held-out videos dashed, one colour per run, against training steps (or `--x hours` of step time, comparable only between runs that
shared the machine alike).

    python scripts/plot_curves.py runs/curves/images_tiny runs/curves/images_small --out docs/images/curves.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HEADLINES = ("click", "box", "J&F-Mean", "AO", "delta_avg")


def read_curves(run: Path) -> list[dict]:
    path = run / "curves.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no curves (run scripts/learning_curves.py first)")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def flat(scores: dict) -> dict[str, float]:
    """{"click": x} as it is, or {"mask": {"J&F-Mean": x}} flattened to {"J&F-Mean": x}."""
    out = {}
    for key, value in scores.items():
        out.update(value if isinstance(value, dict) else {key: value})
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", type=Path, nargs="+")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--title", default="")
    p.add_argument("--x", choices=("step", "hours"), default="step")
    args = p.parse_args()
    curves = {run.name: read_curves(run) for run in args.runs}
    metrics = [m for m in HEADLINES if any(m in flat(r["scores"]) for c in curves.values() for r in c)]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for colour, (name, records) in zip(plt.rcParams["axes.prop_cycle"].by_key()["color"], curves.items()):
            for split, style in (("train", "-"), ("held_out", "--")):
                points = sorted((r[args.x], flat(r["scores"])[metric]) for r in records
                                if r["split"] == split and metric in flat(r["scores"]))
                if points:
                    ax.plot(*zip(*points), style, marker="o", ms=3, color=colour, label=f"{name} {split}")
        ax.set_title(metric)
        ax.set_xlabel("hours of step time" if args.x == "hours" else "training steps")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    if args.title:
        fig.suptitle(args.title)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
