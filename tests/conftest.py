"""Shared fixtures: where the parity fixtures and sample data live."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PARITY = SHARED / "parity"
DATA = SHARED / "data"


def need(path: Path) -> Path:
    """Skip the calling test, with the reason, when a ../shared fixture is absent."""
    if not path.exists():
        pytest.skip(f"{path} is absent (the ../shared fixtures ship beside the repository, not with it)")
    return path


@pytest.fixture(scope="session")
def parity_dir() -> Path:
    return need(PARITY / "tiny")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return need(DATA)
