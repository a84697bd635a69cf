"""Prompts as plain, JSON-able records in video pixels, and how each one calls the predictor.

`PromptWidget.prompts` is a list of these records, so a notebook can save them and `replay`
them on a fresh state without any UI. Records:

- `{"kind": "click", "frame_idx", "obj_id", "xy": [x, y], "label": 1 | 0}` (1 positive, 0 negative)
- `{"kind": "box", "frame_idx", "obj_id", "box_xyxy": [x0, y0, x1, y1], "task": "mask" | "box"}`
- `{"kind": "track_point", "frame_idx", "obj_id", "xy": [x, y]}`

A click sends *all* clicks of its object on its frame since that object's last box there, as
`add_points` replaces an object's clicks on a frame (SAM 2's interactive convention).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

KIND_TASK = {"click": "mask", "track_point": "point"}
TASKS = ("mask", "box", "point")


def click(frame_idx: int, obj_id: int, x: float, y: float, label: int = 1) -> dict:
    if label not in (0, 1):
        raise ValueError(f"click label must be 1 (positive) or 0 (negative), got {label!r}")
    return {"kind": "click", "frame_idx": int(frame_idx), "obj_id": int(obj_id),
            "xy": [float(x), float(y)], "label": int(label)}


def box(frame_idx: int, obj_id: int, box_xyxy: Sequence[float], task: str = "box") -> dict:
    if task not in ("mask", "box"):
        raise ValueError(f"a box prompts task 'box' (tracking) or 'mask' (segmentation), got {task!r}")
    x0, y0, x1, y1 = (float(v) for v in box_xyxy)
    if not (x0 <= x1 and y0 <= y1):
        raise ValueError(f"box must be xyxy with x0 <= x1 and y0 <= y1, got {list(box_xyxy)}")
    return {"kind": "box", "frame_idx": int(frame_idx), "obj_id": int(obj_id),
            "box_xyxy": [x0, y0, x1, y1], "task": task}


def track_point(frame_idx: int, obj_id: int, x: float, y: float) -> dict:
    return {"kind": "track_point", "frame_idx": int(frame_idx), "obj_id": int(obj_id), "xy": [float(x), float(y)]}


def prompt_task(prompt: dict) -> str:
    """The task a prompt gives its object ("mask", "box" or "point")."""
    kind = prompt.get("kind")
    if kind == "box":
        return prompt["task"]
    if kind not in KIND_TASK:
        raise ValueError(f"unknown prompt kind {kind!r}; expected one of click, box, track_point")
    return KIND_TASK[kind]


def clicks_on_frame(history: Iterable[dict], prompt: dict) -> tuple[list[list[float]], list[int]]:
    """Points and labels `add_points` gets for click `prompt`: its own plus the earlier clicks it refines."""
    points: list[list[float]] = []
    labels: list[int] = []
    for p in [*history, prompt]:
        if p["obj_id"] != prompt["obj_id"] or p["frame_idx"] != prompt["frame_idx"]:
            continue
        if p["kind"] == "box":
            points, labels = [], []
        elif p["kind"] == "click":
            points.append(p["xy"])
            labels.append(p["label"])
    return points, labels


def apply_prompt(predictor: object, state: object, history: Sequence[dict], prompt: dict) -> object:
    """Send `prompt` to the predictor given the prompts already applied; returns its FrameResult."""

    frame_idx, obj_id = prompt["frame_idx"], prompt["obj_id"]
    if prompt["kind"] == "click":
        points, labels = clicks_on_frame(history, prompt)
        return predictor.add_points(state, frame_idx, obj_id, np.asarray(points, np.float32),
                                    np.asarray(labels, np.int32))
    if prompt["kind"] == "box":
        return predictor.add_box(state, frame_idx, obj_id, np.asarray(prompt["box_xyxy"], np.float32),
                                 task=prompt["task"])
    if prompt["kind"] == "track_point":
        return predictor.add_track_point(state, frame_idx, obj_id, np.asarray(prompt["xy"], np.float32))
    raise ValueError(f"unknown prompt kind {prompt.get('kind')!r}; expected one of click, box, track_point")


def replay(predictor: object, state: object, prompts: Sequence[dict]) -> list[object]:
    """Apply `prompts` in order on `state`, exactly as the widget did; one FrameResult per prompt."""
    return [apply_prompt(predictor, state, prompts[:i], p) for i, p in enumerate(prompts)]
