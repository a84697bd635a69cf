"""The benchmark report: the evaluator's summary over the scored videos, a per-video table worst-first, speed, and
pictures of the worst videos (ground truth above, prediction below, drawn by the overlay `sam2pp track` uses).

The summary is pooled as `sam2pp eval` pools it (mean over objects for vos, over sequences with GOT-10k's IoUs pooled
over frames for sot, over videos for pt), over the videos in natural order, so that `sam2pp eval` on
`OUT/ground_truth` and `OUT/predictions` prints the same numbers. Files: `report.json`, `report.csv`,
`report.html` and `previews/<video>.png`.
"""

from __future__ import annotations

import csv
import html
import json
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
from natsort import natsorted
from PIL import Image

from ..eval.pt import PT_KEYS
from ..eval.sot import _got_summary
from ..eval.vos import VOID_ID, VOS_KEYS
from ..io.formats import read_boxes_txt, read_palette_png, read_points_npz, xywh_to_xyxy
from ..io.overlay import draw_overlay
from ..track import BOX_OBJECT_ID, result_path
from ..training.data import DiskVideo
from .layouts import Benchmark

if TYPE_CHECKING:
    from .runner import Outputs

PREVIEW_FRAMES = 5
PREVIEW_HEIGHT = 160  # pixels of each row (ground truth, prediction) of a preview strip
STATUS_ORDER = ("failed", "scored", "unscored", "pending")  # worst first


# ---- numbers ---------------------------------------------------------------------------------------------------------


def _mean_rows(rows: list[dict[str, float]], keys) -> dict[str, float]:
    return {key: float(np.mean([row[key] for row in rows])) for key in keys}


def _vos_summary(scores: list[dict]) -> dict[str, float]:
    summary = _mean_rows([row for s in scores for row in s["rows"].values()], VOS_KEYS)
    summary["J&F-Mean"] = (summary["J-Mean"] + summary["F-Mean"]) / 2
    return summary


def _sot_summary(scores: list[dict]) -> dict[str, float]:
    summary = _mean_rows([row for s in scores for row in s["rows"].values()], ("AUC", "Precision", "NormPrecision"))
    pooled = np.concatenate([np.asarray(s["got_ious"], dtype=np.float64) for s in scores])
    summary.update(_got_summary(pooled) if pooled.size else dict.fromkeys(("AO", "SR50", "SR75"), float("nan")))
    return summary


def _pt_summary(scores: list[dict]) -> dict[str, float]:
    return _mean_rows([row for s in scores for row in s["rows"].values()], PT_KEYS)


SUMMARIES: dict[str, Callable[[list[dict]], dict[str, float]]] = {
    "vos": _vos_summary, "sot": _sot_summary, "pt": _pt_summary,
}


def status(record: dict | None) -> str:
    """pending (no record yet), failed, scored or unscored (tracked; no ground truth to score against)."""
    if record is None:
        return "pending"
    if record["status"] == "failed":
        return "failed"
    return "scored" if "scores" in record else "unscored"


def video_row(name: str, record: dict | None) -> dict:
    """One line of the per-video table: the video's own metrics (its objects' mean for vos)."""
    row = {"video": name, "status": status(record)}
    if record is None:
        return row
    row.update({k: record[k] for k in ("frames", "objects", "seconds", "fps") if k in record})
    if "scores" in record:
        rows = list(record["scores"]["rows"].values())
        row["metrics"] = {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}
    if "note" in record or "error" in record:
        row["note"] = record.get("error", record.get("note"))
    return row


def _worst_first(rows: list[dict], key: str) -> list[dict]:
    def order(row):
        value = row.get("metrics", {}).get(key, np.nan)
        return STATUS_ORDER.index(row["status"]), np.isnan(value), value if not np.isnan(value) else 0.0
    return sorted(rows, key=order)


def build_report(bench: Benchmark, outputs: Outputs, model: str, records: dict[str, dict | None]) -> dict:
    """The report of every video of `bench` from their records (missing ones are pending)."""
    names = natsorted(records)
    scored = [records[n]["scores"] for n in names if status(records[n]) == "scored"]
    summary = SUMMARIES[bench.mode](scored) if scored else {}
    done = [r for r in records.values() if r is not None and r["status"] == "done"]
    frames, seconds = sum(r["frames"] for r in done), sum(r["seconds"] for r in done)
    counts = {s: sum(status(r) == s for r in records.values()) for s in STATUS_ORDER}
    folder = result_path(Path(), bench.task, "_").parent
    return {
        "benchmark": {**bench.describe(), "model": model},
        "headline": {key: summary[key] for key in bench.headline if key in summary},
        "summary": summary,
        "videos": {"total": len(records), **counts},
        "frames": frames,
        "tracking_seconds": seconds,
        "fps": frames / seconds if seconds > 0 else None,
        "per_video": _worst_first([video_row(n, records[n]) for n in names], bench.headline[0]),
        "per_sequence": {key: row for s in scored for key, row in s["rows"].items()},
        "eval_command": f"sam2pp eval {bench.mode} --gt {outputs.ground_truth / folder} "
                        f"--pred {outputs.predictions / folder}",
    }


# ---- files -----------------------------------------------------------------------------------------------------------


