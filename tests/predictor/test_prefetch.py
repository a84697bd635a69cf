"""Frames made ahead on worker threads: every source gives the published preprocessing's exact tensors in either
direction, workers stay within their bound and end with the session, and a worker's error reaches the tracking
thread naming the frame and its file."""

from __future__ import annotations

import dataclasses
import gc
import threading

import numpy as np
import pytest
import torch
from PIL import Image

import sam2pp
from sam2pp.io.overlay import write_animation
from sam2pp.predictor.frames import ArraySource, ImageFilesSource, open_video
from sam2pp.predictor.preprocess import IMAGE_MEAN, IMAGE_STD
from sam2pp.predictor.preprocess import normalise

SIZE = 64
FRAMES = 8


def reference(image: Image.Image, size: int = SIZE) -> torch.Tensor:
    """The published preprocessing, written out plainly: RGB, PIL resize, /255 in float64, float32, mean/std."""
    pixels = np.asarray(image.convert("RGB").resize((size, size))) / 255.0
    x = torch.from_numpy(pixels).permute(2, 0, 1).float()
    return (x - torch.tensor(IMAGE_MEAN)[:, None, None]) / torch.tensor(IMAGE_STD)[:, None, None]


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    """(T, 90, 120, 3) uint8: smooth gradients and noise, so a resize has every kind of neighbourhood."""
    rng = np.random.default_rng(3)
    y, x = np.mgrid[:90, :120]
    base = np.stack([x * 2, y * 2, (x + y)], -1).astype(np.int64)
    return np.stack([np.clip(base + rng.integers(-40, 40, base.shape) + 9 * t, 0, 255) for t in range(FRAMES)]
                    ).astype(np.uint8)


def sources(kind: str, frames: np.ndarray, tmp_path):
    """A source of `kind` over `frames`, and the PIL images the reference preprocesses."""
    if kind in ("jpeg folder", "png list"):
        suffix = ".jpg" if kind == "jpeg folder" else ".png"
        paths = [tmp_path / f"{t:05d}{suffix}" for t in range(len(frames))]
        for path, frame in zip(paths, frames):
            Image.fromarray(frame).save(path)
        return open_video(tmp_path if kind == "jpeg folder" else paths), [Image.open(p) for p in paths]
    if kind == "video file":
        import av

        path = write_animation(tmp_path / "clip.mp4", list(frames), fps=5, progress=False)
        with av.open(str(path)) as container:
            return open_video(path), [f.to_image() for f in container.decode(video=0)]
    if kind == "model-size array":
        small = np.stack([np.asarray(Image.fromarray(f).resize((SIZE, SIZE))) for f in frames])
        return open_video(small), [Image.fromarray(f) for f in small]
    if kind == "stream":
        return open_video(iter(list(frames))), [Image.fromarray(f) for f in frames]
    return open_video(frames), [Image.fromarray(f) for f in frames]


KINDS = ["jpeg folder", "png list", "array", "model-size array", "video file", "stream"]


# A stream is tracked forwards only: it has no reverse case.
DIRECTIONS = [(kind, reverse) for kind in KINDS for reverse in (False, True) if not (kind == "stream" and reverse)]


@pytest.mark.parametrize(("kind", "reverse"), DIRECTIONS)
def test_every_source_gives_the_published_inputs_when_made_ahead(kind, reverse, frames, tmp_path):
    source, images = sources(kind, frames, tmp_path)
    order = range(FRAMES - 1, -1, -1) if reverse else range(FRAMES)
    source.prefetch(order, SIZE, ahead=3, workers=2)
    for i in order:
        got, want = source.model_input(i, SIZE), reference(images[i])
        assert torch.equal(got, want) and got.stride() == want.stride(), f"{kind}, frame {i}"
    source.stop_prefetch()


def test_the_normalisation_table_holds_the_published_value_of_every_level():
    levels = np.repeat(np.arange(256, dtype=np.uint8)[:, None, None], 3, axis=-1)  # (256, 1, 3)
    want = (torch.from_numpy(levels / 255.0).permute(2, 0, 1).float() - torch.tensor(IMAGE_MEAN)[:, None, None]
            ) / torch.tensor(IMAGE_STD)[:, None, None]
    assert torch.equal(normalise(levels), want)


class CountingSource(ArraySource):
    """An array source that checks, at every read, that no frame is read more than `ahead` past the last asked."""

    def __init__(self, frames, order, ahead: int):
        super().__init__(frames)
        self.order, self.ahead, self.asked = order, ahead, order[0]
        self.readers: dict[int, str] = {}
        self.too_far: list[tuple[int, int]] = []

    def _read(self, index):
        if self.order.index(index) > self.order.index(self.asked) + self.ahead:
            self.too_far.append((index, self.asked))
        self.readers[index] = threading.current_thread().name
        return super()._read(index)

    def ask(self, index: int) -> torch.Tensor:
        self.asked = index
        return self.model_input(index, SIZE)


