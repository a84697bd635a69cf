"""How one benchmark video is prompted, tracked, written and scored, per task, as the reference toolkits run it.

- mask (DAVIS 2017, YouTube-VOS, MOSE): each object is prompted with its mask on the first annotated frame where it
  appears and tracked forwards from there; it is absent before that frame (objects that appear later join the
  propagation on their frame, as the published `vos_inference.py --track_object_appearing_later_in_video`: objects
  never interact, so one propagation they join equals one propagation per object).
- box (LaSOT, GOT-10k): the first frame's box, tracked forwards.
- point (TAP-Vid, query mode "first"): each point on the first frame where it is visible, tracked forwards from
  there (published `pt_inference_plus.py --track_object_appearing_later_in_video`); before it the point is NaN and
  not visible (TAP-Vid does not score those frames).

The predictor is built as the published benchmark scripts build theirs (see `runner.load_predictor`): without the
builder's post-processing, with non-overlapping masks except for points (`non_overlap_masks`).

`prepare` reads and checks everything a video needs before any tracking, so bad input fails fast with its name.
Predictions are written in the section-4 layout (`Annotations/<video>/`, `Boxes/<video>.txt`, `Points/<video>.npz`,
which are also the DAVIS / YouTube-VOS, pytracking and TAP-Vid result layouts). The ground truth of a scorable video
is written in the section-4 layout too, with each toolkit's absent-target convention applied (a box row is NaN where
the benchmark marks the target hidden), so that `sam2pp eval` on the two folders gives exactly the report's numbers;
scoring uses the evaluators' per-video functions.
"""

from __future__ import annotations

import shutil
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..eval import pt as pt_eval
from ..eval import sot as sot_eval
from ..eval import vos as vos_eval
from ..io.formats import (
    PointTracks,
    box_absent,
    is_hidden,
    read_boxes_txt,
    read_points_npz,
    write_boxes_txt,
    write_palette_png,
    write_points_npz,
    xywh_to_xyxy,
)
from ..predictor.results import FrameResult
from ..predictor.state import TrackingState
from ..predictor.video_predictor import VideoPredictor
from ..track import BOX_OBJECT_ID, ResultWriter, result_path, write_results
from ..training.data import DatasetError, DiskVideo


@dataclass
class Tracked:
    """What tracking one video took: its frames, its objects and the seconds spent (decoding and the model)."""

    frames: int
    objects: int
    seconds: float

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("nan")


class Stopwatch:
    """Adds up the seconds spent inside `with watch():` blocks and in producing the items of `watch.each(...)`, so
    that writing files between frames is not counted as tracking time."""

    def __init__(self):
        self.seconds = 0.0

    @contextmanager
    def __call__(self) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds += time.perf_counter() - start

    def each(self, items: Iterable) -> Iterator:
        items = iter(items)
        while True:
            with self():
                item = next(items, _END)
            if item is _END:
                return
            yield item


_END = object()


def propagate_by_appearance(predictor: VideoPredictor, state: TrackingState, starts: list[int],
                            add: Callable[[int], None], watch: Stopwatch) -> Iterator[FrameResult]:
    """Results from the first of `starts` to the last frame, forwards; `add(t)` prompts the objects that first appear
    on frame t (one of `starts`) just before frame t is tracked, so no object is tracked before its first prompt."""
    starts = sorted(starts)
    for k, frame in enumerate(starts):
        with watch():
            add(frame)
        end = starts[k + 1] - 1 if k + 1 < len(starts) else state.num_frames - 1
        yield from watch.each(predictor.propagate(state, start_frame=frame, max_frames=end - frame, progress=False))


class TaskProtocol(ABC):
    """One task's benchmark protocol. `prepare` returns the video's plan (prompts and ground truth), which the other
    steps take."""

    task: str
    non_overlap_masks: bool = True  # published `++model.non_overlap_masks` of the task's inference script

    @abstractmethod
    def prepare(self, video: DiskVideo):
        """Read and check the video's annotations; raise a DatasetError naming the video when they are unusable."""

    @abstractmethod
    def track(self, predictor: VideoPredictor, plan, out: Path) -> Tracked:
        """Prompt, track and write the predictions under `out` (section 4)."""

    @abstractmethod
    def write_truth(self, plan, gt_root: Path) -> str | None:
        """Write the ground truth for scoring under `gt_root` (section 4); return why not when the video has none."""

    @abstractmethod
    def score(self, name: str, gt_root: Path, pred_root: Path) -> dict:
        """The evaluator's rows for this video ({"rows": {row name: metrics}}, plus what the summary pools)."""

    def discard(self, root: Path, name: str) -> None:
        """Remove the video's files of this task under `root` (a failed or restarted video leaves nothing stale)."""
        target = result_path(root, self.task, name)
        if target.is_dir():
            shutil.rmtree(target)
        target.unlink(missing_ok=True)


