"""Memory encoder: fuses a frame's top-level features with its predicted mask into a memory.

The mask (B, 1, S, S) is downsampled by strided convolutions to the feature grid (S/16), added
to the projected image features, refined by ConvNeXt blocks and projected to the memory width.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from sam2pp.modeling.hiera import drop_path as stochastic_depth
from sam2pp.modeling.layer_norm import LayerNorm2d
from sam2pp.modeling.position_encoding import build_sine_encoding
from sam2pp.modeling.sections import section as config_section


@dataclass
class MemoryEncoding:
    """features: (B, out_dim, h, w) memory; pos_enc: (B, out_dim, h, w) its sine position encoding."""

    features: Tensor
    pos_enc: Tensor


def activation_class(activation: str | type[nn.Module]) -> type[nn.Module]:
    """A module class given itself or its `torch.nn` name (configs write "GELU")."""
    if isinstance(activation, str):
        found = getattr(nn, activation, None)
        if not (isinstance(found, type) and issubclass(found, nn.Module)):
            raise ValueError(f"activation {activation!r} is not a torch.nn module class name (e.g. 'GELU')")
        return found
    if isinstance(activation, type) and issubclass(activation, nn.Module):
        return activation
    raise TypeError(f"activation must be a torch.nn module class or its name, got {activation!r}")


class MaskDownSampler(nn.Module):
    """(B, 1, S, S) mask -> (B, embed_dim, S / total_stride, S / total_stride).

    Each of the log_stride(total_stride) stages convolves with `stride`, multiplies the channels
    by stride**2 (so no information is squeezed out), normalises per pixel and activates; a 1x1
    convolution then maps to `embed_dim`.
    """

    def __init__(
        self,
        embed_dim: int = 256,
        kernel_size: int = 4,
        stride: int = 4,
        padding: int = 0,
        total_stride: int = 16,
        activation: str | type[nn.Module] = nn.GELU,
    ) -> None:
        super().__init__()
        num_stages = _stage_count(total_stride, stride)
        act = activation_class(activation)
        self.encoder = nn.Sequential()
        channels = 1
        for _ in range(num_stages):
            out_channels = channels * stride**2
            self.encoder.append(nn.Conv2d(channels, out_channels, kernel_size, stride=stride, padding=padding))
            self.encoder.append(LayerNorm2d(out_channels))
            self.encoder.append(act())
            channels = out_channels
        self.encoder.append(nn.Conv2d(channels, embed_dim, kernel_size=1))

    def forward(self, x: Tensor) -> Tensor:
        return self.encoder(x)


def _stage_count(total_stride: int, stride: int) -> int:
    """n with stride**n == total_stride."""
    if stride < 2:
        raise ValueError(f"MaskDownSampler stride must be at least 2, got {stride}")
    count, reached = 0, 1
    while reached < total_stride:
        reached *= stride
        count += 1
    if reached != total_stride:
        raise ValueError(f"total_stride={total_stride} is not a power of stride={stride}")
    return count


class CXBlock(nn.Module):
    """ConvNeXt block on (B, dim, H, W): depthwise conv, per-pixel LayerNorm, 4x MLP, layer scale,
    residual."""

    def __init__(
        self,
        dim: int,
        kernel_size: int = 7,
        padding: int = 3,
        drop_path: float = 0.0,
        layer_scale_init_value: float = 1e-6,
        use_dwconv: bool = True,
    ) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size, padding=padding, groups=dim if use_dwconv else 1)
        self.norm = LayerNorm2d(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale_init_value)) if layer_scale_init_value > 0 else None
        self.drop_path_rate = drop_path

    def forward(self, x: Tensor) -> Tensor:
        y = self.norm(self.dwconv(x)).permute(0, 2, 3, 1)
        y = self.pwconv2(self.act(self.pwconv1(y)))
        if self.gamma is not None:
            y = self.gamma * y
        return x + stochastic_depth(y.permute(0, 3, 1, 2), self.drop_path_rate, self.training)


class Fuser(nn.Module):
    """Optional 1x1 input projection, then `num_layers` independent copies of `layer`; (B, C, H, W) in and out."""

    def __init__(
        self, layer: nn.Module, num_layers: int, dim: int | None = None, input_projection: bool = False
    ) -> None:
        super().__init__()
        if input_projection and dim is None:
            raise ValueError("Fuser with input_projection needs dim")
        self.proj = nn.Conv2d(dim, dim, kernel_size=1) if input_projection else nn.Identity()
        self.layers = nn.ModuleList(copy.deepcopy(layer) for _ in range(num_layers))

    def forward(self, x: Tensor) -> Tensor:
        x = self.proj(x)
        for layer in self.layers:
            x = layer(x)
        return x


class MemoryEncoder(nn.Module):
    """pix_feat (B, in_dim, h, w) + masks (B, 1, 16h, 16w) -> MemoryEncoding of width out_dim."""

    def __init__(
        self,
        out_dim: int,
        mask_downsampler: nn.Module,
        fuser: nn.Module,
        position_encoding: nn.Module,
        in_dim: int = 256,
    ) -> None:
        super().__init__()
        self.mask_downsampler = mask_downsampler
        self.pix_feat_proj = nn.Conv2d(in_dim, in_dim, kernel_size=1)
        self.fuser = fuser
        self.position_encoding = position_encoding
        self.out_proj = nn.Conv2d(in_dim, out_dim, kernel_size=1) if out_dim != in_dim else nn.Identity()

    def forward(self, pix_feat: Tensor, masks: Tensor, skip_mask_sigmoid: bool = False) -> MemoryEncoding:
        """`masks` are logits, or already mapped to probabilities (or scaled ones) with skip_mask_sigmoid."""
        if masks.dim() != 4 or masks.shape[1] != 1:
            raise ValueError(f"masks must be (B, 1, H, W), got {tuple(masks.shape)}")
        if not skip_mask_sigmoid:
            masks = torch.sigmoid(masks)
        masks = self.mask_downsampler(masks)
        # Features may have been kept on the CPU to save accelerator memory.
        pix_feat = pix_feat.to(masks.device)
        if pix_feat.shape[0] != masks.shape[0] or pix_feat.shape[-2:] != masks.shape[-2:]:
            raise ValueError(
                f"downsampled masks {tuple(masks.shape)} do not match the features {tuple(pix_feat.shape)}"
            )
        x = self.out_proj(self.fuser(self.pix_feat_proj(pix_feat) + masks))
        return MemoryEncoding(features=x, pos_enc=self.position_encoding(x).to(x.dtype))


def build_memory_encoder(section: dict[str, Any]) -> MemoryEncoder:
    """Build from the `memory_encoder` section of a model config JSON.

    `type` keys are checked and dropped, and so are the sine encoding's CUDA-cache keys
    (`warmup_cache`, `image_size`, `strides`), which have no numerical effect.
    """
    kwargs = config_section(section, "MemoryEncoder", "memory_encoder")
    downsampler_cfg = config_section(kwargs.pop("mask_downsampler"), "MaskDownSampler", "memory_encoder.mask_downsampler")
    fuser_cfg = config_section(kwargs.pop("fuser"), "Fuser", "memory_encoder.fuser")
    block_cfg = config_section(fuser_cfg.pop("layer"), "CXBlock", "memory_encoder.fuser.layer")
    position_encoding = build_sine_encoding(kwargs.pop("position_encoding"), "memory_encoder.position_encoding")
    return MemoryEncoder(
        mask_downsampler=MaskDownSampler(**downsampler_cfg),
        fuser=Fuser(layer=CXBlock(**block_cfg), **fuser_cfg),
        position_encoding=position_encoding,
        **kwargs,
    )
