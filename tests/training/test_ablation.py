"""The ablation runner on a two-variant grid (shared vs per-task memory attention) of 2-step smoke runs: identical
tables from two runs (in-process and in spawned workers), finished runs never retrained, interrupted runs resumed
to the same numbers, shared-layout checkpoints under the published names, and the `sam2pp ablate` command."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from sam2pp.checkpoint import build_model
from sam2pp.cli import main
from sam2pp.training.ablation import (
    HEADLINE,
    RESULT_FILE,
    TIMING_COLUMNS,
    AblationGrid,
    AblationResult,
    Variant,
    ablate,
    comparable,
    plan,
)
from sam2pp.training.config import ValidationConfig, load_config

GRID = AblationGrid.over(["memory_attention"])
SHARED = Variant(memory_attention=False)


def base_config():
    """Smoke runs of 2 steps, saved every step, scored on one 4-frame held-out video per task."""
    cfg = load_config("smoke")
    cfg.steps, cfg.save_every = 2, 1
    cfg.validation = ValidationConfig(max_videos=1, synthetic_seeds=(900001,), synthetic_frames=4)
    return cfg


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    return ablate(GRID, base_config(), tmp_path_factory.mktemp("grid") / "a", seeds=(0,), progress=False)


def test_grid_over_axes_lists_every_layout_with_the_released_one_last():
    variants = AblationGrid.over().variants
    assert [(v.memory_attention, v.memory_encoder) for v in variants] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert variants[-1].is_released and not any(v.image_encoder for v in variants)
    assert len(AblationGrid.over(["memory_attention", "memory_encoder", "image_encoder"]).variants) == 8
    with pytest.raises(ValueError, match="decoder"):
        AblationGrid.over(["decoder"])


def test_two_runs_of_a_grid_give_identical_tables(first, tmp_path):
    second = ablate(GRID, base_config(), tmp_path / "b", seeds=(0,), workers=2, progress=False)
    assert comparable(second.rows) == comparable(first.rows)
    assert comparable(AblationResult.load(tmp_path / "b").rows) == comparable(first.rows)
    assert first.rows[0]["mask.J&F-Mean"] != first.rows[1]["mask.J&F-Mean"]  # the variants did train differently


def test_the_table_has_one_row_per_run_with_the_expected_columns(first):
    metrics = [f"{task}.{m}" for task, names in HEADLINE.items() for m in names]
    expected = ["variant", "memory_attention", "memory_encoder", "image_encoder", "seed", "steps", "params_total",
                "params_trainable", *TIMING_COLUMNS, "loss.mask", "loss.box", "loss.point", *metrics]
    assert first.columns == expected
    with open(first.table_csv) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == expected and [r["variant"] for r in rows] == [v.name for v in GRID.variants]
    shared, separate = first.rows
    assert (shared["memory_attention"], separate["memory_attention"]) == ("shared", "task")
    assert separate["params_total"] > shared["params_total"] > 0
    assert json.loads(first.table_json.read_text())["rows"] == first.rows
    assert first.curves_png.stat().st_size > 0 and first.metrics_png.stat().st_size > 0


def test_finished_runs_are_not_retrained(first):
    results = [first.out / "runs" / v.name / "seed0" / RESULT_FILE for v in GRID.variants]
    stamps = [p.stat().st_mtime_ns for p in results]
    again = ablate(GRID, base_config(), first.out, seeds=(0,), progress=False)
    assert first.trained and again.trained == ()
    assert [p.stat().st_mtime_ns for p in results] == stamps
    assert again.rows == first.rows


def test_an_interrupted_run_resumes_to_the_same_numbers(first, tmp_path):
    from sam2pp.training.loop import train

    (run,) = plan(AblationGrid((SHARED,)), base_config(), tmp_path / "c", seeds=(0,))

    def stop_at_2(record):  # called before step 2's save: resume.pt stays at step 1
        if record["step"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(run.config, run.folder, callback=stop_at_2, progress=False)
    resumed = ablate(AblationGrid((SHARED,)), base_config(), tmp_path / "c", seeds=(0,), progress=False)
    assert f"resuming {run.folder} at step 1" in (run.folder / "train.log").read_text()
    assert comparable(resumed.rows) == comparable(first.rows[:1])


def test_a_changed_budget_on_the_same_folder_is_an_error(first):
    cfg = base_config()
    cfg.steps = 3
    with pytest.raises(ValueError, match="steps"):
        plan(GRID, cfg, first.out, seeds=(0,))


def test_a_shared_variant_checkpoint_has_published_keys_and_loads(first):
    folder = first.out / "runs" / SHARED.name
    state = torch.load(folder / "seed0" / "checkpoint.pt", map_location="cpu", weights_only=True)["model"]
    assert any(k.startswith("memory_attention.") for k in state)
    assert not any(k.startswith("memory_attention_") for k in state)
    assert any(k.startswith("memory_encoder_mask.") for k in state)
    model = build_model(folder / "model.json", folder / "seed0" / "checkpoint.pt")
    assert model.memory_attention.is_shared and not model.memory_encoder.is_shared


def test_ablate_command_prints_the_table_of_a_finished_grid(first, tmp_path, capsys):
    config = tmp_path / "base.json"
    base_config().to_json(config)
    code = main(["ablate", str(config), "--out", str(first.out), "--seeds", "0", "--axes", "memory_attention"])
    assert code == 0
    out = capsys.readouterr().out
    assert all(v.name in out for v in GRID.variants) and "mean ± std" in out
    assert main(["ablate", str(config), "--out", str(first.out), "--seeds", "0", "--axes", "memory_attention",
                 "--torchrun", "2"]) == 0
    assert capsys.readouterr().out == ""  # every run is finished: nothing left to launch
