"""Whole-video tracking from a prompt file, with outputs in the contract's section-4 formats and an overlay preview.

This is what `sam2pp track` and `sam2pp demo` run; notebooks can call `track_video` directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .io.formats import (
    PointTracks,
    is_hidden,
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
from .io.overlay import PREVIEW_MAX_WIDTH, draw_overlay, fit_scale, write_animation
from .io.paths import check_output_file, check_output_folder
from .predictor.results import FrameResult
from .predictor.state import TrackingState
from .predictor.video_predictor import VideoPredictor

BOX_OBJECT_ID = 1
"""The object id of the target of the first box file (a box file holds one object); the n-th file's is n."""


@dataclass
class TrackOutput:
    """Where `track_video` wrote its files, and the per-frame results in frame order."""

    task: str
    results: list[FrameResult]
    files: list[Path] = field(default_factory=list)
    preview: Path | None = None


def add_prompts(predictor: VideoPredictor, state: TrackingState, task: str, prompt: str | Path | Sequence[str | Path],
                frame: int) -> list[int]:
    """Read a section-4 prompt file and add its objects: a palette PNG (mask) or box txt (box) on `frame`; for points
    see `add_point_prompts`. Boxes may come as several files, one object each (ids 1, 2, ...). Returns the object ids
    the files define, in the order their results are written."""
    files = prompt_files(task, prompt)
    if task == "box":
        return [add_box_prompts(predictor, state, path, frame, BOX_OBJECT_ID + k)[0] for k, path in enumerate(files)]
    return PROMPT_READERS[task](predictor, state, files[0], frame)


def prompt_files(task: str, prompt: str | Path | Sequence[str | Path]) -> list[Path]:
    """The prompt file(s) of a run, each checked to be a file: one for masks and points (it holds every object),
    one or more for boxes."""
    if task not in PROMPT_READERS:
        raise ValueError(f"unknown task {task!r}; use {', '.join(PROMPT_READERS)}")
    files = [prompt] if isinstance(prompt, (str, Path)) else list(prompt)
    if not files:
        raise ValueError("no prompt file given")
    if len(files) > 1 and task != "box":
        raise ValueError(f"task {task!r} takes one prompt file, which holds every object; got {len(files)}: "
                         f"{', '.join(map(str, files))} (several files are for boxes, one object each)")
    return [check_prompt_file(path) for path in files]


def check_prompt_file(prompt: str | Path) -> Path:
    """`prompt` as a Path, once it is known to be a file."""
    prompt = Path(prompt)
    if prompt.is_dir():
        raise IsADirectoryError(f"prompt file {prompt} is a folder")
    if not prompt.is_file():
        raise FileNotFoundError(f"prompt file {prompt} does not exist")
    return prompt


def add_mask_prompts(predictor: VideoPredictor, state: TrackingState, prompt: Path, frame: int) -> list[int]:
    """Every non-zero id of a palette PNG is an object, prompted by its mask on `frame`."""
    ids = read_palette_png(prompt)
    objects = [int(i) for i in np.unique(ids) if i != 0]
    if not objects:
        raise ValueError(f"prompt mask {prompt} has no object (every pixel is 0)")
    for obj_id in objects:
        predictor.add_mask(state, frame, obj_id, ids == obj_id)
    return objects


def add_box_prompts(predictor: VideoPredictor, state: TrackingState, prompt: Path, frame: int,
                    obj_id: int = BOX_OBJECT_ID) -> list[int]:
    """The box of `frame` (or the only box of a one-line file) is the target, object `obj_id`."""
    boxes = read_boxes_txt(prompt)
    row = boxes[frame] if len(boxes) > frame else boxes[0] if len(boxes) == 1 else None
    if row is None:
        raise ValueError(f"box file {prompt} has {len(boxes)} lines; none for frame {frame}")
    if not np.isfinite(row).all() or row[2] <= 0 or row[3] <= 0:
        raise ValueError(f"box file {prompt} marks the target absent on frame {frame} ({row.tolist()})")
    predictor.add_box(state, frame, obj_id, xywh_to_xyxy(row[None])[0], task="box")
    return [obj_id]


