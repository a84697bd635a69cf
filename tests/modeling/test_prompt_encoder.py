"""Prompt encoder: parity with the published model's calls, box-corner equivalence, input checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import PARITY, need

from sam2pp.modeling.prompt_encoder import PromptEncoder, RandomFourierEncoding, build_prompt_encoder

ATOL = 1e-4
PREFIX = "sam_prompt_encoder."


@pytest.fixture(scope="module")
def tiny_encoder() -> PromptEncoder:
    config = json.loads(need(PARITY / "tiny" / "config.json").read_text())
    state = torch.load(need(PARITY / "tiny" / "checkpoint.pt"), map_location="cpu", weights_only=True)["model"]
    encoder = build_prompt_encoder(config).eval()
    encoder.load_state_dict({k[len(PREFIX) :]: v for k, v in state.items() if k.startswith(PREFIX)}, strict=True)
    return encoder


@pytest.mark.parametrize("frame", [0, 1])
@pytest.mark.parametrize("case", ["mask_single", "box_single"])
def test_parity(case: str, frame: int, tiny_encoder: PromptEncoder) -> None:
    """Covers: padding point only (mask frames), mask input (mask frame 0), box corners as points (box frame 0)."""
    fixture = np.load(need(PARITY / "tiny" / case / "intermediates.npz"))
    prefix = f"f{frame}_prompt_encoder_call0_"

    def tensor(name: str) -> torch.Tensor | None:
        key = prefix + name
        return torch.from_numpy(fixture[key]) if key in fixture.files else None

    with torch.no_grad():
        sparse, dense = tiny_encoder((tensor("in_point_coords"), tensor("in_point_labels")), None, tensor("in_masks"))
    torch.testing.assert_close(sparse, tensor("sparse"), atol=ATOL, rtol=0)
    torch.testing.assert_close(dense, tensor("dense"), atol=ATOL, rtol=0)


def test_box_equals_its_corners_as_points(tiny_encoder: PromptEncoder) -> None:
    box = torch.tensor([[42.1, 91.3, 141.0, 206.9]])
    corners = box.reshape(1, 2, 2)
    labels = torch.tensor([[2, 3]])
    with torch.no_grad():
        from_box = tiny_encoder(None, box, None).sparse
        from_points = tiny_encoder((corners, labels), None, None)
        unpadded = from_points.sparse[:, :2]
    assert from_box.shape == (1, 2, tiny_encoder.embed_dim)
    torch.testing.assert_close(from_box, unpadded, atol=0, rtol=0)
    # Without a box the point list gets one padding token.
    assert from_points.sparse.shape[1] == 3
    torch.testing.assert_close(from_points.sparse[0, 2], tiny_encoder.not_a_point_embed.weight[0], atol=0, rtol=0)


def test_points_and_box_are_concatenated_without_padding(tiny_encoder: PromptEncoder) -> None:
    points = (torch.tensor([[[10.0, 20.0]]]), torch.tensor([[1]]))
    box = torch.tensor([[5.0, 6.0, 70.0, 80.0]])
    with torch.no_grad():
        sparse = tiny_encoder(points, box, None).sparse
    assert sparse.shape == (1, 3, tiny_encoder.embed_dim)


def test_dense_defaults_to_no_mask_embedding(tiny_encoder: PromptEncoder) -> None:
    with torch.no_grad():
        dense = tiny_encoder(None, None, None).dense
    h, w = tiny_encoder.image_embedding_size
    assert dense.shape == (1, tiny_encoder.embed_dim, h, w)
    torch.testing.assert_close(dense[0, :, 3, 5], tiny_encoder.no_mask_embed.weight[0], atol=0, rtol=0)


def test_dense_pe_matches_point_encoding_at_cell_centres() -> None:
    """The grid encoding of cell (i, j) is the point encoding of its centre (the +0.5 shift of points)."""
    torch.manual_seed(0)
    encoder = PromptEncoder(embed_dim=32, image_embedding_size=(4, 4), input_image_size=(64, 64))
    pe = encoder.dense_pe()
    assert pe.shape == (1, 32, 4, 4)
    # Cell (row 1, col 2) of a 4x4 grid over 64 px covers x in [32, 48), y in [16, 32): centre (40, 24).
    point = encoder.pe_layer.encode_pixels(torch.tensor([[[40.0, 24.0]]]), (64, 64))
    torch.testing.assert_close(pe[0, :, 1, 2], point[0, 0], atol=1e-6, rtol=0)


def test_random_fourier_encoding_is_bounded_and_sized() -> None:
    encoding = RandomFourierEncoding(8)
    out = encoding.encode_unit(torch.rand(3, 5, 2))
    assert out.shape == (3, 5, 16)
    torch.testing.assert_close(out[..., :8] ** 2 + out[..., 8:] ** 2, torch.ones(3, 5, 8))


@pytest.mark.parametrize(
    ("points", "boxes", "masks", "message"),
    [
        ((torch.zeros(1, 2, 2), torch.tensor([[1, 7]])), None, None, "labels must lie"),
        ((torch.zeros(1, 2, 3), torch.ones(1, 2)), None, None, "coords"),
        (None, torch.zeros(1, 2, 2), None, "boxes must be"),
        (None, None, torch.zeros(1, 1, 32, 32), "masks must be"),
        ((torch.zeros(2, 1, 2), torch.ones(2, 1)), torch.zeros(1, 4), None, "batch size"),
    ],
)
def test_rejects_bad_prompts(points, boxes, masks, message: str) -> None:
    encoder = PromptEncoder(embed_dim=16, image_embedding_size=(4, 4), input_image_size=(64, 64))
    with pytest.raises(ValueError, match=message):
        encoder(points, boxes, masks)
