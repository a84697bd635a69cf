"""The training forward: one clip, all its objects, every frame in one graph.

It is the predictor's tracking step (`Tracker.predict` / `condition` / `decode` / `encode`) run in the published
training order: the initial conditioning frames first, then the others in time order; correction clicks re-run
the prompt encoder and decoder on the frame's memory-conditioned features, feeding the previous step's low-res
logits (not detached); a corrected frame becomes a conditioning frame. Nothing is detached, so gradients flow back
through memories and object pointers across the clip. Every decoder run is kept, with all its multimask
candidates, for the loss. The correction clicks come from a `ClickSource`: drawn as trained by default, or given
(`RecordedClicks`) to replay a recorded step.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..modeling.model import FrameFeatures, HeadOutput, SAM2PlusModel
from ..modeling.tracker import FrameMemory, FramePrompt, ObjectMemory, Tracker, frame_memory
from .clip import Clip, ClipOutputs, StepOutput
from .prompts import ClickSource, DrawnClicks, PromptConfig, PromptPlan


def clip_features(model: SAM2PlusModel, clip: Clip) -> list[FrameFeatures]:
    """Task features of every frame (image encoder once on the whole clip), expanded to the clip's N objects."""
    image = model.encode_image(clip.frames, clip.task)
    feats = model.task_features(image, clip.task)
    n = clip.num_objects

    def frame(t: int) -> FrameFeatures:
        pick = lambda x: x[t : t + 1].expand(n, *x.shape[1:])  # noqa: E731
        high = None if feats.high_res is None else [pick(h) for h in feats.high_res]
        return FrameFeatures(vision=pick(feats.vision), vision_pos=pick(feats.vision_pos), high_res=high)

    return [frame(t) for t in range(clip.num_frames)]


def step_output(out: HeadOutput, size: int) -> StepOutput:
    """What the loss sees of one decoder run: every candidate, upsampled to S x S in float32.

    A prompt output as it is (mask, gaussian, box + mask) is one candidate taken exactly, with a dummy IoU of 1.
    """
    c = out.candidates
    if c is None:
        boxes = None if out.boxes_xyxy_norm is None else out.boxes_xyxy_norm[:, None]
        ones = torch.ones_like(out.object_score_logits)
        return StepOutput(out.high_res_masks.float(), ones, out.object_score_logits, boxes)
    masks = F.interpolate(c.masks.float(), size=(size, size), mode="bilinear", align_corners=False)
    return StepOutput(masks, c.iou_pred, c.object_score_logits, c.boxes_xyxy_norm)


def unroll(
    tracker: Tracker,
    clip: Clip,
    plan: PromptPlan,
    config: PromptConfig,
    rng: np.random.Generator | None = None,
    generator: torch.Generator | None = None,
    *,
    clicks: ClickSource | None = None,
) -> ClipOutputs:
    """Track the clip's objects through all frames as published training does; returns the outputs per frame.

    rng and generator draw the correction clicks (numpy for the GT-only choice, torch for the pixels) unless
    `clicks` gives them (e.g. `RecordedClicks`, to replay a recorded step: the clicks depend on the predictions, so
    a replay cannot draw them in advance from the same generators).
    """
    if clicks is None:
        clicks = DrawnClicks(rng, generator, config.prob_to_sample_from_gt)
    features = clip_features(tracker.model, clip)
    memory = ObjectMemory()
    outputs: dict[int, list[StepOutput]] = {}
    size, task = clip.image_size, clip.task
    for t in plan.processing_order:
        is_init = t in plan.init_cond_frames
        prompt = plan.prompts.get(t)
        if t in plan.frames_to_correct:
            frame, out, steps = _corrected(tracker, clip, t, features[t], memory, prompt, is_init, config, clicks)
        else:
            frame, out = tracker.predict(task, t, features[t], memory, clip.num_frames, prompt, is_init)
            steps = [step_output(out, size)]
        tracker.encode(task, features[t], frame, out.high_res_masks)
        (memory.cond if t in plan.cond_frames else memory.non_cond)[t] = frame
        outputs[t] = steps
    return [outputs[t] for t in range(clip.num_frames)]


def _corrected(
    tracker: Tracker, clip: Clip, t: int, features: FrameFeatures, memory: ObjectMemory, prompt: FramePrompt | None,
    is_init: bool, config: PromptConfig, clicks: ClickSource,
) -> tuple[FrameMemory, HeadOutput, list[StepOutput]]:
    """Decode frame t, then add `num_correction_clicks` clicks one at a time on the same conditioned features."""
    task, size = clip.task, clip.image_size
    prompt = prompt or FramePrompt()
    vision = tracker.condition(task, t, features, memory, clip.num_frames, is_init)
    out = tracker.decode(task, vision, features, prompt, is_init)
    steps = [step_output(out, size)]
    gt = clip.masks[t] > 0.5
    for k in range(config.num_correction_clicks):
        click = clicks(t, k, gt, _binary(out.high_res_masks))
        points = click if prompt.points is None else prompt.points.cat(click)
        prompt = FramePrompt(points=points, prob_map=prompt.prob_map)
        out = tracker.decode(task, vision, features, prompt, is_init, prev_mask_logits=out.low_res_masks)
        steps.append(step_output(out, size))
    return frame_memory(out, prompt), out, steps


def _binary(high_res_masks: Tensor) -> Tensor:
    """(N, 1, S, S) logits -> (N, S, S) bool prediction."""
    return high_res_masks[:, 0] > 0
