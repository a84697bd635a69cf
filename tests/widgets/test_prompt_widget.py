"""PromptWidget state without a browser: messages in canvas pixels -> predictor calls in video pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fakes import FakePredictor, gradient_video

import sam2pp.widgets
from sam2pp.widgets import PromptWidget, TrackViewer, Viewport, replay
from sam2pp.widgets.encoding import decode_mask_png, encode_mask_png


def make_widget(height: int = 120, width: int = 160, **kwargs) -> tuple[PromptWidget, FakePredictor]:
    predictor = FakePredictor()
    state = predictor.init_state(gradient_video(12, height, width))
    return PromptWidget(predictor, state, **kwargs), predictor


def browser(widget: PromptWidget, **content) -> None:
    """Deliver a message exactly as the front end's `model.send` would."""
    widget._on_msg(widget, content, [])


def test_viewport_maps_both_ways_and_clamps():
    vp = Viewport.fit(1920, 1080, 960)
    assert (vp.width, vp.height) == (960, 540)
    assert vp.to_video(100, 50) == (200.0, 100.0)
    assert vp.to_display(200, 100) == (100.0, 50.0)
    assert vp.to_video(-5, 9999) == (0.0, 1080.0)
    assert vp.box_to_video((300, 200, 100, 50)) == [200.0, 100.0, 600.0, 400.0]
    assert Viewport.fit(854, 480, 960).width == 854  # never enlarged


def test_clicks_arrive_in_video_pixels_on_a_downscaled_video():
    widget, predictor = make_widget(height=400, width=800, max_display_size=400)
    assert (widget.width, widget.height) == (400, 200)
    widget.new_object("mask")
    browser(widget, type="click", x=50, y=30, label=1)
    browser(widget, type="click", x=100, y=60, label=0)
    assert widget.prompts == [
        {"kind": "click", "frame_idx": 0, "obj_id": 1, "xy": [100.0, 60.0], "label": 1},
        {"kind": "click", "frame_idx": 0, "obj_id": 1, "xy": [200.0, 120.0], "label": 0},
    ]
    name, args = predictor.calls[-1]
    assert name == "add_points"
    np.testing.assert_array_equal(args["points"], [[100, 60], [200, 120]])
    np.testing.assert_array_equal(args["labels"], [1, 0])


def test_box_drag_and_track_point_call_their_predictor_methods():
    widget, predictor = make_widget(height=400, width=800, max_display_size=400)
    widget.new_object("box")
    browser(widget, type="box", box=[60, 40, 10, 20])  # dragged up-left: corners in any order
    assert predictor.calls[-1][0] == "add_box"
    np.testing.assert_array_equal(predictor.calls[-1][1]["box"], [20, 40, 120, 80])
    widget.new_object("point")
    widget.frame_idx = 3
    browser(widget, type="track_point", x=25, y=25)
    assert predictor.calls[-1] == ("add_track_point", {"frame_idx": 3, "obj_id": 2, "point": pytest.approx([50, 50])})
    assert [p["kind"] for p in widget.prompts] == ["box", "track_point"]
    assert widget.prompts[0]["task"] == "box"


def test_box_on_a_mask_object_is_a_segmentation_prompt_and_resets_its_clicks():
    widget, predictor = make_widget()
    widget.new_object("mask")
    widget.add_click(10, 10)
    widget.add_box([20, 20, 60, 60])
    assert widget.prompts[-1]["task"] == "mask" and predictor.calls[-1][0] == "add_box"
    widget.add_click(30, 30)
    np.testing.assert_array_equal(predictor.calls[-1][1]["points"], [[30, 30]])


def test_a_tool_that_does_not_fit_the_object_task_is_refused_with_a_message():
    widget, predictor = make_widget()
    widget.new_object("point")
    with pytest.raises(ValueError, match="tracks a 'point'"):
        widget.add_click(10, 10)
    browser(widget, type="click", x=10, y=10)
    assert widget.status.startswith("error:") and widget.prompts == [] and predictor.calls == []


def test_click_without_an_object_names_the_fix():
    widget, _ = make_widget()
    with pytest.raises(ValueError, match="new_object"):
        widget.add_click(5, 5)


def test_new_object_ids_colours_and_task_changes():
    widget, _ = make_widget()
    first, second = widget.new_object("mask"), widget.new_object("box")
    assert (first, second, widget.obj_id, widget.tool) == (1, 2, 2, "box")
    assert widget.objects[0]["color"] != widget.objects[1]["color"]
    widget.set_task(2, "point")
    assert widget.objects[1]["task"] == "point"
    widget.add_track_point(5, 5, obj_id=2)
    with pytest.raises(ValueError, match="fixed"):
        widget.set_task(2, "mask")


