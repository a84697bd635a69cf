"""Every case of ../shared/parity/tiny (task-separated memory) and ../shared/parity/tiny_shared (one memory attention
and memory encoder for all tasks), replayed through the public API, against the published predictor's outputs.

The mixed layouts (one of the memory modules shared, the other per task, and/or one image encoder per task) have no
fixtures of their own: each reproduces tiny_shared's outputs from tiny_shared's weights copied to every task.

Tolerances are the contract's: logits within 1e-3, boxes within 0.5 px, video masks equal except for a few pixels whose
logit is within noise of zero (the fixtures' README measured at most 2 such flips per case between thread counts).
"""

from __future__ import annotations

import dataclasses
import itertools
import json

import numpy as np
import pytest
from PIL import Image

import sam2pp
from conftest import PARITY, SHARED, need
from sam2pp.checkpoint import read_checkpoint
from sam2pp.modeling.task_modules import TASKS

MODELS = ["tiny", "tiny_shared"]
CASES = ["mask_single", "box_single", "point_single", "point_default"]
LOGIT_ATOL = 1e-3
BOX_ATOL = 0.5
MAX_FLIPPED_PIXELS = 8


@pytest.fixture(scope="module", params=MODELS)
def model(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def predictor(model):
    folder = need(PARITY / model)
    cfg = sam2pp.ModelConfig.from_json(folder / "config.json")
    return sam2pp.VideoPredictor(sam2pp.build_model(cfg, checkpoint=folder / "checkpoint.pt"))


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
def test_case_matches_published_outputs(model, predictor, name):
    check_case(predictor, need(PARITY / model / name), name)


# The long-video and many-object modes reproduce the same fixtures (decoding ahead is on by default above).
MODES = {"window_bank": {"memory_bank": "window", "prefetch": 0}}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", CASES)
def test_modes_reproduce_the_published_outputs(model, predictor, name, mode):
    check_case(sam2pp.VideoPredictor(predictor.model, **MODES[mode]), need(PARITY / model / name), name)


@pytest.mark.parametrize("name", CASES)
def test_batched_copies_of_an_object_each_reproduce_the_published_outputs(model, predictor, name):
    """The case's object prompted three times under three ids: the three go through memory attention and the memory
    encoder as one batch, and each must give the published outputs of the object alone."""
    folder = need(PARITY / model / name)
    case = json.loads((folder / "case.json").read_text())
    npz = np.load(folder / "outputs.npz")
    copies = (0, 1000, 2000)
    calls = []
    for call in case["calls"]:
        if call["contract_op"] == "propagate":
            calls.append(call)
        else:
            calls.extend({**call, "obj_id": call["obj_id"] + k} for k in copies)
    _, propagated = replay(predictor, {**case, "calls": calls})
    assert [r.frame_idx for r in propagated] == npz["frame_idx"].tolist()
    for row, result in enumerate(propagated):
        want = expected_rows(npz, "", row)
        for k in range(len(copies)):
            where = f"{name} propagated row {row}, copy {k}"
            np.testing.assert_allclose(result.low_res_logits[k], want["low_res_logits"][0], atol=LOGIT_ATOL, rtol=0,
                                       err_msg=where)
            np.testing.assert_allclose(result.boxes_xyxy[k], want["boxes_xyxy"][0], atol=BOX_ATOL, rtol=0,
                                       err_msg=where)
            np.testing.assert_array_equal(result.low_res_logits[k], result.low_res_logits[0], err_msg=where)


SWITCHED = ("memory_attention", "memory_encoder", "image_encoder")
LAYOUTS = list(itertools.product((False, True), repeat=3))  # separate_<module> for the modules of SWITCHED


def to_layout(shared_state: dict, layout: tuple[bool, ...]) -> dict:
    """A fully shared state dict with every module that `layout` separates copied to each task's published keys."""
    state = dict(shared_state)
    for name, separate in zip(SWITCHED, layout):
        if separate:
            for key in [k for k in state if k.startswith(f"{name}.")]:
                value = state.pop(key)
                state.update({f"{name}_{t}.{key[len(name) + 1:]}": value.clone() for t in TASKS})
    return state


# The cases rotate over the eight layouts, so each case is replayed twice; ids name the per-task modules.
LAYOUT_CASES = [(layout, CASES[i % len(CASES)]) for i, layout in enumerate(LAYOUTS)]
LAYOUT_IDS = ["-".join([n for n, sep in zip(("attn", "menc", "img"), layout) if sep] or ["all_shared"]) + f"-{name}"
              for layout, name in LAYOUT_CASES]


@pytest.mark.parametrize("layout, name", LAYOUT_CASES, ids=LAYOUT_IDS)
def test_every_layout_follows_the_shared_models_outputs(layout, name):
    """Every layout, given tiny_shared's weights in each task's copy, reproduces tiny_shared's outputs."""
    folder = need(PARITY / "tiny_shared")
    switches = {f"separate_{module}": separate for module, separate in zip(SWITCHED, layout)}
    cfg = dataclasses.replace(sam2pp.ModelConfig.from_json(folder / "config.json"), **switches)
    net = sam2pp.build_model(cfg)
    sam2pp.checkpoint.load_strict(net, to_layout(read_checkpoint(folder / "checkpoint.pt"), layout))
    check_case(sam2pp.VideoPredictor(net), need(folder / name), name)


def check_case(predictor, folder, name: str) -> None:
    """Replay one case folder and compare every add_* and propagated row with its outputs.npz."""
    case = json.loads((folder / "case.json").read_text())
    npz = np.load(folder / "outputs.npz")
    added, propagated = replay(predictor, case)
    for spec, result in zip(case["add_outputs"], added, strict=True):
        compare(result, expected_rows(npz, spec["prefix"], None), f"{name} {spec['prefix']}")
    assert [r.frame_idx for r in propagated] == npz["frame_idx"].tolist()
    for row, result in enumerate(propagated):
        compare(result, expected_rows(npz, "", row), f"{name} propagated row {row} (frame {result.frame_idx})")
    assert [r.tasks for r in propagated][0] == [case["task"]] * len(npz["obj_ids"])
