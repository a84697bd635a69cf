"""Lazy frame sources: a folder of images, a list of image paths, a uint8 array, or a video file.

Frames are decoded when asked for and the model inputs are kept in a small LRU cache, so a session's memory does not
grow with the length of the video. Model inputs follow the published preprocessing exactly: PIL `resize((S, S))` with
its default (bicubic) filter, /255 in float64, float32, then ImageNet mean/std; the aspect ratio is not kept.
"""

from __future__ import annotations

from collections import OrderedDict
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from ..io.formats import list_frames

IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)
VIDEO_SUFFIXES = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".gif"}


class FrameSource:
    """Random access to a video's frames. Subclasses implement `_read(i) -> PIL.Image`."""

    names: list[str]

    def __init__(self, num_frames: int, width: int, height: int, cache_size: int = 16):
        if num_frames == 0:
            raise ValueError("the video has no frames")
        self.num_frames, self.width, self.height = num_frames, width, height
        self._cache: OrderedDict[tuple[int, int], torch.Tensor] = OrderedDict()
        self._cache_size = cache_size

    def __len__(self) -> int:
        return self.num_frames

    def _read(self, index: int) -> Image.Image:
        raise NotImplementedError

    def check_index(self, index: int) -> int:
        if not isinstance(index, (int, np.integer)) or not 0 <= index < self.num_frames:
            raise IndexError(f"frame index {index} is out of range: the video has {self.num_frames} frames (0..{self.num_frames - 1})")
        return int(index)

    def image(self, index: int) -> Image.Image:
        """Frame `index` as an RGB PIL image at the video's resolution."""
        return self._read(self.check_index(index)).convert("RGB")

    def frame(self, index: int) -> np.ndarray:
        """Frame `index` as uint8 (H, W, 3)."""
        return np.asarray(self.image(index))

    def model_input(self, index: int, size: int) -> torch.Tensor:
        """Frame `index` as the model sees it: float32 (3, size, size), normalised."""
        key = (self.check_index(index), size)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        pixels = np.asarray(self.image(index).resize((size, size))) / 255.0
        x = torch.from_numpy(pixels).permute(2, 0, 1).float()
        x = (x - torch.tensor(IMAGE_MEAN)[:, None, None]) / torch.tensor(IMAGE_STD)[:, None, None]
        self._cache[key] = x
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return x


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
    """A `FrameSource` for a folder of frames, a list of image paths, a uint8 array (T, H, W, 3) or a video file."""
    if isinstance(video, FrameSource):
        return video
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
