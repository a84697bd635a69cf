"""Typed model configuration, with field names equal to the published SAM 2++ keyword arguments.

The nesting follows the published yaml (`image_encoder.trunk`, `memory_attention.layer.self_attention`, ...), so the
resolved JSON configs in `shared/parity/*/config.json` read straight into these dataclasses. Keys named `type` in the JSON
name the published class of a section; they are checked, not stored.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .plain import PlainReader, to_plain


@dataclass
class HieraConfig:
    embed_dim: int = 112
    num_heads: int = 2
    drop_path_rate: float = 0.0
    q_pool: int = 3
    q_stride: tuple[int, int] = (2, 2)
    stages: tuple[int, ...] = (2, 3, 16, 3)
    dim_mul: float = 2.0
    head_mul: float = 2.0
    window_pos_embed_bkg_spatial_size: tuple[int, int] = (14, 14)
    window_spec: tuple[int, ...] = (8, 4, 14, 7)
    global_att_blocks: tuple[int, ...] = (12, 16, 20)
    weights_path: str | None = None
    return_interm_layers: bool = True


@dataclass
class SinePositionConfig:
    num_pos_feats: int = 256
    temperature: int = 10000
    normalize: bool = True
    scale: float | None = None
    warmup_cache: bool = True
    image_size: int = 1024
    strides: tuple[int, ...] = (4, 8, 16, 32)


@dataclass
class FpnNeckConfig:
    position_encoding: SinePositionConfig = field(default_factory=SinePositionConfig)
    d_model: int = 256
    backbone_channel_list: tuple[int, ...] = (896, 448, 224, 112)
    kernel_size: int = 1
    stride: int = 1
    padding: int = 0
    fpn_interp_model: str = "nearest"
    fuse_type: str = "sum"
    fpn_top_down_levels: tuple[int, ...] | None = (2, 3)


@dataclass
class ImageEncoderConfig:
    trunk: HieraConfig = field(default_factory=HieraConfig)
    neck: FpnNeckConfig = field(default_factory=FpnNeckConfig)
    scalp: int = 1


@dataclass
class RoPEAttentionConfig:
    rope_theta: float = 10000.0
    rope_k_repeat: bool = False
    feat_sizes: tuple[int, int] = (64, 64)
    embedding_dim: int = 256
    num_heads: int = 1
    downsample_rate: int = 1
    dropout: float = 0.1
    kv_in_dim: int | None = None


@dataclass
class MemoryAttentionLayerConfig:
    activation: str = "relu"
    cross_attention: RoPEAttentionConfig = field(
        default_factory=lambda: RoPEAttentionConfig(rope_k_repeat=True, kv_in_dim=64)
    )
    d_model: int = 256
    dim_feedforward: int = 2048
    dropout: float = 0.1
    pos_enc_at_attn: bool = False
    pos_enc_at_cross_attn_keys: bool = True
    pos_enc_at_cross_attn_queries: bool = False
    self_attention: RoPEAttentionConfig = field(default_factory=RoPEAttentionConfig)


@dataclass
class MemoryAttentionConfig:
    d_model: int = 256
    pos_enc_at_input: bool = True
    layer: MemoryAttentionLayerConfig = field(default_factory=MemoryAttentionLayerConfig)
    num_layers: int = 4
    batch_first: bool = True


@dataclass
class MaskDownSamplerConfig:
    embed_dim: int = 256
    kernel_size: int = 3
    stride: int = 2
    padding: int = 1
    total_stride: int = 16
    activation: str = "GELU"


@dataclass
class CXBlockConfig:
    dim: int = 256
    kernel_size: int = 7
    padding: int = 3
    drop_path: float = 0.0
    layer_scale_init_value: float = 1e-6
    use_dwconv: bool = True


@dataclass
class FuserConfig:
    layer: CXBlockConfig = field(default_factory=CXBlockConfig)
    num_layers: int = 2
    dim: int | None = None
    input_projection: bool = False


@dataclass
class MemoryEncoderConfig:
    out_dim: int = 64
    mask_downsampler: MaskDownSamplerConfig = field(default_factory=MaskDownSamplerConfig)
    fuser: FuserConfig = field(default_factory=FuserConfig)
    position_encoding: SinePositionConfig = field(default_factory=lambda: SinePositionConfig(num_pos_feats=64))
    in_dim: int = 256


@dataclass
class ModelConfig:
    """Every keyword of the published SAM 2++ video predictor, defaults as in `sam2pp_hiera_b+` (MAME)."""

    image_encoder: ImageEncoderConfig = field(default_factory=ImageEncoderConfig)
    memory_attention: MemoryAttentionConfig = field(default_factory=MemoryAttentionConfig)
    memory_encoder: MemoryEncoderConfig = field(default_factory=MemoryEncoderConfig)
    # Predictor options.
    fill_hole_area: int = 0
    non_overlap_masks: bool = False
    clear_non_cond_mem_around_input: bool = False
    add_all_frames_to_correct_as_cond: bool = False
    # Tracker options.
    num_maskmem: int = 7
    image_size: int = 1024
    backbone_stride: int = 16
    sigmoid_scale_for_mem_enc: float = 20.0
    sigmoid_bias_for_mem_enc: float = -10.0
    binarize_mask_from_pts_for_mem_enc: bool = False
    use_mask_input_as_output_without_sam: bool = True
    max_cond_frames_in_attn: int = -1
    directly_add_no_mem_embed: bool = True
    use_high_res_features_in_sam: bool = True
    multimask_output_in_sam: bool = True
    multimask_min_pt_num: int = 0
    multimask_max_pt_num: int = 1
    multimask_output_for_tracking: bool = True
    use_multimask_token_for_obj_ptr: bool = True
    iou_prediction_use_sigmoid: bool = True
    memory_temporal_stride_for_eval: int = 1
    non_overlap_masks_for_mem_enc: bool = False
    use_obj_ptrs_in_encoder: bool = True
    max_obj_ptrs_in_encoder: int = 16
    add_tpos_enc_to_obj_ptrs: bool = True
    proj_tpos_enc_in_obj_ptrs: bool = True
    use_signed_tpos_enc_to_obj_ptrs: bool = True
    only_obj_ptrs_in_the_past_for_eval: bool = True
    pred_obj_scores: bool = True
    pred_obj_scores_mlp: bool = True
    fixed_no_obj_ptr: bool = True
    soft_no_obj_ptr: bool = False
    use_mlp_for_obj_ptr_proj: bool = True
    no_obj_embed_spatial: bool = True
    sam_mask_decoder_extra_args: dict[str, Any] | None = None
    compile_image_encoder: bool = False
    separate_image_encoder: bool = False
    separate_memory_attention: bool = True
    separate_memory_encoder: bool = True
    input_point_task_coord_xy: bool = True
    input_point_task_gaussian_mask: bool = True
    # The gaussian disc (model pixels) that `add_track_point` draws around a point prompt unless told otherwise: the
    # published point tool's 50/16; a model trained by sam2pp tracks best with the last stage of its point curriculum.
    point_prompt_radius: int = 50
    point_prompt_sigma: float = 16.0
    unified_decoder_box_head_freeze_bn: bool = True
    unified_decoder_box_head_inner_dim: int = 256
    unified_decoder_box_head_pred_masks: bool = True
    # The published builder's flag: when true, `resolved()` turns on its post-processing settings.
    apply_postprocessing: bool = False

    @property
    def hidden_dim(self) -> int:
        return self.image_encoder.neck.d_model

    @property
    def mem_dim(self) -> int:
        return self.memory_encoder.out_dim

    def resolved(self) -> ModelConfig:
        """The settings actually in force: `apply_postprocessing` expands as the published builder expands it."""
        if not self.apply_postprocessing:
            return self
        return dataclasses.replace(
            self,
            sam_mask_decoder_extra_args={
                "dynamic_multimask_via_stability": True,
                "dynamic_multimask_stability_delta": 0.05,
                "dynamic_multimask_stability_thresh": 0.98,
            },
            binarize_mask_from_pts_for_mem_enc=True,
            fill_hole_area=8,
            apply_postprocessing=False,
        )

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)

    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        return _READER.read(cls, data, "config")

    @classmethod
    def from_json(cls, path: str | Path) -> ModelConfig:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read model config {path}: {exc}") from exc
        return cls.from_dict(data)


# Published class names a JSON section may carry in its "type" key.
_SECTION_TYPES: dict[type, set[str]] = {
    ModelConfig: {"SAM2VideoPredictor_Plus", "SAM2Plus", "SAM2Train_Plus"},
    ImageEncoderConfig: {"ImageEncoder"},
    HieraConfig: {"Hiera"},
    FpnNeckConfig: {"FpnNeck"},
    SinePositionConfig: {"PositionEmbeddingSine"},
    MemoryAttentionConfig: {"MemoryAttention"},
    MemoryAttentionLayerConfig: {"MemoryAttentionLayer"},
    RoPEAttentionConfig: {"RoPEAttention"},
    MemoryEncoderConfig: {"MemoryEncoder"},
    MaskDownSamplerConfig: {"MaskDownSampler"},
    FuserConfig: {"Fuser"},
    CXBlockConfig: {"CXBlock"},
}


# Range rules by field name (a name means the same quantity in every section); tuple fields apply them per element.
_POSITIVE = frozenset({
    "image_size", "num_maskmem", "backbone_stride", "embed_dim", "num_heads", "d_model", "num_layers",
    "dim_feedforward", "embedding_dim", "downsample_rate", "kv_in_dim", "out_dim", "in_dim", "total_stride", "stride",
    "kernel_size", "dim", "num_pos_feats", "temperature", "unified_decoder_box_head_inner_dim",
    "memory_temporal_stride_for_eval", "stages", "q_stride", "feat_sizes", "window_pos_embed_bkg_spatial_size",
    "backbone_channel_list", "strides", "dim_mul", "head_mul", "rope_theta",
})
_NON_NEGATIVE = frozenset({
    "fill_hole_area", "q_pool", "padding", "scalp", "window_spec", "global_att_blocks", "fpn_top_down_levels",
    "multimask_min_pt_num", "multimask_max_pt_num", "max_obj_ptrs_in_encoder",
})
_FRACTIONS = frozenset({"dropout", "drop_path_rate", "drop_path"})


def _range_rule(name: str, value: Any, where: str) -> None:
    if name in _POSITIVE and value <= 0:
        raise ValueError(f"{where}: must be positive, got {value!r}")
    if name in _NON_NEGATIVE and value < 0:
        raise ValueError(f"{where}: must be >= 0, got {value!r}")
    if name in _FRACTIONS and not 0 <= value <= 1:
        raise ValueError(f"{where}: must lie in [0, 1], got {value!r}")


_READER = PlainReader(rule=_range_rule, section_types=_SECTION_TYPES)
