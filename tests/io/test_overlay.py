"""Overlay drawing and animation writing: pixels change where results are drawn, and nowhere else."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from sam2pp.data.synthetic import make_video
from sam2pp.io.overlay import draw_overlay, fit_scale, line_width, object_color, show_sample, write_animation

GRAY = 100


@pytest.fixture
def frame() -> np.ndarray:
    return np.full((60, 80, 3), GRAY, dtype=np.uint8)


def _changed(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    return (before != after).any(axis=-1)


def test_object_colors_are_stable_distinct_and_valid() -> None:
    colors = [object_color(i) for i in range(40)]
    assert colors == [object_color(i) for i in range(40)]
    assert len(set(colors)) == 40
    assert all(len(c) == 3 and all(0 <= v <= 255 and isinstance(v, int) for v in c) for c in colors)
    with pytest.raises(ValueError, match="non-negative"):
        object_color(-1)


def test_mask_is_tinted_inside_outlined_and_untouched_outside(frame: np.ndarray) -> None:
    masks = np.zeros((1, 60, 80), dtype=bool)
    masks[0, 10:30, 20:50] = True
    out = draw_overlay(frame, masks=masks, obj_ids=[3])
    changed = _changed(frame, out)
    assert changed[masks[0]].all() and not changed[~masks[0]].any()
    assert tuple(out[10, 30]) == object_color(3), "the contour is drawn in the object colour"
    inner = out[20, 35].astype(int)
    assert tuple(inner) != object_color(3) and np.abs(inner - GRAY).max() > 0
    assert (frame == GRAY).all(), "the input frame was modified"


def test_box_outline_is_drawn_and_its_inside_kept(frame: np.ndarray) -> None:
    out = draw_overlay(frame, boxes_xyxy=np.array([[10.0, 12.0, 50.0, 40.0]]), colors=[(255, 0, 0)])
    assert tuple(out[12, 30]) == (255, 0, 0) and tuple(out[26, 10]) == (255, 0, 0)
    assert tuple(out[26, 30]) == (GRAY,) * 3
    assert tuple(out[55, 70]) == (GRAY,) * 3


def test_visible_points_are_filled_and_hidden_points_hollow(frame: np.ndarray) -> None:
    points = np.array([[20.0, 30.0], [60.0, 30.0]])
    out = draw_overlay(frame, points_xy=points, visible=np.array([True, False]), colors=[(0, 255, 0), (0, 0, 255)],
                       point_radius=5)
    assert tuple(out[30, 20]) == (0, 255, 0)
    assert tuple(out[30, 60]) == (GRAY,) * 3, "a hidden point's marker is hollow"
    assert _changed(frame, out)[24:37, 53:68].any()
    assert not _changed(frame, out)[:15].any()


def test_trails_break_at_nan(frame: np.ndarray) -> None:
    trails = np.array([[[5.0, 10.0], [75.0, 10.0], [np.nan, np.nan], [75.0, 50.0], [5.0, 50.0]]])
    out = draw_overlay(frame, trails=trails, colors=[(255, 255, 0)])
    assert tuple(out[10, 40]) == (255, 255, 0) and tuple(out[50, 40]) == (255, 255, 0)
    assert not _changed(frame, out)[20:40, 60:80].any(), "the NaN gap was bridged"


def test_nan_boxes_and_points_are_skipped(frame: np.ndarray) -> None:
    out = draw_overlay(frame, boxes_xyxy=np.full((2, 4), np.nan), points_xy=np.full((2, 2), np.nan))
    np.testing.assert_array_equal(out, frame)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(masks=np.zeros((1, 10, 10), dtype=bool)), "frame is"),
        (dict(boxes_xyxy=np.zeros((2, 4)), points_xy=np.zeros((3, 2))), "disagree"),
        (dict(boxes_xyxy=np.zeros((2, 5))), "boxes_xyxy must have shape"),
        (dict(points_xy=np.zeros((2, 2)), colors=[(1, 2, 3)]), "colors"),
    ],
)
def test_bad_inputs_are_named(frame: np.ndarray, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        draw_overlay(frame, **kwargs)


def _distinct_frames(count: int, height: int = 24, width: int = 32) -> list[np.ndarray]:
    return [np.full((height, width, 3), 10 * i, dtype=np.uint8) for i in range(count)]


def test_gif_has_every_frame_and_the_frame_rate(tmp_path: Path) -> None:
    path = write_animation(tmp_path / "a.gif", iter(_distinct_frames(7)), fps=5)
    with Image.open(path) as gif:
        assert gif.n_frames == 7
        assert gif.size == (32, 24)
        assert gif.info["duration"] == 200


def test_mp4_has_every_frame_even_for_odd_sizes(tmp_path: Path) -> None:
    path = write_animation(tmp_path / "a.mp4", _distinct_frames(9, height=23, width=31), fps=10)
    with av.open(str(path)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == 9
    assert decoded[0].shape == (24, 32, 3)
    assert abs(int(decoded[5][10, 10, 0]) - 50) < 8


def test_animation_rejects_bad_requests(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=".gif or .mp4"):
        write_animation(tmp_path / "a.avi", _distinct_frames(2))
    mixed = _distinct_frames(2) + _distinct_frames(1, height=10)
    with pytest.raises(ValueError, match="frame 2"):
        write_animation(tmp_path / "b.gif", mixed)
    with pytest.raises(ValueError, match="no frames"):
        write_animation(tmp_path / "c.gif", [])


def test_show_sample_returns_a_two_panel_figure() -> None:
    video = make_video(seed=0, num_frames=4, size=(96, 64), num_objects=2, points_per_object=2)
    figure = show_sample(video, 2)
    assert isinstance(figure, Figure) and len(figure.axes) == 2
    with pytest.raises(IndexError):
        show_sample(video, 4)


def test_a_scaled_overlay_is_drawn_small_at_the_scaled_coordinates() -> None:
    frame = np.full((540, 960, 3), GRAY, dtype=np.uint8)
    masks = np.zeros((1, 540, 960), dtype=bool)
    masks[0, 100:300, 200:600] = True
    out = draw_overlay(frame, masks=masks, boxes_xyxy=[[200, 100, 600, 300]], points_xy=[[800, 400]], obj_ids=[1],
                       scale=0.5)
    assert out.shape == (270, 480, 3)
    changed = _changed(np.full_like(out, GRAY), out)
    assert changed[100, 200] and changed[50, 100] and changed[200, 400]  # mask inside, box corner, point
    assert not changed[250, 20]
    with pytest.raises(ValueError, match="scale must be positive"):
        draw_overlay(frame, masks=masks, scale=0.0)


def test_line_widths_grow_with_the_picture() -> None:
    assert line_width(480) == 2 and line_width(960) == 3 and line_width(1920) == 6
    wide = np.full((1080, 1920, 3), GRAY, dtype=np.uint8)
    out = draw_overlay(wide, boxes_xyxy=[[400, 300, 1400, 800]], obj_ids=[1])
    assert _changed(wide, out)[550, 398:406].sum() == 6  # the left edge is 6 px wide


def test_fit_scale_only_shrinks() -> None:
    assert fit_scale(1920, 960) == 0.5 and fit_scale(480, 960) == 1.0 and fit_scale(1920, None) == 1.0
    with pytest.raises(ValueError, match="max_width"):
        fit_scale(1920, 0)


def test_pyav_is_needed_only_for_video_files():
    """Training, pictures and GIF previews import without PyAV (some GPU images lack it); only MP4 needs it."""
    code = "import sys; sys.modules['av'] = None; import sam2pp.training, sam2pp.io.overlay, sam2pp.track"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
