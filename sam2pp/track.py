"""Whole-video tracking from a prompt file, with outputs in the contract's section-4 formats and an overlay preview.

This is what `sam2pp track` and `sam2pp demo` run; notebooks can call `track_video` directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .io.formats import (
    PointTracks,
    ordered_xyxy,
    read_boxes_txt,
    read_palette_png,
    read_points_npz,
    write_boxes_txt,
    write_palette_png,
    write_points_npz,
    xywh_to_xyxy,
    xyxy_to_xywh,
)
from .io.overlay import draw_overlay, write_animation
from .predictor.results import FrameResult
from .predictor.state import TrackingState
from .predictor.video_predictor import VideoPredictor

BOX_OBJECT_ID = 1
"""The object id given to the single target of a box file (a box file holds one object)."""


@dataclass
class TrackOutput:
    """Where `track_video` wrote its files, and the per-frame results in frame order."""

    task: str
    results: list[FrameResult]
    files: list[Path] = field(default_factory=list)
    preview: Path | None = None


def add_prompts(predictor: VideoPredictor, state: TrackingState, task: str, prompt: str | Path, frame: int) -> None:
    """Read a section-4 prompt file and add its objects on `frame`: palette PNG (mask), box txt (box), points npz."""
    prompt = Path(prompt)
    if not prompt.is_file():
        raise FileNotFoundError(f"prompt file {prompt} does not exist")
    if task == "mask":
        ids = read_palette_png(prompt)
        objects = [int(i) for i in np.unique(ids) if i != 0]
        if not objects:
            raise ValueError(f"prompt mask {prompt} has no object (every pixel is 0)")
        for obj_id in objects:
            predictor.add_mask(state, frame, obj_id, ids == obj_id)
    elif task == "box":
        boxes = read_boxes_txt(prompt)
        row = boxes[frame] if len(boxes) > frame else boxes[0] if len(boxes) == 1 else None
        if row is None:
            raise ValueError(f"box file {prompt} has {len(boxes)} lines; none for frame {frame}")
        if not np.isfinite(row).all() or row[2] <= 0 or row[3] <= 0:
            raise ValueError(f"box file {prompt} marks the target absent on frame {frame} ({row.tolist()})")
        predictor.add_box(state, frame, BOX_OBJECT_ID, xywh_to_xyxy(row[None])[0], task="box")
    elif task == "point":
        tracks = read_points_npz(prompt)
        t = frame if len(tracks.trajs_2d) > frame else 0
        shown = np.flatnonzero(tracks.visibs[t])
        if not len(shown):
            raise ValueError(f"points file {prompt} has no visible point on frame {t}")
        for n in shown:
            predictor.add_track_point(state, frame, int(n), tracks.trajs_2d[t, n])
    else:
        raise ValueError(f"unknown task {task!r}; use mask, box or point")


def propagate_both_ways(predictor: VideoPredictor, state: TrackingState, frame: int) -> list[FrameResult]:
    """Results for every frame: forwards from `frame`, then backwards from it; in frame order."""
    by_frame = {r.frame_idx: r for r in predictor.propagate(state, start_frame=frame)}
    if frame > 0:
        by_frame.update((r.frame_idx, r) for r in predictor.propagate(state, start_frame=frame, reverse=True))
    return [by_frame[i] for i in sorted(by_frame)]


def write_results(results: list[FrameResult], state: TrackingState, task: str, out: Path, name: str) -> list[Path]:
    """Write results in the section-4 layout of `task` under `out`; returns the files written."""
    names = [Path(n).stem for n in state.frames.names]
    if task == "mask":
        files = []
        for r in results:
            path = out / "Annotations" / name / f"{names[r.frame_idx]}.png"
            write_palette_png(path, r.label_map().astype(np.uint8))
            files.append(path)
        return files
    if task == "box":
        path = out / "Boxes" / f"{name}.txt"
        write_boxes_txt(path, xyxy_to_xywh(ordered_xyxy(np.stack([r.boxes_xyxy[0] for r in results]))))
        return [path]
    path = out / "Points" / f"{name}.npz"
    ids = results[0].obj_ids
    trajs = np.zeros((state.num_frames, max(ids) + 1, 2), dtype=np.float32)
    visibs = np.zeros((state.num_frames, max(ids) + 1), dtype=bool)
    for r in results:
        trajs[r.frame_idx, ids] = r.points_xy
        visibs[r.frame_idx, ids] = r.visible
    write_points_npz(path, PointTracks(trajs, visibs, (state.video_width, state.video_height)))
    return [path]


def render_preview(results: list[FrameResult], state: TrackingState, path: Path, fps: float = 10) -> Path:
    """An animated GIF/MP4 of the video with masks, boxes and point trails drawn on it."""
    history: list[np.ndarray] = []

    def frames():
        for r in results:
            history.append(np.where(r.visible[:, None], r.points_xy, np.nan))
            trails = np.stack(history[-12:], axis=1) if np.isfinite(r.points_xy).any() else None
            boxes = ordered_xyxy(r.boxes_xyxy) if len(r) else None
            yield draw_overlay(
                state.frame(r.frame_idx),
                masks=r.masks if any(t == "mask" for t in r.tasks) else None,
                boxes_xyxy=boxes,
                points_xy=r.points_xy,
                visible=r.visible,
                trails=trails,
                obj_ids=r.obj_ids,
            )

    return write_animation(path, frames(), fps=fps, total=len(results))


def track_video(
    predictor: VideoPredictor, video, task: str, prompt: str | Path, out: str | Path, frame: int = 0,
    preview: str | None = "preview.gif",
) -> TrackOutput:
    """Prompt from a file on `frame`, track the whole video, write the section-4 files (and a preview) to `out`."""
    out = Path(out)
    state = predictor.init_state(video)
    frame = state.check_frame(frame)
    add_prompts(predictor, state, task, prompt, frame)
    results = propagate_both_ways(predictor, state, frame)
    name = Path(video).stem if isinstance(video, (str, Path)) else "video"
    files = write_results(results, state, task, out, name)
    shown = render_preview(results, state, out / preview) if preview else None
    return TrackOutput(task, results, files, shown)
