"""Lazy frame sources: a folder of images, a list of image paths, a uint8 array, a video file, or a stream.

Frames are decoded when asked for and the model inputs are kept in a small LRU cache, so a session's memory does not
grow with the length of the video. `prefetch` decodes the frames that tracking will ask for next on a background
thread, so decoding overlaps the model's compute; a prefetched input is the same tensor as one made on demand. Model inputs follow the published preprocessing exactly: PIL `resize((S, S))` with
its default (bicubic) filter, /255 in float64, float32, then ImageNet mean/std; the aspect ratio is not kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from ..io.formats import list_frames

IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)
VIDEO_SUFFIXES = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".gif"}


class FrameSource:
    """Random access to a video's frames. Subclasses implement `_read(i) -> PIL.Image`.

    Thread-safe: `_read` runs under a lock (a video decoder has one position), the cache under another.
    """

    names: list[str]
    is_stream = False  # whether frames still arrive (the length is not known yet)

    def __init__(self, num_frames: int, width: int, height: int, cache_size: int = 16):
        if num_frames == 0:
            raise ValueError("the video has no frames")
        self.num_frames, self.width, self.height = num_frames, width, height
        self._init_cache(cache_size)

    def _init_cache(self, cache_size: int) -> None:
        self._cache: OrderedDict[tuple[int, int], torch.Tensor] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._pending: dict[tuple[int, int], Future] = {}
        self._pool: ThreadPoolExecutor | None = None

    def __len__(self) -> int:
        return self.num_frames

    def _read(self, index: int) -> Image.Image:
        raise NotImplementedError

    def check_index(self, index: int) -> int:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"frame index must be an integer, got {index!r}")
        if not 0 <= index < self.num_frames:
            raise IndexError(f"frame index {index} is out of range: the video has {self.num_frames} frames (0..{self.num_frames - 1})")
        return int(index)

    def available(self, index: int) -> bool:
        """Whether frame `index` exists (a stream first waits for frames up to it)."""
        return 0 <= index < self.num_frames

    def image(self, index: int) -> Image.Image:
        """Frame `index` as an RGB PIL image at the video's resolution."""
        index = self.check_index(index)
        with self._read_lock:
            image = self._read(index)
        return to_rgb(image, f"frame {index} ({self.names[index]})")

    def frame(self, index: int) -> np.ndarray:
        """Frame `index` as uint8 (H, W, 3)."""
        return np.asarray(self.image(index))

    def model_input(self, index: int, size: int) -> torch.Tensor:
        """Frame `index` as the model sees it: float32 (3, size, size), normalised."""
        key = (self.check_index(index), size)
        with self._cache_lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            pending = self._pending.pop(key, None)
        x = pending.result() if pending is not None else self._preprocess(*key)
        with self._cache_lock:
            self._cache[key] = x
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return x

    def prefetch(self, indices, size: int) -> None:
        """Start preprocessing `indices` (the frames tracking will ask for next, nearest first) in the background;
        earlier requests for other frames are dropped (one already running finishes unread), so at most
        len(indices) are kept."""
        with self._cache_lock:
            wanted = [(self.check_index(i), size) for i in indices]
            for key in [k for k in self._pending if k not in wanted]:
                self._pending.pop(key).cancel()
            for key in wanted:
                if key not in self._cache and key not in self._pending:
                    self._pending[key] = self._executor().submit(self._preprocess, *key)

    def stop_prefetch(self) -> None:
        """Drop the background requests (one already running finishes unread) and let the worker thread end."""
        with self._cache_lock:
            for future in self._pending.values():
                future.cancel()
            self._pending.clear()
            if self._pool is not None:
                self._pool.shutdown(wait=False)
                self._pool = None

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sam2pp-frames")
        return self._pool

    def _preprocess(self, index: int, size: int) -> torch.Tensor:
        """The published preprocessing of one frame (see the module docstring)."""
        pixels = np.asarray(self.image(index).resize((size, size))) / 255.0
        x = torch.from_numpy(pixels).permute(2, 0, 1).float()
        return (x - torch.tensor(IMAGE_MEAN)[:, None, None]) / torch.tensor(IMAGE_STD)[:, None, None]


