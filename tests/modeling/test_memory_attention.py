"""Memory attention: parity with the published model's frame-1 call, key layout, input checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import PARITY, SHARED, need

from sam2pp.modeling.memory_attention import MemoryAttention, build_memory_attention
from sam2pp.modeling.rope import RoPEAttention

ATOL = 1e-4


def _task_weights(state_dict: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}


@pytest.fixture(scope="module")
def tiny_config() -> dict:
    return json.loads(need(PARITY / "tiny" / "config.json").read_text())


@pytest.fixture(scope="module")
def tiny_state_dict() -> dict[str, torch.Tensor]:
    return torch.load(need(PARITY / "tiny" / "checkpoint.pt"), map_location="cpu", weights_only=True)["model"]


@pytest.mark.parametrize(("case", "task"), [("mask_single", "mask"), ("box_single", "box")])
def test_parity_frame1(case: str, task: str, tiny_config: dict, tiny_state_dict: dict) -> None:
    fixture = np.load(need(PARITY / "tiny" / case / "intermediates.npz"))
    model = build_memory_attention(tiny_config["memory_attention"]).eval()
    model.load_state_dict(_task_weights(tiny_state_dict, f"memory_attention_{task}."), strict=True)

    def tensor(name: str) -> torch.Tensor:
        return torch.from_numpy(fixture[f"f1_memattn_call0_{name}"])

    num_ptr = int(fixture["f1_memattn_call0_num_obj_ptr_tokens"])
    assert num_ptr == 4  # the fixture exercises the pointer-token exclusion
    with torch.no_grad():
        out = model(tensor("curr"), tensor("memory"), tensor("curr_pos"), tensor("memory_pos"), num_ptr)
    torch.testing.assert_close(out, tensor("out"), atol=ATOL, rtol=0)


def test_reference_keys_and_shapes() -> None:
    config = json.loads(need(SHARED / "reference" / "sam2pp_hiera_b+_mame.config.json").read_text())
    reference = json.loads(need(SHARED / "reference" / "sam2pp_hiera_b+_mame.keys.json").read_text())
    prefix = "memory_attention_mask."
    expected = {k[len(prefix) :]: list(shape) for k, shape in reference.items() if k.startswith(prefix)}
    model = build_memory_attention(config["memory_attention"])
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == expected


def _small_config(**layer_overrides) -> dict:
    """A 2-layer model on a 4x4 grid: width 16, memory width 8."""
    layer = {
        "activation": "relu",
        "d_model": 16,
        "dim_feedforward": 32,
        "dropout": 0.1,
        "pos_enc_at_attn": False,
        "pos_enc_at_cross_attn_keys": True,
        "pos_enc_at_cross_attn_queries": False,
        "self_attention": {"type": "RoPEAttention", "embedding_dim": 16, "num_heads": 1, "feat_sizes": [4, 4]},
        "cross_attention": {
            "type": "RoPEAttention",
            "embedding_dim": 16,
            "num_heads": 1,
            "feat_sizes": [4, 4],
            "kv_in_dim": 8,
            "rope_k_repeat": True,
        },
    }
    return {"d_model": 16, "pos_enc_at_input": True, "num_layers": 2, "layer": {**layer, **layer_overrides}}


def _small_model() -> MemoryAttention:
    torch.manual_seed(0)
    return build_memory_attention(_small_config()).eval()


def test_layers_are_independent_copies() -> None:
    model = _small_model()
    assert isinstance(model.layers[1].cross_attn_image, RoPEAttention)
    assert model.layers[0].linear1.weight is not model.layers[1].linear1.weight
    with torch.no_grad():
        model.layers[0].linear1.weight.add_(1.0)
    assert not torch.equal(model.layers[0].linear1.weight, model.layers[1].linear1.weight)


def test_pointer_tokens_are_position_free() -> None:
    """Shuffling the pointer tokens (with their positions) must not change the output; shuffling
    rotated memory tokens must, since RoPE ties them to grid positions."""
    model = _small_model()
    curr, curr_pos = torch.randn(16, 2, 16), torch.randn(16, 2, 16)
    memory, memory_pos = torch.randn(16 + 3, 2, 8), torch.randn(16 + 3, 2, 8)
    with torch.no_grad():
        base = model(curr, memory, curr_pos, memory_pos, num_obj_ptr_tokens=3)
        order = torch.tensor(list(range(16)) + [18, 16, 17])
        same = model(curr, memory[order], curr_pos, memory_pos[order], num_obj_ptr_tokens=3)
        swap = torch.tensor([1, 0] + list(range(2, 19)))
        changed = model(curr, memory[swap], curr_pos, memory_pos[swap], num_obj_ptr_tokens=3)
    assert base.shape == (16, 2, 16)
    torch.testing.assert_close(same, base)
    assert not torch.allclose(changed, base, atol=1e-4)


def test_gradients_reach_every_parameter() -> None:
    model = _small_model().train()
    curr = torch.randn(16, 1, 16, requires_grad=True)
    out = model(curr, torch.randn(20, 1, 8), torch.randn(16, 1, 16), torch.randn(20, 1, 8), num_obj_ptr_tokens=4)
    out.square().sum().backward()
    assert curr.grad is not None
    assert all(p.grad is not None for p in model.parameters())


def test_input_checks() -> None:
    model = _small_model()
    with pytest.raises(ValueError, match="batch sizes differ"):
        model(torch.randn(16, 2, 16), torch.randn(16, 3, 8))
    with pytest.raises(ValueError, match="sequence-first"):
        model(torch.randn(2, 16, 4, 4), torch.randn(16, 2, 8))
    with pytest.raises(ValueError, match="batch_first"):
        MemoryAttention(16, True, model.layers[0], 1, batch_first=False)
    with pytest.raises(ValueError, match="only type 'MemoryAttention'"):
        build_memory_attention({**_small_config(), "type": "Transformer"})
    with pytest.raises(ValueError, match="unknown activation"):
        build_memory_attention(_small_config(activation="swish"))

