"""Every case of ../shared/parity/tiny, replayed through the public API, against the published predictor's outputs.

Tolerances are the contract's: logits within 1e-3, boxes within 0.5 px, video masks equal except for a few pixels whose
logit is within noise of zero (the fixtures' README measured at most 2 such flips per case between thread counts).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import sam2pp
from conftest import PARITY, SHARED, need

CASES = ["mask_single", "box_single", "point_single", "point_default"]
LOGIT_ATOL = 1e-3
BOX_ATOL = 0.5
MAX_FLIPPED_PIXELS = 8


@pytest.fixture(scope="module")
def predictor():
    tiny = need(PARITY / "tiny")
    cfg = sam2pp.ModelConfig.from_json(tiny / "config.json")
    return sam2pp.VideoPredictor(sam2pp.build_model(cfg, checkpoint=tiny / "checkpoint.pt"))


def replay(predictor, case: dict):
    """Run a case's calls; returns the add_* results and the propagated results, in call order."""
    video = SHARED / case["video"]["dir"]
    state = predictor.init_state([video / name for name in case["video"]["frames"]])
    added, propagated = [], []
    for call in case["calls"]:
        op = call["contract_op"]
        f, obj = call["frame_idx"] if "frame_idx" in call else None, call.get("obj_id")
        if op == "add_mask":
            ids = np.asarray(Image.open(SHARED / call["mask"]["png"]))
            added.append(predictor.add_mask(state, f, obj, ids == call["mask"]["equals"]))
        elif op == "add_box":
            added.append(predictor.add_box(state, f, obj, call["box_xyxy"], **call.get("contract_kwargs", {})))
        elif op == "add_points":
            added.append(predictor.add_points(state, f, obj, call["points_xy"], call["labels"]))
        elif op == "add_track_point":
            added.append(predictor.add_track_point(state, f, obj, call["points_xy"][0], radius=call["radius"],
                                                   sigma=call["sigma"]))
        elif op == "propagate":
            propagated.extend(predictor.propagate(state, start_frame=call["start_frame_idx"],
                                                  max_frames=call["max_frame_num_to_track"], reverse=call["reverse"]))
        else:
            raise AssertionError(f"unknown op {op}")
    return added, propagated


def expected_rows(npz, prefix: str, index: int | None):
    def get(name):
        value = npz[prefix + name]
        return value if index is None else value[index]

    shape = npz[prefix + "video_mask_shape"]
    masks = np.unpackbits(npz[prefix + "video_mask_bits"], count=int(np.prod(shape))).reshape(shape).astype(bool)
    return {
        "frame_idx": int(get("frame_idx")),
        "obj_ids": [int(i) for i in npz[prefix + "obj_ids"]],
        "low_res_logits": get("low_res_logits"),
        "masks": masks if index is None else masks[index],
        "logits_sub16": get("video_logits_sub16"),
        "boxes_xyxy": get("boxes_xyxy"),
        "object_score_logits": get("object_score_logits"),
        "points_xy": get("points_xy"),
        "visible": get("visible"),
    }


def compare(result: sam2pp.FrameResult, want: dict, where: str) -> None:
    assert result.frame_idx == want["frame_idx"], where
    assert result.obj_ids == want["obj_ids"], where
    np.testing.assert_allclose(result.low_res_logits, want["low_res_logits"], atol=LOGIT_ATOL, rtol=0, err_msg=where)
    np.testing.assert_allclose(result.mask_logits[:, ::16, ::16], want["logits_sub16"], atol=LOGIT_ATOL, rtol=0,
                               err_msg=where)
    flipped = int((result.masks != want["masks"]).sum())
    assert flipped <= MAX_FLIPPED_PIXELS, f"{where}: {flipped} video-resolution mask pixels differ"
    np.testing.assert_allclose(result.boxes_xyxy, want["boxes_xyxy"], atol=BOX_ATOL, rtol=0, err_msg=where)
    np.testing.assert_allclose(result.object_score_logits, want["object_score_logits"], atol=LOGIT_ATOL, rtol=0,
                               err_msg=where)
    np.testing.assert_array_equal(result.points_xy, want["points_xy"], err_msg=where)
    np.testing.assert_array_equal(result.visible, want["visible"], err_msg=where)


@pytest.mark.parametrize("name", CASES)
def test_case_matches_published_outputs(predictor, name):
    folder = need(PARITY / "tiny" / name)
    case = json.loads((folder / "case.json").read_text())
    npz = np.load(folder / "outputs.npz")
    added, propagated = replay(predictor, case)
    for spec, result in zip(case["add_outputs"], added, strict=True):
        compare(result, expected_rows(npz, spec["prefix"], None), f"{name} {spec['prefix']}")
    assert [r.frame_idx for r in propagated] == npz["frame_idx"].tolist()
    for row, result in enumerate(propagated):
        compare(result, expected_rows(npz, "", row), f"{name} propagated row {row} (frame {result.frame_idx})")
    assert [r.tasks for r in propagated][0] == [case["task"]] * len(npz["obj_ids"])
