"""Axial RoPE: the angle layout, the rotation's invariants and RoPEAttention's handling of keys."""

from __future__ import annotations

import copy

import pytest
import torch

from sam2pp.modeling.rope import RoPEAttention, axial_rope_angles, rotate_pairs


def _complex_rotation(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Independent reference: multiply channel pairs, read as complex numbers, by exp(i * angle)."""
    pairs = torch.view_as_complex(x.reshape(*x.shape[:-1], -1, 2).contiguous())
    return torch.view_as_real(pairs * torch.polar(torch.ones_like(angles), angles)).flatten(-2)


def test_angles_layout() -> None:
    angles = axial_rope_angles(head_dim=8, width=3, height=2, theta=100.0)
    assert angles.shape == (6, 4)
    frequencies = torch.tensor([1.0, 0.1])  # 1 / 100 ** (0 / 8), 1 / 100 ** (4 / 8)
    column = torch.tensor([0, 1, 2, 0, 1, 2.0])
    row = torch.tensor([0, 0, 0, 1, 1, 1.0])
    torch.testing.assert_close(angles[:, :2], column[:, None] * frequencies)
    torch.testing.assert_close(angles[:, 2:], row[:, None] * frequencies)


def test_angles_reject_bad_head_width() -> None:
    with pytest.raises(ValueError, match="divisible by 4"):
        axial_rope_angles(head_dim=6, width=2, height=2)


def test_rotate_pairs_matches_complex_multiplication_and_keeps_norms() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 16, 8)
    angles = axial_rope_angles(8, 4, 4)
    rotated = rotate_pairs(x, angles.cos(), angles.sin())
    torch.testing.assert_close(rotated, _complex_rotation(x, angles))
    pair_norms = lambda t: t.unflatten(-1, (-1, 2)).norm(dim=-1)  # noqa: E731
    torch.testing.assert_close(pair_norms(rotated), pair_norms(x))
    # Token 0 sits at the origin: no rotation.
    torch.testing.assert_close(rotated[..., 0, :], x[..., 0, :])


def test_scores_depend_only_on_grid_offset() -> None:
    torch.manual_seed(0)
    q, k = torch.randn(8), torch.randn(8)
    angles = axial_rope_angles(8, 5, 5)
    cos, sin = angles.cos(), angles.sin()
    q_all = rotate_pairs(q.expand(25, 8), cos, sin)
    k_all = rotate_pairs(k.expand(25, 8), cos, sin)
    # (col 1, row 0) . (col 3, row 2) and (col 2, row 1) . (col 4, row 3): same offset (2, 2).
    torch.testing.assert_close(q_all[1] @ k_all[13], q_all[7] @ k_all[19])


def _attention(**kwargs) -> RoPEAttention:
    torch.manual_seed(0)
    return RoPEAttention(embedding_dim=16, num_heads=2, feat_sizes=(4, 4), **kwargs).eval()


def test_frequencies_not_in_state_dict() -> None:
    keys = set(_attention().state_dict())
    assert keys == {f"{proj}.{w}" for proj in ("q_proj", "k_proj", "v_proj", "out_proj") for w in ("weight", "bias")}


def test_excluded_keys_untouched_and_rest_rotated() -> None:
    attn = _attention(rope_k_repeat=True)
    q, k = torch.randn(1, 2, 16, 8), torch.randn(1, 2, 16 * 2 + 3, 8)
    q_rot, k_rot = attn.rotate(q, k, num_k_exclude_rope=3)
    assert torch.equal(k_rot[..., -3:, :], k[..., -3:, :])
    angles = axial_rope_angles(8, 4, 4)
    torch.testing.assert_close(q_rot, _complex_rotation(q, angles))
    # Two frames of memory: each tiled with the query grid's angles.
    torch.testing.assert_close(k_rot[..., :32, :], _complex_rotation(k[..., :32, :], angles.repeat(2, 1)))


def test_key_count_mismatch_needs_repeat() -> None:
    q, k = torch.randn(1, 2, 16, 8), torch.randn(1, 2, 32, 8)
    with pytest.raises(ValueError, match="rope_k_repeat"):
        _attention().rotate(q, k)
    with pytest.raises(ValueError, match="do not match"):
        _attention(rope_k_repeat=True).rotate(q, k[..., :20, :])
    with pytest.raises(ValueError, match="num_k_exclude_rope"):
        _attention().rotate(q, k, num_k_exclude_rope=40)


def test_other_token_counts_use_a_square_grid() -> None:
    attn = _attention()
    q = torch.randn(1, 2, 36, 8)
    q_rot, _ = attn.rotate(q, q)
    torch.testing.assert_close(q_rot, _complex_rotation(q, axial_rope_angles(8, 6, 6)))
    with pytest.raises(ValueError, match="square"):
        attn.rotate(torch.randn(1, 2, 10, 8), torch.randn(1, 2, 10, 8))


def test_forward_shapes_and_gradients_through_partial_rotation() -> None:
    attn = _attention(rope_k_repeat=True, kv_in_dim=4)
    attn.train()
    q = torch.randn(2, 16, 16, requires_grad=True)
    kv = torch.randn(2, 16 + 4, 4, requires_grad=True)
    out = attn(q, kv, kv, num_k_exclude_rope=4)
    assert out.shape == (2, 16, 16)
    out.square().sum().backward()
    assert q.grad is not None and q.grad.abs().sum() > 0
    # Both rotated and excluded keys receive gradient.
    assert (kv.grad[:, :16].abs().sum() > 0) and (kv.grad[:, 16:].abs().sum() > 0)
    assert attn.q_proj.weight.grad is not None


def test_cache_built_in_inference_mode_is_usable_for_training() -> None:
    attn = _attention()
    x = torch.randn(1, 16, 16)
    with torch.inference_mode():
        attn(x, x, x)
    x.requires_grad_(True)
    attn(x, x, x).sum().backward()
    assert x.grad is not None


def test_deepcopy_gives_independent_equal_module() -> None:
    attn = _attention()
    twin = copy.deepcopy(attn)
    x = torch.randn(1, 16, 16)
    torch.testing.assert_close(attn(x, x, x), twin(x, x, x))
