"""Corner box head of the unified decoder: per mask token, two score maps (top-left and bottom-right
corner) whose soft-argmax gives a box.

It fuses the decoder's 1/16 feature with the projected 1/8 and 1/4 backbone levels in a small
upsampling pyramid (one pyramid per corner), then scores each stride-4 cell against each
hypernetwork vector, exactly as the mask head does with its upscaled embedding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

CORNERS = ("tl", "br")


class FrozenBatchNorm2d(nn.Module):
    """Batch norm with fixed statistics and affine terms, all buffers (nothing trains or updates).

    Checkpoints saved from `nn.BatchNorm2d` carry `num_batches_tracked`; it is dropped on load.
    """

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        state_dict.pop(prefix + "num_batches_tracked", None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, C, H, W) -> (B, C, H, W)."""
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        return x * scale.reshape(1, -1, 1, 1) + shift.reshape(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"


def conv_bn_relu(in_channels: int, out_channels: int, freeze_bn: bool) -> nn.Sequential:
    """3x3 convolution (same size), batch norm, ReLU."""
    norm = FrozenBatchNorm2d(out_channels) if freeze_bn else nn.BatchNorm2d(out_channels)
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1), norm, nn.ReLU())


@dataclass(frozen=True)
class _CornerBranch:
    """The modules of one corner's pyramid (the published checkpoint names them `<name>_<corner>`)."""

    adjust_16_to_16: nn.Module
    adjust_8_to_8: nn.Module
    adjust_4_to_4: nn.Module
    conv1: nn.Module
    conv2: nn.Module
    conv3: nn.Module
    conv4: nn.Module
    adjust1: nn.Module
    adjust2: nn.Module
    adjust3: nn.Module
    adjust4: nn.Module


def _upsample(x: Tensor, factor: int) -> Tensor:
    return F.interpolate(x, scale_factor=factor, mode="nearest")


class CornerBoxHead(nn.Module):
    """Boxes from three feature levels and per-token hypernetwork vectors.

    inplanes: channels C of the 1/16 level (the 1/8 and 1/4 levels have C/4 and C/8).
    channel: inner width; its eighth must equal the hypernetwork width (C/8 in the decoder).
    stride: score-map stride in model pixels (the 1/4 level -> 4).
    """

    def __init__(self, inplanes: int, channel: int, stride: int = 4, freeze_bn: bool = True) -> None:
        super().__init__()
        if channel % 8 or inplanes % 8:
            raise ValueError(f"inplanes ({inplanes}) and channel ({channel}) must be multiples of 8")
        self.stride = stride
        self.score_channels = channel // 8
        widths = {
            "conv1": (inplanes, channel),
            "conv2": (channel, channel // 2),
            "conv3": (channel // 2, channel // 4),
            "conv4": (channel // 4, channel // 8),
            "adjust1": (inplanes, channel // 2),
            "adjust2": (inplanes, channel // 4),
        }
        for corner in CORNERS:
            for name, (n_in, n_out) in widths.items():
                self.add_module(f"{name}_{corner}", conv_bn_relu(n_in, n_out, freeze_bn))
            self.add_module(
                f"adjust3_{corner}",
                nn.Sequential(
                    conv_bn_relu(channel // 2, channel // 4, freeze_bn),
                    conv_bn_relu(channel // 4, channel // 8, freeze_bn),
                ),
            )
            self.add_module(f"adjust4_{corner}", nn.Sequential(conv_bn_relu(channel // 4, channel // 8, freeze_bn)))
            self.add_module(f"adjust_16_to_16_{corner}", conv_bn_relu(inplanes, inplanes, freeze_bn))
            self.add_module(f"adjust_8_to_8_{corner}", conv_bn_relu(inplanes // 4, channel // 2, freeze_bn))
            self.add_module(f"adjust_4_to_4_{corner}", conv_bn_relu(inplanes // 8, channel // 4, freeze_bn))

    def _branch(self, corner: str) -> _CornerBranch:
        fields = _CornerBranch.__dataclass_fields__
        return _CornerBranch(**{name: getattr(self, f"{name}_{corner}") for name in fields})

    @staticmethod
    def _corner_features(branch: _CornerBranch, feat_4: Tensor, feat_8: Tensor, feat_16: Tensor) -> Tensor:
        """Fuse the levels into a (B, channel/8, H/4, W/4) map for one corner."""
        x16 = branch.adjust_16_to_16(feat_16)
        x1 = branch.conv1(x16)
        x2 = branch.conv2(x1)
        x3 = branch.conv3(_upsample(branch.adjust1(x16), 2) + _upsample(x2, 2) + branch.adjust_8_to_8(feat_8))
        x4 = branch.conv4(_upsample(branch.adjust2(x16), 4) + _upsample(x3, 2) + branch.adjust_4_to_4(feat_4))
        return x4 + _upsample(branch.adjust3(x2), 4) + _upsample(branch.adjust4(x3), 2)

    def soft_argmax(self, scores: Tensor) -> tuple[Tensor, Tensor]:
        """scores (B, N, h, w) -> expected (x, y), each (B, N), in model pixels.

        Cell (i, j) sits at (stride * j, stride * i): its top-left corner, not its centre.
        """
        height, width = scores.shape[-2:]
        prob = scores.flatten(2).softmax(dim=-1)
        rows, cols = torch.meshgrid(
            torch.arange(height, device=scores.device), torch.arange(width, device=scores.device), indexing="ij"
        )
        grid_x = (cols.flatten() * self.stride).float()
        grid_y = (rows.flatten() * self.stride).float()
        return (grid_x * prob).sum(dim=-1), (grid_y * prob).sum(dim=-1)

    def forward(self, feat_4: Tensor, feat_8: Tensor, feat_16: Tensor, hyper_in: Tensor) -> Tensor:
        """feat_4 (B, C/8, 4h, 4w), feat_8 (B, C/4, 2h, 2w), feat_16 (B, C, h, w), hyper_in (B, N, channel/8)
        -> boxes (B, N, 4) as x0, y0, x1, y1 normalised by the image size (score-map size * stride).
        """
        if hyper_in.shape[-1] != self.score_channels:
            raise ValueError(f"hyper_in must have {self.score_channels} channels, got {tuple(hyper_in.shape)}")
        height, width = feat_4.shape[-2:]
        if feat_8.shape[-2:] != (height // 2, width // 2) or feat_16.shape[-2:] != (height // 4, width // 4):
            raise ValueError(
                f"levels must be at strides 1, 2, 4 of the first: got {tuple(feat_4.shape)}, "
                f"{tuple(feat_8.shape)}, {tuple(feat_16.shape)}"
            )
        coords = []
        for corner in CORNERS:
            features = self._corner_features(self._branch(corner), feat_4, feat_8, feat_16)
            scores = torch.einsum("bnc,bchw->bnhw", hyper_in, features)
            coords.extend(self.soft_argmax(scores))
        extent = torch.tensor([width, height, width, height], dtype=torch.float32, device=feat_4.device)
        return torch.stack(coords, dim=-1) / (extent * self.stride)
