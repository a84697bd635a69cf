"""`demo_predictor`: cache first, no network probe when offline, a seeded tiny model as the fallback."""

from __future__ import annotations

import pytest
import torch
from huggingface_hub import constants

from sam2pp import demo
from sam2pp.checkpoint import HUB_MODELS
from sam2pp.predictor.video_predictor import VideoPredictor

TINY_REPO = "test-owner/tiny-model"


@pytest.fixture
def empty_offline_hub(tmp_path, monkeypatch):
    """An empty hub cache in offline mode; probing the network fails the test."""
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(demo, "hub_reachable", _no_network)
    return tmp_path / "hub"


def _no_network(*_args, **_kwargs):
    raise AssertionError("the network must not be probed in offline mode")


def _weights(predictor: VideoPredictor) -> dict[str, torch.Tensor]:
    return predictor.model.state_dict()


def test_offline_fallback_is_the_tiny_preset_with_a_warning(empty_offline_hub):
    with pytest.warns(UserWarning, match="not in the hub cache and hub offline mode is on"):
        predictor = demo.demo_predictor(device="cpu")
    assert isinstance(predictor, VideoPredictor)
    assert predictor.image_size == 256
    assert predictor.device.type == "cpu"


def test_fallback_weights_are_deterministic_and_leave_the_global_rng_alone():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    first, second = demo.demo_predictor(prefer_pretrained=False), demo.demo_predictor(prefer_pretrained=False)
    assert torch.equal(torch.random.get_rng_state(), before)
    a, b = _weights(first), _weights(second)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    other = _weights(demo.demo_predictor(prefer_pretrained=False, seed=1))
    assert any(not torch.equal(a[k], other[k]) for k in a if a[k].is_floating_point())


def test_no_warning_when_random_weights_are_asked_for(recwarn):
    demo.demo_predictor(prefer_pretrained=False)
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


def test_cached_checkpoint_is_loaded_without_the_network(empty_offline_hub, monkeypatch):
    monkeypatch.setitem(HUB_MODELS, TINY_REPO, ("sam2pp_tiny", "tiny.pt"))
    reference = demo.random_model("sam2pp_tiny", seed=7, device=torch.device("cpu"))
    snapshot = empty_offline_hub / "models--test-owner--tiny-model" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    (empty_offline_hub / "models--test-owner--tiny-model" / "refs").mkdir()
    (empty_offline_hub / "models--test-owner--tiny-model" / "refs" / "main").write_text("a" * 40)
    torch.save({"model": reference.state_dict()}, snapshot / "tiny.pt")

    predictor = demo.demo_predictor(model_id=TINY_REPO, device="cpu")

    loaded, expected = _weights(predictor), reference.state_dict()
    assert all(torch.equal(loaded[k], expected[k]) for k in expected)


def test_failed_download_falls_back(tmp_path, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(demo, "hub_reachable", lambda *a, **k: True)

    def refuse(*_args, **_kwargs):
        raise OSError("connection reset")

    monkeypatch.setattr(demo, "download_checkpoint", refuse)
    with pytest.warns(UserWarning, match=r"downloading .* failed \(connection reset\)"):
        predictor = demo.demo_predictor(device="cpu")
    assert predictor.image_size == 256


def test_unreachable_hub_falls_back(tmp_path, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(demo, "hub_reachable", lambda *a, **k: False)
    with pytest.warns(UserWarning, match="unreachable"):
        demo.demo_predictor(device="cpu")


def test_unknown_model_id_is_named():
    with pytest.raises(ValueError, match="unknown hub model 'someone/else'"):
        demo.demo_predictor(model_id="someone/else")


def test_hub_reachable_is_false_for_a_closed_port(monkeypatch):
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    assert demo.hub_reachable(timeout=1.0) is False
