"""Every layout of the memory attention, memory encoder and image encoder (one shared module or one per task) on the
`sam2pp_tiny` preset: builds, saves under the published names, loads strictly, holds each parameter once, tracks
every task and routes each task to its own module (or to the shared one)."""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections import Counter
from functools import cache

import numpy as np
import pytest
import torch

import sam2pp
from conftest import PARITY, need
from sam2pp.checkpoint import CheckpointMismatchError, read_checkpoint
from sam2pp.data.synthetic import make_video
from sam2pp.modeling.task_modules import TASKS

SWITCHED = ("memory_attention", "memory_encoder", "image_encoder")
LAYOUTS = list(itertools.product((False, True), repeat=3))  # separate_<module> for the modules of SWITCHED
IDS = ["-".join(f"{name}={'task' if sep else 'shared'}" for name, sep in zip(("attn", "menc", "img"), flags))
       for flags in LAYOUTS]
FRAMES = 3


def tiny_config(layout: tuple[bool, bool, bool]) -> sam2pp.ModelConfig:
    return dataclasses.replace(sam2pp.configs.get("sam2pp_tiny"),
                               **{f"separate_{name}": sep for name, sep in zip(SWITCHED, layout)})


@cache
def model(layout: tuple[bool, bool, bool]):
    torch.manual_seed(0)
    return sam2pp.build_model(tiny_config(layout))


@cache
def distinct(layout: tuple[bool, bool, bool]):
    """The layout's model with each task's module perturbed differently, so that a wrong route changes numbers (a
    shared module is perturbed by every task in turn and stays one module)."""
    torch.manual_seed(0)
    net = sam2pp.build_model(tiny_config(layout))
    with torch.no_grad():
        for name in SWITCHED:
            for scale, task in enumerate(TASKS, start=1):
                for param in getattr(net, name)[task].parameters():
                    param.add_(0.01 * scale * torch.randn_like(param))
    return net


@pytest.fixture(params=LAYOUTS, ids=IDS)
def layout(request) -> tuple[bool, bool, bool]:
    return request.param


@pytest.fixture(scope="module")
def clip():
    return make_video(seed=3, num_frames=FRAMES, size=(160, 96), num_objects=2, points_per_object=1)


def module_keys(state_dict, name: str) -> tuple[set[str], dict[str, set[str]]]:
    """Keys of a switched module with its name stripped: (under `name.`, {task: under `name_<task>.`})."""
    shared = {k[len(name) + 1:] for k in state_dict if k.startswith(f"{name}.")}
    per_task = {t: {k[len(name) + len(t) + 2:] for k in state_dict if k.startswith(f"{name}_{t}.")} for t in TASKS}
    return shared, per_task


# ---- layout and checkpoints -----------------------------------------------------------------------------------------


def test_state_dict_keys_follow_the_published_names(layout):
    state, all_shared = model(layout).state_dict(), model((False, False, False)).state_dict()
    for name, separate in zip(SWITCHED, layout):
        reference, _ = module_keys(all_shared, name)
        shared, per_task = module_keys(state, name)
        assert reference
        if separate:
            assert shared == set() and all(per_task[t] == reference for t in TASKS), name
        else:
            assert shared == reference and all(not keys for keys in per_task.values()), name
    rest = lambda sd: {k for k in sd if not k.startswith(SWITCHED)}  # noqa: E731
    assert rest(state) == rest(all_shared)


@pytest.mark.parametrize("folder, layout", [("tiny_shared", (False, False, False)), ("tiny", (True, True, False))],
                         ids=["tiny_shared", "tiny"])
def test_published_layouts_have_the_parity_checkpoints_keys(folder, layout):
    published = read_checkpoint(need(PARITY / folder / "checkpoint.pt"))
    ours = model(layout).state_dict()
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in published.items()}


def test_each_parameter_is_held_once(layout):
    net = model(layout)
    size = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    base = size(model((False, False, False)))
    extra = sum(2 * size(getattr(net, name)["mask"]) for name, sep in zip(SWITCHED, layout) if sep)
    assert size(net) == base + extra
    params = list(net.parameters())
    assert len({id(p) for p in params}) == len(params)
    buffers = sum(b.numel() for b in net.buffers())
    assert sum(v.numel() for v in net.state_dict().values()) == size(net) + buffers
    for name, sep in zip(SWITCHED, layout):
        named = [n for n, _ in net.named_parameters() if n.startswith(f"{name}.")]
        assert len(named) == len(list(getattr(net, name).parameters())), name


def test_one_seed_gives_every_layout_the_same_initial_weights(layout):
    """Per-task copies start as copies of the shared module, and the rest of the model is drawn identically."""
    shared = model((False, False, False)).state_dict()
    as_shared = re.compile(rf"^({'|'.join(SWITCHED)})_({'|'.join(TASKS)})\.")
    for key, value in model(layout).state_dict().items():
        assert torch.equal(value, shared[as_shared.sub(r"\1.", key)]), key


def test_save_and_strict_load_round_trip(layout, tmp_path):
    saved = model(layout).state_dict()
    torch.save({"model": saved}, tmp_path / "variant.pt")
    torch.manual_seed(1)
    loaded = sam2pp.build_model(tiny_config(layout), checkpoint=tmp_path / "variant.pt").state_dict()
    assert list(loaded) == list(saved)
    assert all(torch.equal(loaded[k], v) for k, v in saved.items())


