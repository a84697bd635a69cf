"""`sam2pp.threads`: one thread for small models, torch's count for large ones, and the user's choice always wins."""

from __future__ import annotations

import pytest
import torch

import sam2pp
from sam2pp import threads
from sam2pp.threads import SMALL_MODEL_MAX_SIZE, THREAD_ENV, apply_threads


@pytest.fixture
def startup(monkeypatch) -> int:
    """A process as torch starts it: no thread variable, torch's start-up count; yields that count."""
    before = torch.get_num_threads()
    for name in THREAD_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(threads, "_chosen", None)
    torch.set_num_threads(torch.get_num_interop_threads())
    yield torch.get_num_threads()
    torch.set_num_threads(before)


def test_small_models_run_on_one_thread_large_ones_on_torchs_count(startup):
    assert apply_threads(image_size=SMALL_MODEL_MAX_SIZE) == 1 == torch.get_num_threads()
    assert apply_threads(image_size=1024) == startup == torch.get_num_threads()  # replaces the earlier default


def test_an_explicit_count_wins_and_is_not_replaced_by_a_later_default(startup):
    assert apply_threads(3) == 3 == torch.get_num_threads()
    if startup != 3:
        assert apply_threads(image_size=256) == 3
    with pytest.raises(ValueError, match="positive integer"):
        apply_threads(0)


def test_a_thread_variable_wins(startup, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", str(startup))
    assert apply_threads(image_size=256) == startup == torch.get_num_threads()


def test_a_count_the_user_set_with_torch_wins(startup):
    torch.set_num_threads(startup + 1)
    assert apply_threads(image_size=256) == startup + 1 == torch.get_num_threads()


def test_no_model_size_changes_nothing(startup):
    assert apply_threads() == startup == torch.get_num_threads()


def test_the_predictor_applies_the_default_and_takes_an_argument(startup):
    model = sam2pp.build_model("sam2pp_tiny")
    assert sam2pp.VideoPredictor(model).threads == 1 == torch.get_num_threads()
    assert sam2pp.VideoPredictor(model, threads=2).threads == 2 == torch.get_num_threads()
