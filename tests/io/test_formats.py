"""Round trips and error messages of the section-4 file formats."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sam2pp.io import (
    DAVIS_PALETTE,
    PointTracks,
    box_absent,
    list_frames,
    read_boxes_txt,
    read_palette_png,
    read_points_npz,
    write_boxes_txt,
    write_palette_png,
    write_points_npz,
    xywh_to_xyxy,
    xyxy_to_xywh,
)


def test_palette_png_round_trip_creates_parents(tmp_path):
    ids = np.zeros((5, 7), dtype=np.int64)
    ids[1:3, 2:6] = 2
    ids[4, 0] = 255
    path = tmp_path / "a" / "b" / "00000.png"
    write_palette_png(path, ids)
    back = read_palette_png(path)
    assert back.dtype == np.uint8 and back.shape == (5, 7)
    np.testing.assert_array_equal(back, ids)
    with Image.open(path) as image:
        assert image.mode == "P"
        np.testing.assert_array_equal(np.array(image.getpalette()).reshape(-1, 3)[:4], DAVIS_PALETTE[:4])


def test_davis_palette_first_colours():
    np.testing.assert_array_equal(DAVIS_PALETTE[:4], [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0]])


def test_palette_png_accepts_grayscale(tmp_path):
    Image.fromarray(np.full((3, 4), 3, np.uint8), mode="L").save(tmp_path / "g.png")
    assert (read_palette_png(tmp_path / "g.png") == 3).all()


def test_palette_png_rejects_rgb(tmp_path):
    Image.fromarray(np.zeros((3, 4, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(ValueError, match=r"rgb\.png.*'RGB'"):
        read_palette_png(tmp_path / "rgb.png")


def test_palette_png_missing_and_corrupt(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        read_palette_png(tmp_path / "nope.png")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="bad.png"):
        read_palette_png(tmp_path / "bad.png")


@pytest.mark.parametrize("ids, problem", [
    (np.zeros((2, 2, 3), np.uint8), "2-D"),
    (np.full((2, 2), 256), "0..255"),
    (np.full((2, 2), -1), "0..255"),
    (np.zeros((2, 2), np.float32), "integers"),
])
def test_write_palette_png_rejects(tmp_path, ids, problem):
    with pytest.raises(ValueError, match=problem):
        write_palette_png(tmp_path / "x.png", ids)


def test_boxes_round_trip_with_nan_and_zero_rows(tmp_path):
    boxes = np.array([[1.5, 2, 30, 40], [np.nan] * 4, [0, 0, 0, 0], [10.125, 20, 3, 4]])
    path = tmp_path / "sub" / "v.txt"
    write_boxes_txt(path, boxes)
    assert path.read_text().splitlines()[1] == "nan,nan,nan,nan"
    back = read_boxes_txt(path)
    assert back.dtype == np.float64
    np.testing.assert_array_equal(back, boxes)
    np.testing.assert_array_equal(box_absent(back), [False, True, True, False])


def test_boxes_accept_whitespace_tabs_and_trailing_blank_lines(tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("1 2 3 4\n5\t6\t7\t8\n9, 10, 11, 12\nNaN,NaN,NaN,NaN\n\n\n")
    np.testing.assert_array_equal(read_boxes_txt(path)[:3], [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]])
    assert np.isnan(read_boxes_txt(path)[3]).all()


@pytest.mark.parametrize("text, problem", [
    ("1,2,3\n", "line 1: expected 4 values"),
    ("1,2,3,4\n\n1,2,3,4\n", "line 2: expected 4 values"),
    ("1,2,3,4\n1,2,x,4\n", "line 2: not a number"),
    ("\n", "no boxes"),
])
def test_boxes_errors_name_file_and_line(tmp_path, text, problem):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=f"bad.txt.*{problem}"):
        read_boxes_txt(path)


def test_boxes_missing_file_and_bad_shape(tmp_path):
    with pytest.raises(FileNotFoundError, match="none.txt"):
        read_boxes_txt(tmp_path / "none.txt")
    with pytest.raises(ValueError, match=r"\(T, 4\)"):
        write_boxes_txt(tmp_path / "x.txt", np.zeros((3, 5)))


def test_box_absent_negative_width():
    np.testing.assert_array_equal(box_absent([[1, 1, -2, 3], [1, 1, 2, 0], [1, 1, 2, 3]]), [True, True, False])


def test_box_conversions_are_inverse():
    xywh = np.array([[10, 20, 30, 40], [0.5, 1.5, 2, 3]])
    np.testing.assert_array_equal(xywh_to_xyxy(xywh), [[10, 20, 40, 60], [0.5, 1.5, 2.5, 4.5]])
    np.testing.assert_allclose(xyxy_to_xywh(xywh_to_xyxy(xywh)), xywh)


def test_points_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    tracks = PointTracks(rng.uniform(0, 50, (5, 3, 2)), rng.uniform(size=(5, 3)) > 0.5, (64, 48))
    write_points_npz(tmp_path / "p" / "v.npz", tracks)
    back = read_points_npz(tmp_path / "p" / "v.npz")
    assert back.trajs_2d.dtype == np.float32 and back.visibs.dtype == bool
    np.testing.assert_array_equal(back.trajs_2d, tracks.trajs_2d)
    np.testing.assert_array_equal(back.visibs, tracks.visibs)
    assert back.size == (64, 48)
    assert (back.num_frames, back.num_points) == (5, 3)


def test_points_size_is_optional(tmp_path):
    write_points_npz(tmp_path / "v.npz", PointTracks(np.zeros((2, 1, 2)), np.ones((2, 1), bool)))
    assert read_points_npz(tmp_path / "v.npz").size is None


def test_points_errors(tmp_path):
    np.savez(tmp_path / "nov.npz", trajs_2d=np.zeros((2, 1, 2)))
    with pytest.raises(ValueError, match=r"nov\.npz.*visibs"):
        read_points_npz(tmp_path / "nov.npz")
    np.savez(tmp_path / "shape.npz", trajs_2d=np.zeros((2, 1, 2)), visibs=np.ones((3, 1), bool))
    with pytest.raises(ValueError, match=r"shape\.npz.*visibs must have shape"):
        read_points_npz(tmp_path / "shape.npz")
    with pytest.raises(ValueError, match=r"\(T, N, 2\)"):
        PointTracks(np.zeros((2, 3)), np.ones((2, 3), bool))
    with pytest.raises(ValueError, match="size"):
        PointTracks(np.zeros((2, 1, 2)), np.ones((2, 1), bool), (0, 5))
    with pytest.raises(FileNotFoundError, match="gone.npz"):
        read_points_npz(tmp_path / "gone.npz")


def test_list_frames_natural_order_and_filters(tmp_path):
    for name in ["10.jpg", "2.JPG", "1.png", "3.jpeg", "notes.txt"]:
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in list_frames(tmp_path)] == ["1.png", "2.JPG", "3.jpeg", "10.jpg"]


def test_list_frames_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing"):
        list_frames(tmp_path / "missing")
    with pytest.raises(ValueError, match="no frames"):
        list_frames(tmp_path)


def test_ordered_xyxy_sorts_crossed_corners():
    from sam2pp.io import ordered_xyxy

    boxes = np.array([[10, 40, 2, 5], [1, 2, 3, 4]], dtype=np.float32)
    np.testing.assert_array_equal(ordered_xyxy(boxes), [[2, 5, 10, 40], [1, 2, 3, 4]])
    assert ordered_xyxy(boxes[0]).shape == (4,)


def test_list_frames_skips_hidden_files(tmp_path):
    for name in ["00000.jpg", "00001.jpg", "._00000.jpg", ".DS_Store", ".cover.png"]:
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in list_frames(tmp_path)] == ["00000.jpg", "00001.jpg"]


def test_binary_box_file_names_the_file(tmp_path):
    path = tmp_path / "boxes.txt"
    path.write_bytes(bytes(range(128, 256)))
    with pytest.raises(ValueError, match=r"boxes\.txt: not a text box file \(byte 0 is not UTF-8"):
        read_boxes_txt(path)
