"""Memory encoder: parity with the published model on frames 0 and 1, key layout, parts."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import PARITY, SHARED, need
from torch import nn

from sam2pp.modeling.memory_encoder import (
    CXBlock,
    Fuser,
    MaskDownSampler,
    MemoryEncoding,
    activation_class,
    build_memory_encoder,
)

ATOL = 1e-4


@pytest.fixture(scope="module")
def tiny_config() -> dict:
    return json.loads(need(PARITY / "tiny" / "config.json").read_text())


@pytest.fixture(scope="module")
def tiny_state_dict() -> dict[str, torch.Tensor]:
    return torch.load(need(PARITY / "tiny" / "checkpoint.pt"), map_location="cpu", weights_only=True)["model"]


@pytest.mark.parametrize("frame", [0, 1])
@pytest.mark.parametrize(("case", "task"), [("mask_single", "mask"), ("box_single", "box")])
def test_parity(case: str, task: str, frame: int, tiny_config: dict, tiny_state_dict: dict) -> None:
    fixture = np.load(need(PARITY / "tiny" / case / "intermediates.npz"))
    encoder = build_memory_encoder(tiny_config["memory_encoder"]).eval()
    prefix = f"memory_encoder_{task}."
    weights = {k[len(prefix) :]: v for k, v in tiny_state_dict.items() if k.startswith(prefix)}
    encoder.load_state_dict(weights, strict=True)

    def tensor(name: str) -> torch.Tensor:
        return torch.from_numpy(fixture[f"f{frame}_memenc_call0_{name}"])

    # The fixture's masks are already sigmoid * 20 - 10, as the tracker passes them.
    with torch.no_grad():
        result = encoder(tensor("pix_feat"), tensor("masks"), skip_mask_sigmoid=True)
    assert isinstance(result, MemoryEncoding)
    torch.testing.assert_close(result.features, tensor("vision_features"), atol=ATOL, rtol=0)
    torch.testing.assert_close(result.pos_enc, tensor("vision_pos_enc"), atol=ATOL, rtol=0)


def test_reference_keys_and_shapes() -> None:
    config = json.loads(need(SHARED / "reference" / "sam2pp_hiera_b+_mame.config.json").read_text())
    reference = json.loads(need(SHARED / "reference" / "sam2pp_hiera_b+_mame.keys.json").read_text())
    prefix = "memory_encoder_mask."
    expected = {k[len(prefix) :]: list(shape) for k, shape in reference.items() if k.startswith(prefix)}
    encoder = build_memory_encoder(config["memory_encoder"])
    assert {k: list(v.shape) for k, v in encoder.state_dict().items()} == expected


def test_sigmoid_applied_unless_skipped(tiny_config: dict) -> None:
    torch.manual_seed(0)
    encoder = build_memory_encoder(tiny_config["memory_encoder"]).eval()
    pix_feat, logits = torch.randn(2, 64, 4, 4), torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        from_logits = encoder(pix_feat, logits)
        from_probs = encoder(pix_feat, logits.sigmoid(), skip_mask_sigmoid=True)
    assert from_logits.features.shape == (2, 16, 4, 4)
    assert from_logits.pos_enc.shape == (2, 16, 4, 4)
    torch.testing.assert_close(from_logits.features, from_probs.features)


def test_mismatched_inputs_are_named(tiny_config: dict) -> None:
    encoder = build_memory_encoder(tiny_config["memory_encoder"])
    with pytest.raises(ValueError, match="do not match the features"):
        encoder(torch.randn(1, 64, 4, 4), torch.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match=r"masks must be \(B, 1, H, W\)"):
        encoder(torch.randn(1, 64, 4, 4), torch.randn(1, 64, 64))


def test_mask_downsampler_stages() -> None:
    sampler = MaskDownSampler(embed_dim=8, kernel_size=3, stride=2, padding=1, total_stride=8, activation="GELU")
    convs = [m for m in sampler.encoder if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [4, 16, 64, 8]
    assert sampler(torch.zeros(1, 1, 32, 32)).shape == (1, 8, 4, 4)
    with pytest.raises(ValueError, match="not a power"):
        MaskDownSampler(stride=2, total_stride=12)


def test_activation_class() -> None:
    assert activation_class("GELU") is nn.GELU
    assert activation_class(nn.ReLU) is nn.ReLU
    with pytest.raises(ValueError, match="not a torch.nn module class name"):
        activation_class("functional")
    with pytest.raises(TypeError):
        activation_class(torch.relu)


def test_cx_block_starts_near_identity_and_fuser_copies_are_independent() -> None:
    block = CXBlock(dim=8)
    x = torch.randn(1, 8, 6, 6)
    torch.testing.assert_close(block(x), x, atol=1e-4, rtol=0)  # layer scale starts at 1e-6
    assert CXBlock(dim=8, layer_scale_init_value=0.0).gamma is None
    fuser = Fuser(block, num_layers=2, dim=8, input_projection=True)
    assert isinstance(fuser.proj, nn.Conv2d)
    assert fuser.layers[0].gamma is not fuser.layers[1].gamma
    with pytest.raises(ValueError, match="needs dim"):
        Fuser(block, num_layers=1, input_projection=True)


def test_gradients_reach_every_parameter(tiny_config: dict) -> None:
    torch.manual_seed(0)
    encoder = build_memory_encoder(tiny_config["memory_encoder"]).train()
    pix_feat = torch.randn(1, 64, 4, 4, requires_grad=True)
    encoder(pix_feat, torch.randn(1, 1, 64, 64)).features.square().sum().backward()
    assert pix_feat.grad is not None
    assert all(p.grad is not None for p in encoder.parameters())
