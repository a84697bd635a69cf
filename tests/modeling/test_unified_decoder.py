"""Unified decoder: parity with the published model (mask and box tasks, frames 0 and 1), high-res
projections, checkpoint layout of the b+ model, selection rules and input checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import PARITY, SHARED, need

from sam2pp.modeling.prompt_encoder import PromptEncoder, build_prompt_encoder
from sam2pp.modeling.unified_decoder import NO_OBJECT_LOGIT, DecoderOutput, UnifiedDecoder, build_unified_decoder

ATOL = 1e-4
DECODER = "sam_unified_decoder."
ENCODER = "sam_prompt_encoder."
OUTPUT_KEYS = {  # DecoderOutput field -> fixture suffix
    "masks": "masks",
    "iou_pred": "ious",
    "sam_tokens": "sam_tokens",
    "object_score_logits": "object_score_logits",
    "boxes_xyxy_norm": "boxes_xyxy_norm",
}


def _weights(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


@pytest.fixture(scope="module")
def tiny_config() -> dict:
    return json.loads(need(PARITY / "tiny" / "config.json").read_text())


@pytest.fixture(scope="module")
def tiny_state() -> dict[str, torch.Tensor]:
    return torch.load(need(PARITY / "tiny" / "checkpoint.pt"), map_location="cpu", weights_only=True)["model"]


def _decoder(config: dict, state: dict[str, torch.Tensor]) -> UnifiedDecoder:
    decoder = build_unified_decoder(config).eval()
    decoder.load_state_dict(_weights(state, DECODER), strict=True)
    return decoder


@pytest.fixture(scope="module")
def tiny_models(tiny_config, tiny_state) -> tuple[PromptEncoder, UnifiedDecoder]:
    encoder = build_prompt_encoder(tiny_config).eval()
    encoder.load_state_dict(_weights(tiny_state, ENCODER), strict=True)
    return encoder, _decoder(tiny_config, tiny_state)


class Frame:
    """One frame's tensors from intermediates.npz."""

    def __init__(self, case: str, frame: int) -> None:
        self.data = np.load(need(PARITY / "tiny" / case / "intermediates.npz"))
        self.prefix = f"f{frame}_"

    def __contains__(self, name: str) -> bool:
        return self.prefix + name in self.data.files

    def __getitem__(self, name: str) -> torch.Tensor:
        return torch.from_numpy(np.asarray(self.data[self.prefix + name]))

    def decode(self, models, multimask: bool | None = None, task: str = "mask") -> DecoderOutput:
        encoder, decoder = models
        if multimask is None:
            multimask = bool(self["decoder_call0_multimask_output"])
        with torch.no_grad():
            return decoder(
                image_embeddings=self["decoder_call0_in_image_embeddings"],
                image_pe=encoder.dense_pe(),
                sparse_prompt_embeddings=self["prompt_encoder_call0_sparse"],
                dense_prompt_embeddings=self["prompt_encoder_call0_dense"],
                multimask_output=multimask,
                repeat_image=False,
                high_res_features=[self["backbone_fpn_0"], self["backbone_fpn_1"]],
                task=task,
            )


@pytest.mark.parametrize("frame", [0, 1])
@pytest.mark.parametrize(("case", "task"), [("mask_single", "mask"), ("box_single", "box")])
def test_parity(case: str, task: str, frame: int, tiny_models) -> None:
    data = Frame(case, frame)
    out = data.decode(tiny_models, task=task)
    for field, suffix in OUTPUT_KEYS.items():
        got = getattr(out, field)
        if f"decoder_call0_{suffix}" not in data:
            assert got is None, f"{field} should be None for task {task}"
            continue
        torch.testing.assert_close(got, data[f"decoder_call0_{suffix}"], atol=ATOL, rtol=0, msg=field)


@pytest.mark.parametrize("frame", [0, 1])
@pytest.mark.parametrize(("case", "task"), [("mask_single", "mask"), ("box_single", "box")])
def test_high_res_projection_parity(case: str, task: str, frame: int, tiny_models) -> None:
    raw = Frame("mask_single", frame)  # the raw FPN levels are task-independent, stored once
    projected = Frame(case, frame)
    with torch.no_grad():
        s0, s1 = tiny_models[1].project_high_res([raw["backbone_fpn_raw_0"], raw["backbone_fpn_raw_1"]], task)
    torch.testing.assert_close(s0, projected["backbone_fpn_0"], atol=ATOL, rtol=0)
    torch.testing.assert_close(s1, projected["backbone_fpn_1"], atol=ATOL, rtol=0)


def test_box_frame0_absent_object_is_suppressed_then_best_selected(tiny_models) -> None:
    """box_single frame 0 has score -0.256: masks become -1024, boxes 0; the best IoU is candidate 1."""
    out = Frame("box_single", 0).decode(tiny_models, task="box")
    assert out.object_score_logits.item() < 0
    best = out.suppress_absent().select_best()
    assert best.masks.shape == (1, 1, 64, 64) and best.boxes_xyxy_norm.shape == (1, 1, 4)
    assert torch.all(best.masks == NO_OBJECT_LOGIT) and torch.all(best.boxes_xyxy_norm == 0)
    index = int(out.iou_pred.argmax())
    torch.testing.assert_close(best.sam_tokens, out.sam_tokens[:, index : index + 1])
    torch.testing.assert_close(best.iou_pred, out.iou_pred[:, index : index + 1])


