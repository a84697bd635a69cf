"""Shared fixtures: where the parity fixtures and sample data live."""

from pathlib import Path

import pytest
from availability import ROOT, SHARED, need

PARITY = SHARED / "parity"
DATA = SHARED / "data"
__all__ = ["DATA", "PARITY", "ROOT", "SHARED", "need"]  # what the test modules import from here


@pytest.fixture(scope="session")
def parity_dir() -> Path:
    return need(PARITY / "tiny")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return need(DATA)


@pytest.fixture
def synthetic_folder(tmp_path) -> Path:
    """A section-4 folder with one 8-frame synthetic video "synth" (frames, masks, boxes and points)."""
    from sam2pp.data.synthetic import make_video

    root = tmp_path / "data"
    make_video(seed=3, num_frames=8, size=(160, 120), num_objects=2).write(root, "synth")
    return root
