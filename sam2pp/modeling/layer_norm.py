"""Layer normalisation over the channel axis of (B, C, H, W) maps, as used by SAM's convolutional paths."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class LayerNorm2d(nn.Module):
    """Normalise each pixel's channel vector, then scale and shift per channel.

    `nn.LayerNorm` normalises trailing axes; conv features keep channels on axis 1, so this
    normalises axis 1 of a (B, C, H, W) tensor without permuting it.
    """

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, C, H, W) -> (B, C, H, W)."""
        if x.dim() != 4 or x.shape[1] != self.weight.shape[0]:
            raise ValueError(
                f"LayerNorm2d({self.weight.shape[0]}) expects (B, {self.weight.shape[0]}, H, W), "
                f"got shape {tuple(x.shape)}"
            )
        centred = x - x.mean(1, keepdim=True)
        variance = centred.pow(2).mean(1, keepdim=True)
        normed = centred / torch.sqrt(variance + self.eps)
        return self.weight[:, None, None] * normed + self.bias[:, None, None]

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"
