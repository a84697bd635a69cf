"""build_model and strict checkpoint loading: the published key layout, readable mismatch errors, hub downloads."""

import json

import pytest
import torch

import sam2pp
from conftest import PARITY, SHARED, need
from sam2pp.checkpoint import CheckpointMismatchError, read_checkpoint
from sam2pp.modeling.model import SAM2PlusModel


def test_b_plus_state_dict_has_exactly_the_published_keys_and_shapes():
    reference = json.loads(need(SHARED / "reference" / "sam2pp_hiera_b+_mame.keys.json").read_text())
    with torch.device("meta"):
        model = SAM2PlusModel(sam2pp.configs.get("sam2pp_hiera_b+"))
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert len(reference) == 1119
    assert sorted(set(reference) - set(ours)) == []
    assert sorted(set(ours) - set(reference)) == []
    assert {k: v for k, v in ours.items() if list(reference[k]) != v} == {}


def test_tiny_checkpoint_loads_strictly_and_round_trips(tmp_path):
    model = sam2pp.build_model(sam2pp.ModelConfig.from_json(need(PARITY / "tiny" / "config.json")),
                               checkpoint=PARITY / "tiny" / "checkpoint.pt")
    assert not model.training
    published = read_checkpoint(PARITY / "tiny" / "checkpoint.pt")
    assert len(published) == 771
    ours = model.state_dict()
    assert all(torch.equal(ours[k], v) for k, v in published.items())
    torch.save({"model": ours}, tmp_path / "again.pt")
    again = sam2pp.build_model("sam2pp_tiny", checkpoint=tmp_path / "again.pt")
    assert torch.equal(again.no_obj_ptr, model.no_obj_ptr)


def test_mismatch_lists_missing_unexpected_and_misshaped_keys(tmp_path):
    sd = sam2pp.build_model("sam2pp_tiny").state_dict()
    sd.pop("no_mem_embed")
    sd["extra.weight"] = torch.zeros(1)
    sd["mask_downsample.weight"] = torch.zeros(2, 1, 4, 4)
    torch.save({"model": sd}, tmp_path / "bad.pt")
    model = sam2pp.build_model("sam2pp_tiny")
    before = model.maskmem_tpos_enc.clone()
    with pytest.raises(CheckpointMismatchError) as err:
        sam2pp.checkpoint.load_strict(model, read_checkpoint(tmp_path / "bad.pt"))
    text = str(err.value)
    assert "missing (1): no_mem_embed" in text
    assert "unexpected (1): extra.weight" in text
    assert "mask_downsample.weight checkpoint [2, 1, 4, 4] vs model [1, 1, 4, 4]" in text
    assert torch.equal(model.maskmem_tpos_enc, before)  # nothing was half-loaded


def test_unreadable_checkpoint_errors(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        read_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_checkpoint(tmp_path / "missing.pt")
    torch.save({"model": [1, 2]}, tmp_path / "list.pt")
    with pytest.raises(ValueError, match="holds no state dict"):
        read_checkpoint(tmp_path / "list.pt")


def test_from_pretrained_reads_the_hub_cache_offline(tmp_path, monkeypatch):
    """A hub cache laid out as huggingface_hub lays it out, read with HF_HUB_OFFLINE=1 (no network)."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--MCG-NJU--SAM2-Plus"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    model = sam2pp.build_model("sam2pp_tiny")
    torch.save({"model": model.state_dict()}, snapshot / "checkpoint_phase123.pt")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    predictor = sam2pp.VideoPredictor.from_pretrained(
        "MCG-NJU/SAM2-Plus", config="sam2pp_tiny", cache_dir=str(tmp_path / "hub"))
    assert torch.equal(predictor.model.no_obj_ptr, model.no_obj_ptr)
    with pytest.raises(Exception, match="(?i)offline|cannot find|not found|LocalEntryNotFound"):
        sam2pp.VideoPredictor.from_pretrained("MCG-NJU/SAM2-Plus", config="sam2pp_tiny",
                                              cache_dir=str(tmp_path / "empty"))


def test_unknown_hub_model_is_named():
    with pytest.raises(ValueError, match="no preset known for hub model 'someone/else'"):
        sam2pp.VideoPredictor.from_pretrained("someone/else")