class ImageFilesSource(FrameSource):
    """Frames stored as image files, opened one at a time."""

    def __init__(self, paths: Sequence[str | Path], cache_size: int = 16):
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise ValueError("the video has no frames (empty list of image paths)")
        first = _open_image(self.paths[0])
        self.names = [p.name for p in self.paths]
        super().__init__(len(self.paths), first.width, first.height, cache_size)

    def _read(self, index: int) -> Image.Image:
        image = _open_image(self.paths[index])
        if image.size != (self.width, self.height):
            raise ValueError(
                f"frame {self.paths[index]} is {image.width}x{image.height}, unlike the first frame ({self.width}x{self.height})"
            )
        return image


class ArraySource(FrameSource):
    """Frames held by the caller as a uint8 array (T, H, W, 3); nothing is copied."""

    def __init__(self, frames: np.ndarray, cache_size: int = 16):
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"video array must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
        self.frames = frames
        self.names = [f"{i:05d}" for i in range(len(frames))]
        super().__init__(len(frames), frames.shape[2], frames.shape[1], cache_size)

    def _read(self, index: int) -> Image.Image:
        return Image.fromarray(self.frames[index])


class VideoFileSource(FrameSource):
    """A video file decoded with PyAV; random access seeks to the nearest key frame and decodes forward."""

    def __init__(self, path: str | Path, cache_size: int = 16):
        import av

        self.path = Path(path)
        try:
            self._container = av.open(str(self.path))
            stream = self._container.streams.video[0]
        except (av.error.FFmpegError, IndexError) as exc:
            raise ValueError(f"cannot read video {self.path}: {exc}") from exc
        self._stream = stream
        self._pts = self._index_frames()
        self._position = -1
        self.names = [f"{i:05d}" for i in range(len(self._pts))]
        if not self._pts:
            raise ValueError(f"video {self.path} has no frames")
        super().__init__(len(self._pts), stream.codec_context.width, stream.codec_context.height, cache_size)

    def _index_frames(self) -> list[int]:
        """Presentation times of every frame, read from the packets (no decoding)."""
        pts = []
        total = self._stream.frames or None
        for packet in tqdm(self._container.demux(self._stream), total=total, desc=f"indexing {self.path.name}",
                           unit="frame", leave=False):
            if packet.pts is not None and packet.size > 0:
                pts.append(packet.pts)
        self._container.seek(0, stream=self._stream)
        return sorted(pts)

    def _read(self, index: int) -> Image.Image:
        target = self._pts[index]
        if self._position != index:
            self._container.seek(target, stream=self._stream, backward=True, any_frame=False)
            self._decoder = self._container.decode(self._stream)
        for frame in self._decoder:
            if frame.pts is None or frame.pts < target:
                continue
            self._position = index + 1
            return frame.to_image()
        raise ValueError(f"video {self.path}: frame {index} could not be decoded")

    @property
    def fps(self) -> Fraction | None:
        return self._stream.average_rate


