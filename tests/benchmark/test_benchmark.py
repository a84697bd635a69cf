"""`sam2pp benchmark` end to end with the tiny model: every layout, scores equal to `sam2pp eval`, resume, shards,
broken videos, and a 2-rank torchrun run equal to a 1-rank one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import sam2pp
from sam2pp import cli
from sam2pp.benchmark import BenchmarkConfig, open_benchmark, run_benchmark
from sam2pp.benchmark.layouts import MODES
from sam2pp.benchmark.protocols import PROTOCOLS
from sam2pp.benchmark.runner import balance, load_predictor, parse_shard
from sam2pp.eval import evaluate
from sam2pp.io.formats import read_boxes_txt, read_palette_png, read_points_npz, write_palette_png, write_points_npz
from sam2pp.track import result_path
from sam2pp.training.data import DatasetError
from sam2pp.training.distributed import World

from benchmark_folders import FRAMES, davis, got10k, lasot, section4, tag


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    """The sam2pp_tiny preset with seeded random weights, as a {'model': state_dict} file."""
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        torch.save({"model": sam2pp.build_model("sam2pp_tiny").state_dict()}, path)
    return path


@pytest.fixture
def config(checkpoint):
    """A BenchmarkConfig factory for the tiny model on the CPU, without progress bars."""
    def make(dataset: Path, task: str, out: Path, **kwargs) -> BenchmarkConfig:
        settings = {"checkpoint": checkpoint, "config": "sam2pp_tiny", "device": "cpu", "progress": False, **kwargs}
        return BenchmarkConfig(dataset=dataset, task=task, out=out, **settings)
    return make


ROOT = Path(__file__).resolve().parents[2]


def assert_report_is_eval(report: dict, out: Path, task: str) -> None:
    """The report's summary and rows are what `sam2pp eval` gives on OUT/ground_truth and OUT/predictions."""
    folder = result_path(Path(), task, "_").parent
    result = evaluate(MODES[task], out / "ground_truth" / folder, out / "predictions" / folder, progress=False)
    assert report["summary"] == pytest.approx(result.summary, rel=1e-12, nan_ok=True)
    assert list(report["per_sequence"]) == list(result.per_sequence)
    for name, row in result.per_sequence.items():
        assert report["per_sequence"][name] == pytest.approx(row, rel=1e-12, nan_ok=True)
    assert report["eval_command"].endswith(f"--pred {out / 'predictions' / folder}")


def assert_report_files(report: dict, out: Path) -> None:
    table = (out / "report.csv").read_text().splitlines()
    assert table[0].startswith("video,status,frames") and len(table) == 1 + report["videos"]["total"]
    assert [line.split(",")[0] for line in table[1:]] == [row["video"] for row in report["per_video"]]
    page = (out / "report.html").read_text()
    for picture in report["previews"].values():
        assert (out / picture).is_file() and picture in page
    assert json.loads((out / "report.json").read_text())["summary"] == pytest.approx(report["summary"], nan_ok=True)


def test_davis2017_masks_land_in_its_layout_and_score_like_eval(tmp_path, config):
    root = davis(tmp_path / "davis", ["bear", "cows"], unlisted=["train-only"])
    out = tmp_path / "out"
    report = run_benchmark(config(root, "mask", out, previews=1)).report
    assert report["benchmark"]["layout"] == "davis2017" and report["benchmark"]["split"] == "val"
    assert sorted(row["video"] for row in report["per_video"]) == ["bear", "cows"]
    for name in ("bear", "cows"):
        assert sorted(p.name for p in (out / "predictions" / "Annotations" / name).iterdir()) == \
            [f"{t:05d}.png" for t in range(FRAMES)]
    assert report["videos"]["scored"] == 2 and list(report["headline"]) == ["J&F-Mean", "J-Mean", "F-Mean"]
    metric = [row["metrics"]["J&F-Mean"] for row in report["per_video"]]
    assert metric == sorted(metric), "the per-video table is worst first"
    assert list(report["previews"]) == [report["per_video"][0]["video"]]
    assert_report_is_eval(report, out, "mask")
    assert_report_files(report, out)


