"""How a decoded frame becomes the model's input, exactly as the published predictor makes it, for less work."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)


def _normalised_levels() -> np.ndarray:
    """(3, 256) float32: each channel's model input for each 8-bit level, made by the published ops (/255 in float64,
    float32, then (x - mean) / std in float32), so looking pixels up in it gives the same bits for less work."""
    levels = torch.from_numpy(np.arange(256, dtype=np.float64)[None].repeat(3, 0) / 255.0).float()
    table = (levels - torch.tensor(IMAGE_MEAN)[:, None]) / torch.tensor(IMAGE_STD)[:, None]
    return table.numpy()


NORMALISED_LEVELS = _normalised_levels()


def normalise(pixels: np.ndarray) -> torch.Tensor:
    """uint8 (S, S, 3) pixels as the model's float32 (3, S, S) input, laid out channels-last in memory as the
    published `permute(2, 0, 1)` leaves it (the image encoder then sees the same strides)."""
    out = np.empty(pixels.shape, np.float32)
    for c in range(3):
        np.take(NORMALISED_LEVELS[c], pixels[..., c], out=out[..., c])
    return torch.from_numpy(out).permute(2, 0, 1)


def rgb(image: Image.Image, where: str) -> Image.Image:
    """`to_rgb`, without the copy PIL's `convert` makes of an image that is RGB already."""
    return image if image.mode == "RGB" else to_rgb(image, where)


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