# ---- mask ------------------------------------------------------------------------------------------------------------


@dataclass
class MaskPlan:
    """Prompts by first-appearance frame ({frame: {obj_id: (H, W) bool}}) and the annotated frames."""

    video: DiskVideo
    prompts: dict[int, dict[int, np.ndarray]]
    annotated: list[int]


class MaskProtocol(TaskProtocol):
    task = "mask"

    def prepare(self, video: DiskVideo) -> MaskPlan:
        frames = video.frame_paths
        folder = video.files.masks
        if not video.mask_path(0).is_file():
            raise DatasetError(f"video {video.name!r}: no annotation of its first frame {frames[0].name} "
                               f"({video.mask_path(0)} is missing)")
        stray = sorted({p.stem for p in folder.glob("*.png") if not is_hidden(p)} - {f.stem for f in frames})
        if stray:
            raise DatasetError(f"video {video.name!r}: {len(stray)} annotation(s) in {folder} match no frame of "
                               f"{video.files.frames} ({len(frames)} frames), e.g. {stray[0]}.png")
        annotated = [t for t in range(len(frames)) if video.mask_path(t).is_file()]
        prompts: dict[int, dict[int, np.ndarray]] = {}
        seen: set[int] = set()
        for t in annotated:
            ids = video.ids(t)
            new = [int(i) for i in np.unique(ids) if i not in (0, vos_eval.VOID_ID) and int(i) not in seen]
            if new:
                prompts[t] = {i: ids == i for i in new}
                seen.update(new)
        if not prompts:
            raise DatasetError(f"video {video.name!r}: no object in its {len(annotated)} annotation(s) in {folder}")
        return MaskPlan(video, prompts, annotated)

    def track(self, predictor: VideoPredictor, plan: MaskPlan, out: Path) -> Tracked:
        """Objects of the same first frame join together; each group's frames are written as they come."""
        watch = Stopwatch()
        with watch():
            state = predictor.init_state(plan.video.frame_paths)

        def add(frame: int) -> None:
            for obj_id, mask in plan.prompts[frame].items():
                predictor.add_mask(state, frame, obj_id, mask)

        writer = ResultWriter(state, "mask", out, plan.video.name)
        for result in propagate_by_appearance(predictor, state, list(plan.prompts), add, watch):
            writer.add(result)
        empty = np.zeros((state.video_height, state.video_width), dtype=np.uint8)
        for path in plan.video.frame_paths[: min(plan.prompts)]:
            write_palette_png(result_path(out, "mask", plan.video.name) / f"{path.stem}.png", empty)
        return Tracked(state.num_frames, len(state.objects), watch.seconds)

    def write_truth(self, plan: MaskPlan, gt_root: Path) -> str | None:
        video = plan.video
        if len(plan.annotated) < video.num_frames:
            return (f"annotations for {len(plan.annotated)} of {video.num_frames} frames (sparse, as YouTube-VOS and "
                    f"MOSE valid): predictions written for their server, not scored here")
        folder = result_path(gt_root, "mask", video.name)
        folder.mkdir(parents=True, exist_ok=True)
        for t in plan.annotated:
            shutil.copyfile(video.mask_path(t), folder / video.mask_path(t).name)
        return None

    def score(self, name: str, gt_root: Path, pred_root: Path) -> dict:
        objects = vos_eval.score_video(name, result_path(gt_root, "mask", name), result_path(pred_root, "mask", name))
        return {"rows": {f"{o.video}_{o.obj_id}": o.stats() for o in objects}}


# ---- box -------------------------------------------------------------------------------------------------------------


@dataclass
class BoxPlan:
    """The first frame's box (x, y, w, h), and the ground truth with hidden frames NaN (None: first frame only)."""

    video: DiskVideo
    first: np.ndarray
    truth: np.ndarray | None


