"""Turning user prompts (video pixels) into model prompts (model pixels), with checks that name the problem."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..modeling.model import Points


def to_model_points(points_xy, labels, width: int, height: int, size: int, device) -> Points:
    """(N, 2) video-pixel points and (N,) labels -> `Points` (1, N, 2) in model pixels."""
    pts = np.asarray(points_xy, dtype=np.float32)
    lab = np.asarray(labels)
    if pts.ndim == 1 and pts.shape == (2,):
        pts = pts[None]
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) == 0:
        raise ValueError(f"points must have shape (N, 2) with N >= 1, got {pts.shape}")
    lab = lab.reshape(-1)
    if lab.shape != (len(pts),):
        raise ValueError(f"labels must have shape ({len(pts)},) to match the points, got {np.asarray(labels).shape}")
    if not np.isin(lab, (0, 1, 2, 3)).all():
        raise ValueError(f"labels must be 1 (positive), 0 (negative), or 2/3 (box corners); got {lab.tolist()}")
    check_inside(pts, width, height, "point")
    coords = torch.from_numpy(pts) / torch.tensor([width, height], dtype=torch.float32) * size
    return Points(coords[None].to(device), torch.from_numpy(lab.astype(np.int32))[None].to(device))


def check_inside(points: np.ndarray, width: int, height: int, what: str) -> None:
    if not np.isfinite(points).all():
        raise ValueError(f"{what} coordinates must be finite, got {points.tolist()}")
    outside = (points[:, 0] < 0) | (points[:, 0] > width) | (points[:, 1] < 0) | (points[:, 1] > height)
    if outside.any():
        raise ValueError(f"{what} {points[outside].tolist()} lies outside the {width}x{height} frame")


def box_corners(box_xyxy, width: int, height: int) -> np.ndarray:
    """A validated xyxy box as its two corners (2, 2)."""
    box = np.asarray(box_xyxy, dtype=np.float32).reshape(-1)
    if box.shape != (4,):
        raise ValueError(f"box must be 4 numbers x0, y0, x1, y1, got shape {np.asarray(box_xyxy).shape}")
    if box[2] < box[0] or box[3] < box[1]:
        raise ValueError(f"box {box.tolist()} has x1 < x0 or y1 < y0 (expected x0, y0, x1, y1)")
    check_inside(box.reshape(2, 2), width, height, "box corner")
    return box.reshape(2, 2)


def mask_to_model(mask, width: int, height: int, size: int, device) -> torch.Tensor:
    """(H, W) boolean mask at video resolution -> (1, 1, S, S) binary float mask (antialiased resize, >= 0.5)."""
    m = torch.as_tensor(np.asarray(mask))
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {tuple(m.shape)}")
    if tuple(m.shape) != (height, width):
        raise ValueError(f"mask is {m.shape[1]}x{m.shape[0]} but the video is {width}x{height}")
    m = m.bool().float()[None, None].to(device)
    if m.shape[-2:] == (size, size):
        return m
    m = F.interpolate(m, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return (m >= 0.5).float()


def gaussian_disc(center_xy: torch.Tensor, size: int, radius: int, sigma: float | None) -> torch.Tensor:
    """(size, size) float32 map: a gaussian of `sigma` around int(center), zero outside the circle of `radius`.

    The centre value is 1; values below float64 epsilon are zeroed. sigma defaults to (2 * radius + 1) / 6.
    """
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    sigma = (2 * radius + 1) / 6 if sigma is None else float(sigma)
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    cx, cy = int(center_xy[0]), int(center_xy[1])
    axis = torch.arange(size, dtype=torch.float64)
    dy2 = (axis - cy)[:, None] ** 2
    dx2 = (axis - cx)[None, :] ** 2
    d2 = dx2 + dy2
    g = torch.exp(-d2 / (2 * sigma * sigma))
    keep = (d2 <= radius * radius) & (g >= torch.finfo(torch.float64).eps)
    return torch.where(keep, g, 0.0).float()
