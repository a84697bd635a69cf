"""`sam2pp train` on the command line."""

from __future__ import annotations

import json

import pytest
import torch

from sam2pp.checkpoint import resolve_config
from sam2pp.cli import main
from sam2pp.modeling.model import SAM2PlusModel
from sam2pp.predictor.video_predictor import VideoPredictor
from sam2pp.training.ablation import Variant


def test_train_command_writes_a_checkpoint_the_predictor_loads(tmp_path, synthetic_folder, capsys):
    config = tmp_path / "quick.json"
    main(["train", "smoke", "--dump-config"])  # no --out needed to print the config
    data = json.loads(capsys.readouterr().out)
    data["validation"]["tasks"] = []
    config.write_text(json.dumps(data))
    code = main(["train", str(config), "--out", str(tmp_path / "run"), "--steps", "2",
                 "--data", f"mask={synthetic_folder}"])
    assert code == 0
    assert "trained 2 steps" in capsys.readouterr().out
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["steps"] == 2 and saved["data"]["sources"][0]["task"] == "mask"
    predictor = VideoPredictor.from_checkpoint(tmp_path / "run" / "checkpoint.pt", config="sam2pp_tiny")
    assert not predictor.model.training


def test_train_command_names_a_bad_data_folder(tmp_path, capsys):
    code = main(["train", "smoke", "--out", str(tmp_path / "run"), "--data", str(tmp_path / "missing")])
    assert code == 2
    err = capsys.readouterr().err
    assert "missing" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_train_command_rejects_an_unknown_preset(tmp_path, capsys):
    assert main(["train", "tiny", "--out", str(tmp_path / "run")]) == 2
    assert "unknown training config 'tiny'" in capsys.readouterr().err


def test_train_command_without_out_says_it_is_required(capsys):
    assert main(["train", "smoke"]) == 2
    assert "--out is required" in capsys.readouterr().err


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_train_command_names_a_misspelled_config_key(tmp_path, capsys):
    main(["train", "smoke", "--dump-config"])
    data = json.loads(capsys.readouterr().out)
    data["data"]["num_frame"] = data["data"].pop("num_frames")
    (tmp_path / "typo.json").write_text(json.dumps(data))
    assert main(["train", str(tmp_path / "typo.json"), "--out", str(tmp_path / "run")]) == 2
    err = _one_line_error(capsys)
    assert "config.data: unknown keys ['num_frame']" in err and "num_frames" in err


@pytest.mark.parametrize("option, value", [("--steps", "0"), ("--steps", "-3"), ("--threads", "0")])
def test_train_command_rejects_a_count_below_one(tmp_path, capsys, option, value):
    assert main(["train", "smoke", "--out", str(tmp_path / "run"), option, value]) == 2
    assert f"{option} must be a positive integer, got {value}" in _one_line_error(capsys)
    assert not (tmp_path / "run").exists()


def test_train_command_rejects_an_out_that_is_a_file(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine\n")
    assert main(["train", "smoke", "--out", str(tmp_path / "notes.txt")]) == 2
    assert f"run folder {tmp_path / 'notes.txt'} is a file" in _one_line_error(capsys)
    assert (tmp_path / "notes.txt").read_text() == "mine\n"


def test_train_command_names_a_missing_init_checkpoint(tmp_path, capsys):
    assert main(["train", "smoke", "--out", str(tmp_path / "run"), "--init", str(tmp_path / "none.pt")]) == 2
    assert f"checkpoint {tmp_path / 'none.pt'} does not exist" in _one_line_error(capsys)


def test_train_command_explains_an_init_of_another_architecture(tmp_path, capsys):
    shared = Variant(memory_attention=False).model_config(resolve_config("sam2pp_tiny"))
    torch.save({"model": SAM2PlusModel(shared).state_dict()}, tmp_path / "shared.pt")
    assert main(["train", "smoke", "--out", str(tmp_path / "run"), "--init", str(tmp_path / "shared.pt")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "checkpoint does not match the model" in err
    assert "separate_memory_attention=False" in err
    assert "--init must be a checkpoint of the training config's model ('sam2pp_tiny')" in err
    assert "pass --config" not in err  # `sam2pp train` has no --config
