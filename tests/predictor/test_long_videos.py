"""Long videos: frames decoded ahead of tracking on a background thread, and a memory bank that keeps only what later
frames read; both give the same outputs as decoding on demand and keeping every memory."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest
import torch
from PIL import Image

import sam2pp
from sam2pp.predictor.frames import ArraySource, open_video

SIZE = 64  # the tiny preset at 64 px: tracking takes milliseconds per frame


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return sam2pp.build_model(dataclasses.replace(sam2pp.configs.get("sam2pp_tiny"), image_size=SIZE))


def moving_square(num_frames: int, size: int = 32) -> np.ndarray:
    """(T, size, size, 3) uint8: a bright square drifting over noise."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 60, (num_frames, size, size, 3), dtype=np.uint8)
    for t in range(num_frames):
        x = 4 + t % (size - 14)
        frames[t, 8:18, x:x + 10] = 230
    return frames


def track(predictor, video, frames: np.ndarray, start: int = 0, **kwargs):
    """Object 1 by its mask and object 2 by a box on frame `start`, then propagated."""
    state = predictor.init_state(video)
    predictor.add_mask(state, start, 1, frames[start, ..., 0] > 200)
    predictor.add_box(state, start, 2, (3, 7, 15, 19))
    return list(predictor.propagate(state, progress=False, **kwargs))


def assert_same_results(got, want) -> None:
    assert [r.frame_idx for r in got] == [r.frame_idx for r in want]
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a.low_res_logits, b.low_res_logits, err_msg=f"frame {a.frame_idx}")
        np.testing.assert_array_equal(a.boxes_xyxy, b.boxes_xyxy, err_msg=f"frame {a.frame_idx}")


class CountingSource(ArraySource):
    """An array source that records which thread read each frame."""

    def __init__(self, frames):
        super().__init__(frames)
        self.readers: dict[int, str] = {}

    def _read(self, index):
        self.readers[index] = threading.current_thread().name
        return super()._read(index)


def test_prefetched_inputs_equal_inputs_made_on_demand():
    frames = moving_square(6)
    source, plain = CountingSource(frames), ArraySource(frames)
    source.prefetch([2, 3], SIZE)
    for i in (2, 3):
        assert torch.equal(source.model_input(i, SIZE), plain.model_input(i, SIZE))
        assert source.readers[i].startswith("sam2pp-frames")
    source.prefetch([4], SIZE)
    source.stop_prefetch()
    assert source._prefetcher is None


def test_a_prefetch_error_surfaces_on_the_frame_that_needs_it(tmp_path):
    for t in range(3):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / f"{t:05d}.png")
    source = open_video(tmp_path)
    (tmp_path / "00002.png").write_bytes(b"not a png")
    source.prefetch([1, 2], SIZE)
    source.model_input(1, SIZE)
    with pytest.raises(ValueError, match="00002.png"):
        source.model_input(2, SIZE)


@pytest.mark.parametrize("reverse", [False, True])
def test_propagation_with_prefetch_equals_decoding_on_demand(net, tmp_path, reverse):
    frames = moving_square(10)
    for t, frame in enumerate(frames):
        Image.fromarray(frame).save(tmp_path / f"{t:05d}.jpg", quality=90)
    start = len(frames) - 1 if reverse else 0
    on_demand = track(sam2pp.VideoPredictor(net, prefetch=0), tmp_path, frames, start, reverse=reverse)
    ahead = track(sam2pp.VideoPredictor(net, prefetch=3), tmp_path, frames, start, reverse=reverse)
    assert len(ahead) == len(frames)
    assert_same_results(ahead, on_demand)


def test_prefetch_must_be_a_count(net):
    with pytest.raises(ValueError, match="prefetch must be an integer >= 0"):
        sam2pp.VideoPredictor(net, prefetch=-1)


def test_the_memory_position_encoding_is_stored_once(net):
    frames = moving_square(8)
    p = sam2pp.VideoPredictor(net)
    state = p.init_state(frames)
    p.add_mask(state, 0, 1, frames[0, ..., 0] > 200)
    list(p.propagate(state, progress=False))
    encodings = {id(m.maskmem_pos_enc) for m in state.object(1).memory.non_cond.values()}
    assert len(encodings) == 1 and len(state.object(1).memory.non_cond) == 7


