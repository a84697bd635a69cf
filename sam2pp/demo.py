"""A predictor for notebooks and demos: the published weights when they can be had, else the shipped demo model.

The published checkpoint is taken from the hub cache without touching the network, downloaded when the hub answers,
and otherwise replaced (with a one-line warning) by `sam2pp-demo`: the small model trained by this project on
synthetic clips and shipped inside the package, so that every notebook and `sam2pp track` run offline with a model
that has learned to track (far less accurately than SAM 2++).
"""

from __future__ import annotations

import socket
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlparse

import torch

from .checkpoint import DEMO_MODEL, HUB_MODELS, PACKAGED_MODELS, build_model, download_checkpoint, packaged_checkpoint
from .predictor.video_predictor import VideoPredictor

HUB_PROBE_TIMEOUT_S = 3.0
"""How long to wait for the hub to accept a connection before working offline (the hub client itself retries
for about half a minute)."""


@dataclass(frozen=True)
class ChosenModel:
    """The weights a predictor gets: a preset, its file, and the warning to show when they replace the model that
    was asked for (None when they are that model)."""

    config: str
    checkpoint: Path
    warning: str | None = None


def choose_model(model_id: str = "MCG-NJU/SAM2-Plus") -> ChosenModel:
    """`model_id` when it can be had (a packaged model always can), else `sam2pp-demo` with the reason."""
    if model_id in PACKAGED_MODELS:
        return ChosenModel(PACKAGED_MODELS[model_id][0], packaged_checkpoint(model_id))
    if model_id not in HUB_MODELS:
        raise ValueError(f"unknown model {model_id!r}; known: {', '.join([*HUB_MODELS, *PACKAGED_MODELS])}")
    checkpoint, reason = find_checkpoint(model_id)
    if checkpoint is not None:
        return ChosenModel(HUB_MODELS[model_id][0], checkpoint)
    warning = (f"{reason}; using {DEMO_MODEL} instead, the small model shipped with sam2pp (trained on synthetic "
               f"clips; far less accurate than SAM 2++)")
    return replace(choose_model(DEMO_MODEL), warning=warning)


def demo_predictor(prefer_pretrained: bool = True, device: str | torch.device | None = None,
                   model_id: str = "MCG-NJU/SAM2-Plus", **predictor_options) -> VideoPredictor:
    """A `VideoPredictor` on `device` (default: CUDA when available, else the CPU).

    With `prefer_pretrained`, the checkpoint of `model_id` comes from the hub cache, or is downloaded when the hub is
    reachable and offline mode (HF_HUB_OFFLINE) is off; otherwise, or when that fails, `sam2pp-demo` is loaded from
    the package and a `UserWarning` says why. Without it, `sam2pp-demo` is loaded and nothing is tried.
    """
    device = torch.device(device if device is not None else "cuda" if torch.cuda.is_available() else "cpu")
    chosen = choose_model(model_id if prefer_pretrained else DEMO_MODEL)
    if chosen.warning:
        warnings.warn(chosen.warning, stacklevel=2)
    return VideoPredictor(build_model(chosen.config, checkpoint=chosen.checkpoint, device=device), **predictor_options)


def random_model(config: str, seed: int, device: torch.device):
    """`build_model(config)` with weights drawn from `seed` on the CPU (identical on every machine and call); for
    speed benchmarks and tests, which need a model of a given size but not a trained one."""
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


__all__ = ["ChosenModel", "choose_model", "demo_predictor", "find_checkpoint", "hub_reachable", "random_model"]