@pytest.mark.parametrize("task", ["mask", "box", "point"])
def test_tracking_any_granularity_all_tasks(tmp_path, config, task):
    root = tag(tmp_path / "tag", ["v1", "v2"], hidden=3)
    out = tmp_path / "out"
    report = run_benchmark(config(root, task, out)).report
    assert (report["benchmark"]["layout"], report["benchmark"]["split"]) == ("tag", "valid")
    assert report["videos"]["scored"] == 2
    for name in ("v1", "v2"):
        assert result_path(out / "predictions", task, name).exists()
    if task == "box":  # Visibles 0 on frame 3: the target counts as absent there (the toolkits' failures)
        truth = read_boxes_txt(out / "ground_truth" / "Boxes" / "v1.txt")
        assert np.isnan(truth[3]).all() and np.isfinite(np.delete(truth, 3, axis=0)).all()
    assert_report_is_eval(report, out, task)


def test_youtube_vos_objects_appearing_later_and_sparse_annotations(tmp_path, config):
    """Annotations only where an object first appears: object 1 is prompted on frame 2, is absent before it, and
    the video is tracked but not scored (its ground truth is on the server)."""
    root = tag(tmp_path / "ytvos", ["clip"])
    masks = root / "valid" / "Annotations" / "clip"
    first = read_palette_png(masks / "00000.png")
    write_palette_png(masks / "00000.png", np.where(first == 1, 0, first))
    for t in (1, 3, 4):
        (masks / f"{t:05d}.png").unlink()
    out = tmp_path / "out"
    report = run_benchmark(config(root, "mask", out)).report
    row = report["per_video"][0]
    assert row["status"] == "unscored" and "2 of 5 frames" in row["note"] and report["summary"] == {}
    predicted = [read_palette_png(out / "predictions" / "Annotations" / "clip" / f"{t:05d}.png") for t in range(FRAMES)]
    assert not (predicted[0] == 1).any() and not (predicted[1] == 1).any()
    assert (predicted[2] == 1).any()
    assert not (out / "ground_truth" / "Annotations" / "clip").exists()


def test_points_start_on_their_first_visible_frame(tmp_path, config):
    """TAP-Vid "first": a point hidden on frames 0-1 is prompted on frame 2; before that it has no prediction."""
    root = section4(tmp_path / "tapvid", ["dance"])
    path = root / "Points" / "dance.npz"
    tracks = read_points_npz(path)
    tracks.visibs[:2, 0] = False
    tracks.visibs[2, 0] = True
    write_points_npz(path, tracks)
    out = tmp_path / "out"
    report = run_benchmark(config(root, "point", out)).report
    predicted = read_points_npz(out / "predictions" / "Points" / "dance.npz")
    assert predicted.trajs_2d.shape == tracks.trajs_2d.shape and predicted.size == (96, 64)
    assert np.isnan(predicted.trajs_2d[:2, 0]).all() and not predicted.visibs[:2, 0].any()
    assert np.isfinite(predicted.trajs_2d[2:, 0]).all() and np.isfinite(predicted.trajs_2d[:, 1]).all()
    assert_report_is_eval(report, out, "point")


@pytest.mark.parametrize("task", ["mask", "point"])
def test_the_predictor_is_built_as_the_published_benchmark_scripts(tmp_path, config, task):
    """No builder post-processing (the tiny preset turns it on: hole filling 8); non-overlapping masks, not for
    points; the window memory bank (a benchmark never re-prompts a tracked frame)."""
    predictor = load_predictor(config(tmp_path, task, tmp_path / "out"), World())
    assert predictor.fill_hole_area == 0 and predictor.model.config.resolved().fill_hole_area == 0
    assert predictor.non_overlap_masks == (task == "mask")
    assert predictor.memory_bank == "window"
    demo = load_predictor(config(tmp_path, task, tmp_path / "out", checkpoint=None, model="sam2pp-demo", config=None), World())
    assert demo.model.config.image_size == 256 and demo.fill_hole_area == 0
    assert demo._compiled is None and demo.tracker._decode == demo.model.decode
    compiled = load_predictor(config(tmp_path, task, tmp_path / "out", compile=True), World())
    assert compiled._compiled == {} and compiled.tracker._decode != compiled.model.decode


