"""`sam2pp train` on the command line."""

from __future__ import annotations

import json

from sam2pp.cli import main
from sam2pp.predictor.video_predictor import VideoPredictor


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
