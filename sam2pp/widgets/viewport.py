"""Mapping between video pixels and the pixels of the canvas a widget draws on.

Large videos are shown downscaled (frames travel at display size), so every position the
browser reports must be scaled back before it reaches the predictor, and every box or point
the predictor returns must be scaled forward before it is drawn. Both directions are a pure
scale, the convention SAM 2 uses when it normalises prompts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Viewport:
    """A video of `video_width x video_height` pixels shown at `width x height` canvas pixels."""

    video_width: int
    video_height: int
    width: int
    height: int

    @classmethod
    def fit(cls, video_width: int, video_height: int, max_side: int) -> Viewport:
        """Shrink (never enlarge) the video so its longer side is at most `max_side`."""
        if video_width <= 0 or video_height <= 0:
            raise ValueError(f"video size must be positive, got {video_width}x{video_height}")
        if max_side <= 0:
            raise ValueError(f"max_side must be positive, got {max_side}")
        scale = min(1.0, max_side / max(video_width, video_height))
        return cls(video_width, video_height, max(1, round(video_width * scale)), max(1, round(video_height * scale)))

    @property
    def scale_x(self) -> float:
        """Canvas pixels per video pixel along x."""
        return self.width / self.video_width

    @property
    def scale_y(self) -> float:
        return self.height / self.video_height

    def to_video(self, x: float, y: float) -> tuple[float, float]:
        """Canvas position -> video position, clamped to the frame."""
        vx = min(max(x / self.scale_x, 0.0), float(self.video_width))
        vy = min(max(y / self.scale_y, 0.0), float(self.video_height))
        return vx, vy

    def to_display(self, x: float, y: float) -> tuple[float, float]:
        """Video position -> canvas position."""
        return x * self.scale_x, y * self.scale_y

    def box_to_video(self, box: tuple[float, float, float, float]) -> list[float]:
        """Canvas box (two corners, any order) -> video `xyxy` with x0 <= x1 and y0 <= y1."""
        (ax, ay), (bx, by) = self.to_video(box[0], box[1]), self.to_video(box[2], box[3])
        return [min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)]

    def box_to_display(self, box: np.ndarray) -> list[float]:
        """Video `xyxy` -> canvas `xyxy`."""
        return [float(box[0]) * self.scale_x, float(box[1]) * self.scale_y,
                float(box[2]) * self.scale_x, float(box[3]) * self.scale_y]
