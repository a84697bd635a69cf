"""SAM's prompt encoder: clicks and box corners become sparse tokens, a low-res mask becomes a dense map.

Coordinates are model pixels (x, y) in the `input_image_size` frame. Point labels:
-1 padding (not a point), 0 negative click, 1 positive click, 2 box top-left, 3 box bottom-right.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

from sam2pp.modeling.layer_norm import LayerNorm2d

PADDING_LABEL = -1
NUM_POINT_LABELS = 4  # negative, positive, box top-left, box bottom-right
BOX_CORNER_LABELS = (2, 3)


class RandomFourierEncoding(nn.Module):
    """Position encoding by a fixed random projection of (x, y) followed by sin and cos.

    Unlike a grid encoding it applies to arbitrary real coordinates, so sparse prompts and
    the dense image grid share one encoding. Output width: 2 * num_pos_feats.
    """

    def __init__(self, num_pos_feats: int, scale: float = 1.0) -> None:
        super().__init__()
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        self.register_buffer("positional_encoding_gaussian_matrix", scale * torch.randn(2, num_pos_feats))

    def encode_unit(self, coords: Tensor) -> Tensor:
        """coords (..., 2) as (x, y) in [0, 1] -> (..., 2 * num_pos_feats)."""
        angles = 2 * math.pi * ((2 * coords - 1) @ self.positional_encoding_gaussian_matrix)
        return torch.cat([angles.sin(), angles.cos()], dim=-1)

    def encode_pixels(self, coords: Tensor, image_size: tuple[int, int]) -> Tensor:
        """coords (..., 2) as (x, y) pixels of an (H, W) = image_size frame -> (..., 2 * num_pos_feats)."""
        height, width = image_size
        extent = torch.tensor([width, height], dtype=torch.float32, device=coords.device)
        return self.encode_unit(coords.float() / extent)

    def forward(self, size: tuple[int, int]) -> Tensor:
        """Encoding of the centres of an (H, W) grid -> (2 * num_pos_feats, H, W)."""
        height, width = size
        device = self.positional_encoding_gaussian_matrix.device
        ys = (torch.arange(height, dtype=torch.float32, device=device) + 0.5) / height
        xs = (torch.arange(width, dtype=torch.float32, device=device) + 0.5) / width
        grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)
        return self.encode_unit(grid).permute(2, 0, 1)


class PromptEmbeddings(NamedTuple):
    """sparse: (B, N, C) point/corner tokens; dense: (B, C, h, w) added to the image embedding."""

    sparse: Tensor
    dense: Tensor


class PromptEncoder(nn.Module):
    """Embeds point, box and mask prompts for the unified decoder.

    `image_embedding_size` (h, w) is the decoder's feature grid; masks are given at (4h, 4w).
    """

    def __init__(
        self,
        embed_dim: int,
        image_embedding_size: tuple[int, int],
        input_image_size: tuple[int, int],
        mask_in_chans: int = 16,
        activation: type[nn.Module] = nn.GELU,
    ) -> None:
        super().__init__()
        if embed_dim % 2:
            raise ValueError(f"embed_dim must be even (sin and cos halves), got {embed_dim}")
        self.embed_dim = embed_dim
        self.image_embedding_size = tuple(image_embedding_size)
        self.input_image_size = tuple(input_image_size)
        self.mask_input_size = (4 * self.image_embedding_size[0], 4 * self.image_embedding_size[1])
        self.pe_layer = RandomFourierEncoding(embed_dim // 2)
        self.point_embeddings = nn.ModuleList(nn.Embedding(1, embed_dim) for _ in range(NUM_POINT_LABELS))
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, mask_in_chans // 4, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans // 4),
            activation(),
            nn.Conv2d(mask_in_chans // 4, mask_in_chans, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans),
            activation(),
            nn.Conv2d(mask_in_chans, embed_dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, embed_dim)

    def dense_pe(self) -> Tensor:
        """Position encoding of the image-embedding grid -> (1, C, h, w); the decoder's `image_pe`."""
        return self.pe_layer(self.image_embedding_size).unsqueeze(0)

    def _label_table(self) -> Tensor:
        """(1 + NUM_POINT_LABELS, C): row `label + 1` is the learned embedding of that label."""
        rows = [self.not_a_point_embed.weight] + [embedding.weight for embedding in self.point_embeddings]
        return torch.cat(rows, dim=0)

    def _embed_points(self, coords: Tensor, labels: Tensor, pad: bool) -> Tensor:
        """coords (B, N, 2), labels (B, N) -> (B, N + pad, C).

        Coordinates are shifted to pixel centres. The padding point (label -1) carries only the
        learned not-a-point embedding, no position.
        """
        coords = coords + 0.5
        labels = labels.long()
        if pad:
            batch = coords.shape[0]
            coords = torch.cat([coords, coords.new_zeros(batch, 1, 2)], dim=1)
            labels = torch.cat([labels, labels.new_full((batch, 1), PADDING_LABEL)], dim=1)
        if not torch.compiler.is_compiling():  # data-dependent: it would break a compiled graph, whose callers checked
            _check_labels(labels)
        position = self.pe_layer.encode_pixels(coords, self.input_image_size)
        position = torch.where((labels == PADDING_LABEL).unsqueeze(-1), 0.0, position)
        return position + self._label_table()[labels + 1]

    def _embed_boxes(self, boxes: Tensor) -> Tensor:
        """boxes (B, 4) as x0, y0, x1, y1 -> (B, 2, C): two corner tokens (labels 2 and 3)."""
        corners = boxes.reshape(-1, 2, 2)
        labels = torch.tensor(BOX_CORNER_LABELS, device=boxes.device).expand(corners.shape[0], 2)
        return self._embed_points(corners, labels, pad=False)

    def _batch_size(self, points: tuple[Tensor, Tensor] | None, boxes: Tensor | None, masks: Tensor | None) -> int:
        sizes = {
            name: tensor.shape[0]
            for name, tensor in (
                ("points", None if points is None else points[0]),
                ("boxes", boxes),
                ("masks", masks),
            )
            if tensor is not None
        }
        if len(set(sizes.values())) > 1:
            raise ValueError(f"prompts disagree on the batch size: {sizes}")
        return next(iter(sizes.values()), 1)

    def _check_inputs(self, points: tuple[Tensor, Tensor] | None, boxes: Tensor | None, masks: Tensor | None) -> None:
        if points is not None:
            coords, labels = points
            if coords.dim() != 3 or coords.shape[-1] != 2 or labels.shape != coords.shape[:2]:
                raise ValueError(
                    f"points must be coords (B, N, 2) and labels (B, N), got {tuple(coords.shape)} "
                    f"and {tuple(labels.shape)}"
                )
        if boxes is not None and (boxes.dim() != 2 or boxes.shape[-1] != 4):
            raise ValueError(f"boxes must be (B, 4) as x0, y0, x1, y1, got {tuple(boxes.shape)}")
        if masks is not None and (masks.dim() != 4 or tuple(masks.shape[1:]) != (1, *self.mask_input_size)):
            height, width = self.mask_input_size
            raise ValueError(f"masks must be (B, 1, {height}, {width}), got {tuple(masks.shape)}")

    def forward(
        self,
        points: tuple[Tensor, Tensor] | None,
        boxes: Tensor | None,
        masks: Tensor | None,
    ) -> PromptEmbeddings:
        """points: (coords (B, N, 2), labels (B, N)); boxes (B, 4); masks (B, 1, 4h, 4w) logits.

        Without a box, one padding point is appended to the points (SAM was trained that way).
        Returns sparse (B, N', C) and dense (B, C, h, w); with no mask, dense is the learned
        no-mask embedding at every position.
        """
        self._check_inputs(points, boxes, masks)
        batch = self._batch_size(points, boxes, masks)
        tokens = [self.not_a_point_embed.weight.new_empty(batch, 0, self.embed_dim)]
        if points is not None:
            tokens.append(self._embed_points(*points, pad=boxes is None))
        if boxes is not None:
            tokens.append(self._embed_boxes(boxes))
        sparse = torch.cat(tokens, dim=1)
        if masks is not None:
            dense = self.mask_downscaling(masks)
        else:
            height, width = self.image_embedding_size
            dense = self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(batch, -1, height, width)
        return PromptEmbeddings(sparse, dense)


def _check_labels(labels: Tensor) -> None:
    if labels.numel() and (labels.min() < PADDING_LABEL or labels.max() >= NUM_POINT_LABELS):
        raise ValueError(f"point labels must lie in [-1, {NUM_POINT_LABELS - 1}], got {labels.unique().tolist()}")


def build_prompt_encoder(config: dict) -> PromptEncoder:
    """PromptEncoder from the top-level model config (the parsed config.json)."""
    image_size = config["image_size"]
    grid = image_size // config["backbone_stride"]
    return PromptEncoder(
        embed_dim=config["image_encoder"]["neck"]["d_model"],
        image_embedding_size=(grid, grid),
        input_image_size=(image_size, image_size),
        mask_in_chans=16,
    )
