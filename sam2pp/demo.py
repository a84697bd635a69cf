"""A predictor for notebooks and demos: the published weights when they can be had, else a small offline model.

The published checkpoint is taken from the hub cache without touching the network, downloaded when the hub answers,
and otherwise replaced (with a warning) by the `sam2pp_tiny` preset with seeded random weights, so that a notebook
runs everywhere; such a model exercises every code path but tracks nothing meaningful.
"""

from __future__ import annotations

import socket
import warnings
from pathlib import Path
from urllib.parse import urlparse

import torch

from .checkpoint import HUB_MODELS, build_model, download_checkpoint
from .predictor.video_predictor import VideoPredictor

FALLBACK_CONFIG = "sam2pp_tiny"
HUB_PROBE_TIMEOUT_S = 3.0
"""How long to wait for the hub to accept a connection before working offline (the hub client itself retries
for about half a minute)."""


def demo_predictor(prefer_pretrained: bool = True, device: str | torch.device | None = None,
                   model_id: str = "MCG-NJU/SAM2-Plus", seed: int = 0) -> VideoPredictor:
    """A `VideoPredictor` on `device` (default: CUDA when available, else the CPU).

    With `prefer_pretrained`, the checkpoint of `model_id` comes from the hub cache, or is downloaded when the hub is
    reachable and offline mode (HF_HUB_OFFLINE) is off. Otherwise, or when that fails, the `sam2pp_tiny` preset is
    built with random weights drawn from `seed` (the same weights on every call; the global RNG is left untouched)
    and a `UserWarning` says why.
    """
    device = torch.device(device if device is not None else "cuda" if torch.cuda.is_available() else "cpu")
    if prefer_pretrained:
        if model_id not in HUB_MODELS:
            raise ValueError(f"unknown hub model {model_id!r}; known: {', '.join(HUB_MODELS)}")
        checkpoint, reason = find_checkpoint(model_id)
        if checkpoint is not None:
            return VideoPredictor.from_checkpoint(checkpoint, config=HUB_MODELS[model_id][0], device=device)
        warnings.warn(f"{reason}; using the {FALLBACK_CONFIG} preset with random weights (seed {seed}): results "
                      "show how the package works, not how well SAM 2++ tracks", stacklevel=2)
    return VideoPredictor(random_model(FALLBACK_CONFIG, seed, device))


def random_model(config: str, seed: int, device: torch.device):
    """`build_model(config)` with weights drawn from `seed` on the CPU (identical on every machine and call)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(config)
    return model.to(device)


def find_checkpoint(model_id: str) -> tuple[Path | None, str]:
    """The local checkpoint of `model_id`, or None and the reason it is not available."""
    from huggingface_hub import constants, try_to_load_from_cache

    filename = HUB_MODELS[model_id][1]
    cached = try_to_load_from_cache(model_id, filename)
    if isinstance(cached, str):
        return Path(cached), "found in the hub cache"
    if constants.HF_HUB_OFFLINE:
        return None, f"{model_id}/{filename} is not in the hub cache and hub offline mode is on"
    if not hub_reachable():
        return None, f"{model_id}/{filename} is not in the hub cache and {constants.ENDPOINT} is unreachable"
    try:
        return download_checkpoint(model_id), "downloaded"
    except Exception as exc:  # the hub client raises many types (HTTP, transport, cache); all mean "not now"
        return None, f"downloading {model_id}/{filename} failed ({exc})"


def hub_reachable(timeout: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """Whether the hub endpoint accepts a TCP connection within `timeout` seconds."""
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


__all__ = ["FALLBACK_CONFIG", "demo_predictor", "find_checkpoint", "hub_reachable", "random_model"]
