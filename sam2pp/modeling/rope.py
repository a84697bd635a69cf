"""Axial rotary position encoding (RoPE) for the 2-D token grids of memory attention.

A head vector of width D is read as D/2 pairs; pair i is rotated by an angle that grows with the
token's column (first D/4 pairs) or row (last D/4 pairs). Queries and keys rotated this way give
attention scores that depend on the offset between their grid positions, not on the positions.
Tokens are in row-major order: token t sits at column t % width, row t // width.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sam2pp.modeling.attention import Attention


def axial_rope_angles(head_dim: int, width: int, height: int, theta: float = 10000.0) -> Tensor:
    """Rotation angles (width * height, head_dim / 2), float32: column pairs first, then row pairs."""
    if head_dim <= 0 or head_dim % 4:
        raise ValueError(f"axial RoPE needs a head width divisible by 4, got {head_dim}")
    frequencies = 1.0 / (theta ** (torch.arange(0, head_dim, 4)[: head_dim // 4].float() / head_dim))
    token = torch.arange(width * height, dtype=torch.float32)
    column = token % width
    row = torch.div(token, width, rounding_mode="floor")
    return torch.cat([torch.outer(column, frequencies), torch.outer(row, frequencies)], dim=-1)


def rotate_pairs(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate channel pairs (2i, 2i+1) of x (..., N, D) by angles given as cos/sin (N, D/2).

    Computed in float32 and returned in x's dtype; x is not modified (autograd-safe).
    """
    pairs = x.float().unflatten(-1, (-1, 2))
    even, odd = pairs[..., 0], pairs[..., 1]
    rotated = torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1)
    return rotated.flatten(-2).to(x.dtype)


class RoPEAttention(Attention):
    """Attention with axial RoPE on queries and keys; the shapes are those of `Attention`.

    `feat_sizes` (width, height) is the grid the token sequence is expected to form; any other
    token count N is taken as a square sqrt(N) x sqrt(N) grid. With `rope_k_repeat`, the keys may
    hold several grids' worth of tokens (memories of several frames), each rotated like the
    query grid. The angles are derived data: cached per (token count, device), not in the
    state dict.
    """

    def __init__(
        self,
        embedding_dim: int,
        num_heads: int,
        downsample_rate: int = 1,
        dropout: float = 0.0,
        kv_in_dim: int | None = None,
        rope_theta: float = 10000.0,
        rope_k_repeat: bool = False,
        feat_sizes: tuple[int, int] = (64, 64),
    ) -> None:
        super().__init__(embedding_dim, num_heads, downsample_rate, dropout, kv_in_dim)
        self.head_dim = self.internal_dim // num_heads
        if self.head_dim % 4:
            raise ValueError(f"RoPE needs a per-head width divisible by 4, got {self.head_dim}")
        self.rope_theta = rope_theta
        self.rope_k_repeat = rope_k_repeat
        self.feat_sizes = (int(feat_sizes[0]), int(feat_sizes[1]))
        self._rotations: dict[tuple[int, torch.device], tuple[Tensor, Tensor]] = {}

    def _grid(self, num_tokens: int) -> tuple[int, int]:
        width, height = self.feat_sizes
        if num_tokens == width * height:
            return width, height
        side = round(num_tokens**0.5)  # exact for any feature grid; math.isqrt would break a compiled graph
        if side * side != num_tokens:
            raise ValueError(
                f"RoPE got {num_tokens} query tokens: neither feat_sizes={self.feat_sizes} nor a square grid"
            )
        return side, side

    def rotation(self, num_tokens: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """cos, sin (num_tokens, head_dim / 2) float32 for a query grid of num_tokens tokens."""
        key = (num_tokens, device)
        if key not in self._rotations:
            # Ordinary tensors even when first called under inference_mode, so training can reuse them.
            with torch.inference_mode(False), torch.no_grad():
                angles = axial_rope_angles(self.head_dim, *self._grid(num_tokens), theta=self.rope_theta)
                self._rotations[key] = (angles.cos().to(device), angles.sin().to(device))
        return self._rotations[key]

    def rotate(self, q: Tensor, k: Tensor, num_k_exclude_rope: int = 0) -> tuple[Tensor, Tensor]:
        """RoPE on q (B, h, Nq, d) and on all but the last `num_k_exclude_rope` keys of k (B, h, Nk, d)."""
        num_q, num_k = q.shape[-2], k.shape[-2]
        if not 0 <= num_k_exclude_rope <= num_k:
            raise ValueError(f"num_k_exclude_rope={num_k_exclude_rope} is outside [0, {num_k}] (the key count)")
        cos, sin = self.rotation(num_q, q.device)
        q = rotate_pairs(q, cos, sin)
        num_k_rope = num_k - num_k_exclude_rope
        if num_k_rope == 0:
            return q, k
        if num_k_rope != num_q:
            if not self.rope_k_repeat or num_k_rope % num_q:
                raise ValueError(
                    f"{num_k_rope} rotated keys do not match {num_q} queries"
                    + ("" if self.rope_k_repeat else " (set rope_k_repeat to tile the query grid over the keys)")
                )
            repeats = num_k_rope // num_q
            cos, sin = cos.repeat(repeats, 1), sin.repeat(repeats, 1)
        rotated = rotate_pairs(k[..., :num_k_rope, :], cos, sin)
        if num_k_exclude_rope:
            rotated = torch.cat((rotated, k[..., num_k_rope:, :]), dim=-2)
        return q, rotated

    def forward(self, q: Tensor, k: Tensor, v: Tensor, num_k_exclude_rope: int = 0) -> Tensor:
        """q (B, Nq, C), k/v (B, Nk, C_kv) -> (B, Nq, C); the last `num_k_exclude_rope` keys
        (object-pointer tokens, which have no grid position) are not rotated."""
        q, k, v = self.project(q, k, v)
        q, k = self.rotate(q, k, num_k_exclude_rope)
        return self.attend(q, k, v)

    def extra_repr(self) -> str:
        return f"rope_theta={self.rope_theta}, rope_k_repeat={self.rope_k_repeat}, feat_sizes={self.feat_sizes}"
