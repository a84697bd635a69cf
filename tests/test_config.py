"""ModelConfig: JSON round trips, the published layout, presets, and errors that name the problem."""

import dataclasses
import json

import pytest

import sam2pp
from conftest import PARITY, SHARED, need
from sam2pp.config import ModelConfig


def test_reads_published_reference_config_and_equals_b_plus_preset():
    cfg = ModelConfig.from_json(need(SHARED / "reference" / "sam2pp_hiera_b+_mame.config.json"))
    preset = sam2pp.configs.get("sam2pp_hiera_b+")
    assert dataclasses.replace(preset, apply_postprocessing=False) == cfg
    assert cfg.image_encoder.trunk.stages == (2, 3, 16, 3)
    assert cfg.memory_attention.layer.cross_attention.kv_in_dim == 64


def test_reads_parity_config_and_equals_tiny_preset():
    cfg = ModelConfig.from_json(need(PARITY / "tiny" / "config.json"))
    tiny = sam2pp.configs.get("sam2pp_tiny")
    assert (tiny.point_prompt_radius, tiny.point_prompt_sigma) == (12, 4.0)  # sam2pp's own: 50 / 16 scaled to 256
    assert dataclasses.replace(tiny, apply_postprocessing=False, point_prompt_radius=50, point_prompt_sigma=16.0) == cfg
    assert (cfg.hidden_dim, cfg.mem_dim, cfg.image_size) == (64, 16, 256)


def test_json_round_trip(tmp_path):
    cfg = sam2pp.configs.get("sam2pp_tiny")
    cfg.num_maskmem = 5
    cfg.to_json(tmp_path / "c.json")
    assert ModelConfig.from_json(tmp_path / "c.json") == cfg


def test_postprocessing_resolves_like_the_published_builder():
    on = sam2pp.configs.get("sam2pp_hiera_b+").resolved()
    assert on.fill_hole_area == 8 and on.binarize_mask_from_pts_for_mem_enc
    assert on.sam_mask_decoder_extra_args["dynamic_multimask_stability_thresh"] == 0.98
    off = dataclasses.replace(on, apply_postprocessing=False, fill_hole_area=0)
    assert off.resolved() is off


def test_presets_are_fresh_copies():
    a = sam2pp.configs.get("sam2pp_tiny")
    a.image_size = 512
    assert sam2pp.configs.get("sam2pp_tiny").image_size == 256


@pytest.mark.parametrize(
    "patch, message",
    [
        ({"num_maskmem_typo": 3}, "unknown keys ['num_maskmem_typo']"),
        ({"image_encoder": {"type": "ViT"}}, "config.image_encoder: type 'ViT'"),
        ({"memory_encoder": [1, 2]}, "config.memory_encoder: expected an object"),
    ],
)
def test_bad_json_names_the_problem(tmp_path, patch, message):
    data = sam2pp.configs.get("sam2pp_tiny").to_dict() | patch
    (tmp_path / "c.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        ModelConfig.from_json(tmp_path / "c.json")


def test_unreadable_json_and_unknown_preset(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="cannot read model config"):
        ModelConfig.from_json(tmp_path / "bad.json")
    with pytest.raises(KeyError, match="unknown model preset 'sam3'"):
        sam2pp.configs.get("sam3")


def _with(data: dict, path: str, value) -> dict:
    """A copy of nested `data` with the field at dotted `path` set to `value`."""
    data = json.loads(json.dumps(data))
    *parents, leaf = path.split(".")
    node = data
    for key in parents:
        node = node[key]
    node[leaf] = value
    return data


@pytest.mark.parametrize(
    "path, value, message",
    [
        ("image_size", "256", "config.image_size: expected an integer, got '256'"),
        ("num_maskmem", 7.0, "config.num_maskmem: expected an integer, got 7.0"),
        ("non_overlap_masks", "false", "config.non_overlap_masks: expected true or false, got 'false'"),
        ("image_size", -256, "config.image_size: must be positive, got -256"),
        ("fill_hole_area", True, "config.fill_hole_area: expected an integer, got True"),
        ("memory_attention.num_layers", 0, "config.memory_attention.num_layers: must be positive"),
        ("memory_attention.layer.dropout", 1.5, r"config.memory_attention.layer.dropout: must lie in \[0, 1\]"),
        ("sigmoid_scale_for_mem_enc", None, "config.sigmoid_scale_for_mem_enc: expected a finite number, got None"),
        ("image_encoder.trunk.stages", [1, "2", 4, 1], r"config.image_encoder.trunk.stages\[1\]: expected an integer"),
        ("image_encoder.trunk.q_stride", [2, 2, 2], "config.image_encoder.trunk.q_stride: expected 2 values, got 3"),
        ("image_encoder.neck.fpn_top_down_levels", 2, "config.image_encoder.neck.fpn_top_down_levels: expected a list"),
        ("sam_mask_decoder_extra_args", [1], "config.sam_mask_decoder_extra_args: expected an object"),
    ],
)
def test_types_and_ranges_are_checked_when_reading(tmp_path, path, value, message):
    data = _with(sam2pp.configs.get("sam2pp_tiny").to_dict(), path, value)
    (tmp_path / "c.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=message):
        ModelConfig.from_json(tmp_path / "c.json")


def test_integers_read_as_floats_and_nulls_where_allowed():
    data = _with(sam2pp.configs.get("sam2pp_tiny").to_dict(), "sigmoid_scale_for_mem_enc", 20)
    data = _with(data, "image_encoder.neck.fpn_top_down_levels", None)
    cfg = ModelConfig.from_dict(data)
    assert type(cfg.sigmoid_scale_for_mem_enc) is float and cfg.sigmoid_scale_for_mem_enc == 20.0
    assert cfg.image_encoder.neck.fpn_top_down_levels is None


def test_binary_json_names_the_file(tmp_path):
    (tmp_path / "c.json").write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(ValueError, match="cannot read model config .*c.json"):
        ModelConfig.from_json(tmp_path / "c.json")
