"""Two-way transformer: parity of the decoder's output tokens, permutation symmetry, input checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import PARITY, need

from sam2pp.modeling.prompt_encoder import build_prompt_encoder
from sam2pp.modeling.two_way_transformer import TwoWayTransformer
from sam2pp.modeling.unified_decoder import build_two_way_transformer

ATOL = 1e-4


def _weights(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


@pytest.fixture(scope="module")
def tiny() -> tuple[dict, dict[str, torch.Tensor]]:
    config = json.loads(need(PARITY / "tiny" / "config.json").read_text())
    state = torch.load(need(PARITY / "tiny" / "checkpoint.pt"), map_location="cpu", weights_only=True)["model"]
    return config, state


@pytest.mark.parametrize(("case", "frame"), [("mask_single", 0), ("mask_single", 1), ("box_single", 0)])
def test_mask_tokens_match_published_decoder(case: str, frame: int, tiny) -> None:
    """The decoder's `sam_tokens` are the transformer's mask-token outputs, untouched by any head."""
    config, state = tiny
    transformer = build_two_way_transformer(config).eval()
    transformer.load_state_dict(_weights(state, "sam_unified_decoder.transformer."), strict=True)
    encoder = build_prompt_encoder(config).eval()
    encoder.load_state_dict(_weights(state, "sam_prompt_encoder."), strict=True)
    fixture = np.load(need(PARITY / "tiny" / case / "intermediates.npz"))

    def tensor(name: str) -> torch.Tensor:
        return torch.from_numpy(fixture[f"f{frame}_{name}"])

    output_tokens = torch.cat(
        [state[f"sam_unified_decoder.{name}.weight"] for name in ("obj_score_token", "iou_token", "mask_tokens")]
    )
    tokens = torch.cat([output_tokens[None], tensor("prompt_encoder_call0_sparse")], dim=1)
    image = tensor("decoder_call0_in_image_embeddings") + tensor("prompt_encoder_call0_dense")
    with torch.no_grad():
        queries, keys = transformer(image, encoder.dense_pe(), tokens)
    assert queries.shape == tokens.shape
    assert keys.shape == (1, image.shape[2] * image.shape[3], image.shape[1])
    mask_tokens = queries[:, 2:6]
    expected = tensor("decoder_call0_sam_tokens")
    chosen = mask_tokens[:, 1:] if bool(fixture[f"f{frame}_decoder_call0_multimask_output"]) else mask_tokens[:, :1]
    torch.testing.assert_close(chosen, expected, atol=ATOL, rtol=0)


def test_image_positions_are_an_unordered_set() -> None:
    """Permuting image cells (with their encodings) permutes the image output and leaves the tokens."""
    torch.manual_seed(0)
    transformer = TwoWayTransformer(depth=2, embedding_dim=32, num_heads=4, mlp_dim=64).eval()
    image, pe, tokens = torch.randn(2, 32, 3, 4), torch.randn(2, 32, 3, 4), torch.randn(2, 5, 32)
    order = torch.randperm(12)

    def shuffle(x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2)[:, :, order].reshape(x.shape)

    with torch.no_grad():
        queries, keys = transformer(image, pe, tokens)
        queries_p, keys_p = transformer(shuffle(image), shuffle(pe), tokens)
    torch.testing.assert_close(queries_p, queries, atol=1e-5, rtol=0)
    torch.testing.assert_close(keys_p, keys[:, order], atol=1e-5, rtol=0)


def test_first_block_skips_self_attention_residual() -> None:
    torch.manual_seed(0)
    transformer = TwoWayTransformer(depth=2, embedding_dim=16, num_heads=2, mlp_dim=32)
    assert [layer.skip_first_layer_pe for layer in transformer.layers] == [True, False]
    # Token-to-image attention halves the inner width; self-attention keeps it.
    assert transformer.layers[0].cross_attn_token_to_image.q_proj.out_features == 8
    assert transformer.layers[0].self_attn.q_proj.out_features == 16


def test_rejects_mismatched_inputs() -> None:
    transformer = TwoWayTransformer(depth=1, embedding_dim=16, num_heads=2, mlp_dim=32)
    with pytest.raises(ValueError, match="image_pe"):
        transformer(torch.zeros(1, 16, 4, 4), torch.zeros(1, 16, 4, 5), torch.zeros(1, 3, 16))
    with pytest.raises(ValueError, match="16 channels"):
        transformer(torch.zeros(1, 16, 4, 4), torch.zeros(1, 16, 4, 4), torch.zeros(1, 3, 8))