def test_got10k_boxes_and_its_submission_files(tmp_path, config):
    names = ["GOT-10k_Val_000001", "GOT-10k_Val_000002"]
    root = got10k(tmp_path / "got10k", names, hidden=2)
    out = tmp_path / "out"
    report = run_benchmark(config(root, "box", out)).report
    assert report["benchmark"]["layout"] == "got10k" and list(report["headline"]) == ["AO", "SR50", "SR75"]
    for name in names:
        results = np.loadtxt(out / "predictions" / "GOT-10k" / name / f"{name}_001.txt", delimiter=",")
        assert results.shape == (FRAMES, 4)
        assert np.loadtxt(out / "predictions" / "GOT-10k" / name / f"{name}_time.txt").shape == (FRAMES,)
        truth = read_boxes_txt(out / "ground_truth" / "Boxes" / f"{name}.txt")
        assert np.isnan(truth[2]).all(), "cover.label 0 marks the target absent"
    assert (out / "ground_truth" / "Boxes" / f"{names[0]}.size").read_text().strip() == "96,64"
    assert_report_is_eval(report, out, "box")


def test_lasot_boxes(tmp_path, config):
    root = lasot(tmp_path / "lasot", ["cat-1", "cat-3"], hidden=1)
    out = tmp_path / "out"
    report = run_benchmark(config(root, "box", out)).report
    assert report["benchmark"]["layout"] == "lasot" and report["benchmark"]["split"] == "test"
    assert read_boxes_txt(out / "predictions" / "Boxes" / "cat-1.txt").shape == (FRAMES, 4)
    assert np.isnan(read_boxes_txt(out / "ground_truth" / "Boxes" / "cat-3.txt")[1]).all()
    assert_report_is_eval(report, out, "box")


def test_broken_videos_are_reported_and_the_others_run(tmp_path, checkpoint, capsys):
    root = section4(tmp_path / "data", ["good", "nofirst", "stray"])
    (root / "Annotations" / "nofirst" / "00000.png").unlink()
    write_palette_png(root / "Annotations" / "stray" / "00009.png", np.zeros((64, 96), np.uint8))
    out = tmp_path / "out"
    status = cli.main(["benchmark", str(root), "--task", "mask", "--out", str(out), "--checkpoint", str(checkpoint),
                       "--config", "sam2pp_tiny", "--device", "cpu"])
    assert status == 1
    report = json.loads((out / "report.json").read_text())
    rows = {row["video"]: row for row in report["per_video"]}
    assert rows["good"]["status"] == "scored" and report["videos"]["failed"] == 2
    assert "'nofirst'" in rows["nofirst"]["note"] and "first frame" in rows["nofirst"]["note"]
    assert "'stray'" in rows["stray"]["note"] and "00009.png" in rows["stray"]["note"]
    assert [row["video"] for row in report["per_video"]][:2] == ["nofirst", "stray"], "failed videos come first"
    assert not (out / "predictions" / "Annotations" / "nofirst").exists()
    assert "2 failed" in capsys.readouterr().out
    assert_report_is_eval(report, out, "mask")


def test_bad_box_files_and_unknown_layouts_name_the_problem(tmp_path):
    root = section4(tmp_path / "data", ["short"])
    lines = (root / "Boxes" / "short.txt").read_text().splitlines()
    (root / "Boxes" / "short.txt").write_text("\n".join(lines[:-1]) + "\n")
    bench = open_benchmark(root, "box")
    with pytest.raises(DatasetError, match=f"'short'.*{FRAMES - 1} box lines for {FRAMES} frames"):
        PROTOCOLS["box"].prepare(bench.video("short"))
    (tmp_path / "empty" / "stuff").mkdir(parents=True)
    with pytest.raises(DatasetError, match="unknown benchmark layout"):
        open_benchmark(tmp_path / "empty", "mask")


