"""Training configs: presets, JSON round trip, and up-front validation that names the field."""

from __future__ import annotations

import json

import pytest

from sam2pp.training.command import tasks_with_truth
from sam2pp.training.config import PRESETS, DataSource, TrainConfig, load_config


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_round_trip_through_json(name, tmp_path):
    cfg = load_config(name)
    cfg.to_json(tmp_path / "c.json")
    assert TrainConfig.from_json(tmp_path / "c.json") == cfg
    assert load_config(tmp_path / "c.json") == cfg


def test_published_preset_is_the_published_recipe():
    cfg = load_config("published")
    assert cfg.model == "sam2pp_hiera_b+" and cfg.augment.image_size == 1024
    assert cfg.data.num_frames == 8 and cfg.data.max_objects == {"mask": 3, "box": 1, "point": 3}
    assert cfg.data.task_probs == {"mask": 0.3, "box": 0.3, "point": 0.4}
    assert (cfg.optim.lr, cfg.optim.vision_lr, cfg.optim.weight_decay, cfg.optim.grad_clip_norm) == (5e-5, 5e-6, 0.1, 0.1)
    assert cfg.lora is not None and (cfg.lora.rank, cfg.lora.alpha) == (128, 32.0)
    assert cfg.prompts.num_correction_clicks == 7 and cfg.drop_path == 0.1


@pytest.mark.parametrize("key, value, message", [
    ("steps", "100", "config.steps: expected an integer"),
    ("bf16", "false", "config.bf16: expected true or false"),
    ("drop_path", True, "config.drop_path: expected a finite number"),
    ("data", {"num_frames": 8.0}, "config.data.num_frames: expected an integer"),
    ("data", {"max_objects": {"mask": "3"}}, "config.data.max_objects.mask: expected an integer"),
    ("nonsense", 1, "unknown key"),
])
def test_bad_json_values_name_the_field(key, value, message, tmp_path):
    data = load_config("smoke").to_dict()
    data[key] = value if not isinstance(value, dict) else {**data[key], **value}
    (tmp_path / "c.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        TrainConfig.from_json(tmp_path / "c.json")


@pytest.mark.parametrize("change, message", [
    (lambda c: setattr(c, "steps", 0), "steps must be a positive integer"),
    (lambda c: setattr(c.data, "num_frames", 0), "data.num_frames must be a positive integer"),
    (lambda c: setattr(c.data, "max_objects", {"mask": 0, "box": 1, "point": 1}), "data.max_objects.mask"),
    (lambda c: setattr(c.data, "task_probs", {"mask": -1.0}), "data.task_probs"),
    (lambda c: setattr(c.data, "num_frames", 50), "exceeds data.synthetic.num_frames"),
    (lambda c: setattr(c, "drop_path", 1.5), "drop_path"),
    (lambda c: setattr(c, "init", "/no/such.pt"), "init checkpoint /no/such.pt is not a file"),
    (lambda c: setattr(c.data, "sources", (DataSource(task="mask", root="/no/dir"),)), "data.sources\\[0\\].root"),
    (lambda c: setattr(c.data, "sources", (DataSource(task="boxes", root="."),)), "data.sources\\[0\\].task"),
])
def test_validation_names_the_field(change, message):
    cfg = load_config("smoke")
    change(cfg)
    with pytest.raises(ValueError, match=message):
        cfg.validate(256)


def test_image_size_must_match_the_model():
    with pytest.raises(ValueError, match="augment.image_size is 256 but the model"):
        load_config("smoke").validate(1024)


def test_unknown_preset_lists_the_presets():
    with pytest.raises(ValueError, match="published, smoke, tiny_cpu"):
        load_config("tiny")


def test_data_folder_serves_the_tasks_it_has_truth_for(synthetic_folder, tmp_path):
    assert tasks_with_truth(synthetic_folder, "train") == ["mask", "box", "point"]
    (tmp_path / "train" / "JPEGImages").mkdir(parents=True)
    (tmp_path / "train" / "Boxes").mkdir()
    assert tasks_with_truth(tmp_path, "train") == ["box"]
