"""Shared fixtures: where the parity fixtures and sample data live."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PARITY = SHARED / "parity"
DATA = SHARED / "data"


def need(path: Path) -> Path:
    """Skip the calling test, with the reason, when a ../shared fixture is absent; fail instead in CI (CI=true),
    where ../shared is always laid beside the checkout, so a missing fixture never turns into a green skip."""
    if not path.exists():
        message = f"{path} is absent (the ../shared fixtures ship beside the repository, not with it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}; CI must have them")
        pytest.skip(message)
    return path


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