@pytest.mark.parametrize("order", [range(20), range(19, -1, -1)])
def test_workers_read_at_most_ahead_frames_past_the_one_tracked(order):
    video = np.random.default_rng(0).integers(0, 255, (20, 16, 16, 3), dtype=np.uint8)
    source = CountingSource(video, order, ahead=3)
    source.prefetch(order, SIZE, ahead=3, workers=2)
    for i in order:
        assert torch.equal(source.ask(i), reference(Image.fromarray(video[i])))
    source.stop_prefetch()
    assert source.too_far == []
    assert any(name.startswith("sam2pp-frames") for name in source.readers.values())


def prefetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("sam2pp-frames")]


def assert_workers_end() -> None:
    for thread in prefetch_threads():
        thread.join(timeout=30)
    assert prefetch_threads() == []


@pytest.fixture(scope="module")
def predictor():
    torch.manual_seed(0)
    net = sam2pp.build_model(dataclasses.replace(sam2pp.configs.get("sam2pp_tiny"), image_size=SIZE))
    return sam2pp.VideoPredictor(net, prefetch=3)


def test_workers_end_with_the_propagation_or_a_dropped_session(predictor, frames):
    state = predictor.init_state(frames)
    predictor.add_mask(state, 0, 1, frames[0, ..., 0] > 128)
    assert len(list(predictor.propagate(state, progress=False))) == FRAMES
    assert_workers_end()
    results = predictor.propagate(state, progress=False)
    next(results), next(results)
    assert prefetch_threads()
    results.close()
    assert_workers_end()
    source = ArraySource(frames)
    source.prefetch(range(FRAMES), SIZE, ahead=2)
    source.model_input(0, SIZE)
    del source
    gc.collect()
    assert_workers_end()


def test_a_corrupt_jpeg_fails_tracking_with_its_frame_and_file(predictor, frames, tmp_path):
    for t, frame in enumerate(frames):
        Image.fromarray(frame).save(tmp_path / f"{t:05d}.jpg")
    state = predictor.init_state(tmp_path)
    predictor.add_mask(state, 0, 1, frames[0, ..., 0] > 128)
    data = (tmp_path / "00005.jpg").read_bytes()
    (tmp_path / "00005.jpg").write_bytes(data[: len(data) // 3])  # truncated after the header
    tracked = []
    with pytest.raises(ValueError, match=r"frame 5: cannot read image .*00005\.jpg"):
        for result in predictor.propagate(state, progress=False):
            tracked.append(result.frame_idx)
    assert tracked == [0, 1, 2, 3, 4]
    assert_workers_end()


def test_a_worker_error_is_raised_where_tracking_asks_for_the_frame(frames, tmp_path):
    paths = [tmp_path / f"{t:05d}.jpg" for t in range(3)]
    for path, frame in zip(paths, frames):
        Image.fromarray(frame).save(path)
    paths[2].write_bytes(b"not a jpeg")
    reading = threading.Event()

    class Watched(ImageFilesSource):
        def _read(self, index, draft=None):
            if index == 2:
                reading.set()  # a worker has started on the corrupt frame
            return super()._read(index, draft)

    source = Watched(paths)
    source.prefetch(range(3), SIZE, ahead=3)
    assert reading.wait(timeout=60)
    assert torch.equal(source.model_input(1, SIZE), reference(Image.open(paths[1])))
    with pytest.raises(ValueError, match=r"frame 2: cannot read image .*00002\.jpg") as error:
        source.model_input(2, SIZE)
    assert any("ahead of tracking, on a worker thread" in note for note in error.value.__notes__)
    source.stop_prefetch()


def test_an_error_in_a_stream_iterator_reaches_the_tracking_thread(predictor, frames):
    def camera():
        yield from frames[:4]
        raise RuntimeError("camera unplugged")

    state = predictor.init_state(camera())
    predictor.add_mask(state, 0, 1, frames[0, ..., 0] > 128)
    with pytest.raises(RuntimeError, match="camera unplugged"):
        list(predictor.propagate(state, progress=False))
    with pytest.raises(RuntimeError, match="camera unplugged"):
        state.frames.available(4)
    assert_workers_end()


def test_jpeg_draft_decodes_smaller_and_stays_close(frames, tmp_path):
    big = np.repeat(np.repeat(frames[:2], 4, axis=1), 4, axis=2)  # 360 x 480: 1/4 scale is still >= 64
    paths = [tmp_path / f"{t:05d}.jpg" for t in range(2)]
    for path, frame in zip(paths, big):
        Image.fromarray(frame).save(path, quality=95)
    exact, draft = open_video(paths), open_video(tmp_path, jpeg_draft=True)
    assert draft._read_for_model(0, SIZE).size == (120, 90)
    assert exact._read_for_model(0, SIZE).size == (480, 360)
    assert torch.equal(exact.model_input(1, SIZE), reference(Image.open(paths[1])))
    difference = (draft.model_input(1, SIZE) - exact.model_input(1, SIZE)).abs()
    assert 0 < difference.mean() < 0.1  # normalised units: about 6 grey levels
    assert draft.frame(1).shape == (360, 480, 3)  # only the model's input is drafted
    with pytest.raises(ValueError, match="jpeg_draft applies to frames stored as image files"):
        open_video(frames, jpeg_draft=True)
