"""Skipping a test for want of a file or a program, only where that can be right.

Beside the project's checkouts (CI included) lies ../shared; there, or with CI=true, every fixture, sample and tool
the suite needs is present, so a missing one fails its test instead of turning into a green skip. Elsewhere (a user's
copy of the tests) the test is skipped with the reason.
"""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def unavailable(message: str) -> None:
    """Skip with `message` (module level too), or fail in the project's own layout or CI."""
    if SHARED.is_dir() or os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; the project's machines and CI must have it")
    pytest.skip(message, allow_module_level=True)


def need(path: Path) -> Path:
    """`path`, or `unavailable` when a ../shared fixture is absent."""
    if not path.exists():
        unavailable(f"{path} is absent (the ../shared fixtures ship beside the repository, not with it)")
    return path
