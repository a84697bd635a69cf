"""`VideoPredictor`: prompt objects with masks, clicks, boxes or track points, then propagate through the video.

The image encoder runs once per frame for all objects; each object is then tracked by its task's modules exactly as
the published SAM 2++ predictor tracks it (one object at a time, so objects of different tasks never interact).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..checkpoint import build_model, resolve_hub_model
from ..kernels import fill_holes_and_sprinkles
from ..modeling.model import SAM2PlusModel, non_overlapping
from ..modeling.unified_decoder import NO_OBJECT_LOGIT
from ..modeling.tracker import FrameMemory, FramePrompt, Tracker
from .frames import open_video
from .prompts import box_corners, gaussian_disc, mask_to_model, to_model_points
from .results import FrameResult
from .state import TrackedObject, TrackingState


class VideoPredictor:
    """Tracks objects at any granularity through a video.

    add_all_frames_to_correct_as_cond: when true, a frame that receives a correction prompt after it was tracked
        becomes a conditioning frame, so the correction survives the next propagation (interactive use turns it on;
        off by default, as published). fill_hole_area and non_overlap_masks default to the model config's values.
    autocast: run under bfloat16 autocast on CUDA, as the published tools do (ignored on the CPU).
    """

    def __init__(
        self,
        model: SAM2PlusModel,
        add_all_frames_to_correct_as_cond: bool | None = None,
        fill_hole_area: int | None = None,
        non_overlap_masks: bool | None = None,
        autocast: bool = True,
    ):
        self.model = model.eval()
        self.tracker = Tracker(model)
        cfg = model.config
        self.add_all_frames_to_correct_as_cond = (
            cfg.add_all_frames_to_correct_as_cond if add_all_frames_to_correct_as_cond is None
            else add_all_frames_to_correct_as_cond
        )
        self.fill_hole_area = cfg.fill_hole_area if fill_hole_area is None else fill_hole_area
        self.non_overlap_masks = cfg.non_overlap_masks if non_overlap_masks is None else non_overlap_masks
        self.autocast = autocast

    # ---- construction ---------------------------------------------------------------------------------------------

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path, config="sam2pp_hiera_b+", device="cpu", **kwargs) -> VideoPredictor:
        return cls(build_model(config, checkpoint=checkpoint, device=device), **kwargs)

    @classmethod
    def from_pretrained(cls, model_id: str = "MCG-NJU/SAM2-Plus", device="cpu", config: str | None = None,
                        revision: str | None = None, cache_dir: str | None = None, **kwargs) -> VideoPredictor:
        """Download (or find in the hub cache; offline mode is honoured) and load a published checkpoint."""
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

    def init_state(self, video, cache_size: int = 16) -> TrackingState:
        """A session over `video`: a folder of frames, a list of image paths, a uint8 (T, H, W, 3) array or a video
        file. Frames are decoded lazily; `cache_size` preprocessed frames are kept."""
        return TrackingState(open_video(video, cache_size=cache_size), self.image_size, self.device)

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

    def add_track_point(self, state: TrackingState, frame_idx: int, obj_id: int, point_xy, radius: int = 50,
                        sigma: float = 16) -> FrameResult:
        """Track the point (x, y) in video pixels (task "point"); its prompt is a gaussian disc of `radius` and
        `sigma` in model pixels around it, as published."""
        frame_idx = state.check_frame(frame_idx)
        pts = to_model_points(np.reshape(point_xy, (1, 2)), [1], state.video_width, state.video_height,
                              self.image_size, self.device)
        disc = gaussian_disc(pts.coords[0, 0].cpu(), self.image_size, radius, sigma)
        obj = self._object(state, obj_id, "point")
        return self._prompt(state, obj, frame_idx, FramePrompt(points=pts, prob_map=disc[None, None].to(self.device)))

    def _object(self, state: TrackingState, obj_id: int, task: str) -> TrackedObject:
        if isinstance(obj_id, bool) or not isinstance(obj_id, (int, np.integer)) or obj_id < 0:
            raise ValueError(f"object ids are non-negative integers, got {obj_id!r}")
        obj_id = int(obj_id)
        if obj_id in state.objects:
            obj = state.objects[obj_id]
            if obj.task != task:
                raise ValueError(f"object {obj_id} is tracked with task {obj.task!r}; it cannot take a {task!r} prompt "
                                 f"(remove it first, or use another object id)")
            return obj
        obj = TrackedObject(obj_id, task)
        state.objects[obj_id] = obj
        return obj

    @torch.inference_mode()
    def _prompt(self, state: TrackingState, obj: TrackedObject, frame_idx: int, prompt: FramePrompt) -> FrameResult:
        is_init = frame_idx not in obj.tracked
        reverse = obj.tracked.get(frame_idx, False)
        is_cond = is_init or self.add_all_frames_to_correct_as_cond
        prev = None
        if prompt.prob_map is None:  # clicks refine the latest output on this frame
            latest = obj.latest(frame_idx, is_cond)
            if latest is not None:
                prev = latest.pred_masks.clamp(-32.0, 32.0)
        with self._context():
            feats = self._task_features(state, frame_idx, obj.task)
            out = self.tracker.step(
                obj.task, frame_idx, feats, obj.memory, state.num_frames, prompt=prompt, is_init_cond_frame=is_init,
                reverse=reverse, run_memory_encoder=False, prev_mask_logits=prev,
            )
        out = self._postprocess(out)
        obj.prompts[frame_idx] = prompt
        (obj.pending.cond if is_cond else obj.pending.non_cond)[frame_idx] = out
        outputs = [o.latest(frame_idx, is_cond) for o in state.objects.values()]
        return self._result(state, frame_idx, outputs)

    # ---- propagation ----------------------------------------------------------------------------------------------

    @torch.inference_mode()
    def propagate(self, state: TrackingState, start_frame: int | None = None, max_frames: int | None = None,
                  reverse: bool = False, progress: bool = True) -> Iterator[FrameResult]:
        """Track every object from `start_frame` (default: the earliest prompted frame) over `max_frames` frames
        (default: to the end), forwards or in reverse, yielding one `FrameResult` per frame."""
        self._commit_prompts(state)
        order = self._frame_order(state, start_frame, max_frames, reverse)
        for frame_idx in tqdm(order, desc="propagate", unit="frame", disable=not progress):
            outputs = []
            for obj in state.objects.values():
                out = obj.memory.cond.get(frame_idx)
                if out is None:
                    with self._context():
                        feats = self._task_features(state, frame_idx, obj.task)
                        out = self._postprocess(self.tracker.step(
                            obj.task, frame_idx, feats, obj.memory, state.num_frames, reverse=reverse,
                        ))
                    obj.memory.non_cond[frame_idx] = out
                obj.tracked[frame_idx] = reverse
                outputs.append(out)
            yield self._result(state, frame_idx, outputs)

    def _frame_order(self, state, start_frame, max_frames, reverse) -> range:
        n = state.num_frames
        if start_frame is None:
            start_frame = min(t for o in state.objects.values() for t in o.memory.cond)
        start_frame = state.check_frame(start_frame)
        max_frames = n if max_frames is None else max_frames
        if max_frames < 0:
            raise ValueError(f"max_frames must be >= 0, got {max_frames}")
        if reverse:
            end = max(start_frame - max_frames, 0)
            return range(start_frame, end - 1, -1) if start_frame > 0 else range(0)
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

    def _task_features(self, state: TrackingState, frame_idx: int, task: str):
        image = state.cached_features(
            frame_idx, lambda i: self.model.encode_image(state.frames.model_input(i, self.image_size)[None].to(self.device))
        )
        return state.cached_task_features(frame_idx, task, lambda: self.model.task_features(image, task))

    def _postprocess(self, out: FrameMemory) -> FrameMemory:
        if self.fill_hole_area > 0:
            out.pred_masks = fill_holes_and_sprinkles(out.pred_masks, self.fill_hole_area)
        return out

    def _result(self, state: TrackingState, frame_idx: int, outputs: list[FrameMemory | None]) -> FrameResult:
        """Assemble a frame's `FrameResult`; an object without output on the frame gets -1024 logits and NaN score."""
        s4 = self.image_size // 4
        h, w = state.video_height, state.video_width
        tasks = [o.task for o in state.objects.values()]
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
            obj_ids=state.obj_ids,
            tasks=tasks,
            mask_logits=logits,
            masks=logits > 0,
            boxes_xyxy=boxes.numpy().astype(np.float32),
            points_xy=points,
            object_score_logits=score_np,
            visible=np.nan_to_num(score_np, nan=-1.0) > 0,
            low_res_logits=low[:, 0].float().cpu().numpy(),
        )

