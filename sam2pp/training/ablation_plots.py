"""Pictures of an ablation: which modules each variant shares, the per-task loss curves, and the per-task metrics
with their spread over seeds. Each function returns a `matplotlib.figure.Figure` (no pyplot state, so it is safe in
worker processes and on machines without a display)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from ..modeling.task_modules import TASKS
from .ablation import MODULES, AblationResult, Variant

TASK_COLORS = {"mask": "#4c72b0", "box": "#dd8452", "point": "#55a868"}
SHARED_COLOR = "#9a9a9a"
# Modules no switch lays out, drawn for context: (title, per task?).
FIXED = (("prompt encoder +\ndecoder transformer", False), ("decoder heads +\nhigh-res projections", True))


def variant_label(name: str) -> str:
    """A variant's folder name as a short multi-line label (`attn task / menc shared / img shared`)."""
    return "\n".join(part.replace("-", " ") for part in name.split("_"))


def layout_diagram(variants: list[Variant]) -> Figure:
    """One row per variant, one column per module: a grey box for a module every task shares, three coloured boxes
    (mask, box, point) for a module with a copy per task."""
    columns = [(m.replace("_", "\n"), None) for m in MODULES] + list(FIXED)
    fig = Figure(figsize=(2.0 * len(columns) + 4.2, 0.7 * len(variants) + 1.2))
    ax = fig.add_subplot()
    for row, variant in enumerate(variants):
        y = len(variants) - 1 - row
        label = variant_label(variant.name).replace("\n", ", ") + ("  (released)" if variant.is_released else "")
        ax.text(-0.5, y, label, ha="right", va="center", fontsize=8, weight="bold" if variant.is_released else None)
        for col, (title, per_task) in enumerate(columns):
            separate = variant.layout[MODULES[col]] if per_task is None else per_task
            _draw_module(ax, col, y, separate, faded=per_task is not None)
    for col, (title, _) in enumerate(columns):
        ax.text(col, len(variants) - 0.35, title, ha="center", va="bottom", fontsize=8)
    handles = [FancyBboxPatch((0, 0), 1, 1, color=TASK_COLORS[t], label=f"{t} copy") for t in TASKS]
    handles.append(FancyBboxPatch((0, 0), 1, 1, color=SHARED_COLOR, label="shared by all tasks"))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=4, fontsize=8, frameon=False)
    ax.set_title("first three columns: the ablated switches; last two (faded): the same in every variant", fontsize=9)
    ax.set_xlim(-2.6, len(columns) - 0.5)
    ax.set_ylim(-0.6, len(variants) + 0.2)
    ax.set_axis_off()
    fig.tight_layout()
    return fig


def _draw_module(ax, x: float, y: float, separate: bool, faded: bool) -> None:
    alpha = 0.45 if faded else 1.0
    if not separate:
        ax.add_patch(FancyBboxPatch((x - 0.4, y - 0.25), 0.8, 0.5, boxstyle="round,pad=0.02", color=SHARED_COLOR,
                                    alpha=alpha))
        ax.text(x, y, "shared", ha="center", va="center", fontsize=7, color="white")
        return
    for i, task in enumerate(TASKS):
        left = x - 0.4 + i * 0.8 / 3
        ax.add_patch(FancyBboxPatch((left + 0.01, y - 0.25), 0.8 / 3 - 0.02, 0.5, boxstyle="round,pad=0.01",
                                    color=TASK_COLORS[task], alpha=alpha))
        ax.text(left + 0.4 / 3, y, task, ha="center", va="center", fontsize=6, color="white")


def _variant_colors(result: AblationResult) -> dict[str, str]:
    names = list(dict.fromkeys(r["variant"] for r in result.rows))
    palette = [f"C{i % 10}" for i in range(len(names))]
    return dict(zip(names, palette))


def loss_curves_figure(result: AblationResult, key: str = "core_loss", smooth: int = 10) -> Figure:
    """One panel per task: each run's loss of that task over steps (running mean of `smooth` of its steps), one
    colour per variant, one line style per seed."""
    colors = _variant_colors(result)
    seeds = list(dict.fromkeys(r["seed"] for r in result.rows))
    styles = {seed: ("-", "--", ":", "-.")[i % 4] for i, seed in enumerate(seeds)}
    fig = Figure(figsize=(4.2 * len(TASKS), 3.6))
    axes = fig.subplots(1, len(TASKS), squeeze=False)[0]
    for row in result.rows:
        history = result.history(row["variant"], row["seed"])
        for ax, task in zip(axes, TASKS):
            points = [(r["step"], r["losses"][key]) for r in history if r["task"] == task and key in r["losses"]]
            if not points:
                continue
            steps, values = map(np.asarray, zip(*points))
            k = min(smooth, len(values))
            mean = np.convolve(values, np.ones(k) / k, mode="valid")
            label = f"{variant_label(row['variant']).replace(chr(10), ', ')} s{row['seed']}"
            marker = "o" if len(mean) == 1 else None  # a lone point draws no line
            ax.plot(steps[k - 1:], mean, color=colors[row["variant"]], linestyle=styles[row["seed"]], alpha=0.8,
                    label=label, marker=marker)
    for ax, task in zip(axes, TASKS):
        ax.set_title(f"{task}: {key} (mean of {smooth} steps)", fontsize=9)
        ax.set_xlabel("step")
        ax.set_yscale("log")
    axes[-1].legend(fontsize=6, loc="upper right")
    fig.tight_layout()
    return fig


def metric_bars(result: AblationResult) -> Figure:
    """One panel per validation metric: a bar per variant at the mean over seeds, the min-max range over seeds as
    an error bar, each seed as a dot."""
    colors = _variant_colors(result)
    names = list(colors)
    metrics = result.metric_columns
    cols = min(4, len(metrics))
    rows = -(-len(metrics) // cols)
    fig = Figure(figsize=(3.2 * cols, 3.0 * rows + 0.6))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    x = np.arange(len(names))
    for ax, metric in zip(axes, metrics):
        values = [[r[metric] for r in result.rows if r["variant"] == n and r.get(metric) is not None] for n in names]
        means = np.array([np.mean(v) if v else np.nan for v in values])
        low = means - np.array([min(v) if v else np.nan for v in values])
        high = np.array([max(v) if v else np.nan for v in values]) - means
        ax.bar(x, means, color=[colors[n] for n in names], alpha=0.7, yerr=[low, high], capsize=3)
        for i, seeds in enumerate(values):
            ax.plot(np.full(len(seeds), x[i]), seeds, "k.", markersize=4)
        ax.set_title(metric, fontsize=9)
        ax.set_xticks(x, [variant_label(n) for n in names], fontsize=6)
    for ax in axes[len(metrics):]:
        ax.set_axis_off()
    fig.suptitle("validation metrics per variant: mean over seeds, min-max bar, one dot per seed", fontsize=9)
    fig.tight_layout()
    return fig
