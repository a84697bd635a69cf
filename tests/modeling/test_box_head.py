"""Corner box head: frozen batch norm, soft-argmax grid, output shapes and checkpoint layout."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sam2pp.modeling.box_head import CornerBoxHead, FrozenBatchNorm2d


def test_frozen_batch_norm_matches_eval_batch_norm() -> None:
    torch.manual_seed(0)
    reference = nn.BatchNorm2d(6).eval()
    with torch.no_grad():
        for tensor in (reference.weight, reference.bias, reference.running_mean):
            tensor.copy_(torch.randn(6))
        reference.running_var.copy_(torch.rand(6) + 0.5)
    frozen = FrozenBatchNorm2d(6)
    frozen.load_state_dict(reference.state_dict())  # drops num_batches_tracked
    x = torch.randn(2, 6, 5, 5)
    torch.testing.assert_close(frozen(x), reference(x), atol=1e-5, rtol=0)
    assert not list(frozen.parameters()), "frozen statistics and affine terms must be buffers"


def test_soft_argmax_uses_cell_corners_at_stride() -> None:
    """A sharply peaked score at cell (row 3, col 5) lands at (4 * 5, 4 * 3), not the cell centre."""
    head = CornerBoxHead(inplanes=16, channel=16, stride=4)
    scores = torch.full((1, 2, 8, 8), -1e4)
    scores[0, 0, 3, 5] = 0.0
    scores[0, 1, 7, 0] = 0.0
    x, y = head.soft_argmax(scores)
    torch.testing.assert_close(x, torch.tensor([[20.0, 0.0]]))
    torch.testing.assert_close(y, torch.tensor([[12.0, 28.0]]))


def test_uniform_scores_give_the_mean_grid_position() -> None:
    head = CornerBoxHead(inplanes=16, channel=16, stride=4)
    x, y = head.soft_argmax(torch.zeros(1, 1, 8, 8))
    torch.testing.assert_close(x, torch.tensor([[14.0]]))  # mean of 0, 4, ..., 28
    torch.testing.assert_close(y, torch.tensor([[14.0]]))


def test_forward_shapes_and_range() -> None:
    torch.manual_seed(0)
    head = CornerBoxHead(inplanes=32, channel=32).eval()
    feats = torch.randn(2, 4, 16, 16), torch.randn(2, 8, 8, 8), torch.randn(2, 32, 4, 4)
    boxes = head(*feats, hyper_in=torch.randn(2, 3, 4))
    assert boxes.shape == (2, 3, 4)
    # Soft-argmax of a 16x16 map at stride 4 stays within [0, 60] px of a 64 px image.
    assert boxes.min() >= 0 and boxes.max() <= 60 / 64


def test_layout_matches_published_names() -> None:
    head = CornerBoxHead(inplanes=64, channel=64)
    keys = head.state_dict().keys()
    for corner in ("tl", "br"):
        assert f"adjust3_{corner}.1.1.running_var" in keys
        assert f"adjust4_{corner}.0.0.weight" in keys
        assert f"adjust_8_to_8_{corner}.0.weight" in keys
        assert f"conv5_{corner}.weight" not in keys  # the published high-res variant has no 1-channel conv
    assert head.adjust_8_to_8_tl[0].in_channels == 16 and head.adjust_4_to_4_br[0].in_channels == 8


def test_trainable_batch_norm_variant() -> None:
    head = CornerBoxHead(inplanes=16, channel=16, freeze_bn=False)
    assert isinstance(head.conv1_tl[1], nn.BatchNorm2d)


def test_rejects_mismatched_inputs() -> None:
    head = CornerBoxHead(inplanes=32, channel=32)
    feats = torch.randn(1, 4, 16, 16), torch.randn(1, 8, 8, 8), torch.randn(1, 32, 4, 4)
    with pytest.raises(ValueError, match="hyper_in"):
        head(*feats, hyper_in=torch.randn(1, 3, 5))
    with pytest.raises(ValueError, match="strides"):
        head(feats[0], torch.randn(1, 8, 4, 4), feats[2], hyper_in=torch.randn(1, 3, 4))
