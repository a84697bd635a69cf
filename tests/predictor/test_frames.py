"""Frame sources: frames of any PIL mode become the right 8-bit RGB, and hidden files are not frames."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sam2pp.predictor.frames import open_video
from sam2pp.predictor.preprocess import to_rgb

GRAY = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (8, 1))  # (8, 64) a ramp over the whole 8-bit range


def test_16_bit_grayscale_png_keeps_its_top_byte(tmp_path):
    Image.fromarray(GRAY.astype(np.uint16) * 257).save(tmp_path / "00000.png")
    with Image.open(tmp_path / "00000.png") as image:
        assert image.mode == "I;16"
    frame = open_video(tmp_path).frame(0)
    assert frame.dtype == np.uint8 and frame.shape == (8, 64, 3)
    np.testing.assert_array_equal(frame, np.repeat(GRAY[..., None], 3, axis=-1))


def test_32_bit_integer_frames_hold_16_bit_values_or_are_refused(tmp_path):
    Image.fromarray(GRAY.astype(np.int32) * 257).save(tmp_path / "wide.tif")
    np.testing.assert_array_equal(open_video([tmp_path / "wide.tif"]).frame(0)[..., 0], GRAY)
    Image.fromarray(np.array([[0, 1 << 24]], np.int32)).save(tmp_path / "deep.tif")
    with pytest.raises(ValueError, match=r"frame 0 \(deep.tif\): I pixel values span 0..16777216"):
        open_video([tmp_path / "deep.tif"]).frame(0)


def test_other_modes_convert_as_pil_does():
    rgba = Image.fromarray(np.full((4, 4, 4), 200, np.uint8), mode="RGBA")
    assert to_rgb(rgba, "x").mode == "RGB" and np.asarray(to_rgb(rgba, "x")).max() == 200
    with pytest.raises(ValueError, match="x: floating-point images"):
        to_rgb(Image.fromarray(np.zeros((4, 4), np.float32)), "x")


def test_hidden_files_in_a_frame_folder_are_skipped(tmp_path):
    for t in range(3):
        Image.fromarray(np.full((8, 8, 3), 40 * t, np.uint8)).save(tmp_path / f"{t:05d}.jpg")
    (tmp_path / "._00000.jpg").write_bytes(b"\x00\x05\x16\x07 macOS resource fork")
    (tmp_path / ".thumb.png").write_bytes(b"junk")
    source = open_video(tmp_path)
    assert source.names == ["00000.jpg", "00001.jpg", "00002.jpg"]
    assert source.frame(2).shape == (8, 8, 3)
