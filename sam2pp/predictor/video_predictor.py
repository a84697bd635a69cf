"""`VideoPredictor`: prompt objects with masks, clicks, boxes or track points, then propagate through the video.

The image encoder runs once per frame for all objects (once per frame and task when the model has one image encoder
per task); each object is then tracked by its task's modules exactly as the published SAM 2++ predictor tracks it
(objects of different tasks never interact; the objects of one task share batches through memory attention and the
memory encoder, with the outputs of tracking them one at a time).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..checkpoint import build_model, resolve_hub_model
from ..kernels import fill_holes_and_sprinkles
from ..modeling.model import SAM2PlusModel, non_overlapping
from ..modeling.unified_decoder import NO_OBJECT_LOGIT
from ..modeling.tracker import FrameMemory, FramePrompt, Tracker
from ..threads import apply_threads
from .frames import open_video
from .prompts import box_corners, gaussian_disc, mask_to_model, to_model_points
from .results import FrameResult
from .state import STREAM_LENGTH, TrackedObject, TrackingState

MEMORY_BANKS = ("all", "window")


class VideoPredictor:
    """Tracks objects at any granularity through a video.

    add_all_frames_to_correct_as_cond: when true, a frame that receives a correction prompt after it was tracked
        becomes a conditioning frame, so the correction survives the next propagation (interactive use turns it on;
        off by default, as published). fill_hole_area and non_overlap_masks default to the model config's values.
    autocast: run under bfloat16 autocast on CUDA, as the published tools do (ignored on the CPU).
    threads: torch's intra-op CPU threads for this process (`sam2pp.threads`); by default one for a small model on the
        CPU and torch's own count otherwise, unless OMP_NUM_THREADS or an earlier `torch.set_num_threads` says else.
    memory_bank: "all" keeps every tracked frame's memory, as published, so any old frame can be re-prompted or
        tracking restarted from it; "window" keeps only what later steps can read (the conditioning frames, the
        frames within `Tracker.memory_window` behind the one being tracked, and those within that window of any
        object's conditioning frame), so a session's memory stops growing with the video's length. Both give the same
        outputs; with "window", a prompt or a propagation start that would read an evicted memory raises ValueError.
    batch_objects: track the objects of one task together, as one batch through memory attention, the decoder and
        the memory encoder (`Tracker.track_objects`); equal to one object at a time up to float rounding (1e-5 on
        logits), which `batch_objects=False` gives exactly.
    prefetch: how many frames `propagate` decodes and preprocesses ahead of the one being tracked, on worker threads
        beside the model (0: decode each frame when it is needed, on the tracking thread); one worker, or up to
        `prefetch` when more cores are free than torch's threads take. The outputs do not depend on it.
    offload_memory: keep each frame's memory features and outputs (mask logits, object pointer, score, box) in CPU
        memory; a tracking step copies the ones it reads to the model's device. On a GPU this bounds the device
        memory of a long session by the frames in flight instead of the frames tracked (published
        `offload_state_to_cpu`, here with the object pointers too); the outputs do not depend on it.
    compile_image_encoder: run the image encoder through `torch.compile` (its input shape never changes, so it
        compiles once, on the first frame: about a minute on a CPU); the outputs equal eager mode up to float
        rounding.
    compile_step: run the per-frame step (memory attention, decoder, memory encoder) through `torch.compile`, as
        the published "vos_optimized" mode does; it compiles over the first tracked frames (about half a minute
        per task for `sam2pp_tiny` on a CPU, and again the first times the number of objects tracked together
        changes) and equals eager mode up to float rounding.
    """

    def __init__(
        self,
        model: SAM2PlusModel,
        add_all_frames_to_correct_as_cond: bool | None = None,
        fill_hole_area: int | None = None,
        non_overlap_masks: bool | None = None,
        autocast: bool = True,
        threads: int | None = None,
        memory_bank: str = "all",
        batch_objects: bool = True,
        prefetch: int = 4,
        offload_memory: bool = False,
        compile_image_encoder: bool = False,
        compile_step: bool = False,
    ):
        self.model = model.eval()
        self.threads = apply_threads(threads, model.image_size if model.device.type == "cpu" else None)
        self.tracker = Tracker(model, memory_device=torch.device("cpu") if offload_memory else None,
                               compile_step=compile_step)
        cfg = model.config
        self.add_all_frames_to_correct_as_cond = (
            cfg.add_all_frames_to_correct_as_cond if add_all_frames_to_correct_as_cond is None
            else add_all_frames_to_correct_as_cond
        )
        self.fill_hole_area = cfg.fill_hole_area if fill_hole_area is None else fill_hole_area
        self.non_overlap_masks = cfg.non_overlap_masks if non_overlap_masks is None else non_overlap_masks
        self.autocast = autocast
        if isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 0:
            raise ValueError(f"prefetch must be an integer >= 0 (frames decoded ahead), got {prefetch!r}")
        self.prefetch = prefetch
        if memory_bank not in MEMORY_BANKS:
            raise ValueError(f"memory_bank must be one of {', '.join(MEMORY_BANKS)}, got {memory_bank!r}")
        self.memory_bank = memory_bank
        self.batch_objects = batch_objects
        self._compiled: dict[int, nn.Module] | None = {} if compile_image_encoder else None

    # ---- construction ---------------------------------------------------------------------------------------------

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path, config="sam2pp_hiera_b+", device="cpu", **kwargs) -> VideoPredictor:
        return cls(build_model(config, checkpoint=checkpoint, device=device), **kwargs)

    @classmethod
    def from_pretrained(cls, model_id: str = "MCG-NJU/SAM2-Plus", device="cpu", config: str | None = None,
                        revision: str | None = None, cache_dir: str | None = None, **kwargs) -> VideoPredictor:
        """Load a published checkpoint (downloaded, or found in the hub cache; offline mode is honoured) or a model
        shipped with the package (`"sam2pp-demo"`, read from the package without network)."""
        hub = resolve_hub_model(model_id, config=config, revision=revision, cache_dir=cache_dir)
        return cls.from_checkpoint(hub.checkpoint, config=hub.config, device=device, **kwargs)

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def image_size(self) -> int:
        return self.model.image_size

    def _context(self):
        if self.autocast and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # ---- session --------------------------------------------------------------------------------------------------

    def init_state(self, video=None, cache_size: int = 16, jpeg_draft: bool = False) -> TrackingState:
        """A session over `video`: a folder of frames, a list of image paths, a uint8 (T, H, W, 3) array or a video
        file. Frames are decoded lazily; `cache_size` preprocessed frames are kept. `jpeg_draft` decodes JPEG frames
        (files only) at the decoder's 1/2, 1/4 or 1/8 scale still at least the model size: much less work for
        frames far larger than the model size, but not the published pixels, hence off (docs/performance.md).

        A stream (a webcam, a live feed) has no known length: pass an iterator of frames (uint8 (H, W, 3) arrays or
        PIL images), which `propagate` reads as it goes, or nothing, then `state.add_frame(frame)` and
        `propagate(state, start_frame=i, max_frames=0)` for each frame. Both give the offline outputs on videos of
        at least `max_obj_ptrs_in_encoder` (16) frames; tracking in a stream goes forwards only."""
        return TrackingState(open_video(video, cache_size=cache_size, jpeg_draft=jpeg_draft), self.image_size,
                             self.device)

    def reset_state(self, state: TrackingState) -> None:
        """Forget every object and prompt; the video and its cached features stay."""
        state.objects.clear()

    def remove_object(self, state: TrackingState, obj_id: int) -> None:
        state.object(obj_id)
        del state.objects[obj_id]

    # ---- prompts --------------------------------------------------------------------------------------------------

    def add_mask(self, state: TrackingState, frame_idx: int, obj_id: int, mask) -> FrameResult:
        """Segment `obj_id` on a frame from a (H, W) boolean mask at the video's resolution (task "mask")."""
        frame_idx = state.check_frame(frame_idx)
        prob = mask_to_model(mask, state.video_width, state.video_height, self.image_size, self.device)
        obj = self._object(state, obj_id, "mask")
        return self._prompt(state, obj, frame_idx, FramePrompt(prob_map=prob))

    def add_points(self, state: TrackingState, frame_idx: int, obj_id: int, points_xy, labels,
                   clear_old_points: bool = True) -> FrameResult:
        """Positive (1) / negative (0) clicks in video pixels (task "mask"). On a tracked frame they correct its mask.

        clear_old_points=False adds the clicks to the ones already on this frame (for the next click of a session).
        """
        frame_idx = state.check_frame(frame_idx)
        labels_arr = np.asarray(labels).reshape(-1)
        if np.isin(labels_arr, (2, 3)).any():
            raise ValueError("labels 2 and 3 are box corners: use add_box for boxes")
        pts = to_model_points(points_xy, labels_arr, state.video_width, state.video_height, self.image_size,
                              self.device)
        obj = self._object(state, obj_id, "mask")
        old = obj.prompts.get(frame_idx)
        if not clear_old_points and old is not None and old.points is not None:
            pts = old.points.cat(pts)
        return self._prompt(state, obj, frame_idx, FramePrompt(points=pts))

    def add_box(self, state: TrackingState, frame_idx: int, obj_id: int, box_xyxy, task: str = "box") -> FrameResult:
        """A box (x0, y0, x1, y1) in video pixels: the target of single object tracking (task "box"), or a
        segmentation prompt (task "mask")."""
        if task not in ("box", "mask"):
            raise ValueError(f"add_box takes task 'box' or 'mask', got {task!r}")
        frame_idx = state.check_frame(frame_idx)
        corners = box_corners(box_xyxy, state.video_width, state.video_height)
        pts = to_model_points(corners, [2, 3], state.video_width, state.video_height, self.image_size, self.device)
        obj = self._object(state, obj_id, task)
        return self._prompt(state, obj, frame_idx, FramePrompt(points=pts))

    def add_track_point(self, state: TrackingState, frame_idx: int, obj_id: int, point_xy, radius: int | None = None,
                        sigma: float | None = None) -> FrameResult:
        """Track the point (x, y) in video pixels (task "point"); its prompt is a gaussian disc of `radius` and
        `sigma` in model pixels around it, by default the model config's `point_prompt_radius` and
        `point_prompt_sigma` (50 and 16 for the published weights, as the published point tool)."""
        cfg = self.model.config
        radius = cfg.point_prompt_radius if radius is None else radius
        sigma = cfg.point_prompt_sigma if sigma is None else sigma
        frame_idx = state.check_frame(frame_idx)
        pts = to_model_points(np.reshape(point_xy, (1, 2)), [1], state.video_width, state.video_height,
                              self.image_size, self.device)
        disc = gaussian_disc(pts.coords[0, 0].cpu(), self.image_size, radius, sigma)
        obj = self._object(state, obj_id, "point")
        return self._prompt(state, obj, frame_idx, FramePrompt(points=pts, prob_map=disc[None, None].to(self.device)))

    def _object(self, state: TrackingState, obj_id: int, task: str) -> TrackedObject:
        """The session's object `obj_id`, or a new one that `_prompt` registers only once its prompt succeeds."""
        if isinstance(obj_id, bool) or not isinstance(obj_id, (int, np.integer)) or obj_id < 0:
            raise ValueError(f"object ids are non-negative integers, got {obj_id!r}")
        obj_id = int(obj_id)
        if obj_id in state.objects:
            obj = state.objects[obj_id]
            if obj.task != task:
                raise ValueError(f"object {obj_id} is tracked with task {obj.task!r}; it cannot take a {task!r} prompt "
                                 f"(remove it first, or use another object id)")
            return obj
        return TrackedObject(obj_id, task)

    @torch.inference_mode()
    def _prompt(self, state: TrackingState, obj: TrackedObject, frame_idx: int, prompt: FramePrompt) -> FrameResult:
        """Run the prompt, then record it. Everything that can fail (decoding the frame, the encoder, an interrupt)
        happens before the session changes, so a failed call leaves no half-registered object or partial prompt."""
        is_init = frame_idx not in obj.tracked
        reverse = obj.tracked.get(frame_idx, False)
        is_cond = is_init or self.add_all_frames_to_correct_as_cond
        if not is_init:
            self._check_memories_kept(obj, frame_idx, reverse, "a prompt", first=0)
        prev = None
        if prompt.prob_map is None:  # clicks refine the latest output on this frame
            latest = obj.latest(frame_idx, is_cond)
            if latest is not None:
                prev = latest.pred_masks.to(self.device).clamp(-32.0, 32.0)
        with self._context():
            feats = self._task_features(state, frame_idx, obj.task)
            out = self.tracker.step(
                obj.task, frame_idx, feats, obj.memory, state.track_length, prompt=prompt, is_init_cond_frame=is_init,
                reverse=reverse, run_memory_encoder=False, prev_mask_logits=prev,
            )
        out = self._postprocess(out)
        objects = list(state.objects.values()) + ([] if obj.obj_id in state.objects else [obj])
        outputs = [out if o is obj else o.latest(frame_idx, is_cond) for o in objects]
        result = self._result(state, frame_idx, objects, outputs)
        state.objects.setdefault(obj.obj_id, obj)
        obj.prompts[frame_idx] = prompt
        (obj.pending.cond if is_cond else obj.pending.non_cond)[frame_idx] = out
        return result

    # ---- propagation ----------------------------------------------------------------------------------------------

    @torch.inference_mode()
    def propagate(self, state: TrackingState, start_frame: int | None = None, max_frames: int | None = None,
                  reverse: bool = False, progress: bool = True) -> Iterator[FrameResult]:
        """Track every object from `start_frame` (default: the earliest prompted frame), forwards or in reverse,
        yielding one `FrameResult` per frame: start_frame and the `max_frames` frames after it (default: to the end;
        of a stream: while frames arrive), so up to max_frames + 1 results, as the published
        `max_frame_num_to_track` counts. Nothing of a result is kept after it is yielded; the memories are kept as
        `memory_bank` says.

        New prompts on the objects being tracked may be added between frames (they take effect at the next
        propagation); adding, removing or resetting objects stops this generator with a RuntimeError saying so.
        """
        self._commit_prompts(state)
        order = self._frame_order(state, start_frame, max_frames, reverse)
        objects = list(state.objects.values())
        for obj in objects if not isinstance(order, range) or order else []:
            self._check_memories_kept(obj, order.start, reverse, "propagating from it", first=1)
        anchors = frozenset(t for obj in objects for t in obj.memory.cond)
        try:
            if self.prefetch:
                state.frames.prefetch(_frames_of(order), self.image_size, self.prefetch, self._prefetch_workers())
            yield from self._track(state, order, objects, reverse, progress, anchors)
        finally:
            state.frames.stop_prefetch()

    def _track(self, state, order, objects: list[TrackedObject], reverse: bool, progress: bool,
               anchors: frozenset[int]):
        for frame_idx in tqdm(order, desc="propagate", unit="frame", disable=not progress):
            _check_same_objects(state, objects)
            outputs = self._track_frame(state, frame_idx, objects, reverse, anchors)
            for obj in objects:
                obj.tracked[frame_idx] = reverse
            yield self._result(state, frame_idx, objects, outputs)

    def _track_frame(self, state, frame_idx: int, objects: list[TrackedObject], reverse: bool,
                     anchors: frozenset[int]) -> list[FrameMemory]:
        """Every object's output on a frame: its conditioning output, or a new tracking step (objects of a task
        batched together when `batch_objects`), stored in its memory bank; the "window" bank keeps the memories
        near `anchors` (every object's conditioning frames) too."""
        outputs = {id(o): o.memory.cond.get(frame_idx) for o in objects}
        groups: dict[object, list[TrackedObject]] = {}
        for obj in objects:
            if outputs[id(obj)] is None:
                groups.setdefault(obj.task if self.batch_objects else id(obj), []).append(obj)
        for group in groups.values():
            task = group[0].task
            with self._context():
                feats = self._task_features(state, frame_idx, task)
                if len(group) == 1:
                    outs = [self.tracker.step(task, frame_idx, feats, group[0].memory, state.track_length,
                                              reverse=reverse)]
                else:
                    outs = self.tracker.track_objects(task, frame_idx, feats, [o.memory for o in group],
                                                      state.track_length, reverse)
            for obj, out in zip(group, outs):
                outputs[id(obj)] = obj.memory.non_cond[frame_idx] = self._postprocess(out)
                if self.memory_bank == "window":
                    obj.memory.evict(frame_idx, reverse, self.tracker.memory_window(), anchors)
        return [outputs[id(o)] for o in objects]

    def _prefetch_workers(self) -> int:
        """One prefetch worker, or more (up to `prefetch`) when the machine has cores torch's threads leave free."""
        free = (os.cpu_count() or 1) - torch.get_num_threads()
        return max(1, min(self.prefetch, free - 1))

    def _check_memories_kept(self, obj: TrackedObject, frame_idx: int, reverse: bool, what: str, first: int) -> None:
        """With the "window" bank, refuse a step on `frame_idx` that would read a tracked frame whose memory was
        evicted: its output would differ from the published predictor's, which keeps every memory. `first`: 0 when
        the frame's own output is read too (a click refines it), 1 otherwise."""
        if self.memory_bank != "window":
            return
        sign = -1 if reverse else 1
        for dist in range(first, self.tracker.memory_window() + 1):
            t = frame_idx - dist * sign
            if t in obj.tracked and obj.memory.get(t) is None:
                raise ValueError(
                    f"{what} on frame {frame_idx} needs the memory of object {obj.obj_id} on frame {t}, which "
                    f"memory_bank='window' has evicted; use VideoPredictor(memory_bank='all') to re-prompt old "
                    f"frames or to start tracking anywhere"
                )

    def _frame_order(self, state, start_frame, max_frames, reverse) -> range | _StreamOrder:
        n = state.num_frames
        if start_frame is None:
            start_frame = min(t for o in state.objects.values() for t in o.memory.cond)
        start_frame = state.check_frame(start_frame)
        if max_frames is None:
            max_frames = STREAM_LENGTH if state.frames.is_stream else n
        if isinstance(max_frames, bool) or not isinstance(max_frames, (int, np.integer)) or max_frames < 0:
            raise ValueError(f"max_frames must be an integer >= 0, got {max_frames!r}")
        if reverse:
            end = max(start_frame - max_frames, 0)
            return range(start_frame, end - 1, -1) if start_frame > 0 else range(0)
        if state.frames.is_stream:
            return _StreamOrder(state, start_frame, max_frames)
        return range(start_frame, min(start_frame + max_frames, n - 1) + 1)

    def _commit_prompts(self, state: TrackingState) -> None:
        """Turn pending prompt outputs into memories (encoding them now), as published before every propagation."""
        if not state.objects:
            raise RuntimeError("no object has a prompt yet: call add_mask, add_points, add_box or add_track_point first")
        for obj in state.objects.values():
            for cond, pending, bank in ((False, obj.pending.non_cond, obj.memory.non_cond),
                                        (True, obj.pending.cond, obj.memory.cond)):
                for frame_idx, out in pending.items():
                    if out.maskmem_features is None:
                        with self._context():
                            feats = self._task_features(state, frame_idx, obj.task)
                            out.from_points = True  # a prompted frame is "from the user's clicks", as published
                            self.tracker.encode(obj.task, feats, out)
                    bank[frame_idx] = out
                pending.clear()
            if not obj.memory.cond:
                raise RuntimeError(f"object {obj.obj_id} has no prompt on any frame; add one before propagating")
            for frame_idx in obj.memory.cond:
                obj.memory.non_cond.pop(frame_idx, None)

    # ---- features and results -------------------------------------------------------------------------------------

    def _encode_image(self, image: torch.Tensor, encoder_task: str | None):
        """The model's `encode_image`, or its image encoder compiled on first use (`compile_image_encoder`)."""
        if self._compiled is None:
            return self.model.encode_image(image, encoder_task)
        encoder = self.model.image_encoder[encoder_task]
        if id(encoder) not in self._compiled:
            self._compiled[id(encoder)] = torch.compile(encoder)
        return self._compiled[id(encoder)](image)

    def _task_features(self, state: TrackingState, frame_idx: int, task: str):
        """A frame's features for `task`: the image encoder runs once per frame, or once per (frame, task) when the
        model has one image encoder per task."""
        encoder_task = None if self.model.image_encoder.is_shared else task
        image = state.cached_features(
            frame_idx,
            lambda i: self._encode_image(state.frames.model_input(i, self.image_size)[None].to(self.device),
                                              encoder_task),
            encoder_task,
        )
        return state.cached_task_features(frame_idx, task, lambda: self.model.task_features(image, task))

    def _postprocess(self, out: FrameMemory) -> FrameMemory:
        if self.fill_hole_area > 0:
            out.pred_masks = fill_holes_and_sprinkles(out.pred_masks, self.fill_hole_area)
        if self.tracker.memory_device is not None:
            out.move_outputs(self.tracker.memory_device)
        return out

    def _result(self, state: TrackingState, frame_idx: int, objects: list[TrackedObject],
                outputs: list[FrameMemory | None]) -> FrameResult:
        """Assemble a frame's `FrameResult` (rows: `objects`); an object without output on the frame gets -1024 logits
        and NaN score."""
        s4 = self.image_size // 4
        h, w = state.video_height, state.video_width
        tasks = [o.task for o in objects]
        low = torch.full((len(outputs), 1, s4, s4), NO_OBJECT_LOGIT, device=self.device)
        scores = torch.full((len(outputs),), float("nan"))
        boxes = torch.full((len(outputs), 4), float("nan"))
        scale = torch.tensor([w, h, w, h], dtype=torch.float32)
        for i, (out, task) in enumerate(zip(outputs, tasks)):
            if task == "box":
                boxes[i] = 0.0
            if out is None:
                continue
            low[i] = out.pred_masks[0].float()
            scores[i] = out.object_score_logits.float().reshape(()).cpu()
            if out.boxes_xyxy_norm is not None:
                boxes[i] = out.boxes_xyxy_norm.float().reshape(4).cpu() * scale
        video = F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False) if len(outputs) else low.new_zeros(0, 1, h, w)
        if self.non_overlap_masks:
            video = non_overlapping(video)
        logits = video[:, 0].float().cpu().numpy()
        points = np.full((len(outputs), 2), np.nan, dtype=np.float32)
        for i, task in enumerate(tasks):
            if task == "point":
                y, x = divmod(int(np.argmax(logits[i])), w)
                points[i] = (x, y)
        score_np = scores.numpy().astype(np.float32)
        return FrameResult(
            frame_idx=frame_idx,
            obj_ids=[o.obj_id for o in objects],
            tasks=tasks,
            mask_logits=logits,
            masks=logits > 0,
            boxes_xyxy=boxes.numpy().astype(np.float32),
            points_xy=points,
            object_score_logits=score_np,
            visible=np.nan_to_num(score_np, nan=-1.0) > 0,
            low_res_logits=low[:, 0].float().cpu().numpy(),
        )


