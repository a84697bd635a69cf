"""A run loses nothing (issue 22): `kill -9` at a checkpoint write or Ctrl-C costs at most the steps since the last
resume point and a resumed run ends with the uninterrupted run's weights; a damaged resume file or a changed config is
refused with the folder untouched; an earlier run is never started over silently; a diverging run stops naming the
step and the loss; a half-written log line is dropped; bad data is named before the first step. All through the
`sam2pp train` command, on 3-step smoke runs."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from sam2pp.cli import main
from sam2pp.training.checkpoints import MODEL_FILE, RESUME_FILE, atomic_save, atomic_write
from sam2pp.training.config import TrainConfig, ValidationConfig, load_config
from sam2pp.training.loop import read_history, train
from sam2pp.training.monitor import METRICS_FILE, read_records

STEPS = 3
ENV = dict(os.environ, OMP_NUM_THREADS="1")

# Runs `sam2pp train ARGS...`, writing half of the NTH file whose name ends in TARGET and then killing itself with
# SIGKILL: a `kill -9` in the middle of a checkpoint write.
KILLED_DURING_WRITE = """
import io, os, signal, sys
import torch
from sam2pp.cli import main

target, nth = sys.argv[1], int(sys.argv[2])
real_save, seen = torch.save, []

def save_then_die(obj, f):
    if str(getattr(f, "name", "")).endswith(target):
        seen.append(target)
        if len(seen) == nth:
            buffer = io.BytesIO()
            real_save(obj, buffer)
            f.write(buffer.getvalue()[: buffer.tell() // 2])
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
    real_save(obj, f)

torch.save = save_then_die
sys.exit(main(sys.argv[3:]))
"""


def write_config(path: Path, steps: int = STEPS, save_every: int = 1, **optim) -> Path:
    """The smoke preset without validation or pictures, as a JSON file for the command line."""
    cfg = load_config("smoke")
    cfg.steps, cfg.save_every, cfg.picture_every = steps, save_every, 0
    cfg.validation = ValidationConfig(tasks=())
    if optim:
        cfg.optim = dataclasses.replace(cfg.optim, **optim)
    cfg.to_json(path)
    return path


@dataclasses.dataclass
class Reference:
    config: Path
    folder: Path
    resume_at_2: Path  # the run's resume file of step 2, for runs that continue from there


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Reference:
    """An uninterrupted 3-step run, saved every step."""
    root = tmp_path_factory.mktemp("straight")
    config, folder, kept = write_config(root / "quiet.json"), root / "run", root / "resume_at_2.pt"

    def keep_step_2(record):  # called before step 3's save
        if record["step"] == 3:
            shutil.copy(folder / RESUME_FILE, kept)

    train(TrainConfig.from_json(config), folder, callback=keep_step_2, progress=False)
    return Reference(config, folder, kept)


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return torch.load(folder / MODEL_FILE, map_location="cpu", weights_only=True)["model"]


def resume_step(folder: Path) -> int:
    return torch.load(folder / RESUME_FILE, map_location="cpu", weights_only=True)["step"]


def same_run(folder: Path, reference: Path) -> bool:
    """Identical weights and per-step losses."""
    a, b = weights(folder), weights(reference)
    losses = [[r["losses"] for r in read_history(f)] for f in (folder, reference)]
    return set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a) and losses[0] == losses[1]


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file's bytes and modification time."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def sam2pp(capsys, *args) -> tuple[int, str]:
    """`sam2pp ARGS...` in this process: (exit code, stderr)."""
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def error_lines(err: str) -> list[str]:
    """The command's own lines of stderr (not the progress bar's)."""
    return [line for line in err.splitlines() if line.startswith(("sam2pp train", "warning", "Traceback"))]


def test_a_write_that_dies_halfway_leaves_the_previous_file_whole(tmp_path):
    path = tmp_path / MODEL_FILE
    atomic_save({"model": {"w": torch.ones(3)}}, path)

    def die_halfway(f):
        f.write(b"PK\x03\x04 half of a checkpoint")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, die_halfway)
    assert torch.equal(torch.load(path, weights_only=True)["model"]["w"], torch.ones(3))
    atomic_save({"model": {"w": torch.zeros(3)}}, path)  # the next save replaces the partial .tmp
    assert torch.equal(torch.load(path, weights_only=True)["model"]["w"], torch.zeros(3))


def test_kill_9_during_the_resume_file_write_then_resume_equals_uninterrupted(straight, tmp_path, capsys):
    target = f"{RESUME_FILE}.tmp"  # checkpoint.pt is written by the same atomic_write
    folder = tmp_path / "run"
    command = ["train", str(straight.config), "--out", str(folder)]
    killed = subprocess.run([sys.executable, "-c", KILLED_DURING_WRITE, target, str(STEPS), *command],
                            env=ENV, capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert (folder / target).stat().st_size > 0  # the half-written file of step 3
    assert resume_step(folder) == STEPS - 1  # the previous resume point, whole

    before = snapshot(folder)
    code, err = sam2pp(capsys, *command)  # the same command without --resume
    assert code == 2 and "unfinished run" in err and "--resume" in err and "--overwrite" in err
    assert snapshot(folder) == before

    code, err = sam2pp(capsys, *command, "--resume")
    assert code == 0, err
    assert [r["step"] for r in read_history(folder)] == [1, 2, 3]
    assert same_run(folder, straight.folder)


def test_ctrl_c_stops_cleanly_with_a_resume_point_and_the_command_that_continues(straight, tmp_path, capsys):
    config = write_config(tmp_path / "quiet.json", save_every=STEPS)  # Ctrl-C writes a resume point between saves
    folder = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "sam2pp", "train", str(config), "--out", str(folder)],
                               env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    metrics = folder / METRICS_FILE
    while process.poll() is None and not (metrics.is_file() and "\n" in metrics.read_text()):
        time.sleep(0.05)  # until step 1 is done: steps 2 and 3 are left to interrupt
    process.send_signal(signal.SIGINT)
    err = process.communicate()[1]
    assert process.returncode == 130 and "Traceback" not in err, err[-3000:]
    done = len(read_history(folder))
    assert 1 <= done < STEPS and resume_step(folder) == done
    assert f"stopped by Ctrl-C after step {done} of {STEPS}" in err
    command = shlex.split(err.split("continue with: ")[1].splitlines()[0])
    assert command[:2] == ["sam2pp", "train"] and command[-1] == "--resume"

    code, err = sam2pp(capsys, *command[1:])
    assert code == 0, err
    assert same_run(folder, straight.folder)  # save_every may change on resume: it does not change the weights


def test_resume_with_a_changed_config_is_refused_naming_the_fields(straight, tmp_path, capsys):
    data = json.loads(straight.config.read_text())
    data["optim"]["lr"] *= 10
    changed = tmp_path / "lr10.json"
    changed.write_text(json.dumps(data))
    before = snapshot(straight.folder)
    code, err = sam2pp(capsys, "train", changed, "--out", straight.folder, "--resume")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert str(straight.folder / RESUME_FILE) in err and "optim.lr 0.001 -> 0.01" in err
    assert snapshot(straight.folder) == before


@pytest.mark.parametrize("damage", ["truncated", "not a resume file"])
def test_a_damaged_resume_file_is_refused_naming_it(straight, tmp_path, capsys, damage):
    folder = shutil.copytree(straight.folder, tmp_path / "run")
    resume = folder / RESUME_FILE
    data = resume.read_bytes()
    resume.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"garbage\n")
    before = snapshot(folder)
    code, err = sam2pp(capsys, "train", straight.config, "--out", folder, "--resume")
    assert code == 2 and len(err.strip().splitlines()) == 1 and f"resume file {resume}" in err, err
    assert snapshot(folder) == before


def test_an_earlier_run_is_started_over_only_with_overwrite(straight, tmp_path, capsys):
    folder = shutil.copytree(straight.folder, tmp_path / "run")
    before = snapshot(folder)
    code, err = sam2pp(capsys, "train", straight.config, "--out", folder)
    assert code == 2 and "finished run" in err and "--overwrite" in err
    code, err = sam2pp(capsys, "train", straight.config, "--out", folder, "--resume", "--overwrite")
    assert code == 2 and "not both" in err
    assert snapshot(folder) == before

    one_step = write_config(tmp_path / "one.json", steps=1)
    code, err = sam2pp(capsys, "train", one_step, "--out", folder, "--overwrite")
    assert code == 0, err
    assert [r["step"] for r in read_history(folder)] == [1] and resume_step(folder) == 1


def test_a_half_written_metrics_line_is_dropped_with_a_warning_naming_the_file(straight, tmp_path, capsys):
    folder = shutil.copytree(straight.folder, tmp_path / "run")
    shutil.copy(straight.resume_at_2, folder / RESUME_FILE)  # killed while writing step 3's line
    metrics = folder / METRICS_FILE
    lines = metrics.read_text().splitlines(keepends=True)
    metrics.write_text("".join(lines[:2]) + lines[2][:40])
    code, err = sam2pp(capsys, "train", straight.config, "--out", folder, "--resume")
    assert code == 0, err
    assert f"warning: {metrics}: dropped its last line" in err
    assert [r["step"] for r in read_history(folder)] == [1, 2, 3]
    assert same_run(folder, straight.folder)


def test_a_bad_line_inside_a_log_is_an_error_naming_the_file_and_line(tmp_path):
    log = tmp_path / METRICS_FILE
    log.write_text('{"step": 1}\n{"step": 2, "lo\n{"step": 3}\n')
    with pytest.raises(ValueError, match=re.escape(f"{log}, line 2: not a JSON record")):
        read_records(log)
    log.write_text('{"step": 1}\n{"step": 2, "lo')
    assert read_records(log) == ([{"step": 1}], True)


def test_a_diverging_run_stops_naming_the_step_and_the_loss_term(tmp_path, capsys):
    config = write_config(tmp_path / "diverge.json", lr=1e12, vision_lr=1e12)
    folder = tmp_path / "run"
    code, err = sam2pp(capsys, "train", config, "--out", folder)
    assert code == 2
    (line,) = error_lines(err)
    done = len(read_history(folder))
    assert 1 <= done < STEPS, "the run did not diverge: raise the learning rate"
    assert line.startswith(f"sam2pp train: error: step {done + 1}: the ") and "not finite" in line, line
    assert re.search(r"loss_\w+ (nan|inf)", line) and f"of step {done} are untouched" in line
    assert resume_step(folder) == done
    assert all(torch.isfinite(w).all() for w in weights(folder).values())


def _cut(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


# case -> (change to the data folder, the file the error names, words of the problem)
BAD_DATA = {
    "truncated JPEG": (lambda r: _cut(r / "JPEGImages/synth/00004.jpg"), "JPEGImages/synth/00004.jpg", "truncated"),
    "more masks than frames": (lambda r: shutil.copy(r / "Annotations/synth/00007.png",
                                                     r / "Annotations/synth/00008.png"),
                               "Annotations/synth", "(00008.png)"),
    "no videos": (lambda r: shutil.rmtree(r / "JPEGImages/synth"), "", "no videos"),
}


@pytest.mark.parametrize("case", list(BAD_DATA))
def test_bad_data_is_named_in_one_line_before_the_first_step(synthetic_folder, tmp_path, capsys, case):
    change, file, words = BAD_DATA[case]
    change(synthetic_folder)
    code, err = sam2pp(capsys, "train", "smoke", "--out", tmp_path / "run", "--steps", 1,
                       "--data", f"mask={synthetic_folder}")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert str(synthetic_folder / file) in err and words in err, err
    assert not (tmp_path / "run" / METRICS_FILE).exists()
