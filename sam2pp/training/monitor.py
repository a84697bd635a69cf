"""What a run shows and records (rank 0 only): a tqdm bar with loss and clips/s, per-step JSON lines, TensorBoard
scalars (per task and loss component, learning rate per parameter group), prediction pictures and validation scores.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from .checkpoints import atomic_write_text
from .clip import Clip, ClipOutputs
from .pictures import prediction_grid

METRICS_FILE = "metrics.jsonl"
VALIDATION_FILE = "validation.jsonl"


class Monitor:
    """Progress, logs and pictures of one run; every method is a no-op on ranks other than 0."""

    def __init__(self, out: Path, config, world, progress: bool = True):
        self.out, self.config, self.active, self.progress = out, config, world.is_main, progress
        self.bar = None
        self.writer = None
        if self.active:
            out.mkdir(parents=True, exist_ok=True)

    def announce(self, trainable: str, data: str) -> None:
        if self.active:
            print(trainable)
            print(data)

    def start(self, step: int, steps: int) -> None:
        if not self.active:
            return
        from torch.utils.tensorboard import SummaryWriter

        _truncate_jsonl(self.out / METRICS_FILE, step)
        _truncate_jsonl(self.out / VALIDATION_FILE, step)
        self.writer = SummaryWriter(str(self.out / "tensorboard"), purge_step=step)
        self.bar = tqdm(total=steps, initial=step, desc="train", unit="step", disable=not self.progress)

    def step(self, record: dict) -> None:
        if not self.active:
            return
        with open(self.out / METRICS_FILE, "a") as f:
            f.write(json.dumps(record) + "\n")
        step, task = record["step"], record["task"]
        if step % self.config.log_every == 0:
            for key, value in record["losses"].items():
                self.writer.add_scalar(f"loss/{task}/{key}", value, step)
            for group, lr in record["lr"].items():
                self.writer.add_scalar(f"lr/{group}", lr, step)
            self.writer.add_scalar("speed/clips_per_s", record["clips_per_s"], step)
        self.bar.set_postfix(task=task, loss=f"{record['losses']['core_loss']:.3g}",
                             clips_s=f"{record['clips_per_s']:.2f}")
        self.bar.update(1)

    def maybe_picture(self, step: int, task: str, clip: Clip, outputs: ClipOutputs) -> None:
        every = self.config.picture_every
        if not self.active or not every or (step + 1) % every:
            return
        grid = prediction_grid(clip, outputs)
        path = self.out / "pictures" / f"step{step + 1:06d}_{task}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(grid).save(path)
        self.writer.add_image(f"predictions/{task}", np.ascontiguousarray(grid), step + 1, dataformats="HWC")

    def validation(self, record: dict) -> None:
        if not self.active:
            return
        with open(self.out / VALIDATION_FILE, "a") as f:
            f.write(json.dumps(record) + "\n")
        for task, scores in record["scores"].items():
            for metric, value in scores.items():
                self.writer.add_scalar(f"val/{task}/{metric}", value, record["step"])
        scores = record["scores"].items()
        line = "; ".join(f"{t}: " + ", ".join(f"{k} {v:.3f}" for k, v in s.items()) for t, s in scores)
        tqdm.write(f"validation at step {record['step']}: {line}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.writer is not None:
            self.writer.close()


def _truncate_jsonl(path: Path, step: int) -> None:
    """Forget records past `step` (a resumed run redoes the steps after its last save); rewritten atomically."""
    if not path.is_file():
        return
    records, cut = read_records(path)
    if cut:
        print(f"warning: {path}: dropped its last line, cut short by an interrupted write", file=sys.stderr)
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in records if r["step"] <= step))


def read_records(path: Path) -> tuple[list[dict], bool]:
    """The records of a `.jsonl` log, and whether its last line was cut short (a kill while it was written; it is
    left out). Any other line that is not JSON is an error naming the file and the line."""
    lines = path.read_text().splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            if number == len(lines):
                return records, True
            raise ValueError(f"{path}, line {number}: not a JSON record ({err})") from err
    return records, False