def write_report(report: dict, bench: Benchmark, outputs: Outputs, previews: int = 4) -> dict[str, Path]:
    """Write the previews of the `previews` worst scored videos, then report.json, report.csv and report.html."""
    worst = [row["video"] for row in report["per_video"] if row["status"] == "scored"][:previews]
    report["previews"] = {name: str(render_preview(bench, outputs, name).relative_to(outputs.out)) for name in worst}
    files = {kind: outputs.out / f"report.{kind}" for kind in ("json", "csv", "html")}
    files["json"].write_text(json.dumps(report, indent=1) + "\n")
    _write_csv(files["csv"], report)
    files["html"].write_text(_html(report))
    return files


def _metric_keys(report: dict) -> list[str]:
    return list(report["summary"]) or sorted({k for row in report["per_video"] for k in row.get("metrics", {})})


def _write_csv(path: Path, report: dict) -> None:
    keys = _metric_keys(report)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["video", "status", "frames", "objects", "seconds", "fps", *keys, "note"])
        for row in report["per_video"]:
            metrics = row.get("metrics", {})
            writer.writerow([row["video"], row["status"], row.get("frames", ""), row.get("objects", ""),
                             _fmt(row.get("seconds")), _fmt(row.get("fps")), *(_fmt(metrics.get(k)) for k in keys),
                             row.get("note", "")])


def _fmt(value) -> str:
    return "" if value is None else f"{value:.4f}"


def _html(report: dict) -> str:
    bench, videos, keys = report["benchmark"], report["videos"], _metric_keys(report)
    title = f"sam2pp benchmark: {bench['task']} on {bench['dataset']}"
    cell = lambda v: f"<td>{html.escape(str(v))}</td>"  # noqa: E731
    head = "".join(f"<th>{html.escape(k)}</th>" for k in report["headline"])
    head_values = "".join(cell(_fmt(v)) for v in report["headline"].values())
    pictures = "".join(
        f"<h3>{html.escape(name)}</h3><img src=\"{html.escape(path)}\" alt=\"{html.escape(name)}\">"
        for name, path in report["previews"].items()
    )
    rows = "".join(
        "<tr>" + cell(r["video"]) + cell(r["status"]) + cell(r.get("frames", "")) + cell(_fmt(r.get("fps")))
        + "".join(cell(_fmt(r.get("metrics", {}).get(k))) for k in keys) + cell(r.get("note", "")) + "</tr>"
        for r in report["per_video"]
    )
    fps = f"{report['fps']:.1f}" if report["fps"] else "-"
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 8px}} img{{max-width:100%}}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>layout {html.escape(bench['layout'])}, split {html.escape(bench['split'] or '-')},
model {html.escape(bench['model'])};
{videos['total']} videos: {videos['scored']} scored, {videos['unscored']} unscored, {videos['failed']} failed,
{videos['pending']} pending; {report['frames']} frames at {fps} frames/s per process.</p>
<h2>Headline ({html.escape(bench['mode'])})</h2><table><tr>{head}</tr><tr>{head_values}</tr></table>
<p>Reproduce: <code>{html.escape(report['eval_command'])}</code></p>
<h2>Worst videos (ground truth above, prediction below)</h2>{pictures or '<p>none scored</p>'}
<h2>Videos, worst first</h2><table><tr><th>video</th><th>status</th><th>frames</th><th>fps</th>
{''.join(f'<th>{html.escape(k)}</th>' for k in keys)}<th>note</th></tr>{rows}</table>
</body></html>
"""


# ---- previews --------------------------------------------------------------------------------------------------------


def _mask_overlay(root: Path, name: str, video: DiskVideo) -> Callable[[int], dict]:
    folder = result_path(root, "mask", name)

    def at(t: int) -> dict:
        ids = read_palette_png(folder / f"{video.frame_paths[t].stem}.png")
        objects = [int(i) for i in np.unique(ids) if i not in (0, VOID_ID)]
        return {"masks": ids[None] == np.array(objects)[:, None, None], "obj_ids": objects} if objects else {}
    return at


def _box_overlay(root: Path, name: str, video: DiskVideo) -> Callable[[int], dict]:
    boxes = xywh_to_xyxy(read_boxes_txt(result_path(root, "box", name)))
    return lambda t: {"boxes_xyxy": boxes[t : t + 1], "obj_ids": [BOX_OBJECT_ID]}


def _point_overlay(root: Path, name: str, video: DiskVideo) -> Callable[[int], dict]:
    tracks = read_points_npz(result_path(root, "point", name))
    ids = list(range(tracks.num_points))
    return lambda t: {"points_xy": tracks.trajs_2d[t], "visible": tracks.visibs[t], "obj_ids": ids}


OVERLAYS = {"mask": _mask_overlay, "box": _box_overlay, "point": _point_overlay}


def render_preview(bench: Benchmark, outputs: Outputs, name: str) -> Path:
    """`previews/<video>.png`: a few evenly spaced frames, ground truth drawn above the prediction."""
    video = bench.video(name)
    truth = OVERLAYS[bench.task](outputs.ground_truth, name, video)
    prediction = OVERLAYS[bench.task](outputs.predictions, name, video)
    picks = sorted(set(np.linspace(0, video.num_frames - 1, min(video.num_frames, PREVIEW_FRAMES)).round().astype(int)))
    columns = []
    for t in picks:
        frame = video.frame(t)
        columns.append(np.concatenate([draw_overlay(frame, **truth(t)), draw_overlay(frame, **prediction(t))]))
    strip = Image.fromarray(np.concatenate(columns, axis=1))
    if strip.height > 2 * PREVIEW_HEIGHT:
        strip = strip.resize((round(strip.width * 2 * PREVIEW_HEIGHT / strip.height), 2 * PREVIEW_HEIGHT))
    path = outputs.previews / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    strip.save(path)
    return path
