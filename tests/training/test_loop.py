"""The training loop end to end on the tiny model: learning, task routing, resume, DDP, bad data, files written."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sam2pp.checkpoint import build_model
from sam2pp.training.checkpoints import MODEL_FILE, RESUME_FILE
from sam2pp.training.config import DataSource, ValidationConfig, load_config
from sam2pp.training.data import DatasetError
from sam2pp.training.distributed import World
from sam2pp.training.loop import ClipObjective, StepSeeds, build_training_model, read_history, train
from sam2pp.training.optim import build_optimizer, task_of
from sam2pp.training.sources import ClipSources


def quiet(steps: int = 3, **changes):
    """The smoke preset without validation or pictures (fast), for `steps` steps."""
    cfg = load_config("smoke")
    cfg.steps, cfg.save_every, cfg.picture_every = steps, steps, 0
    cfg.validation = ValidationConfig(tasks=())
    for key, value in changes.items():
        setattr(cfg, key, value)
    return cfg


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


@pytest.mark.parametrize("task", ["mask", "box", "point"])
def test_loss_on_one_clip_falls_by_half(task, tmp_path):
    cfg = quiet(drop_path=0.0)
    cfg.optim = dataclasses.replace(cfg.optim, lr=1e-3, vision_lr=1e-3, grad_clip_norm=None)
    model = build_training_model(cfg)
    objective = ClipObjective(model, cfg)
    seeds = StepSeeds.of(0, 1, 0)
    clip = ClipSources(cfg, World(), tmp_path).clip(task, 0, seeds, 0.0)
    optimizer = build_optimizer(model, cfg.optim)
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss = objective(clip, seeds)[0]["core_loss"]
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert min(losses[-3:]) <= 0.5 * losses[0], losses


def test_a_step_updates_only_shared_and_its_task_modules(tmp_path):
    cfg = quiet(steps=1)
    before = {n: p.detach().clone() for n, p in build_training_model(cfg).named_parameters()}
    result = train(cfg, tmp_path / "run", progress=False)
    task = result.history[0]["task"]
    after = dict(result.model.named_parameters())
    owners = {task_of(n) for n in before if not torch.equal(before[n], after[n].detach())}
    assert owners <= {None, task}, f"a {task} step changed {owners - {None, task}} modules"
    assert task in owners and None in owners
    others = [n for n in before if task_of(n) not in (None, task)]
    assert others and all(torch.equal(before[n], after[n].detach()) for n in others)


def test_resume_equals_uninterrupted(tmp_path):
    cfg = quiet(steps=6)
    cfg.save_every = 3
    train(cfg, tmp_path / "straight", progress=False)

    def stop_at_4(record):
        if record["step"] == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "resumed", progress=False, callback=stop_at_4)
    assert torch.load(tmp_path / "resumed" / RESUME_FILE, weights_only=True)["step"] == 3
    train(cfg, tmp_path / "resumed", resume=True, progress=False)
    a, b = weights(tmp_path / "straight" / MODEL_FILE), weights(tmp_path / "resumed" / MODEL_FILE)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["step"] for r in read_history(tmp_path / "resumed")] == [1, 2, 3, 4, 5, 6]
    assert [r["losses"] for r in read_history(tmp_path / "resumed")] == [r["losses"] for r in read_history(tmp_path / "straight")]


def test_two_ranks_under_torchrun_equal_one_rank_with_the_same_global_batch(tmp_path):
    one = quiet(steps=3)
    one.data.clips_per_step = 2
    train(one, tmp_path / "one", progress=False)
    two = quiet(steps=3)
    two.to_json(tmp_path / "two.json")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "sam2pp", "train", str(tmp_path / "two.json"), "--out", str(tmp_path / "two")]
    done = subprocess.run(command, env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    a, b = weights(tmp_path / "one" / MODEL_FILE), weights(tmp_path / "two" / MODEL_FILE)
    assert max((a[k] - b[k]).abs().max().item() for k in a) <= 1e-5
    tasks = [r["task"] for r in read_history(tmp_path / "one")]
    assert tasks == [r["task"] for r in read_history(tmp_path / "two")]


def test_bad_dataset_is_named_before_the_first_step(tmp_path, synthetic_folder):
    missing = synthetic_folder / "Annotations" / "synth" / "00003.png"
    missing.unlink()
    cfg = quiet()
    cfg.data.sources = (DataSource(task="mask", root=str(synthetic_folder)),)
    with pytest.raises(DatasetError, match="00003"):
        train(cfg, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_run_writes_a_loadable_checkpoint_logs_and_validation(tmp_path, synthetic_folder):
    cfg = quiet(steps=2)
    cfg.picture_every = 1
    cfg.data.sources = (DataSource(task="mask", root=str(synthetic_folder)),)
    cfg.validation = ValidationConfig(root=str(synthetic_folder), tasks=("mask", "box", "point"), max_videos=1)
    result = train(cfg, tmp_path / "run", progress=False)
    out = tmp_path / "run"
    model = build_model("sam2pp_tiny", checkpoint=out / MODEL_FILE)
    assert set(model.state_dict()) == set(weights(out / MODEL_FILE))
    records = read_history(out)
    assert [r["step"] for r in records] == [1, 2]
    assert {"core_loss", "loss_mask", "loss_class"} <= set(records[0]["losses"])
    assert set(records[0]["lr"]) == {"base", "vision"}
    scores = result.validations[-1]["scores"]
    assert {"J&F-Mean", "AUC", "AO", "AJ", "delta_avg", "OA"} <= set(scores["mask"]) | set(scores["box"]) | set(scores["point"])
    assert json.loads((out / "validation.jsonl").read_text().splitlines()[-1])["step"] == 2
    assert len(list((out / "pictures").glob("*.png"))) == 2
    assert list((out / "tensorboard").iterdir())
    assert json.loads((out / "config.json").read_text())["steps"] == 2
