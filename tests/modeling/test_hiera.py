"""Hiera trunk: windowing helpers, block and stage shapes, published key names, parity on `tiny`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import PARITY, SHARED, need
from sam2pp.modeling.hiera import Hiera, HieraBlock, window_partition, window_unpartition

TINY_TRUNK = dict(
    embed_dim=16,
    num_heads=1,
    q_pool=3,
    stages=(1, 2, 4, 1),
    window_pos_embed_bkg_spatial_size=(7, 7),
    window_spec=(8, 4, 6, 3),
    global_att_blocks=(5, 6),
)


def _trunk_section(config_path) -> dict:
    section = dict(json.loads(config_path.read_text())["image_encoder"]["trunk"])
    for key in ("type", "weights_path"):
        section.pop(key)
    return {k: tuple(v) if isinstance(v, list) else v for k, v in section.items()}


def test_window_partition_pads_and_round_trips() -> None:
    x = torch.randn(2, 10, 7, 3)
    windows, counts = window_partition(x, 4)
    assert counts == (3, 2)
    assert windows.shape == (2 * 3 * 2, 4, 4, 3)
    # Window (row 0, col 1) of image 0 holds columns 4..7 of rows 0..3, the last column zero padding.
    torch.testing.assert_close(windows[1, :, :3], x[0, :4, 4:7])
    assert torch.all(windows[1, :, 3] == 0)
    assert torch.equal(window_unpartition(windows, counts, (10, 7)), x)


def test_window_unpartition_of_pooled_windows() -> None:
    x = torch.randn(1, 6, 6, 2)
    windows, counts = window_partition(x, 4)
    pooled = windows[:, ::2, ::2]
    out = window_unpartition(pooled, counts, (3, 3))
    torch.testing.assert_close(out, x[:, ::2, ::2])


@pytest.mark.parametrize("window", [0, 4])
def test_pooling_block_halves_grid_and_changes_width(window: int) -> None:
    block = HieraBlock(dim=8, dim_out=16, num_heads=2, window=window, q_stride=(2, 2))
    assert block(torch.randn(2, 10, 10, 8)).shape == (2, 5, 5, 16)


def test_windowed_attention_stays_inside_windows() -> None:
    torch.manual_seed(0)
    block = HieraBlock(dim=8, dim_out=8, num_heads=1, window=4).eval()
    x = torch.randn(1, 8, 8, 8)
    changed = x.clone()
    changed[0, 7, 7] += 1.0
    diff = (block(changed) - block(x)).abs().amax(dim=-1)[0]
    assert diff[4:, 4:].max() > 0
    assert diff[:4].max() == 0 and diff[:, :4].max() == 0


def test_stage_shapes_and_channel_list() -> None:
    trunk = Hiera(**TINY_TRUNK).eval()
    assert trunk.channel_list == [128, 64, 32, 16]
    with torch.no_grad():
        features = trunk(torch.randn(1, 3, 128, 128))
    shapes = [tuple(f.shape) for f in features]
    assert shapes == [(1, 16, 32, 32), (1, 32, 16, 16), (1, 64, 8, 8), (1, 128, 4, 4)]
    assert [trunk.blocks[i].window for i in range(8)] == [8, 8, 4, 4, 6, 0, 0, 6]


def test_last_stage_only() -> None:
    trunk = Hiera(**TINY_TRUNK, return_interm_layers=False).eval()
    assert trunk.channel_list == [128]
    with torch.no_grad():
        assert [tuple(f.shape) for f in trunk(torch.randn(1, 3, 64, 64))] == [(1, 128, 2, 2)]


def test_rejects_image_not_multiple_of_position_window() -> None:
    trunk = Hiera(**TINY_TRUNK)
    with pytest.raises(ValueError, match="position window"):
        trunk(torch.randn(1, 3, 100, 100))


def test_rejects_mismatched_stage_settings() -> None:
    with pytest.raises(ValueError, match="window_spec"):
        Hiera(stages=(1, 2, 3), window_spec=(8, 4, 14, 7))


def test_b_plus_trunk_has_published_keys_and_shapes() -> None:
    reference = json.loads(need(SHARED / "reference" / "sam2pp_hiera_b+_mame.keys.json").read_text())
    prefix = "image_encoder.trunk."
    expected = {k[len(prefix):]: tuple(v) for k, v in reference.items() if k.startswith(prefix)}
    with torch.device("meta"):
        trunk = Hiera(**_trunk_section(SHARED / "reference" / "sam2pp_hiera_b+_mame.config.json"))
    assert {k: tuple(v.shape) for k, v in trunk.state_dict().items()} == expected
    assert trunk.channel_list == [896, 448, 224, 112]


def test_tiny_trunk_matches_published_stages() -> None:
    tiny = need(PARITY / "tiny")
    trunk = Hiera(**_trunk_section(tiny / "config.json")).eval()
    prefix = "image_encoder.trunk."
    state = torch.load(tiny / "checkpoint.pt", map_location="cpu", weights_only=True)["model"]
    trunk.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}, strict=True)
    ref = np.load(need(tiny / "mask_single" / "intermediates.npz"))
    for frame in (0, 1):
        with torch.no_grad():
            features = trunk(torch.from_numpy(ref[f"f{frame}_image"]))
        assert len(features) == 4
        for level, feature in enumerate(features):
            expected = torch.from_numpy(ref[f"f{frame}_trunk_{level}"])
            torch.testing.assert_close(feature, expected, atol=1e-4, rtol=0)


def test_drop_path_only_acts_in_training() -> None:
    trunk = Hiera(**TINY_TRUNK, drop_path_rate=0.5)
    x = torch.randn(4, 3, 64, 64)
    with torch.no_grad():
        trunk.eval()
        assert torch.equal(trunk(x)[-1], trunk(x)[-1])
        trunk.train()
        torch.manual_seed(0)
        first = trunk(x)[-1]
        torch.manual_seed(1)
        assert not torch.equal(first, trunk(x)[-1])
