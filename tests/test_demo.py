"""`demo_predictor` / `choose_model`: cache first, no network probe when offline, the shipped `sam2pp-demo` as the
fallback, read from the package."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch
from huggingface_hub import constants

import sam2pp
from sam2pp import demo
from sam2pp.checkpoint import DEMO_MODEL, HUB_MODELS, PACKAGED_MODELS, packaged_checkpoint, read_checkpoint
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


def _demo_weights() -> dict[str, torch.Tensor]:
    return read_checkpoint(packaged_checkpoint(DEMO_MODEL))


def _is_demo_model(predictor: VideoPredictor) -> bool:
    loaded, shipped = _weights(predictor), _demo_weights()
    return loaded.keys() == shipped.keys() and all(torch.equal(loaded[k], shipped[k].float()) for k in shipped)


def test_offline_fallback_is_the_shipped_demo_model_with_a_warning(empty_offline_hub):
    with pytest.warns(UserWarning, match="not in the hub cache and hub offline mode is on; using sam2pp-demo"):
        predictor = demo.demo_predictor(device="cpu")
    assert isinstance(predictor, VideoPredictor)
    assert predictor.image_size == 256 and predictor.device.type == "cpu"
    assert _is_demo_model(predictor)


def test_the_demo_model_is_package_data_under_15_mb():
    path = packaged_checkpoint(DEMO_MODEL)
    assert path.parent == Path(sam2pp.__file__).parent / "models"
    assert path.stat().st_size <= 15e6
    assert {v.dtype for v in _demo_weights().values() if v.is_floating_point()} <= {torch.float16, torch.float32}


def test_from_pretrained_loads_the_demo_model_without_the_network(empty_offline_hub, monkeypatch):
    monkeypatch.setattr(socket, "create_connection", _no_network)
    predictor = sam2pp.VideoPredictor.from_pretrained("sam2pp-demo")
    assert _is_demo_model(predictor) and not predictor.model.training


def test_no_warning_and_no_hub_when_the_demo_model_is_asked_for(recwarn, monkeypatch):
    monkeypatch.setattr(demo, "find_checkpoint", _no_network)
    assert _is_demo_model(demo.demo_predictor(prefer_pretrained=False))
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


def test_a_missing_demo_file_is_named(monkeypatch):
    monkeypatch.setitem(PACKAGED_MODELS, DEMO_MODEL, ("sam2pp_tiny", "gone.pt"))
    with pytest.raises(FileNotFoundError, match=r"sam2pp-demo weights .*gone\.pt.* are missing"):
        sam2pp.VideoPredictor.from_pretrained("sam2pp-demo")


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
    assert _is_demo_model(predictor)


def test_unreachable_hub_falls_back(tmp_path, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(demo, "hub_reachable", lambda *a, **k: False)
    with pytest.warns(UserWarning, match="unreachable"):
        demo.demo_predictor(device="cpu")


def test_unknown_model_id_is_named():
    with pytest.raises(ValueError, match="unknown model 'someone/else'; known: MCG-NJU/SAM2-Plus, sam2pp-demo"):
        demo.demo_predictor(model_id="someone/else")


def test_hub_reachable_is_false_for_a_closed_port(monkeypatch):
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    assert demo.hub_reachable(timeout=1.0) is False