def test_present_object_keeps_its_outputs(tiny_models) -> None:
    out = Frame("box_single", 1).decode(tiny_models, task="box")
    assert out.object_score_logits.item() > 0
    kept = out.suppress_absent()
    torch.testing.assert_close(kept.masks, out.masks, atol=0, rtol=0)
    torch.testing.assert_close(kept.boxes_xyxy_norm, out.boxes_xyxy_norm, atol=0, rtol=0)


def test_single_mask_output_uses_token_zero(tiny_models) -> None:
    data = Frame("mask_single", 1)
    multi = data.decode(tiny_models, multimask=True)
    single = data.decode(tiny_models, multimask=False)
    assert single.masks.shape == (1, 1, 64, 64) and single.sam_tokens.shape == (1, 1, 64)
    assert multi.sam_tokens.shape == (1, 3, 64)
    assert not torch.allclose(single.sam_tokens[:, 0], multi.sam_tokens[:, 0])


@pytest.mark.parametrize(("thresh", "fallback"), [(0.0, False), (1.5, True)])
def test_dynamic_multimask_via_stability(thresh: float, fallback: bool, tiny_config, tiny_state, tiny_models) -> None:
    """Threshold 0: token 0 is always stable; above 1: it never is, so the best multimask candidate wins."""
    extra = {"dynamic_multimask_via_stability": True, "dynamic_multimask_stability_thresh": thresh}
    config = dict(tiny_config, sam_mask_decoder_extra_args=extra)
    dynamic = (tiny_models[0], _decoder(config, tiny_state))
    data = Frame("mask_single", 1)
    out = data.decode(dynamic, multimask=False)
    multi = data.decode(tiny_models, multimask=True)
    single = data.decode(tiny_models, multimask=False)
    expected = multi.select_best() if fallback else single
    torch.testing.assert_close(out.masks, expected.masks, atol=0, rtol=0)
    torch.testing.assert_close(out.iou_pred, expected.iou_pred, atol=0, rtol=0)
    torch.testing.assert_close(out.sam_tokens, single.sam_tokens, atol=0, rtol=0)  # always the single-mask token


def test_repeat_image_matches_a_batched_image(tiny_models) -> None:
    encoder, decoder = tiny_models
    data = Frame("mask_single", 1)
    sparse = torch.cat([data["prompt_encoder_call0_sparse"]] * 2)
    dense = torch.cat([data["prompt_encoder_call0_dense"]] * 2)
    high_res = [torch.cat([data["backbone_fpn_0"]] * 2), torch.cat([data["backbone_fpn_1"]] * 2)]
    with torch.no_grad():
        image = data["decoder_call0_in_image_embeddings"]
        out = decoder(image, encoder.dense_pe(), sparse, dense, True, True, high_res, "point")
    assert out.masks.shape == (2, 3, 64, 64) and out.boxes_xyxy_norm is None
    torch.testing.assert_close(out.masks[0], out.masks[1], atol=1e-5, rtol=0)


def test_rejects_bad_calls(tiny_models) -> None:
    encoder, decoder = tiny_models
    data = Frame("mask_single", 1)
    args = (
        data["decoder_call0_in_image_embeddings"],
        encoder.dense_pe(),
        data["prompt_encoder_call0_sparse"],
        data["prompt_encoder_call0_dense"],
        True,
        False,
    )
    high_res = [data["backbone_fpn_0"], data["backbone_fpn_1"]]
    with pytest.raises(ValueError, match="unknown task"):
        decoder(*args, high_res, "segment")
    with pytest.raises(ValueError, match="high_res_features"):
        decoder(*args, None, "mask")
    with pytest.raises(ValueError, match="unknown task"):
        decoder.project_high_res([data["backbone_fpn_raw_0"], data["backbone_fpn_raw_1"]], "pointer")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"unified_decoder_box_head_pred_masks": False}, "pred_masks"),
        ({"backbone_stride": 32}, "backbone_stride"),
        ({"unified_decoder_box_head_inner_dim": 128}, "inner_dim"),
        ({"sam_mask_decoder_extra_args": {"num_heads": 4}}, "unsupported"),
    ],
)
def test_builder_rejects_unsupported_settings(override: dict, message: str, tiny_config) -> None:
    with pytest.raises(ValueError, match=message):
        build_unified_decoder(dict(tiny_config, **override))


def test_reference_keys_and_shapes() -> None:
    """The b+ MAME prompt encoder and decoder have exactly the published state-dict entries."""
    config = json.loads(need(SHARED / "reference" / "sam2pp_hiera_b+_mame.config.json").read_text())
    reference = json.loads(need(SHARED / "reference" / "sam2pp_hiera_b+_mame.keys.json").read_text())
    with torch.device("meta"):
        modules = {ENCODER: build_prompt_encoder(config), DECODER: build_unified_decoder(config)}
    buffer_values = 0
    for prefix, module in modules.items():
        expected = {k[len(prefix) :]: list(shape) for k, shape in reference.items() if k.startswith(prefix)}
        assert {k: list(v.shape) for k, v in module.state_dict().items()} == expected, prefix
        buffer_values += sum(b.numel() for b in module.buffers())
    # The only buffers of the published model: the box head's frozen BN terms and the Fourier matrix.
    total = sum(int(np.prod(shape)) for shape in reference.values())
    assert buffer_values == total - 101_205_890