class StreamSource(FrameSource):
    """Frames that arrive one at a time (a webcam, a network stream, a generator), so the length is not known.

    `add(frame)` appends a frame; with `frames` (an iterator), `available` pulls frames from it as tracking reaches
    them. Only the last `keep` frames' pixels are held, so a stream of any length needs bounded memory; an older
    frame can no longer be read.
    """

    is_stream = True

    def __init__(self, frames: Iterator | None = None, cache_size: int = 16, keep: int = 8):
        if keep < 1:
            raise ValueError(f"a stream must keep at least one frame, got keep={keep}")
        self.num_frames, self.width, self.height = 0, 0, 0
        self.names = []
        self._frames = frames
        self._held: OrderedDict[int, Image.Image] = OrderedDict()
        self._keep = keep
        self._init_cache(cache_size)

    def add(self, frame) -> int:
        """Append a frame (uint8 (H, W, 3) array or PIL image, the size of the first) and return its index."""
        index = self.num_frames
        image = frame if isinstance(frame, Image.Image) else _array_image(frame, f"stream frame {index}")
        image = to_rgb(image, f"stream frame {index}")
        if index == 0:
            self.width, self.height = image.size
        elif image.size != (self.width, self.height):
            raise ValueError(f"stream frame {index} is {image.width}x{image.height}, unlike the first frame "
                             f"({self.width}x{self.height})")
        with self._read_lock:
            self._held[index] = image
            if len(self._held) > self._keep:
                self._held.popitem(last=False)
        self.names.append(f"{index:05d}")
        self.num_frames += 1
        return index

    def available(self, index: int) -> bool:
        while self._frames is not None and self.num_frames <= index:
            frame = next(self._frames, None)
            if frame is None:
                self._frames = None
            else:
                self.add(frame)
        return super().available(index)

    def check_index(self, index: int) -> int:
        if isinstance(index, (int, np.integer)) and not isinstance(index, bool):
            self.available(index)  # a prompt on a frame not pulled yet waits for it
        return super().check_index(index)

    def _read(self, index: int) -> Image.Image:
        if index not in self._held:
            raise IndexError(f"frame {index} of the stream is no longer held: a stream keeps its last {self._keep} "
                             f"frames (StreamSource(keep=...))")
        return self._held[index]


def _array_image(frame, where: str) -> Image.Image:
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"{where} must be uint8 (H, W, 3), got {frame.dtype} {frame.shape}")
    return Image.fromarray(frame)


def to_rgb(image: Image.Image, where: str) -> Image.Image:
    """An image as 8-bit RGB. 16-bit grayscale (modes "I;16*", and "I" holding 16-bit values) keeps its top 8 bits:
    PIL's own conversion clips such values to 255, which turns a frame white."""
    if image.mode.startswith("I"):
        values = np.asarray(image)
        low, high = (int(values.min()), int(values.max())) if values.size else (0, 0)
        if low < 0 or high > 0xFFFF:
            raise ValueError(f"{where}: {image.mode} pixel values span {low}..{high}, beyond 16 bits; "
                             f"save the frame as 8-bit RGB")
        return Image.fromarray((values.astype(np.uint32) >> 8).astype(np.uint8), mode="L").convert("RGB")
    if image.mode == "F":
        raise ValueError(f"{where}: floating-point images (mode F) are not video frames; save the frame as 8-bit RGB")
    return image.convert("RGB")


def _open_image(path: Path) -> Image.Image:
    try:
        image = Image.open(path)
        image.load()
        return image
    except FileNotFoundError:
        raise FileNotFoundError(f"frame {path} does not exist") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"cannot read image {path}: {exc}") from exc


def open_video(video, cache_size: int = 16) -> FrameSource:
    """A `FrameSource` for a folder of frames, a list of image paths, a uint8 array (T, H, W, 3), a video file, or a
    stream: an iterator (a generator) of frames, or None for frames added later with `StreamSource.add`."""
    if isinstance(video, FrameSource):
        return video
    if video is None or isinstance(video, Iterator):
        return StreamSource(video, cache_size)
    if isinstance(video, np.ndarray):
        return ArraySource(video, cache_size)
    if isinstance(video, (list, tuple)):
        return ImageFilesSource(video, cache_size)
    path = Path(video)
    if path.is_dir():
        frames = list_frames(path)
        if not frames:
            raise ValueError(f"no frames (.jpg, .jpeg, .png) in folder {path}")
        return ImageFilesSource(frames, cache_size)
    if not path.exists():
        raise FileNotFoundError(f"video {path} does not exist")
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return VideoFileSource(path, cache_size)
    raise ValueError(f"cannot read video {path}: expected a folder of frames or a video file ({', '.join(sorted(VIDEO_SUFFIXES))})")
