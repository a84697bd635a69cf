"""Hiera: the hierarchical vision transformer trunk of the image encoder.

A 7x7 stride-4 patch embedding followed by four stages of transformer blocks. The first
block of stages 2-4 halves the grid by max-pooling its queries ("q-pooling") and doubles
the width and head count. Most blocks attend within square windows (zero-padded when the
grid is not a multiple of the window); the blocks listed in `global_att_blocks` attend over
the whole grid. Tokens are kept channels-last, (B, H, W, C), between blocks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def window_partition(x: Tensor, window: int) -> tuple[Tensor, tuple[int, int]]:
    """(B, H, W, C) -> (B * nH * nW, window, window, C), zero-padding H and W up to multiples of
    `window`; also returns the window counts (nH, nW)."""
    b, h, w, c = x.shape
    pad_h, pad_w = -h % window, -w % window
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    n_h, n_w = (h + pad_h) // window, (w + pad_w) // window
    x = x.view(b, n_h, window, n_w, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, window, window, c), (n_h, n_w)


def window_unpartition(windows: Tensor, counts: tuple[int, int], size: tuple[int, int]) -> Tensor:
    """Inverse of `window_partition`: (B * nH * nW, wh, ww, C) -> (B, H, W, C), dropping the padding.

    Window sides (wh, ww) are read from `windows`, so this also reassembles windows shrunk by
    q-pooling; `size` is the grid (H, W) to crop to.
    """
    n_h, n_w = counts
    _, wh, ww, c = windows.shape
    x = windows.reshape(-1, n_h, n_w, wh, ww, c).permute(0, 1, 3, 2, 4, 5)
    x = x.reshape(-1, n_h * wh, n_w * ww, c)
    return x[:, : size[0], : size[1], :]


def pool_channels_last(x: Tensor, pool: nn.Module | None) -> Tensor:
    """Apply a 2-D pooling layer to (B, H, W, C) tokens."""
    if pool is None:
        return x
    return pool(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


def drop_path(x: Tensor, rate: float, training: bool) -> Tensor:
    """Stochastic depth: in training, zero whole samples of a residual branch with probability
    `rate` and rescale the rest; the identity in eval mode."""
    if rate == 0.0 or not training:
        return x
    keep = 1.0 - rate
    mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
    return x * mask / keep


class PatchEmbed(nn.Module):
    """(B, 3, S, S) image -> (B, S/4, S/4, C) tokens with one 7x7, stride-4 convolution."""

    def __init__(self, embed_dim: int, in_chans: int = 3) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=7, stride=4, padding=3)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).permute(0, 2, 3, 1)


class TwoLayerMLP(nn.Module):
    """Linear -> GELU -> Linear, stored as `layers.0` / `layers.1` like the published blocks."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(dim, hidden_dim), nn.Linear(hidden_dim, dim)])
        self.act = nn.GELU()

    def forward(self, x: Tensor) -> Tensor:
        return self.layers[1](self.act(self.layers[0](x)))


class PooledAttention(nn.Module):
    """Multi-head self-attention over (B, H, W, C) tokens, optionally max-pooling the queries so
    the output grid is the pooled one: (B, H, W, dim) -> (B, H', W', dim_out)."""

    def __init__(self, dim: int, dim_out: int, num_heads: int, q_pool: nn.Module | None = None) -> None:
        super().__init__()
        if dim_out % num_heads:
            raise ValueError(f"num_heads={num_heads} must divide the block width {dim_out}")
        self.num_heads = num_heads
        self.q_pool = q_pool
        self.qkv = nn.Linear(dim, dim_out * 3)
        self.proj = nn.Linear(dim_out, dim_out)

    def forward(self, x: Tensor) -> Tensor:
        b, h, w, _ = x.shape
        q, k, v = self.qkv(x).reshape(b, h * w, 3, self.num_heads, -1).unbind(2)
        if self.q_pool is not None:
            q = pool_channels_last(q.reshape(b, h, w, -1), self.q_pool)
            h, w = q.shape[1:3]
            q = q.reshape(b, h * w, self.num_heads, -1)
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return self.proj(out.transpose(1, 2).reshape(b, h, w, -1))


class HieraBlock(nn.Module):
    """Pre-norm transformer block on (B, H, W, dim) tokens -> (B, H', W', dim_out).

    `window` is the attention window side (0 = global attention). With `q_stride` the block
    pools its queries and its shortcut (the shortcut is projected to `dim_out` when the width
    changes), so the grid shrinks by `q_stride`.
    """

    def __init__(
        self,
        dim: int,
        dim_out: int,
        num_heads: int,
        window: int,
        q_stride: tuple[int, int] | None = None,
        drop_path_rate: float = 0.0,
        mlp_ratio: float = 4.0,
    ) -> None:
        super().__init__()
        self.window = window
        self.dim_out = dim_out
        self.drop_path_rate = drop_path_rate
        self.pool = nn.MaxPool2d(kernel_size=q_stride, stride=q_stride) if q_stride else None
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = PooledAttention(dim, dim_out, num_heads, q_pool=self.pool)
        self.norm2 = nn.LayerNorm(dim_out, eps=1e-6)
        self.mlp = TwoLayerMLP(dim_out, int(dim_out * mlp_ratio))
        self.proj = nn.Linear(dim, dim_out) if dim != dim_out else None

    def _attend(self, x: Tensor, out_size: tuple[int, int]) -> Tensor:
        """Attention, windowed unless `window` is 0; the result has the grid `out_size`."""
        if self.window == 0:
            return self.attn(x)
        windows, counts = window_partition(x, self.window)
        return window_unpartition(self.attn(windows), counts, out_size)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x
        x = self.norm1(x)
        if self.proj is not None:
            shortcut = pool_channels_last(self.proj(x), self.pool)
        elif self.pool is not None:
            shortcut = pool_channels_last(shortcut, self.pool)
        x = shortcut + drop_path(self._attend(x, shortcut.shape[1:3]), self.drop_path_rate, self.training)
        return x + drop_path(self.mlp(self.norm2(x)), self.drop_path_rate, self.training)


