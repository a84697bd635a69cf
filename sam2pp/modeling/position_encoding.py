"""Fixed sine-cosine position encodings: 2-D for feature maps, 1-D for object-pointer time offsets."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .sections import section


def _frequencies(num_feats: int, temperature: float, device: torch.device) -> Tensor:
    """Per-channel wavelengths (num_feats,); channels 2k and 2k+1 share one, so sin/cos form a pair."""
    index = torch.arange(num_feats, dtype=torch.float32, device=device)
    return temperature ** (2 * (index // 2) / num_feats)


def sine_encoding_1d(positions: Tensor, dim: int, temperature: float = 10000) -> Tensor:
    """Encode scalar positions (..., ) as (..., dim): `dim / 2` sines followed by `dim / 2` cosines.

    Used for the temporal offset of object pointers, where positions are fractions of the
    pointer window (so position 0 encodes as zeros then ones).
    """
    if dim <= 0 or dim % 2:
        raise ValueError(f"sine_encoding_1d needs a positive even dim, got {dim}")
    angles = positions.unsqueeze(-1) / _frequencies(dim // 2, temperature, positions.device)
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class PositionEmbeddingSine(nn.Module):
    """DETR-style 2-D encoding of a feature map's grid: the first half of the channels encodes
    the row (y), the second half the column (x), each as interleaved sin/cos pairs.

    With `normalize`, coordinates 1..H (and 1..W) are divided by the last one and multiplied by
    `scale` (2*pi by default), so the encoding depends on the relative position only.
    The encoding has no parameters and depends only on (H, W): it is computed once per grid
    size and device, in float32, and reused.
    """

    def __init__(
        self,
        num_pos_feats: int,
        temperature: float = 10000,
        normalize: bool = True,
        scale: float | None = None,
    ) -> None:
        super().__init__()
        if num_pos_feats <= 0 or num_pos_feats % 4:
            # Each axis gets half the channels, and each half is made of sin/cos pairs.
            raise ValueError(f"num_pos_feats must be a positive multiple of 4, got {num_pos_feats}")
        if scale is not None and not normalize:
            raise ValueError("a scale is only meaningful with normalize=True")
        self.num_pos_feats = num_pos_feats
        self.temperature = temperature
        self.normalize = normalize
        self.scale = 2 * math.pi if scale is None else scale
        self._cache: dict[tuple[int, int, torch.device], Tensor] = {}

    def _axis_encoding(self, length: int, device: torch.device) -> Tensor:
        """(length, num_pos_feats / 2) encoding of grid coordinates 1..length along one axis."""
        coords = torch.arange(1, length + 1, dtype=torch.float32, device=device)
        if self.normalize:
            coords = coords / (coords[-1:] + 1e-6) * self.scale
        angles = coords[:, None] / _frequencies(self.num_pos_feats // 2, self.temperature, device)
        return torch.stack((angles[:, 0::2].sin(), angles[:, 1::2].cos()), dim=2).flatten(1)

    def _grid_encoding(self, height: int, width: int, device: torch.device) -> Tensor:
        """(num_pos_feats, H, W) float32 encoding, cached."""
        key = (height, width, device)
        if key not in self._cache:
            half = self.num_pos_feats // 2
            pos_y = self._axis_encoding(height, device)[:, None, :].expand(height, width, half)
            pos_x = self._axis_encoding(width, device)[None, :, :].expand(height, width, half)
            self._cache[key] = torch.cat((pos_y, pos_x), dim=2).permute(2, 0, 1).contiguous()
        return self._cache[key]

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        """x: (B, C, H, W), only its shape and device are used -> (B, num_pos_feats, H, W) float32."""
        if x.dim() != 4:
            raise ValueError(f"PositionEmbeddingSine expects (B, C, H, W), got shape {tuple(x.shape)}")
        encoding = self._grid_encoding(x.shape[-2], x.shape[-1], x.device)
        return encoding[None].repeat(x.shape[0], 1, 1, 1)

    def extra_repr(self) -> str:
        return (
            f"num_pos_feats={self.num_pos_feats}, temperature={self.temperature}, "
            f"normalize={self.normalize}, scale={self.scale}"
        )


# Keys of the published sine encoding that only pre-fill a CUDA cache; they have no numerical effect.
_CACHE_ONLY_KEYS = ("warmup_cache", "image_size", "strides")


def build_sine_encoding(data: dict, where: str) -> PositionEmbeddingSine:
    """A `PositionEmbeddingSine` from its config section (its `type` checked, its cache-only keys dropped)."""
    kwargs = section(data, "PositionEmbeddingSine", where)
    return PositionEmbeddingSine(**{k: v for k, v in kwargs.items() if k not in _CACHE_ONLY_KEYS})
