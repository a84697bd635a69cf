"""Named model presets.

`sam2pp_hiera_b+` is the published "hiera b+ predmasks decoupled MAME" model behind `checkpoint_phase123.pt`, with the
published builder's default post-processing on. `sam2pp_tiny` is the same architecture at 256 px with a 2.7 M-parameter
trunk: every code path of b+, fast enough for tests, demos and CPU notebooks. `sam2pp_small` is `sam2pp_tiny` twice as
wide (32-channel first stage with two heads, 128-channel features, 64-channel memories; 7.8 M parameters), the
capacity comparison of `docs/training-diagnostics.md`.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from .config import (
    FpnNeckConfig,
    HieraConfig,
    ImageEncoderConfig,
    MemoryAttentionConfig,
    MemoryAttentionLayerConfig,
    MemoryEncoderConfig,
    ModelConfig,
    RoPEAttentionConfig,
    SinePositionConfig,
)


def _hiera_b_plus() -> ModelConfig:
    return ModelConfig(apply_postprocessing=True)


def _tiny(embed: int = 16, heads: int = 1, width: int = 64, mem: int = 16) -> ModelConfig:
    rope = dict(embedding_dim=width, feat_sizes=(16, 16))
    return ModelConfig(
        image_size=256,
        image_encoder=ImageEncoderConfig(
            trunk=HieraConfig(
                embed_dim=embed,
                num_heads=heads,
                stages=(1, 2, 4, 1),
                global_att_blocks=(5, 6),
                window_spec=(8, 4, 6, 3),
                window_pos_embed_bkg_spatial_size=(7, 7),
            ),
            neck=FpnNeckConfig(
                position_encoding=SinePositionConfig(num_pos_feats=width),
                d_model=width,
                backbone_channel_list=(8 * embed, 4 * embed, 2 * embed, embed),
            ),
        ),
        memory_attention=MemoryAttentionConfig(
            d_model=width,
            num_layers=2,
            layer=MemoryAttentionLayerConfig(
                d_model=width,
                dim_feedforward=4 * width,
                self_attention=RoPEAttentionConfig(**rope),
                cross_attention=RoPEAttentionConfig(**rope, rope_k_repeat=True, kv_in_dim=mem),
            ),
        ),
        memory_encoder=dataclasses.replace(
            MemoryEncoderConfig(),
            out_dim=mem,
            in_dim=width,
            position_encoding=SinePositionConfig(num_pos_feats=mem),
        ),
        unified_decoder_box_head_inner_dim=width,
        # The published point tool's 50 / 16 at 1024 px, scaled to 256 (the demo model's point stage): a smaller
        # disc vanishes from the 4x down-sampled logits that the prompt's memory is encoded from.
        point_prompt_radius=12,
        point_prompt_sigma=4.0,
        apply_postprocessing=True,
    )


def _with_width(cfg: ModelConfig) -> ModelConfig:
    """Mask down-sampler and fuser follow the neck width (the published yaml ties them the same way)."""
    enc = cfg.memory_encoder
    enc.mask_downsampler.embed_dim = cfg.hidden_dim
    enc.fuser.layer.dim = cfg.hidden_dim
    return cfg


PRESETS: dict[str, Callable[[], ModelConfig]] = {
    "sam2pp_hiera_b+": _hiera_b_plus,
    "sam2pp_tiny": lambda: _with_width(_tiny()),
    "sam2pp_small": lambda: _with_width(_tiny(embed=32, heads=2, width=128, mem=64)),
}


def names() -> list[str]:
    return sorted(PRESETS)


def get(name: str) -> ModelConfig:
    """A fresh copy of the preset `name` (mutating it never changes the preset)."""
    try:
        return PRESETS[name]()
    except KeyError:
        raise KeyError(f"unknown model preset {name!r}; known presets: {', '.join(names())}") from None
