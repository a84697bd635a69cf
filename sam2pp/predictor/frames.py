"""Lazy frame sources: a folder of images, a list of image paths, a uint8 array, a video file, or a stream.

Frames are decoded when asked for and the model inputs are kept in a small LRU cache, so a session's memory does not
grow with the length of the video. `prefetch` makes the inputs of the frames tracking will ask for next on worker
threads (`prefetch.Prefetcher`), so decoding and resizing overlap the model's compute; a prefetched input is the same
tensor as one made on demand. Model inputs follow the published preprocessing exactly: PIL `resize((S, S))` with its
default (bicubic) filter, /255 in float64, float32, then ImageNet mean/std (looked up from a table of those values);
the aspect ratio is not kept. `jpeg_draft` (off by default) trades exactness for speed: JPEG frames are decoded at
1/2, 1/4 or 1/8 scale, still at least the model size, before that resize.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from ..io.formats import list_frames
from .prefetch import Prefetcher
from .preprocess import normalise, rgb, to_rgb

VIDEO_SUFFIXES = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".gif"}


class FrameSource:
    """Random access to a video's frames. Subclasses implement `_read(i) -> PIL.Image`.

    Thread-safe: the cache has a lock, and a `sequential` source (one decoder position) reads under another, so
    workers read it one frame at a time, in order; other sources read frames in parallel.
    """

    names: list[str]
    is_stream = False  # whether frames still arrive (the length is not known yet)
    sequential = False  # whether reads must happen one at a time (a decoder with one position)

    def __init__(self, num_frames: int, width: int, height: int, cache_size: int = 16):
        if num_frames == 0:
            raise ValueError("the video has no frames")
        self.num_frames, self.width, self.height = num_frames, width, height
        self._init_cache(cache_size)

    def _init_cache(self, cache_size: int) -> None:
        self._cache: OrderedDict[tuple[int, int], torch.Tensor] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()
        self._read_lock = threading.Lock() if self.sequential else contextlib.nullcontext()
        self._prefetcher: Prefetcher | None = None

    def __len__(self) -> int:
        return self.num_frames

    def _read(self, index: int) -> Image.Image:
        raise NotImplementedError

    def _read_for_model(self, index: int, size: int) -> Image.Image | np.ndarray:
        """Frame `index` to be resized to `size`: an image, or uint8 (size, size, 3) pixels that need no resize."""
        return self._read(index)

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
        """Frame `index` as an RGB PIL image at the video's resolution (not to be modified: it may be held)."""
        index = self.check_index(index)
        with self._read_lock:
            image = self._read(index)
        return rgb(image, f"frame {index} ({self.names[index]})")

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
        prefetcher = self._prefetcher
        x = prefetcher.take(key[0]) if prefetcher is not None and prefetcher.size == size else None
        if x is None:
            x = self._preprocess(*key)
        with self._cache_lock:
            self._cache[key] = x
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return x

    def prefetch(self, order: Sequence[int], size: int, ahead: int = 4, workers: int = 1) -> None:
        """Make the inputs of `order` (the frames tracking will ask for, in its order) on `workers` threads, at most
        `ahead` frames beyond the one tracking asked for last, until `stop_prefetch`; replaces an earlier prefetch.
        A sequential source gets one worker, and a stream reads at most one frame ahead, so a live source's frames
        are taken as late as before."""
        self.stop_prefetch()
        if self.is_stream:
            ahead = min(ahead, 1)
        self._prefetcher = Prefetcher(self, order, size, ahead, 1 if self.sequential else workers)

    def stop_prefetch(self, wait: bool = True) -> None:
        """End the prefetch workers (one busy with a frame finishes it unread; `wait` waits for that)."""
        prefetcher, self._prefetcher = self._prefetcher, None
        if prefetcher is not None:
            prefetcher.stop()
            if wait:
                prefetcher.join()

    def _preprocess(self, index: int, size: int) -> torch.Tensor:
        """The published preprocessing of one frame (see the module docstring), from the cache when it is there."""
        with self._cache_lock:
            cached = self._cache.get((index, size))
        if cached is not None:
            return cached
        self.check_index(index)
        with self._read_lock:
            image = self._read_for_model(index, size)
        if isinstance(image, Image.Image):
            image = rgb(image, f"frame {index} ({self.names[index]})")
            image = np.asarray(image if image.size == (size, size) else image.resize((size, size)))
        return normalise(image)