class BoxProtocol(TaskProtocol):
    task = "box"

    def prepare(self, video: DiskVideo) -> BoxPlan:
        path = video.files.boxes.get(BOX_OBJECT_ID)
        if path is None:
            raise DatasetError(f"video {video.name!r}: no box file")
        try:
            boxes = read_boxes_txt(path)
        except (OSError, ValueError) as err:
            raise DatasetError(f"video {video.name!r}: {err}") from None
        if len(boxes) not in (1, video.num_frames):
            raise DatasetError(f"video {video.name!r}: {path} has {len(boxes)} box lines for {video.num_frames} "
                               f"frames in {video.files.frames}")
        if box_absent(boxes[0]):
            raise DatasetError(f"video {video.name!r}: the target is absent on its first frame ({path}, line 1: "
                               f"{boxes[0].tolist()}), so there is no box to start from")
        if len(boxes) == 1 < video.num_frames:
            return BoxPlan(video, boxes[0], None)
        xywh, shown = video.boxes[BOX_OBJECT_ID]
        return BoxPlan(video, boxes[0], np.where(shown[:, None], xywh, np.nan))

    def track(self, predictor: VideoPredictor, plan: BoxPlan, out: Path) -> Tracked:
        watch = Stopwatch()
        with watch():
            state = predictor.init_state(plan.video.frame_paths)
            predictor.add_box(state, 0, BOX_OBJECT_ID, xywh_to_xyxy(plan.first), task="box")
        write_results(watch.each(predictor.propagate(state, start_frame=0, progress=False)), state, "box", out,
                      plan.video.name)
        return Tracked(state.num_frames, 1, watch.seconds)

    def write_truth(self, plan: BoxPlan, gt_root: Path) -> str | None:
        if plan.truth is None:
            return "the ground truth gives the first frame only (a test split scored by its server)"
        path = result_path(gt_root, "box", plan.video.name)
        write_boxes_txt(path, plan.truth)
        width, height = plan.video.size
        path.with_suffix(".size").write_text(f"{width},{height}\n")
        return None

    def score(self, name: str, gt_root: Path, pred_root: Path) -> dict:
        gt_path = result_path(gt_root, "box", name)
        prediction = read_boxes_txt(result_path(pred_root, "box", name))
        scores = sot_eval.score_sequence(name, read_boxes_txt(gt_path), prediction,
                                         sot_eval.read_image_size(gt_path.with_suffix(".size")))
        return {"rows": {name: scores.as_dict()}, "got_ious": scores.got_ious.tolist()}

    def discard(self, root: Path, name: str) -> None:
        super().discard(root, name)
        result_path(root, "box", name).with_suffix(".size").unlink(missing_ok=True)


# ---- point -----------------------------------------------------------------------------------------------------------


@dataclass
class PointPlan:
    video: DiskVideo
    tracks: PointTracks


class PointProtocol(TaskProtocol):
    task = "point"
    non_overlap_masks = False  # points of one object share pixels

    def prepare(self, video: DiskVideo) -> PointPlan:
        tracks = video.tracks
        if not tracks.visibs.any():
            raise DatasetError(f"video {video.name!r}: no point of {video.files.points} is ever visible")
        return PointPlan(video, tracks)

    def track(self, predictor: VideoPredictor, plan: PointPlan, out: Path) -> Tracked:
        """Point n is object n; a point never visible gets no prompt and stays NaN and not visible."""
        tracks = plan.tracks
        seen = tracks.visibs.any(axis=0)
        queries = np.argmax(tracks.visibs, axis=0)
        watch = Stopwatch()
        with watch():
            state = predictor.init_state(plan.video.frame_paths)

        def add(frame: int) -> None:
            for n in np.flatnonzero(seen & (queries == frame)):
                try:
                    predictor.add_track_point(state, frame, int(n), tracks.trajs_2d[frame, n])
                except ValueError as err:
                    raise DatasetError(f"video {plan.video.name!r}, point {n} on frame {frame}: {err}") from None

        trajs = np.full(tracks.trajs_2d.shape, np.nan, dtype=np.float32)
        visibs = np.zeros(tracks.visibs.shape, dtype=bool)
        for result in propagate_by_appearance(predictor, state, sorted(set(queries[seen].tolist())), add, watch):
            trajs[result.frame_idx, result.obj_ids] = result.points_xy
            visibs[result.frame_idx, result.obj_ids] = result.visible
        size = (state.video_width, state.video_height)
        write_points_npz(result_path(out, "point", plan.video.name), PointTracks(trajs, visibs, size))
        return Tracked(state.num_frames, tracks.num_points, watch.seconds)

    def write_truth(self, plan: PointPlan, gt_root: Path) -> str | None:
        tracks = PointTracks(plan.tracks.trajs_2d, plan.tracks.visibs, plan.tracks.size or plan.video.size)
        write_points_npz(result_path(gt_root, "point", plan.video.name), tracks)
        return None

    def score(self, name: str, gt_root: Path, pred_root: Path) -> dict:
        row = pt_eval.score_video(name, read_points_npz(result_path(gt_root, "point", name)),
                                  read_points_npz(result_path(pred_root, "point", name)))
        return {"rows": {name: row}}


PROTOCOLS: dict[str, TaskProtocol] = {"mask": MaskProtocol(), "box": BoxProtocol(), "point": PointProtocol()}
