"""Image encoder: Hiera trunk + FPN neck, producing the multi-scale features the decoder and
memory use, each with its sine position encoding."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sam2pp.modeling.hiera import Hiera
from sam2pp.modeling.position_encoding import build_sine_encoding
from sam2pp.modeling.sections import section as config_section

_FUSE_TYPES = ("sum", "avg")
_MODES_WITHOUT_ALIGN_CORNERS = ("nearest", "nearest-exact", "area")


@dataclass
class ImageFeatures:
    """What the image encoder gives the rest of the model for a batch of B images.

    `backbone_fpn` and `vision_pos_enc` are lists over the kept pyramid levels, highest
    resolution first, each (B, d_model, H_l, W_l); `vision_features` is the last
    (lowest-resolution) level, the one memory attention and the decoder work on.
    """

    vision_features: Tensor
    vision_pos_enc: list[Tensor]
    backbone_fpn: list[Tensor]


class FpnNeck(nn.Module):
    """Feature pyramid without output convolutions: each trunk level is projected to `d_model`
    by a lateral convolution; levels listed in `fpn_top_down_levels` also receive the 2x
    upsampled fused level below them (summed, or averaged with `fuse_type="avg"`).

    `backbone_channel_list` is deepest level first (the trunk's `channel_list`), and `convs[j]`
    is the lateral convolution of that j-th entry. Level indices in `fpn_top_down_levels` count
    from the highest resolution (0) like the trunk outputs; None means every level.
    """

    def __init__(
        self,
        position_encoding: nn.Module,
        d_model: int,
        backbone_channel_list: Sequence[int],
        kernel_size: int = 1,
        stride: int = 1,
        padding: int = 0,
        fpn_interp_model: str = "bilinear",
        fuse_type: str = "sum",
        fpn_top_down_levels: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if fuse_type not in _FUSE_TYPES:
            raise ValueError(f"fuse_type must be one of {_FUSE_TYPES}, got {fuse_type!r}")
        self.position_encoding = position_encoding
        self.d_model = d_model
        self.backbone_channel_list = list(backbone_channel_list)
        self.convs = nn.ModuleList(
            nn.Sequential(OrderedDict(conv=nn.Conv2d(channels, d_model, kernel_size, stride, padding)))
            for channels in self.backbone_channel_list
        )
        self.fpn_interp_model = fpn_interp_model
        self.fuse_type = fuse_type
        levels = range(len(self.convs)) if fpn_top_down_levels is None else fpn_top_down_levels
        self.fpn_top_down_levels = list(levels)

    def _upsample(self, x: Tensor) -> Tensor:
        """2x upsampling of a fused level, in float32 (as the published model does under autocast)."""
        align = None if self.fpn_interp_model in _MODES_WITHOUT_ALIGN_CORNERS else False
        return F.interpolate(
            x.to(torch.float32),
            scale_factor=2.0,
            mode=self.fpn_interp_model,
            align_corners=align,
            antialias=False,
        )

    def forward(self, xs: Sequence[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        """xs: trunk levels, highest resolution first, xs[l] (B, C_l, H_l, W_l) ->
        (features, position encodings), each a list of (B, d_model, H_l, W_l) in the same order."""
        n = len(self.convs)
        if len(xs) != n:
            raise ValueError(f"FpnNeck has {n} lateral convolutions but got {len(xs)} feature levels")
        deepest_first: list[Tensor] = []
        fused: Tensor | None = None
        for level in reversed(range(n)):
            lateral = self.convs[n - 1 - level](xs[level])
            if fused is not None and level in self.fpn_top_down_levels:
                fused = lateral + self._upsample(fused)
                if self.fuse_type == "avg":
                    fused = fused / 2
            else:
                fused = lateral
            deepest_first.append(fused)
        features = deepest_first[::-1]
        positions = [self.position_encoding(f).to(f.dtype) for f in features]
        return features, positions


class ImageEncoder(nn.Module):
    """Trunk + neck; drops the `scalp` lowest-resolution levels of the pyramid.

    forward: (B, 3, S, S) normalised images -> `ImageFeatures`.
    """

    def __init__(self, trunk: nn.Module, neck: FpnNeck, scalp: int = 0) -> None:
        super().__init__()
        trunk_channels = list(trunk.channel_list)
        if trunk_channels != neck.backbone_channel_list:
            raise ValueError(
                f"trunk channels {trunk_channels} (deepest first) differ from the neck's "
                f"backbone_channel_list {neck.backbone_channel_list}"
            )
        if not 0 <= scalp < len(trunk_channels):
            raise ValueError(f"scalp={scalp} must leave at least one of the {len(trunk_channels)} levels")
        self.trunk = trunk
        self.neck = neck
        self.scalp = scalp

    def forward(self, image: Tensor) -> ImageFeatures:
        features, positions = self.neck(self.trunk(image))
        kept = len(features) - self.scalp
        features, positions = features[:kept], positions[:kept]
        return ImageFeatures(vision_features=features[-1], vision_pos_enc=positions, backbone_fpn=features)


def _tuples(section: dict[str, Any]) -> dict[str, Any]:
    """JSON lists -> tuples, so keyword values match the constructors' tuple defaults."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in section.items()}


def build_image_encoder(section: dict[str, Any]) -> ImageEncoder:
    """Build the encoder from the `image_encoder` section of a model config JSON.

    `type` keys are checked and dropped; the sine encoding's CUDA-cache keys (`warmup_cache`,
    `image_size`, `strides`) and a null trunk `weights_path` are dropped (the trunk weights
    come with the model checkpoint). Any other unknown key raises a TypeError naming it.
    """
    extra = config_section(section, "ImageEncoder", "image_encoder")
    trunk_cfg = config_section(extra.pop("trunk"), "Hiera", "image_encoder.trunk")
    neck_cfg = config_section(extra.pop("neck"), "FpnNeck", "image_encoder.neck")
    weights_path = trunk_cfg.pop("weights_path", None)
    if weights_path is not None:
        raise ValueError(
            f"image_encoder.trunk.weights_path={weights_path!r} is not supported: "
            "load the full model checkpoint instead"
        )
    position_encoding = build_sine_encoding(neck_cfg.pop("position_encoding"), "image_encoder.neck.position_encoding")
    trunk = Hiera(**_tuples(trunk_cfg))
    neck = FpnNeck(position_encoding=position_encoding, **neck_cfg)
    return ImageEncoder(trunk=trunk, neck=neck, **extra)
