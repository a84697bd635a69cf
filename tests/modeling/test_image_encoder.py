"""Image encoder (Hiera + FPN neck): config building, published key names, parity on `tiny`,
and mixed-precision runs."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from conftest import PARITY, SHARED, need
from sam2pp.modeling.hiera import Hiera
from sam2pp.modeling.image_encoder import FpnNeck, ImageEncoder, ImageFeatures, build_image_encoder
from sam2pp.modeling.position_encoding import PositionEmbeddingSine

PREFIX = "image_encoder."


def _section(config_path) -> dict:
    return json.loads(need(config_path).read_text())["image_encoder"]


@pytest.fixture(scope="module")
def tiny_encoder() -> ImageEncoder:
    tiny = need(PARITY / "tiny")
    encoder = build_image_encoder(_section(tiny / "config.json")).eval()
    state = torch.load(need(tiny / "checkpoint.pt"), map_location="cpu", weights_only=True)["model"]
    encoder.load_state_dict({k[len(PREFIX):]: v for k, v in state.items() if k.startswith(PREFIX)})
    return encoder


@pytest.fixture(scope="module")
def intermediates() -> dict[str, torch.Tensor]:
    ref = np.load(need(PARITY / "tiny" / "mask_single" / "intermediates.npz"))
    wanted = ("_image", "_trunk_", "_backbone_fpn_", "_vision_pos_enc_")
    return {k: torch.from_numpy(ref[k]) for k in ref.files if any(w in k for w in wanted)}


def _small_encoder(scalp: int = 0, **neck_kwargs) -> ImageEncoder:
    trunk = Hiera(
        embed_dim=8,
        stages=(1, 1, 1, 1),
        window_spec=(4, 2, 2, 1),
        global_att_blocks=(),
        window_pos_embed_bkg_spatial_size=(4, 4),
    )
    neck = FpnNeck(PositionEmbeddingSine(16), 16, trunk.channel_list, **neck_kwargs)
    return ImageEncoder(trunk=trunk, neck=neck, scalp=scalp).eval()


def test_b_plus_encoder_has_published_keys_and_shapes() -> None:
    reference = json.loads(need(SHARED / "reference" / "sam2pp_hiera_b+_mame.keys.json").read_text())
    expected = {k[len(PREFIX):]: tuple(v) for k, v in reference.items() if k.startswith(PREFIX)}
    with torch.device("meta"):
        encoder = build_image_encoder(_section(SHARED / "reference" / "sam2pp_hiera_b+_mame.config.json"))
    assert {k: tuple(v.shape) for k, v in encoder.state_dict().items()} == expected
    assert encoder.scalp == 1 and encoder.neck.fpn_top_down_levels == [2, 3]


@pytest.mark.parametrize("frame", [0, 1])
def test_tiny_encoder_matches_published(tiny_encoder, intermediates, frame: int) -> None:
    with torch.no_grad():
        out = tiny_encoder(intermediates[f"f{frame}_image"])
    assert isinstance(out, ImageFeatures)
    assert len(out.backbone_fpn) == len(out.vision_pos_enc) == 3  # scalp 1 drops the 8x8 level
    for level in (0, 1):
        expected = intermediates[f"f{frame}_backbone_fpn_raw_{level}"]
        torch.testing.assert_close(out.backbone_fpn[level], expected, atol=1e-4, rtol=0)
    expected = intermediates[f"f{frame}_backbone_fpn_2"]
    torch.testing.assert_close(out.backbone_fpn[2], expected, atol=1e-4, rtol=0)
    assert out.vision_features is out.backbone_fpn[-1]
    for level in range(3):
        expected = intermediates[f"f0_vision_pos_enc_{level}"]
        torch.testing.assert_close(out.vision_pos_enc[level], expected, atol=1e-4, rtol=0)


def test_top_down_only_on_listed_levels() -> None:
    torch.manual_seed(0)
    encoder = _small_encoder(fpn_interp_model="nearest", fpn_top_down_levels=[2, 3])
    xs = [torch.randn(1, c, s, s) for c, s in zip(reversed(encoder.trunk.channel_list), (16, 8, 4, 2))]
    with torch.no_grad():
        features, positions = encoder.neck(xs)
        laterals = [encoder.neck.convs[3 - level](xs[level]) for level in range(4)]
    for level in (0, 1):
        torch.testing.assert_close(features[level], laterals[level])
    torch.testing.assert_close(features[3], laterals[3])
    upsampled = features[3].repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    torch.testing.assert_close(features[2], laterals[2] + upsampled)
    assert [tuple(p.shape) for p in positions] == [(1, 16, s, s) for s in (16, 8, 4, 2)]


def test_avg_fusion_halves_the_sum() -> None:
    torch.manual_seed(0)
    summed = _small_encoder(fuse_type="sum")
    averaged = _small_encoder(fuse_type="avg")
    averaged.load_state_dict(summed.state_dict())
    xs = [torch.randn(1, c, s, s) for c, s in zip(reversed(summed.trunk.channel_list), (16, 8, 4, 2))]
    with torch.no_grad():
        top = averaged.neck.convs[0](xs[3])
        upsampled = torch.nn.functional.interpolate(top, scale_factor=2.0, mode="bilinear")
        level2 = averaged.neck.convs[1](xs[2]) + upsampled
        torch.testing.assert_close(averaged.neck(xs)[0][2], level2 / 2)


def test_scalp_drops_lowest_resolution_levels() -> None:
    with torch.no_grad():
        out = _small_encoder(scalp=2)(torch.randn(2, 3, 64, 64))
    assert [tuple(f.shape) for f in out.backbone_fpn] == [(2, 16, 16, 16), (2, 16, 8, 8)]
    assert tuple(out.vision_features.shape) == (2, 16, 8, 8)


def test_rejects_channel_mismatch_and_bad_scalp() -> None:
    trunk = Hiera(embed_dim=8, stages=(1, 1, 1, 1), window_spec=(4, 2, 2, 1), global_att_blocks=())
    with pytest.raises(ValueError, match="backbone_channel_list"):
        ImageEncoder(trunk, FpnNeck(PositionEmbeddingSine(16), 16, [8, 16, 32, 64]))
    with pytest.raises(ValueError, match="scalp"):
        ImageEncoder(trunk, FpnNeck(PositionEmbeddingSine(16), 16, trunk.channel_list), scalp=4)
    with pytest.raises(ValueError, match="fuse_type"):
        FpnNeck(PositionEmbeddingSine(16), 16, trunk.channel_list, fuse_type="max")


def test_build_rejects_unknown_types_and_keys() -> None:
    section = _section(PARITY / "tiny" / "config.json")
    wrong_type = copy.deepcopy(section)
    wrong_type["trunk"]["type"] = "ViT"
    with pytest.raises(ValueError, match="Hiera"):
        build_image_encoder(wrong_type)
    unknown = copy.deepcopy(section)
    unknown["neck"]["depth"] = 3
    with pytest.raises(TypeError, match="depth"):
        build_image_encoder(unknown)
    weights = copy.deepcopy(section)
    weights["trunk"]["weights_path"] = "hiera.pt"
    with pytest.raises(ValueError, match="weights_path"):
        build_image_encoder(weights)


def _autocast_devices() -> list:
    cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
    return ["cpu", pytest.param("cuda", marks=cuda)]


@pytest.mark.parametrize("device", _autocast_devices())
def test_runs_under_bfloat16_autocast(tiny_encoder, intermediates, device: str) -> None:
    # bfloat16 keeps ~3 significant digits, so this checks the mixed-dtype paths run and stay
    # close in relative terms, not the 1e-4 parity of float32.
    encoder = copy.deepcopy(tiny_encoder).to(device)
    with torch.no_grad(), torch.autocast(device_type=device, dtype=torch.bfloat16):
        out = encoder(intermediates["f0_image"].to(device))
    for level in range(3):
        expected = intermediates[f"f0_backbone_fpn_raw_{level}" if level < 2 else "f0_backbone_fpn_2"]
        got = out.backbone_fpn[level].float().cpu()
        assert out.vision_pos_enc[level].dtype == out.backbone_fpn[level].dtype
        assert torch.isfinite(got).all()
        assert (got - expected).norm() / expected.norm() < 0.05
