"""Sine position encodings: 2-D grid encoding and the 1-D temporal encoding of object pointers."""

from __future__ import annotations

import math

import pytest
import torch

from sam2pp.modeling.position_encoding import PositionEmbeddingSine, sine_encoding_1d


def test_sine_encoding_1d_shape_and_origin() -> None:
    positions = torch.tensor([0.0, 0.25, -1.0])
    enc = sine_encoding_1d(positions, dim=8)
    assert enc.shape == (3, 8)
    assert torch.equal(enc[0, :4], torch.zeros(4))
    assert torch.equal(enc[0, 4:], torch.ones(4))


def test_sine_encoding_1d_frequencies() -> None:
    # Channels 2k and 2k+1 share wavelength temperature ** (2k / (dim / 2)).
    enc = sine_encoding_1d(torch.tensor([1.0]), dim=8, temperature=100.0)[0]
    wavelengths = torch.tensor([1.0, 1.0, 10.0, 10.0])
    torch.testing.assert_close(enc[:4], torch.sin(1.0 / wavelengths))
    torch.testing.assert_close(enc[4:], torch.cos(1.0 / wavelengths))


def test_sine_encoding_1d_keeps_leading_dims() -> None:
    assert sine_encoding_1d(torch.zeros(2, 5), dim=16).shape == (2, 5, 16)


def test_sine_encoding_1d_rejects_odd_dim() -> None:
    with pytest.raises(ValueError, match="even dim"):
        sine_encoding_1d(torch.zeros(3), dim=7)


def test_grid_encoding_layout() -> None:
    pe = PositionEmbeddingSine(num_pos_feats=8)
    out = pe(torch.zeros(2, 3, 4, 5))
    assert out.shape == (2, 8, 4, 5) and out.dtype == torch.float32
    # First half encodes rows: constant along x; its first channel is sin(2*pi*(y+1)/H).
    assert torch.equal(out[:, :4], out[:, :4, :, :1].expand(-1, -1, -1, 5))
    rows = torch.arange(1, 5, dtype=torch.float32) / (4 + 1e-6) * 2 * math.pi
    torch.testing.assert_close(out[0, 0, :, 0], torch.sin(rows))
    torch.testing.assert_close(out[0, 1, :, 0], torch.cos(rows))
    # Second half encodes columns: constant along y.
    assert torch.equal(out[:, 4:], out[:, 4:, :1, :].expand(-1, -1, 4, -1))


def test_grid_encoding_is_independent_of_input_values_and_dtype() -> None:
    pe = PositionEmbeddingSine(num_pos_feats=16)
    a = pe(torch.randn(1, 7, 6, 6))
    b = pe(torch.zeros(1, 2, 6, 6, dtype=torch.bfloat16))
    assert torch.equal(a, b)
    a.add_(1.0)  # the result must not alias the cached encoding
    assert torch.equal(pe(torch.zeros(1, 1, 6, 6)), b)


def test_grid_encoding_unnormalised_uses_raw_coordinates() -> None:
    pe = PositionEmbeddingSine(num_pos_feats=4, normalize=False)
    out = pe(torch.zeros(1, 1, 3, 2))
    torch.testing.assert_close(out[0, 0, :, 0], torch.sin(torch.tensor([1.0, 2.0, 3.0])))


BAD_SETTINGS = [{"num_pos_feats": 6}, {"num_pos_feats": 8, "normalize": False, "scale": 1.0}]


@pytest.mark.parametrize("kwargs", BAD_SETTINGS)
def test_grid_encoding_rejects_bad_settings(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        PositionEmbeddingSine(**kwargs)