def add_point_prompts(predictor: VideoPredictor, state: TrackingState, prompt: Path, frame: int) -> list[int]:
    """Point n of a points file is object n. With one row per video frame, each point is prompted on the first frame,
    from `frame` on, where it is visible (TAP-Vid "first" when `frame` is 0); a one-row file holds the points of
    `frame`. Every point is returned, so its column is written even when it is never visible (and not tracked)."""
    tracks = read_points_npz(prompt)
    if tracks.num_frames not in (1, state.num_frames):
        raise ValueError(f"points file {prompt} has {tracks.num_frames} frames; expected 1 (the points of frame "
                         f"{frame}) or one per video frame ({state.num_frames})")
    one_row = tracks.num_frames == 1
    seen = tracks.visibs[:1] if one_row else tracks.visibs[frame:]
    shown = np.flatnonzero(seen.any(axis=0))
    if not len(shown):
        raise ValueError(f"points file {prompt} has no visible point on frame {frame}"
                         + ("" if one_row else " or later"))
    for n in shown:
        t = frame + (0 if one_row else int(np.argmax(seen[:, n])))
        xy = tracks.trajs_2d[0 if one_row else t, n]
        try:
            predictor.add_track_point(state, t, int(n), xy)
        except ValueError as err:
            raise ValueError(f"points file {prompt}, point {n} on frame {t}: {err}") from None
    return list(range(tracks.num_points))


PROMPT_READERS = {"mask": add_mask_prompts, "box": add_box_prompts, "point": add_point_prompts}


def result_path(out: Path, task: str, name: str) -> Path:
    """Where a run writes its results (section 4): the folder `Annotations/<name>` of frame PNGs (mask), the file
    `Boxes/<name>.txt` (box) or the file `Points/<name>.npz` (point)."""
    return {
        "mask": out / "Annotations" / name,
        "box": out / "Boxes" / f"{name}.txt",
        "point": out / "Points" / f"{name}.npz",
    }[task]


def box_path(out: Path, name: str, obj_id: int) -> Path:
    """The box file of one object: `Boxes/<name>.txt` for `BOX_OBJECT_ID`, `Boxes/<name>_<id>.txt` for the others
    (the layout of the shipped samples' extra objects)."""
    return out / "Boxes" / (f"{name}.txt" if obj_id == BOX_OBJECT_ID else f"{name}_{obj_id}.txt")


def result_files(out: Path, task: str, name: str, objects: int = 1) -> list[Path]:
    """The result files of a box or point run (`objects` box files, ids 1, 2, ...); none for masks (a folder)."""
    if task == "box":
        return [box_path(out, name, BOX_OBJECT_ID + k) for k in range(objects)]
    return [] if task == "mask" else [result_path(out, task, name)]


def earlier_results(out: Path, task: str, name: str, objects: int = 1) -> list[Path]:
    """Result files an earlier run left for this video and task: the new run replaces them or, for frames it does not
    write, would leave them beside its own."""
    target = result_path(out, task, name)
    if task == "mask":
        return sorted(p for p in target.glob("*.png") if not is_hidden(p)) if target.is_dir() else []
    return [path for path in result_files(out, task, name, objects) if path.is_file()]


def prepare_out(out: Path, task: str, name: str, preview: str | None, overwrite: bool, objects: int = 1) -> None:
    """Before tracking: make sure every file the run writes under `out` can be written, and that no earlier run's
    results for this video would be mixed with the new ones (unless `overwrite`)."""
    target = result_path(out, task, name)
    check_output_folder(target if task == "mask" else target.parent)
    for path in result_files(out, task, name, objects) + ([out / preview] if preview else []):
        check_output_file(path)
    earlier = earlier_results(out, task, name, objects)
    if earlier and not overwrite:
        more = f" and {len(earlier) - 1} more" if len(earlier) > 1 else ""
        raise FileExistsError(f"{out} already holds {task} results of an earlier run for {name!r} "
                              f"({earlier[0]}{more}); pass --overwrite (overwrite=True) to replace them, or choose another output folder")


def video_name(video) -> str:
    """The name results are filed under: the name of the resolved frame folder, or the stem of the video file
    ("video" for an array or a list of frames)."""
    if not isinstance(video, (str, Path)):
        return "video"
    path = Path(video).resolve()
    return (path.name if path.is_dir() else path.stem) or "video"