class Hiera(nn.Module):
    """Hiera trunk: (B, 3, S, S) -> list of per-stage NCHW features, highest resolution first
    (only the last stage unless `return_interm_layers`).

    Stage i has `stages[i]` blocks, width `embed_dim * dim_mul**i`, `num_heads * head_mul**i`
    heads and attention windows `window_spec[i]`; the first block of a stage still uses the
    previous stage's window (it attends on the larger grid before pooling). The first `q_pool`
    stage transitions pool by `q_stride`. Block indices in `global_att_blocks` use global
    attention. Position embedding: `pos_embed` (a coarse background, bicubically resized to the
    token grid) plus `pos_embed_window` tiled once per first-stage window.
    """

    def __init__(
        self,
        embed_dim: int = 96,
        num_heads: int = 1,
        drop_path_rate: float = 0.0,
        q_pool: int = 3,
        q_stride: tuple[int, int] = (2, 2),
        stages: tuple[int, ...] = (2, 3, 16, 3),
        dim_mul: float = 2.0,
        head_mul: float = 2.0,
        window_pos_embed_bkg_spatial_size: tuple[int, int] = (14, 14),
        window_spec: tuple[int, ...] = (8, 4, 14, 7),
        global_att_blocks: tuple[int, ...] = (12, 16, 20),
        return_interm_layers: bool = True,
    ) -> None:
        super().__init__()
        if len(stages) != len(window_spec):
            raise ValueError(f"stages {tuple(stages)} and window_spec {tuple(window_spec)} differ in length")
        if not 0 <= q_pool < len(stages):
            raise ValueError(f"q_pool={q_pool} must lie in [0, {len(stages) - 1}] for {len(stages)} stages")
        q_stride = tuple(q_stride)
        self.return_interm_layers = return_interm_layers
        self.stage_ends = [sum(stages[: i + 1]) - 1 for i in range(len(stages))]
        pool_blocks = {end + 1 for end in self.stage_ends[:q_pool]}
        global_blocks = set(global_att_blocks)

        self.patch_embed = PatchEmbed(embed_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, embed_dim, *window_pos_embed_bkg_spatial_size))
        self.pos_embed_window = nn.Parameter(torch.zeros(1, embed_dim, window_spec[0], window_spec[0]))

        depth = sum(stages)
        rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.ModuleList()
        dim, heads, stage = embed_dim, num_heads, 0
        for i in range(depth):
            window = 0 if i in global_blocks else window_spec[stage]
            dim_out = dim
            if i - 1 in self.stage_ends:
                dim_out, heads, stage = int(dim * dim_mul), int(heads * head_mul), stage + 1
            q = q_stride if i in pool_blocks else None
            self.blocks.append(HieraBlock(dim, dim_out, heads, window, q_stride=q, drop_path_rate=rates[i]))
            dim = dim_out

        kept = self.stage_ends if return_interm_layers else self.stage_ends[-1:]
        self.channel_list = [self.blocks[i].dim_out for i in reversed(kept)]

    def _position_embedding(self, size: tuple[int, int]) -> Tensor:
        """(1, H, W, C) embedding for an H x W token grid."""
        window = self.pos_embed_window
        if size[0] % window.shape[-2] or size[1] % window.shape[-1]:
            raise ValueError(
                f"token grid {tuple(size)} is not a multiple of the position window "
                f"{tuple(window.shape[-2:])}; "
                "the image side must be a multiple of 4 * window_spec[0]"
            )
        background = F.interpolate(self.pos_embed, size=size, mode="bicubic")
        tiled = window.tile(1, 1, size[0] // window.shape[-2], size[1] // window.shape[-1])
        return (background + tiled).permute(0, 2, 3, 1)

    def forward(self, x: Tensor) -> list[Tensor]:
        if x.dim() != 4 or x.shape[1] != self.patch_embed.proj.in_channels:
            raise ValueError(f"Hiera expects a (B, 3, H, W) image batch, got shape {tuple(x.shape)}")
        x = self.patch_embed(x)
        x = x + self._position_embedding(x.shape[1:3])
        kept = set(self.stage_ends if self.return_interm_layers else self.stage_ends[-1:])
        features = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in kept:
                features.append(x.permute(0, 3, 1, 2))
        return features