def session(p, frames, prompts, box: bool = True):
    """A session with object 1 prompted by its mask on each of `prompts`, and object 2 by a box on them."""
    state = p.init_state(frames)
    for f in prompts:
        p.add_mask(state, f, 1, frames[f, ..., 0] > 200)
        if box:
            p.add_box(state, f, 2, (3, 7, 15, 19))
    return state


@pytest.mark.parametrize("settings", [{}, {"memory_temporal_stride_for_eval": 3, "max_obj_ptrs_in_encoder": 4}],
                         ids=["published", "strided"])
def test_the_window_bank_gives_the_outputs_of_keeping_everything(net, settings):
    """Forward to the end, then reverse from a prompt in the middle, forward again from it for 20 frames and on from
    where that stopped: every pass reads memories that earlier passes left, and the window bank must have kept
    exactly those (the strided memories make the spatial memories, not the pointers, set the window)."""
    model = net
    if settings:
        torch.manual_seed(0)
        model = sam2pp.build_model(dataclasses.replace(net.config, **settings))
    frames = moving_square(100)
    runs = {}
    for bank in ("all", "window"):
        p = sam2pp.VideoPredictor(model, memory_bank=bank, prefetch=0)
        state = session(p, frames, [0, 50])
        results = list(p.propagate(state, progress=False))
        results += p.propagate(state, start_frame=50, reverse=True, progress=False)
        results += p.propagate(state, start_frame=50, max_frames=20, progress=False)
        results += p.propagate(state, start_frame=71, progress=False)
        runs[bank] = results, state
    assert_same_results(runs["window"][0], runs["all"][0])
    window = p.tracker.memory_window()
    assert window == (16 if settings else 15)
    kept = sorted(runs["window"][1].object(1).memory.non_cond)
    assert len(runs["all"][1].object(1).memory.non_cond) == 98
    assert kept == [t for t in range(100) if t not in (0, 50) and (t <= window or abs(t - 50) <= window
                                                                   or t >= 99 - window)]


def test_the_window_bank_refuses_steps_that_would_read_evicted_memories(net):
    frames = moving_square(60)
    p = sam2pp.VideoPredictor(net, memory_bank="window")
    state = session(p, frames, [0])
    list(p.propagate(state, progress=False))
    with pytest.raises(ValueError, match="object 1 on frame 40, which memory_bank='window' has evicted"):
        p.add_points(state, 40, 1, [[10, 12]], [1])
    with pytest.raises(ValueError, match="propagating from it on frame 30 needs the memory of object 1 on frame 29"):
        next(p.propagate(state, start_frame=30, progress=False))
    p.add_mask(state, 59, 1, frames[59, ..., 0] > 200)  # the last frame: the memories it reads are all kept
    all_bank = sam2pp.VideoPredictor(net)
    state = session(all_bank, frames, [0])
    list(all_bank.propagate(state, progress=False))
    all_bank.add_points(state, 40, 1, [[10, 12]], [1])


def test_state_bytes_stop_growing_after_the_window(net):
    """The window bank's tensors weigh the same at frame 100 and frame 2,000; keeping everything grows."""
    frames = moving_square(2001)
    sizes = {}
    for bank, stop in (("window", 2000), ("all", 200)):
        p = sam2pp.VideoPredictor(net, memory_bank=bank, prefetch=0)
        state = session(p, frames, [0], box=False)
        for result in p.propagate(state, max_frames=stop, progress=False):
            if result.frame_idx in (100, 200, 2000):
                sizes[bank, result.frame_idx] = state.tensor_bytes()
    assert sizes["window", 100] == sizes["window", 2000]
    assert sizes["all", 200] > sizes["all", 100] > sizes["window", 100]


def offload_session(p, frames):
    """Object 1 by its mask, object 2 by a box; tracked, then object 1 corrected by a click on frame 5 (which reads
    the stored mask logits) and tracked again from there (which encodes the click's output into a memory)."""
    state = session(p, frames, [0])
    results = list(p.propagate(state, progress=False))
    p.add_points(state, 5, 1, [[12, 12]], [1])
    return state, results + list(p.propagate(state, start_frame=5, progress=False))