class ImageFilesSource(FrameSource):
    """Frames stored as image files, opened one at a time.

    jpeg_draft: decode a JPEG frame for the model at the smallest of the decoder's 1/2, 1/4 and 1/8 scales still at
    least the model size (PIL `Image.draft`): several times less work on a frame far larger than the model size, but
    pixels that differ a little from the published preprocessing, hence off by default.
    """

    def __init__(self, paths: Sequence[str | Path], cache_size: int = 16, jpeg_draft: bool = False):
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise ValueError("the video has no frames (empty list of image paths)")
        first = _load(_open_image(self.paths[0], "frame 0"), self.paths[0], "frame 0")
        self.names = [p.name for p in self.paths]
        self.jpeg_draft = jpeg_draft
        super().__init__(len(self.paths), first.width, first.height, cache_size)

    def _read(self, index: int, draft: int | None = None) -> Image.Image:
        path = self.paths[index]
        image = _open_image(path, f"frame {index}")
        if image.size != (self.width, self.height):
            raise ValueError(f"frame {index} ({path}) is {image.width}x{image.height}, unlike the first frame "
                             f"({self.width}x{self.height})")
        if draft is not None:
            image.draft(None, (draft, draft))
        return _load(image, path, f"frame {index}")

    def _read_for_model(self, index: int, size: int) -> Image.Image:
        return self._read(index, size if self.jpeg_draft else None)


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

    def _read_for_model(self, index: int, size: int) -> Image.Image | np.ndarray:
        frame = self.frames[index]
        return frame if frame.shape[:2] == (size, size) else self._read(index)


class VideoFileSource(FrameSource):
    """A video file decoded with PyAV; random access seeks to the nearest key frame and decodes forward."""

    sequential = True

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
    them (the one prefetch worker pulls at most one frame ahead of tracking; pulls hold a lock, so the iterator is
    never entered twice at once). Only the last `keep` frames' pixels are held, so a stream of any length needs
    bounded memory; an older frame can no longer be read. An error raised by the iterator is raised again to every
    later reader.
    """

    is_stream = True
    sequential = True

    def __init__(self, frames: Iterator | None = None, cache_size: int = 16, keep: int = 8):
        if keep < 1:
            raise ValueError(f"a stream must keep at least one frame, got keep={keep}")
        self.num_frames, self.width, self.height = 0, 0, 0
        self.names = []
        self._frames = frames
        self._held: OrderedDict[int, Image.Image] = OrderedDict()
        self._keep = keep
        self._pull_lock = threading.Lock()
        self._error: BaseException | None = None
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
        with self._pull_lock:
            while self.num_frames <= index and (self._frames is not None or self._error is not None):
                if self._error is not None:
                    raise self._error
                try:
                    frame = next(self._frames, None)
                except Exception as exc:
                    self._frames, self._error = None, exc
                    raise
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


def _open_image(path: Path, where: str) -> Image.Image:
    """The image file at `path`, its header read (`_load` decodes it); errors name `where` and the file."""
    try:
        return Image.open(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{where}: {path} does not exist") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"{where}: cannot read image {path}: {exc}") from exc


def _load(image: Image.Image, path: Path, where: str) -> Image.Image:
    try:
        image.load()
        return image
    except (OSError, SyntaxError) as exc:
        raise ValueError(f"{where}: cannot read image {path}: {exc}") from exc


def open_video(video, cache_size: int = 16, jpeg_draft: bool = False) -> FrameSource:
    """A `FrameSource` for a folder of frames, a list of image paths, a uint8 array (T, H, W, 3), a video file, or a
    stream: an iterator (a generator) of frames, or None for frames added later with `StreamSource.add`.
    jpeg_draft: see `ImageFilesSource` (frames stored as files only)."""
    if isinstance(video, FrameSource):
        return video
    files = isinstance(video, (list, tuple)) or isinstance(video, (str, Path)) and Path(video).is_dir()
    if jpeg_draft and not files:
        raise ValueError(f"jpeg_draft applies to frames stored as image files (a folder or a list of paths), not to "
                         f"{video if isinstance(video, (str, Path)) else type(video).__name__}")
    if video is None or isinstance(video, Iterator):
        return StreamSource(video, cache_size)
    if isinstance(video, np.ndarray):
        return ArraySource(video, cache_size)
    if isinstance(video, (list, tuple)):
        return ImageFilesSource(video, cache_size, jpeg_draft)
    path = Path(video)
    if path.is_dir():
        frames = list_frames(path)
        if not frames:
            raise ValueError(f"no frames (.jpg, .jpeg, .png) in folder {path}")
        return ImageFilesSource(frames, cache_size, jpeg_draft)
    if not path.exists():
        raise FileNotFoundError(f"video {path} does not exist")
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return VideoFileSource(path, cache_size)
    raise ValueError(f"cannot read video {path}: expected a folder of frames or a video file ({', '.join(sorted(VIDEO_SUFFIXES))})")