def test_undo_rebuilds_only_the_last_prompts_object():
    widget, predictor = make_widget()
    widget.new_object("mask")
    widget.add_click(40, 40)
    widget.add_click(80, 40)
    widget.new_object("point")
    widget.add_track_point(100, 50, frame_idx=2)
    predictor.calls.clear()
    widget.undo()
    assert predictor.calls == [("remove_object", {"obj_id": 2})]
    assert [r.obj_id for r in widget.track.rows(2)] == [1]
    widget.undo()
    assert [c[0] for c in predictor.calls[1:]] == ["remove_object", "add_points"]
    np.testing.assert_array_equal(predictor.calls[-1][1]["points"], [[40, 40]])
    assert len(widget.prompts) == 1
    mask = widget.track.rows(0)[0].mask
    assert mask[40, 40] and not mask[40, 80]


def test_undo_with_nothing_to_undo_and_clear():
    widget, predictor = make_widget()
    assert widget.undo() is None and widget.status == "nothing to undo"
    widget.new_object("mask")
    widget.add_click(40, 40)
    widget.clear()
    assert widget.prompts == [] and widget.track.frames == {} and predictor.calls[-1][0] == "reset_state"
    assert len(widget.objects) == 1  # objects survive a clear


def test_prompts_replay_on_a_fresh_state_gives_the_same_masks():
    widget, predictor = make_widget()
    widget.new_object("mask")
    widget.add_click(40, 40)
    widget.add_click(50, 40, label=0)
    widget.new_object("box")
    widget.add_box([90, 10, 130, 50], frame_idx=4)
    fresh = predictor.init_state(gradient_video(12, 120, 160))
    results = replay(predictor, fresh, widget.prompts)
    assert [r.frame_idx for r in results] == [0, 0, 4]
    np.testing.assert_array_equal(results[1].masks[0], widget.track.rows(0)[0].mask)


def test_propagate_fills_every_frame_and_a_new_prompt_makes_it_stale():
    widget, predictor = make_widget()
    with pytest.raises(ValueError, match="add a prompt"):
        widget.propagate()
    widget.new_object("point")
    widget.add_track_point(20, 30, frame_idx=5)
    track = widget.propagate()
    assert sorted(track.frames) == list(range(12))
    assert ("propagate", {"start_frame": 5, "reverse": True}) in predictor.calls
    np.testing.assert_allclose(track.frames[7][1].point_xy, [24, 30])
    widget.add_track_point(22, 30, frame_idx=5)
    assert sorted(widget.track.frames) == [5]


def test_frame_requests_send_jpeg_and_overlay_without_resending_images():
    widget, _ = make_widget()
    widget.new_object("mask")
    widget.add_click(40, 40)
    sent = []
    widget.send = lambda content, buffers=None: sent.append((content, buffers or []))
    browser(widget, type="request", frames=[0, 1, 99], images=True)
    assert [m["idx"] for m, _ in sent] == [0, 1]  # the out-of-range index is dropped
    content, buffers = sent[0]
    assert content["image"] == 0 and buffers[0][:2] == b"\xff\xd8"  # a JPEG
    obj = content["objects"][0]
    assert obj["id"] == 1 and decode_mask_png(buffers[obj["mask"]])[40, 40]
    sent.clear()
    browser(widget, type="request", frames=[0], images=False)
    assert sent[0][0]["image"] is None and len(sent[0][1]) == 1  # just the mask


def test_mask_png_round_trip_and_is_small():
    mask = np.zeros((480, 854), bool)
    mask[100:300, 200:500] = True
    data = encode_mask_png(mask)
    assert len(data) < 1000
    np.testing.assert_array_equal(decode_mask_png(data), mask)


def test_assets_are_reachable_from_the_package():
    for name in ("frame_canvas.js", "prompt_widget.js", "prompt_widget.css", "track_viewer.js", "track_viewer.css"):
        assert (Path(sam2pp.widgets.__file__).parent / "static" / name).is_file()
    for widget in (PromptWidget, TrackViewer):  # one module each: the shared part, then the widget's own
        assert "class FrameStore" in widget._esm and widget._esm.count("export default") == 1


def test_interactive_use_keeps_correction_clicks_as_conditioning_frames():
    import sam2pp

    predictor = sam2pp.VideoPredictor(sam2pp.build_model("sam2pp_tiny"))
    assert predictor.add_all_frames_to_correct_as_cond is False
    state = predictor.init_state(np.zeros((2, 32, 48, 3), np.uint8))
    PromptWidget(predictor, state)
    assert predictor.add_all_frames_to_correct_as_cond is True
    other = sam2pp.VideoPredictor(sam2pp.build_model("sam2pp_tiny"))
    PromptWidget(other, other.init_state(np.zeros((2, 32, 48, 3), np.uint8)), keep_corrections=False)
    assert other.add_all_frames_to_correct_as_cond is False