def _frames_of(order: range | _StreamOrder) -> range:
    """The frames a propagation may visit, in its order (a stream's, were it never to end)."""
    return order if isinstance(order, range) else range(order.start, order.start + order.max_frames + 1)


class _StreamOrder:
    """A stream's frames from `start`, for up to `max_frames` more, while frames arrive."""

    def __init__(self, state: TrackingState, start: int, max_frames: int):
        self.state, self.start, self.max_frames = state, start, max_frames

    def __iter__(self) -> Iterator[int]:
        frame_idx = self.start
        while frame_idx - self.start <= self.max_frames and self.state.frames.available(frame_idx):
            yield frame_idx
            frame_idx += 1


def _check_same_objects(state: TrackingState, objects: list[TrackedObject]) -> None:
    """Raise when the session's objects changed since a propagation started (it cannot track what it did not plan)."""
    now = list(state.objects.values())
    if len(now) == len(objects) and all(a is b for a, b in zip(now, objects)):
        return
    added = [o.obj_id for o in now if all(o is not b for b in objects)]
    removed = [o.obj_id for o in objects if all(o is not b for b in now)]
    raise RuntimeError(f"prompts changed during propagation (objects added: {added}, removed: {removed}); this "
                       f"propagation stops here: call propagate again to track with them")
