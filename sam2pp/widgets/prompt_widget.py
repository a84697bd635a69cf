"""`PromptWidget`: click, drag a box or place a track point on a frame, see the predictor's answer.

Every prompt goes through the public predictor API (`add_points`, `add_box`, `add_track_point`)
and is recorded in `widget.prompts` in video pixels, so `sam2pp.widgets.replay` reproduces the
session without the UI. The browser sends canvas pixels; `Viewport` maps them to video pixels.
"""

from __future__ import annotations


import anywidget
import traitlets as t

from sam2pp.io.overlay import object_color
from sam2pp.widgets import prompts as P
from sam2pp.widgets.frame_server import FrameServer
from sam2pp.widgets.front_end import STATIC, esm
from sam2pp.widgets.tracks import ObjectResult, Track
from sam2pp.widgets.video import FrameSource, as_frame_source, check_frame_idx
from sam2pp.widgets.viewport import Viewport

TOOLS = ("click", "box", "track_point")
TOOL_TASKS = {"click": ("mask",), "box": ("mask", "box"), "track_point": ("point",)}


def hex_color(obj_id: int) -> str:
    return "#{:02x}{:02x}{:02x}".format(*object_color(obj_id))


class PromptWidget(anywidget.AnyWidget):
    """Prompt a `VideoPredictor` on `state`'s frames; see module docstring.

    Keyboard (with the widget focused): ←/→ or ,/. previous/next frame, c click tool,
    b box tool, t track-point tool, n new object, 1-9 pick object, u or Ctrl+Z undo,
    p propagate. Shift-click is a negative click.
    """

    _esm = esm("prompt_widget.js")
    _css = STATIC / "prompt_widget.css"

    frame_idx = t.Int(0).tag(sync=True)
    num_frames = t.Int(1).tag(sync=True)
    width = t.Int(1).tag(sync=True)
    height = t.Int(1).tag(sync=True)
    video_width = t.Int(1).tag(sync=True)
    video_height = t.Int(1).tag(sync=True)
    tool = t.Enum(TOOLS, default_value="click").tag(sync=True)
    objects = t.List(t.Dict()).tag(sync=True)
    obj_id = t.Int(-1).tag(sync=True)
    prompts = t.List(t.Dict()).tag(sync=True)
    status = t.Unicode("").tag(sync=True)
    busy = t.Bool(False).tag(sync=True)
    alpha = t.Float(0.5).tag(sync=True)
    prefetch = t.Int(4).tag(sync=True)
    revision = t.Int(0)
    """Counts changes of the results shown (not synced): a `TrackViewer` of this widget observes it."""

    def __init__(self, predictor: object, state: FrameSource, *, max_display_size: int = 960,
                 keep_corrections: bool = True, **kwargs):
        """keep_corrections turns on the predictor's `add_all_frames_to_correct_as_cond`, so that a click that
        corrects a tracked frame stays a conditioning frame instead of being recomputed away by the next
        propagation (what a person clicking expects; the published default is off)."""
        self.predictor = predictor
        if keep_corrections and hasattr(predictor, "add_all_frames_to_correct_as_cond"):
            predictor.add_all_frames_to_correct_as_cond = True
        self.state = state
        source = as_frame_source(state)
        self.viewport = Viewport.fit(source.video_width, source.video_height, max_display_size)
        self._prompted = Track()
        self._propagated = Track()
        self._server = FrameServer(source, self.viewport, self._rows)
        super().__init__(num_frames=source.num_frames, width=self.viewport.width, height=self.viewport.height,
                         video_width=source.video_width, video_height=source.video_height, **kwargs)
        self.on_msg(self._on_msg)

    # Objects ------------------------------------------------------------------------------
    def new_object(self, task: str = "mask") -> int:
        """Add an object (id one past the largest) with `task`, select it and return its id."""
        if task not in P.TASKS:
            raise ValueError(f"task must be one of {P.TASKS}, got {task!r}")
        obj_id = max((o["id"] for o in self.objects), default=0) + 1
        self.objects = [*self.objects, {"id": obj_id, "task": task, "color": hex_color(obj_id)}]
        self.obj_id = obj_id
        self.tool = next(tool for tool in TOOLS if task in TOOL_TASKS[tool])
        return obj_id

    def set_task(self, obj_id: int, task: str) -> None:
        """Change an object's task; allowed only before its first prompt (the task is then fixed)."""
        if task not in P.TASKS:
            raise ValueError(f"task must be one of {P.TASKS}, got {task!r}")
        if any(p["obj_id"] == obj_id for p in self.prompts):
            raise ValueError(f"object {obj_id} already has prompts; its task is fixed")
        self._object(obj_id)
        self.objects = [{**o, "task": task} if o["id"] == obj_id else o for o in self.objects]

    def _object(self, obj_id: int | None) -> dict:
        obj_id = self.obj_id if obj_id is None else obj_id
        for obj in self.objects:
            if obj["id"] == obj_id:
                return obj
        raise ValueError(f"no object {obj_id}; create one with new_object() first")

    # Prompts (video pixels) ---------------------------------------------------------------
    def add_click(self, x: float, y: float, label: int = 1, frame_idx: int | None = None,
                  obj_id: int | None = None) -> object:
        """A positive (1) or negative (0) click at video pixel (x, y); returns the FrameResult."""
        obj = self._object_for("click", obj_id)
        return self._apply(P.click(self._frame(frame_idx), obj["id"], x, y, label))

    def add_box(self, box_xyxy, frame_idx: int | None = None, obj_id: int | None = None) -> object:
        """A box in video pixels: a tracking box for a "box" object, a segmentation prompt for a "mask" one."""
        obj = self._object_for("box", obj_id)
        return self._apply(P.box(self._frame(frame_idx), obj["id"], box_xyxy, task=obj["task"]))

    def add_track_point(self, x: float, y: float, frame_idx: int | None = None, obj_id: int | None = None) -> object:
        """The point a "point" object tracks, in video pixels."""
        obj = self._object_for("track_point", obj_id)
        return self._apply(P.track_point(self._frame(frame_idx), obj["id"], x, y))

    def _object_for(self, tool: str, obj_id: int | None) -> dict:
        obj = self._object(obj_id)
        if obj["task"] not in TOOL_TASKS[tool]:
            raise ValueError(f"object {obj['id']} tracks a {obj['task']!r}; the {tool} tool prompts "
                             f"{' or '.join(TOOL_TASKS[tool])} objects")
        return obj

    def _frame(self, frame_idx: int | None) -> int:
        return check_frame_idx(self._server.source, self.frame_idx if frame_idx is None else frame_idx)

    def _apply(self, prompt: dict) -> object:
        result = P.apply_prompt(self.predictor, self.state, self.prompts, prompt)
        self.prompts = [*self.prompts, prompt]
        self._prompted.add(result)
        self._forget_propagation()
        self._changed([prompt["frame_idx"]])
        self.status = f"{prompt['kind']} on object {prompt['obj_id']}, frame {prompt['frame_idx']}"
        return result

    def undo(self) -> dict | None:
        """Drop the last prompt: its object is removed and rebuilt from its remaining prompts."""
        if not self.prompts:
            self.status = "nothing to undo"
            return None
        *rest, last = self.prompts
        obj_id = last["obj_id"]
        self.predictor.remove_object(self.state, obj_id)
        changed = self._prompted.remove_object(obj_id)
        kept = [p for p in rest if p["obj_id"] == obj_id]
        for i, prompt in enumerate(kept):
            self._prompted.add(P.apply_prompt(self.predictor, self.state, kept[:i], prompt))
            changed.append(prompt["frame_idx"])
        self.prompts = rest
        self._forget_propagation()
        self._changed(changed)
        self.status = f"undid {last['kind']} on object {obj_id}"
        return last

    def clear(self) -> None:
        """Forget every prompt and result (`reset_state`); objects stay, ready for new prompts."""
        self.predictor.reset_state(self.state)
        self.prompts = []
        self._prompted.clear()
        self._propagated.clear()
        self._changed(None)
        self.status = "cleared"

    def propagate(self) -> Track:
        """Track every prompted object through the video (forward, then backward from the first prompt)."""
        if not self.prompts:
            raise ValueError("add a prompt before propagating")
        self.busy = True
        try:
            self._propagated.clear()
            first = min(p["frame_idx"] for p in self.prompts)
            runs = [self.predictor.propagate(self.state)]
            if first > 0:
                runs.append(self.predictor.propagate(self.state, start_frame=first, reverse=True))
            for run in runs:
                for result in run:
                    self._propagated.add(result)
                    if len(self._propagated.frames) % 10 == 0:
                        self.status = f"propagating: {len(self._propagated.frames)}/{self.num_frames} frames"
        finally:
            self.busy = False
        self._changed(None)
        self.status = f"propagated through {len(self._propagated.frames)} frames"
        return self.track

    @property
    def track(self) -> Track:
        """The results shown: propagated frames, and prompt results where nothing was propagated."""
        return self._propagated.merged_over(self._prompted)

    def _rows(self, frame_idx: int) -> list[ObjectResult]:
        rows = self._propagated.frames.get(frame_idx)
        return list(rows.values()) if rows is not None else self._prompted.rows(frame_idx)

    def _forget_propagation(self) -> None:
        """A new or undone prompt makes propagated results stale."""
        if self._propagated.frames:
            self._propagated.clear()
            self._changed(None)

    def _changed(self, frames: list[int] | None) -> None:
        self._server.invalidate(frames)
        self.send({"type": "invalidate", "frames": frames})
        self.revision += 1

    # Browser messages (canvas pixels) -----------------------------------------------------
    def _on_msg(self, _widget, content: dict, _buffers) -> None:
        try:
            self._handle(content)
        except (ValueError, IndexError) as error:
            self.status = f"error: {error}"

    def _handle(self, content: dict) -> None:
        kind = content.get("type")
        vp = self.viewport
        if kind == "request":
            for message, buffers in self._server.answer(content):
                self.send(message, buffers)
        elif kind == "click":
            self.add_click(*vp.to_video(content["x"], content["y"]), label=int(content.get("label", 1)))
        elif kind == "box":
            self.add_box(vp.box_to_video(content["box"]))
        elif kind == "track_point":
            self.add_track_point(*vp.to_video(content["x"], content["y"]))
        elif kind == "new_object":
            self.new_object(content.get("task", "mask"))
        elif kind == "set_task":
            self.set_task(int(content["obj_id"]), content["task"])
        elif kind == "undo":
            self.undo()
        elif kind == "clear":
            self.clear()
        elif kind == "propagate":
            self.propagate()
        else:
            raise ValueError(f"unknown message type {kind!r}")