@pytest.mark.parametrize(
    "saved, built, hint",
    [
        ((True, True, False), (False, True, False),
         "the checkpoint has a per-task memory_attention but the model a shared one; build the model with "
         "separate_memory_attention=True"),
        ((False, False, False), (False, True, False),
         "the checkpoint has a shared memory_encoder but the model a per-task one; build the model with "
         "separate_memory_encoder=False"),
        ((False, False, True), (False, False, False),
         "the checkpoint has a per-task image_encoder but the model a shared one; build the model with "
         "separate_image_encoder=True"),
    ],
    ids=["attn", "menc", "img"],
)
def test_loading_another_layout_lists_the_keys_and_hints_at_the_switch(saved, built, hint, tmp_path):
    torch.save({"model": model(saved).state_dict()}, tmp_path / "other.pt")
    with pytest.raises(CheckpointMismatchError) as err:
        sam2pp.build_model(tiny_config(built), checkpoint=tmp_path / "other.pt")
    text = str(err.value)
    assert "missing (" in text and "unexpected (" in text
    assert hint in text
    assert text.count("hint:") == 1


# ---- routing --------------------------------------------------------------------------------------------------------


def count_calls(net, run) -> Counter:
    """Calls of each stored module of the switched modules while `run()` runs: {(module, child): count}."""
    calls: Counter = Counter()
    hooks = [
        child.register_forward_hook(lambda *_, where=(name, stored): calls.update([where]))
        for name in SWITCHED
        for stored, child in getattr(net, name).items()
    ]
    try:
        run()
    finally:
        for hook in hooks:
            hook.remove()
    return calls


def prompt(predictor, state, clip, task: str, obj_id: int) -> None:
    if task == "mask":
        predictor.add_mask(state, 0, obj_id, clip.masks[0] == 1)
    elif task == "box":
        predictor.add_box(state, 0, obj_id, clip.boxes_xyxy[1, 0])
    else:
        predictor.add_track_point(state, 0, obj_id, clip.points[0, 0], radius=8, sigma=3)


def track(predictor, clip, tasks) -> list:
    state = predictor.init_state(clip.frames)
    for obj_id, task in enumerate(tasks, start=1):
        prompt(predictor, state, clip, task, obj_id)
    return list(predictor.propagate(state, progress=False))


@pytest.mark.parametrize("task", TASKS)
def test_each_task_tracks_with_its_own_modules(layout, clip, task):
    net = distinct(layout)
    predictor = sam2pp.VideoPredictor(net)
    results = []
    calls = count_calls(net, lambda: results.extend(track(predictor, clip, [task])))
    assert [r.frame_idx for r in results] == list(range(FRAMES))
    last = results[-1]
    assert last.tasks == [task] and np.isfinite(last.object_score_logits).all()
    assert np.isfinite(last.boxes_xyxy).all() == (task == "box")
    assert np.isfinite(last.points_xy).all() == (task == "point")
    per_frame = {"image_encoder": FRAMES, "memory_attention": FRAMES - 1, "memory_encoder": FRAMES}
    expected = {(name, task if sep else "all"): per_frame[name] for name, sep in zip(SWITCHED, layout)}
    assert dict(calls) == expected


def test_mixed_session_tracks_each_object_as_its_task_alone(layout, clip):
    net = distinct(layout)
    predictor = sam2pp.VideoPredictor(net)
    mixed = []
    calls = count_calls(net, lambda: mixed.extend(track(predictor, clip, TASKS)))
    assert mixed[0].tasks == list(TASKS)
    encoders = 3 if layout[2] else 1
    assert sum(n for (name, _), n in calls.items() if name == "image_encoder") == FRAMES * encoders
    for row, task in enumerate(TASKS):
        alone = track(predictor, clip, [task])
        for a, b in zip(mixed, alone, strict=True):
            np.testing.assert_allclose(a.low_res_logits[row], b.low_res_logits[0], atol=1e-5)
            np.testing.assert_allclose(a.object_score_logits[row], b.object_score_logits[0], atol=1e-5)


@torch.inference_mode()
def test_a_shared_module_gives_every_task_the_same_result(layout):
    net = distinct(layout)
    torch.manual_seed(2)
    c, cm, h, s = net.hidden_dim, net.mem_dim, net.image_size // 16, net.image_size
    vision, vision_pos = torch.randn(1, c, h, h), torch.randn(1, c, h, h)
    memory, memory_pos = torch.randn(h * h, 1, cm), torch.randn(h * h, 1, cm)
    masks, scores = torch.randn(1, 1, s, s), torch.ones(1, 1)
    image = torch.randn(1, 3, s, s)
    outputs = {
        "memory_attention": {t: net.attend_memory(t, vision, vision_pos, memory, memory_pos, 0) for t in TASKS},
        "memory_encoder": {t: net.encode_memory(t, vision, masks, scores)[0] for t in TASKS},
        "image_encoder": {t: net.encode_image(image, t).vision_features for t in TASKS},
    }
    for name, separate in zip(SWITCHED, layout):
        same = [torch.equal(outputs[name]["mask"], outputs[name][t]) for t in ("box", "point")]
        assert same == [not separate] * 2, name


def test_encode_image_needs_the_task_only_with_separate_encoders():
    image = torch.zeros(1, 3, 256, 256)
    with torch.inference_mode():
        net = model((True, True, False))
        assert torch.equal(net.encode_image(image).vision_features, net.encode_image(image, "box").vision_features)
        with pytest.raises(ValueError, match="one image encoder per task .*needs the task, one of mask, box, point"):
            model((True, True, True)).encode_image(image)