def test_a_first_frame_only_box_file_is_tracked_but_not_scored(tmp_path):
    """GOT-10k test: groundtruth.txt holds the first box only (the server scores the rest)."""
    root = got10k(tmp_path / "got10k", ["GOT-10k_Test_000001"], hidden=2)
    truth = root / "val" / "GOT-10k_Test_000001" / "groundtruth.txt"
    truth.write_text(truth.read_text().splitlines()[0] + "\n")
    plan = PROTOCOLS["box"].prepare(open_benchmark(root, "box").video("GOT-10k_Test_000001"))
    assert plan.first.shape == (4,) and plan.truth is None
    assert "first frame only" in PROTOCOLS["box"].write_truth(plan, tmp_path / "gt")
    assert not (tmp_path / "gt").exists()


def test_shares_balance_frames_and_shards_parse():
    assert balance({"a": 10, "b": 1, "c": 5, "d": 5}, 2) == [["a", "b"], ["c", "d"]]
    assert balance({"a": 3}, 2) == [["a"], []]
    assert parse_shard("1/4") == (1, 4)
    with pytest.raises(ValueError, match="0 <= i < n"):
        parse_shard("4/4")
    with pytest.raises(ValueError, match="i/n"):
        parse_shard("half")


def test_shards_merge_and_a_rerun_skips_finished_videos(tmp_path, config):
    """TAP-Vid style points in the section-4 layout, run as two machine shards, then resumed."""
    root = section4(tmp_path / "data", ["p1", "p2", "p3"], seed=30)
    out = tmp_path / "out"
    first = run_benchmark(config(root, "point", out, shard=(0, 2)))
    assert first.report["videos"]["pending"] == 3 - len(first.tracked) > 0
    second = run_benchmark(config(root, "point", out, shard=(1, 2)))
    assert sorted(first.tracked + second.tracked) == ["p1", "p2", "p3"]
    assert second.report["videos"]["scored"] == 3
    assert_report_is_eval(second.report, out, "point")

    again = run_benchmark(config(root, "point", out))
    assert again.tracked == [] and again.report["summary"] == second.report["summary"]
    (out / "videos" / "p2.json").unlink()  # as if the run had stopped while tracking p2
    resumed = run_benchmark(config(root, "point", out))
    assert resumed.tracked == ["p2"] and resumed.report["summary"] == pytest.approx(second.report["summary"])
    with pytest.raises(ValueError, match="another benchmark run"):
        run_benchmark(config(root, "box", out))


def test_two_torchrun_ranks_give_the_one_rank_report(tmp_path, config, checkpoint):
    root = section4(tmp_path / "data", ["r1", "r2", "r3"], seed=40)
    single = run_benchmark(config(root, "box", tmp_path / "one")).report
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "sam2pp",
               "benchmark", str(root), "--task", "box", "--out", str(tmp_path / "two"), "--checkpoint",
               str(checkpoint), "--config", "sam2pp_tiny", "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    double = json.loads((tmp_path / "two" / "report.json").read_text())
    assert double["summary"] == single["summary"]
    assert double["per_sequence"] == single["per_sequence"]
    assert [(r["video"], r["metrics"]) for r in double["per_video"]] == \
           [(r["video"], r["metrics"]) for r in single["per_video"]]
    ranks = {json.loads((tmp_path / "two" / "videos" / f"{n}.json").read_text())["rank"] for n in ("r1", "r2", "r3")}
    assert ranks == {0, 1}
    predictions = [read_boxes_txt(tmp_path / d / "predictions" / "Boxes" / "r2.txt") for d in ("one", "two")]
    np.testing.assert_array_equal(*predictions)
