"""The shipped sample clips wherever sam2pp runs: the repository's `data_samples/` in a checkout, else the same clips
regenerated from their seeds into the user cache (an installed wheel carries the generator, not the JPEGs).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from sam2pp.data.synthetic import SHIPPED_SAMPLES

REPO_SAMPLES = Path(__file__).resolve().parents[2] / "data_samples"


def sample_folder(name: str) -> Path:
    """The section-4 folder of the shipped sample `name` (`JPEGImages/<name>/`, `Annotations/<name>/`, `Boxes/`,
    `Points/`): the repository's copy when there is one, else a copy generated once (a few seconds) into
    `$XDG_CACHE_HOME/sam2pp/data_samples/` (`~/.cache` by default)."""
    if name not in SHIPPED_SAMPLES:
        raise ValueError(f"unknown sample {name!r}; shipped: {', '.join(SHIPPED_SAMPLES)}")
    for folder in (REPO_SAMPLES / name, cache_root() / "data_samples" / name):
        if (folder / "JPEGImages" / name).is_dir():
            return folder
    _generate(name, folder)
    return folder


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sam2pp"


def _generate(name: str, folder: Path) -> None:
    """Write the sample beside `folder`, then rename it into place: an interrupted or concurrent run never leaves a
    half-written sample where `sample_folder` would take it for a whole one."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=folder.parent))
    try:
        SHIPPED_SAMPLES[name].generate().write(partial, name)
        try:
            partial.rename(folder)
        except OSError:
            if not folder.is_dir():  # not a concurrent run that finished first
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)


__all__ = ["REPO_SAMPLES", "cache_root", "sample_folder"]