def test_offloaded_memories_live_on_the_cpu_and_change_no_output(net):
    """On a CPU-only machine this checks the outputs and the code paths (click, re-encoding); the CUDA test below
    checks that the memories leave the device."""
    frames = moving_square(24)
    state, offloaded = offload_session(sam2pp.VideoPredictor(net, offload_memory=True, prefetch=0), frames)
    _, kept = offload_session(sam2pp.VideoPredictor(net, prefetch=0), frames)
    assert_same_results(offloaded, kept)
    for obj in state.objects.values():
        for memory in [*obj.memory.cond.values(), *obj.memory.non_cond.values()]:
            kept = [memory.maskmem_features, memory.pred_masks, memory.obj_ptr, memory.object_score_logits]
            assert all(t.device.type == "cpu" for t in kept)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="offloading moves memories off a CUDA device")
def test_offloading_keeps_a_long_gpu_session_flat_in_device_memory(net):
    gpu = sam2pp.build_model(net.config, device="cuda")
    frames = moving_square(400)
    allocated = {}
    for offload in (True, False):
        p = sam2pp.VideoPredictor(gpu, offload_memory=offload, prefetch=0)
        state = session(p, frames, [0], box=False)
        for r in p.propagate(state, progress=False):
            if r.frame_idx in (100, 399):
                torch.cuda.synchronize()
                allocated[offload, r.frame_idx] = torch.cuda.memory_allocated()
        memory = state.object(1).memory.non_cond[399]
        kept = [memory.maskmem_features, memory.pred_masks, memory.obj_ptr, memory.object_score_logits]
        assert {t.device.type for t in kept} == {"cpu" if offload else "cuda"}
    assert allocated[True, 399] - allocated[True, 100] < 0.1 * (allocated[False, 399] - allocated[False, 100])


def test_the_compiled_image_encoder_tracks_like_eager_mode(net):
    """torch.compile (inductor, C++ on the CPU) of the image encoder: one compilation, the same tracks."""
    frames = moving_square(6)
    compiled = sam2pp.VideoPredictor(net, compile_image_encoder=True, prefetch=0)
    got, want = track(compiled, frames, frames), track(sam2pp.VideoPredictor(net, prefetch=0), frames, frames)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a.low_res_logits, b.low_res_logits, atol=1e-4, err_msg=f"frame {a.frame_idx}")
        np.testing.assert_allclose(a.boxes_xyxy, b.boxes_xyxy, atol=1e-3, err_msg=f"frame {a.frame_idx}")
    assert len(compiled._compiled) == 1


def test_the_compiled_step_tracks_like_eager_mode(net):
    """torch.compile of memory attention (dynamic shapes: the memory grows for 7 frames), decoder and memory encoder,
    with two mask objects batched, a box and a point: the same tracks as eager mode, from whole graphs (a graph break
    sends the rest of its frame, e.g. all of memory attention, back to eager)."""
    frames = moving_square(10)

    def tracks(predictor):
        state = predictor.init_state(frames)
        predictor.add_mask(state, 0, 1, frames[0, ..., 0] > 200)
        predictor.add_mask(state, 0, 2, frames[0, ..., 0] < 20)
        predictor.add_box(state, 0, 3, (3, 7, 15, 19))
        predictor.add_track_point(state, 0, 4, (9.0, 12.0))
        return list(predictor.propagate(state, progress=False))

    counters = torch._dynamo.utils.counters
    counters.clear()
    got = tracks(sam2pp.VideoPredictor(net, compile_step=True, prefetch=0))
    assert counters["stats"]["unique_graphs"] > 0
    assert not counters["graph_break"], f"graph breaks (their frames run partly eager): {list(counters['graph_break'])}"
    want = tracks(sam2pp.VideoPredictor(net, prefetch=0))
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a.low_res_logits, b.low_res_logits, atol=1e-4, err_msg=f"frame {a.frame_idx}")
        np.testing.assert_allclose(a.boxes_xyxy, b.boxes_xyxy, atol=1e-3, err_msg=f"frame {a.frame_idx}")
        np.testing.assert_array_equal(a.points_xy, b.points_xy, err_msg=f"frame {a.frame_idx}")