def propagate_both_ways(predictor: VideoPredictor, state: TrackingState, frame: int,
                        progress: bool = True) -> list[FrameResult]:
    """Results for every frame: forwards from `frame`, then backwards from it; in frame order."""
    by_frame = {r.frame_idx: r for r in predictor.propagate(state, start_frame=frame, progress=progress)}
    if frame > 0:
        backwards = predictor.propagate(state, start_frame=frame, reverse=True, progress=progress)
        by_frame.update((r.frame_idx, r) for r in backwards)
    return [by_frame[i] for i in sorted(by_frame)]


def write_results(results: list[FrameResult], state: TrackingState, task: str, out: Path, name: str,
                  obj_ids: list[int] | None = None) -> list[Path]:
    """Write results in the section-4 layout of `task` under `out`; returns the files written.

    Points: column n of the npz is object n, for every n up to the largest id of the results and of `obj_ids` (all
    the points of a prompt file); a column without results (a point that was never prompted) is NaN, never visible.
    """
    names = [Path(n).stem for n in state.frames.names]
    target = result_path(out, task, name)
    if task == "mask":
        files = []
        for r in results:
            path = target / f"{names[r.frame_idx]}.png"
            write_palette_png(path, r.label_map().astype(np.uint8))
            files.append(path)
        return files
    if task == "box":
        files = [box_path(out, name, obj_id) for obj_id in results[0].obj_ids]
        for i, path in enumerate(files):
            write_boxes_txt(path, xyxy_to_xywh(ordered_xyxy(np.stack([r.boxes_xyxy[i] for r in results]))))
        return files
    ids = results[0].obj_ids
    columns = max([*ids, *(obj_ids or [])]) + 1
    trajs = np.full((state.num_frames, columns, 2), np.nan, dtype=np.float32)
    visibs = np.zeros((state.num_frames, columns), dtype=bool)
    for r in results:
        trajs[r.frame_idx, ids] = r.points_xy
        visibs[r.frame_idx, ids] = r.visible
    write_points_npz(target, PointTracks(trajs, visibs, (state.video_width, state.video_height)))
    return [target]


def render_preview(results: list[FrameResult], state: TrackingState, path: Path, fps: float = 10,
                   max_width: int | None = PREVIEW_MAX_WIDTH) -> Path:
    """An animated GIF/MP4 of the video with masks, boxes and point trails drawn on it, scaled down to at most
    `max_width` px wide (None: the video's size)."""
    history: list[np.ndarray] = []
    scale = fit_scale(state.video_width, max_width)

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
                scale=scale,
            )

    return write_animation(path, frames(), fps=fps, total=len(results))


def track_video(
    predictor: VideoPredictor, video, task: str, prompt: str | Path | Sequence[str | Path], out: str | Path,
    frame: int = 0, preview: str | None = "preview.gif", overwrite: bool = False, progress: bool = True,
    preview_width: int | None = PREVIEW_MAX_WIDTH,
) -> TrackOutput:
    """Prompt from a file (or several box files, one object each), track the whole video, write the section-4 files
    (and a preview at most `preview_width` px wide; None keeps the video's size) to `out`.

    `out` is checked before tracking starts. Results of an earlier run for the same video and task there are an error
    unless `overwrite`, which deletes them (the frame PNGs of `Annotations/<video>/`, or the box or points files)
    before writing, so no stale frame is left beside the new ones. The preview is always replaced.
    """
    out = Path(out)
    name = video_name(video)
    objects = len(prompt_files(task, prompt))
    state = predictor.init_state(video)
    frame = state.check_frame(frame)
    prepare_out(out, task, name, preview, overwrite, objects)
    obj_ids = add_prompts(predictor, state, task, prompt, frame)
    first = min(t for obj in state.objects.values() for t in obj.prompts)
    results = propagate_both_ways(predictor, state, first, progress)
    for stale in earlier_results(out, task, name, objects) if overwrite else []:
        stale.unlink()
    files = write_results(results, state, task, out, name, obj_ids)
    shown = render_preview(results, state, out / preview, max_width=preview_width) if preview else None
    return TrackOutput(task, results, files, shown)
