"""TrackViewer state without a browser: inputs, overlay data, toggles, exports."""

from __future__ import annotations

import av
import numpy as np
import pytest
from fakes import FakePredictor, gradient_video
from PIL import Image

from sam2pp.widgets import PromptWidget, Track, TrackViewer


@pytest.fixture
def tracked():
    predictor = FakePredictor()
    state = predictor.init_state(gradient_video(10, 120, 160))
    predictor.add_points(state, 0, 1, [[40, 60]], [1])
    predictor.add_box(state, 0, 2, [100, 20, 140, 60])
    predictor.add_track_point(state, 0, 3, [20, 100])
    return predictor, state, list(predictor.propagate(state))


def test_objects_and_tracks_come_from_the_results(tracked):
    _, state, results = tracked
    viewer = TrackViewer(results, state)
    assert [(o["id"], o["task"]) for o in viewer.objects] == [(1, "mask"), (2, "box"), (3, "point")]
    assert viewer.num_frames == 10 and (viewer.width, viewer.height) == (160, 120)
    assert viewer.tracks["2"]["boxes"][3] == [106.0, 20.0, 146.0, 60.0]
    assert viewer.tracks["3"]["points"][4] == [28.0, 100.0]
    assert viewer.tracks["1"]["points"][0] is None and viewer.tracks["1"]["boxes"][0] is None


def test_tracks_are_scaled_to_the_canvas(tracked):
    _, state, results = tracked
    viewer = TrackViewer(results, state, max_display_size=80)
    assert (viewer.width, viewer.height) == (80, 60)
    assert viewer.tracks["3"]["points"][0] == [10.0, 50.0]


def test_accepts_frames_arrays_a_track_and_a_prompt_widget(tracked):
    predictor, state, results = tracked
    assert TrackViewer(Track.from_results(results), state.frames).num_frames == 10
    assert TrackViewer(results[:3], list(state.frames)).tracks["3"]["points"][5] is None
    widget = PromptWidget(predictor, state)
    widget.new_object("mask")
    widget.add_click(30, 30, frame_idx=2)
    viewer = TrackViewer(widget)
    assert viewer.source is state and sorted(viewer.track.frames) == [2]


def test_bad_inputs_name_the_problem(tracked):
    _, state, results = tracked
    with pytest.raises(ValueError, match="pass the video"):
        TrackViewer(results)
    with pytest.raises(TypeError, match="num_frames"):
        TrackViewer(results, "not a video")
    with pytest.raises(ValueError, match="uint8"):
        TrackViewer(results, np.zeros((3, 10, 10), np.float32))


def test_render_honours_object_and_layer_toggles(tracked):
    _, state, results = tracked
    viewer = TrackViewer(results, state)
    plain = state.frame(4)
    drawn = viewer.render(4)
    assert (drawn[60, 48] != plain[60, 48]).any()  # inside object 1's mask (moved 8 px right)
    viewer.hidden = [1]
    assert (viewer.render(4)[60, 48] == plain[60, 48]).all()
    viewer.hidden = []
    viewer.show_masks = viewer.show_boxes = viewer.show_points = False
    np.testing.assert_array_equal(viewer.render(4), plain)


def test_point_trails_are_drawn_behind_the_point(tracked):
    _, state, results = tracked
    viewer = TrackViewer(results, state)
    viewer.show_masks = False
    viewer.trail = 5
    with_trail = viewer.render(6)
    viewer.trail = 0
    without = viewer.render(6)
    assert (with_trail[100, 24] != without[100, 24]).any()  # the point was at x=24 two frames earlier


def test_exports_png_gif_mp4(tracked, tmp_path):
    _, state, results = tracked
    viewer = TrackViewer(results, state, export_dir=tmp_path)
    viewer.frame_idx = 3
    png = viewer.export_frame()
    assert png.name == "frame_00003.png"
    np.testing.assert_array_equal(np.asarray(Image.open(png)), viewer.render(3))
    gif = viewer.export_video(tmp_path / "t.gif", fps=5)
    assert Image.open(gif).n_frames >= 2
    mp4 = viewer.export_video(tmp_path / "t.mp4")
    with av.open(str(mp4)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 10


def test_export_message_writes_and_offers_a_download(tracked, tmp_path):
    _, state, results = tracked
    viewer = TrackViewer(results, state, export_dir=tmp_path)
    sent = []
    viewer.send = lambda content, buffers=None: sent.append((content, buffers or []))
    viewer._on_msg(viewer, {"type": "export", "format": "gif"}, [])
    assert (tmp_path / "track.gif").is_file() and viewer.status.startswith("saved")
    assert sent[0][0] == {"type": "download", "name": "track.gif", "mime": "image/gif"}
    assert sent[0][1][0][:3] == b"GIF"
    viewer._on_msg(viewer, {"type": "export", "format": "bmp"}, [])
    assert "export format" in viewer.status


def test_frame_requests_only_carry_the_frames_asked_for(tracked):
    _, state, results = tracked
    viewer = TrackViewer(results, state)
    sent = []
    viewer.send = lambda content, buffers=None: sent.append((content, buffers or []))
    viewer._on_msg(viewer, {"type": "request", "frames": [4, 5], "images": True}, [])
    assert [m["idx"] for m, _ in sent] == [4, 5]
    content, buffers = sent[0]
    by_id = {o["id"]: o for o in content["objects"]}
    assert by_id[2]["box"] == [108.0, 20.0, 148.0, 60.0] and by_id[3]["point"] == [28.0, 100.0]
    assert len(buffers) == 1 + sum(o["mask"] is not None for o in content["objects"])


def test_crossed_box_corners_from_an_untrained_model_still_draw(tracked):
    _, state, results = tracked
    for result in results:
        result.boxes_xyxy[1] = [140, 60, 100, 20]
    viewer = TrackViewer(results, state)
    viewer.show_masks = False
    assert (viewer.render(2)[20, 120] != state.frame(2)[20, 120]).any()  # top edge of the box


def test_a_viewer_of_a_prompt_widget_follows_objects_added_later(tracked):
    predictor, _, _ = tracked
    state = predictor.init_state(gradient_video(10, 120, 160))
    widget = PromptWidget(predictor, state)
    widget.new_object("mask")
    widget.add_click(30, 30)
    viewer = TrackViewer(widget)
    sent = []
    viewer.send = lambda content, buffers=None: sent.append(content)
    widget.new_object("point")
    widget.add_track_point(60, 40)
    assert [(o["id"], o["task"]) for o in viewer.objects] == [(1, "mask"), (2, "point")]
    assert viewer.tracks["2"]["points"][0] == [60.0, 40.0]
    assert {"type": "invalidate", "frames": None} in sent  # the browser drops the masks it holds
    widget.propagate()
    assert sorted(viewer.track.frames) == list(range(10)) and viewer.tracks["2"]["points"][3] is not None
    viewer.hidden = [2]
    widget.undo()
    assert [o["id"] for o in viewer.objects] == [1] and viewer.hidden == []
    with pytest.raises(ValueError, match="follows its PromptWidget"):
        viewer.update([])


def test_update_shows_results_of_objects_added_after_the_viewer(tracked):
    predictor, state, results = tracked
    viewer = TrackViewer(results, state)
    viewer.hidden = [3]
    predictor.add_points(state, 0, 4, [[80, 60]], [1])
    viewer.update(list(predictor.propagate(state)))
    assert [o["id"] for o in viewer.objects] == [1, 2, 3, 4] and viewer.hidden == [3]
    assert any(row.obj_id == 4 for row in viewer.shown_rows(5))
