"""Whole-video tracking from a prompt file, with outputs in the contract's section-4 formats and an overlay preview.

This is what `sam2pp track` and `sam2pp demo` run; notebooks can call `track_video` directly. Results are written as
tracking gives them and the preview keeps a bounded sample, so with the "window" memory bank (which the commands
use) a run needs the same memory for a video of any length.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sequence, Sized
from dataclasses import dataclass, field, replace
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
PREVIEW_MAX_FRAMES = 300
"""The most frames a `track_video` preview shows: every frame of a video up to this length, else this many evenly
spaced, so drawing the preview of a long video needs no more memory than that of a short one."""
TRAIL_LENGTH = 12  # the positions a preview's point trail joins: the frame's and the 11 shown before it


@dataclass
class TrackOutput:
    """What `track_video` did: the frames it tracked, the object ids it wrote, where it wrote them. It holds no frame's
    arrays (they are written as they come): read the files for the results."""

    task: str
    frames: int
    obj_ids: list[int]
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


def track_both_ways(predictor: VideoPredictor, state: TrackingState, frame: int,
                    progress: bool = True) -> Iterator[FrameResult]:
    """Results as tracking gives them: forwards from `frame` to the last frame, then backwards from it to frame 0.
    When `frame` > 0 it comes twice; the backward pass's result, the later one, counts (an object prompted on a
    later frame is tracked there again, in reverse)."""
    yield from predictor.propagate(state, start_frame=frame, progress=progress)
    if frame > 0:
        yield from predictor.propagate(state, start_frame=frame, reverse=True, progress=progress)


def propagate_both_ways(predictor: VideoPredictor, state: TrackingState, frame: int,
                        progress: bool = True) -> list[FrameResult]:
    """Results for every frame, in frame order (`track_both_ways`, each frame's last result). They are all held:
    for a long video use `track_both_ways` and each result as it comes."""
    by_frame = {r.frame_idx: r for r in track_both_ways(predictor, state, frame, progress)}
    return [by_frame[i] for i in sorted(by_frame)]


class ResultWriter:
    """Writes results in the section-4 layout of `task` under `out` as they come, so none is held for long: a frame's
    masks go to its PNG at once; boxes and points, a few numbers per frame, are gathered and written by `close`.
    A frame given twice (the prompt frame of a run both ways) keeps its last result.

    Points: column n of the npz is object n, for every n up to the largest id of the results and of `obj_ids` (all
    the points of a prompt file); a column without results (a point that was never prompted) is NaN, never visible.
    """

    def __init__(self, state: TrackingState, task: str, out: Path, name: str, obj_ids: list[int] | None = None):
        self.state, self.task, self.out, self.name = state, task, Path(out), name
        self.obj_ids = list(obj_ids or [])
        self.target = result_path(self.out, task, name)
        self.seen = np.zeros(state.num_frames, dtype=bool)
        self.ids: list[int] | None = None  # the results' rows, from the first result
        self.values: dict[str, np.ndarray] = {}

    @property
    def frames(self) -> int:
        """The frames written so far."""
        return int(self.seen.sum())

    def add(self, r: FrameResult) -> None:
        if self.ids is None:
            self._start(r.obj_ids)
        self.seen[r.frame_idx] = True
        if self.task == "mask":
            write_palette_png(self._mask_path(r.frame_idx), r.label_map().astype(np.uint8))
        elif self.task == "box":
            self.values["boxes"][r.frame_idx] = r.boxes_xyxy
        else:
            self.values["trajs"][r.frame_idx, self.ids] = r.points_xy
            self.values["visibs"][r.frame_idx, self.ids] = r.visible

    def _start(self, ids: list[int]) -> None:
        """Size the gathered arrays from the first result's objects (every result has the same rows)."""
        self.ids = list(ids)
        frames = self.state.num_frames
        if self.task == "box":
            self.values["boxes"] = np.full((frames, len(ids), 4), np.nan, dtype=np.float32)
        elif self.task == "point":
            columns = max([*ids, *self.obj_ids]) + 1
            self.values["trajs"] = np.full((frames, columns, 2), np.nan, dtype=np.float32)
            self.values["visibs"] = np.zeros((frames, columns), dtype=bool)

    def _mask_path(self, frame_idx: int) -> Path:
        return self.target / f"{Path(self.state.frames.names[frame_idx]).stem}.png"

    def close(self) -> list[Path]:
        """Write what spans frames (boxes, points); returns every file written, in frame order for masks."""
        frames = np.flatnonzero(self.seen)
        if self.task == "mask":
            return [self._mask_path(t) for t in frames]
        if not len(frames):
            return []
        if self.task == "box":
            files = [box_path(self.out, self.name, obj_id) for obj_id in self.ids]
            boxes = self.values["boxes"][frames]
            for i, path in enumerate(files):
                write_boxes_txt(path, xyxy_to_xywh(ordered_xyxy(boxes[:, i])))
            return files
        size = (self.state.video_width, self.state.video_height)
        write_points_npz(self.target, PointTracks(self.values["trajs"], self.values["visibs"], size))
        return [self.target]


def write_results(results: Iterable[FrameResult], state: TrackingState, task: str, out: Path, name: str,
                  obj_ids: list[int] | None = None) -> list[Path]:
    """Write results in the section-4 layout of `task` under `out` (`ResultWriter`); returns the files written."""
    writer = ResultWriter(state, task, out, name, obj_ids)
    for r in results:
        writer.add(r)
    return writer.close()


def preview_frames(num_frames: int, limit: int = PREVIEW_MAX_FRAMES) -> list[int]:
    """The frames a preview shows: all of them up to `limit`, else `limit` evenly spaced from the first to the last."""
    return sorted(set(np.linspace(0, num_frames - 1, min(num_frames, limit)).round().astype(int).tolist()))


class PreviewSample:
    """The results of the frames a preview shows (`preview_frames`), kept as they come without their logits, and
    with their masks packed to bits when a mask-task object needs them drawn: a bounded share of a long video.
    Iterating gives them in frame order, masks unpacked; a frame given twice keeps its last result."""

    def __init__(self, num_frames: int, limit: int = PREVIEW_MAX_FRAMES):
        self.frames = frozenset(preview_frames(num_frames, limit))
        self._kept: dict[int, tuple[FrameResult, np.ndarray | None, tuple[int, ...]]] = {}

    def add(self, r: FrameResult) -> None:
        if r.frame_idx not in self.frames:
            return
        empty = np.zeros((len(r), 0, 0), dtype=np.float32)
        light = replace(r, mask_logits=empty, masks=empty.astype(bool), low_res_logits=empty)
        packed = np.packbits(r.masks) if "mask" in r.tasks else None
        self._kept[r.frame_idx] = (light, packed, r.masks.shape)

    def __len__(self) -> int:
        return len(self._kept)

    def __iter__(self) -> Iterator[FrameResult]:
        for t in sorted(self._kept):
            r, packed, shape = self._kept[t]
            if packed is not None:
                r = replace(r, masks=np.unpackbits(packed, count=int(np.prod(shape))).reshape(shape).astype(bool))
            yield r


def render_preview(results: Iterable[FrameResult], state: TrackingState, path: Path, fps: float = 10,
                   max_width: int | None = PREVIEW_MAX_WIDTH) -> Path:
    """An animated GIF/MP4 of the video with masks, boxes and point trails drawn on it, scaled down to at most
    `max_width` px wide (None: the video's size); one frame per result (a list, or a `PreviewSample`)."""
    history: deque[np.ndarray] = deque(maxlen=TRAIL_LENGTH)
    scale = fit_scale(state.video_width, max_width)

    def frames():
        for r in results:
            history.append(np.where(r.visible[:, None], r.points_xy, np.nan))
            trails = np.stack(history, axis=1) if np.isfinite(r.points_xy).any() else None
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

    return write_animation(path, frames(), fps=fps, total=len(results) if isinstance(results, Sized) else None)


def track_video(
    predictor: VideoPredictor, video, task: str, prompt: str | Path | Sequence[str | Path], out: str | Path,
    frame: int = 0, preview: str | None = "preview.gif", overwrite: bool = False, progress: bool = True,
    preview_width: int | None = PREVIEW_MAX_WIDTH,
) -> TrackOutput:
    """Prompt from a file (or several box files, one object each), track the whole video, write the section-4 files
    (and a preview at most `preview_width` px wide, None keeping the video's size, of at most `PREVIEW_MAX_FRAMES`
    frames) to `out`.

    Mask PNGs are written as their frames are tracked, boxes and points once tracking ends; no frame's arrays are
    kept beyond the preview's sample, so with a predictor of `memory_bank="window"` (as `sam2pp track` makes) the
    run's memory does not grow with the video's length. `out` is checked before tracking starts. Results of an
    earlier run for the same video and task there are an error unless `overwrite`, which deletes them (the frame
    PNGs of `Annotations/<video>/`, or the box or points files) once the prompts are read, before the first result
    is written, so no stale frame is left beside the new ones. The preview is always replaced.
    """
    out = Path(out)
    name = video_name(video)
    objects = len(prompt_files(task, prompt))
    state = predictor.init_state(video)
    frame = state.check_frame(frame)
    prepare_out(out, task, name, preview, overwrite, objects)
    obj_ids = add_prompts(predictor, state, task, prompt, frame)
    first = min(t for obj in state.objects.values() for t in obj.prompts)
    for stale in earlier_results(out, task, name, objects) if overwrite else []:
        stale.unlink()
    writer = ResultWriter(state, task, out, name, obj_ids)
    sample = PreviewSample(state.num_frames)
    for r in track_both_ways(predictor, state, first, progress):
        writer.add(r)
        if preview:
            sample.add(r)
    files = writer.close()
    shown = render_preview(sample, state, out / preview, max_width=preview_width) if preview else None
    return TrackOutput(task, writer.frames, obj_ids, files, shown)
