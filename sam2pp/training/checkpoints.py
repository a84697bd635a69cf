"""Files a training run writes: a plain model checkpoint and a resume file, both replaced atomically.

`checkpoint.pt` is `{"model": state_dict}` with the published key names (LoRA adapters merged into a copy), so
`build_model` / `VideoPredictor.from_checkpoint` and the published code load it. `resume.pt` holds what an
interrupted run needs to continue exactly: the raw model state (adapters unmerged), the optimiser, the step, the
history and the RNG states. Every step's randomness is derived from (seed, step, clip), so restoring these is
enough for a resumed run to equal an uninterrupted one.
"""

from __future__ import annotations

import copy
import os
import random
from pathlib import Path
from typing import Any, BinaryIO, Callable

import numpy as np
import torch
from torch import nn

from ..checkpoint import TRAINED_CHECKPOINT
from .optim import has_lora, merge_lora

MODEL_FILE = TRAINED_CHECKPOINT
RESUME_FILE = "resume.pt"


def atomic_save(obj: Any, path: Path) -> None:
    """`torch.save` through `atomic_write`."""
    atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode()))


def atomic_write(path: Path, write: Callable[[BinaryIO], Any]) -> None:
    """Write `<path>.tmp`, flush it to the disk, then rename it over `path`: a kill (or a power cut) at any moment
    leaves the previous file or the new one, never a partial one. A `.tmp` left by a kill is simply overwritten."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)  # the rename itself reaches the disk
    finally:
        os.close(folder)


def plain_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's published-key state dict, with any LoRA adapters merged (the training model is untouched)."""
    if has_lora(model):
        model = merge_lora(copy.deepcopy(model))
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def save_model(model: nn.Module, path: Path) -> None:
    atomic_save({"model": plain_state_dict(model)}, path)


def rng_states() -> dict[str, Any]:
    """Global RNG states as plain values and tensors, so the resume file loads with `weights_only=True`."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }


def restore_rng_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    kind, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(states["torch"])


def save_resume(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, step: int, history: dict,
                config: dict) -> None:
    atomic_save({
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "step": step,
        "history": history,
        "config": config,
        "rng": rng_states(),
    }, path)


def load_resume(path: Path) -> dict[str, Any]:
    """The resume file's contents; a clear error for a file that is not one."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types, with long messages, for a truncated or foreign file
        reason = str(exc).split(". ", 1)[0].splitlines()[0]
        raise ValueError(f"cannot read resume file {path}, truncated or corrupt ({reason}); nothing in the run "
                         f"folder was changed") from exc
    missing = {"model", "optimizer", "step", "history", "config", "rng"} - set(data if isinstance(data, dict) else {})
    if missing:
        raise ValueError(f"{path} is not a sam2pp resume file (missing {sorted(missing)})")
    return data
