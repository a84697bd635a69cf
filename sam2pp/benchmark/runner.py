"""Run a benchmark: shard its videos over processes and machines, track each one once, merge on rank 0.

Under `torchrun` every rank tracks its share of the videos on its own device; `--shard i/n` first splits the videos
between n machines. Shares are balanced by frame count (longest video first, to the least loaded share): every
machine computes the same split from the folder listing, and its rank 0 splits its share between its ranks and
broadcasts that plan.

Every finished video leaves a record, `OUT/videos/<video>.json` (status, frames, seconds, the evaluator's rows),
written atomically after its predictions: a rerun skips the videos recorded as done and retries the others, and a
shard's records merge with the others' in one report. Rank 0 waits for the records of this run (polling the folder,
so a slow share never meets a collective's timeout), then writes the report.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

from tqdm.auto import tqdm

from ..checkpoint import build_model, resolve_config, resolve_hub_model
from ..io.formats import list_frames
from ..io.paths import check_output_folder
from ..predictor.video_predictor import VideoPredictor
from ..training import distributed
from ..training.distributed import World
from .layouts import NATIVE_RESULTS, Benchmark, open_benchmark
from .protocols import PROTOCOLS, TaskProtocol
from .report import build_report, write_report

DEFAULT_MODEL = "MCG-NJU/SAM2-Plus"
DEFAULT_CHECKPOINT_CONFIG = "sam2pp_hiera_b+"
POLL_SECONDS = 2.0
SETTINGS_FILE = "benchmark.json"


@dataclass
class BenchmarkConfig:
    """What `sam2pp benchmark` runs. `checkpoint` (with `config`, default sam2pp_hiera_b+) replaces the hub `model`;
    `shard` = (i, n) runs the i-th of n machine shares; `split` None is the layout's evaluation split; `threads` are
    CPU threads per op (`VideoPredictor`'s default when None); `compile` runs the image encoder and the per-frame
    step through `torch.compile`."""

    dataset: Path
    task: str
    out: Path
    layout: str = "auto"
    split: str | None = None
    model: str = DEFAULT_MODEL
    checkpoint: Path | None = None
    config: str | None = None
    device: str = "auto"
    threads: int | None = None
    compile: bool = False
    shard: tuple[int, int] = (0, 1)
    previews: int = 4
    progress: bool = True

    def model_name(self) -> str:
        """The model as the report names it (a checkpoint by file name, so machines with other paths agree)."""
        if self.checkpoint is None:
            return self.model + (f" ({self.config})" if self.config else "")
        return f"{Path(self.checkpoint).name} ({self.config or DEFAULT_CHECKPOINT_CONFIG})"


@dataclass
class Outputs:
    """The folders of a benchmark run under `out`."""

    out: Path
    predictions: Path = field(init=False)
    ground_truth: Path = field(init=False)
    records: Path = field(init=False)
    previews: Path = field(init=False)

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.predictions = self.out / "predictions"
        self.ground_truth = self.out / "ground_truth"
        self.records = self.out / "videos"
        self.previews = self.out / "previews"

    def record(self, name: str) -> Path:
        return self.records / f"{name}.json"


@dataclass
class BenchmarkResult:
    """The merged report (rank 0 only; None on the other ranks) and the videos this process tracked or failed."""

    report: dict | None
    tracked: list[str]
    failed: list[str]


def run_benchmark(config: BenchmarkConfig) -> BenchmarkResult:
    """Track and score every video of this process's share; on rank 0, wait for the others and write the report."""
    world = distributed.setup(config.device)
    try:
        bench = open_benchmark(config.dataset, config.task, config.layout, config.split)
        outputs = Outputs(config.out)
        check_output_folder(outputs.records)
        check_settings(outputs, bench, config, write=world.is_main)
        run_id, todo, shares = distributed.broadcast(world, plan_run(bench, outputs, config.shard, world.size)
                                                     if world.is_main else None)
        predictor = load_predictor(config, world) if todo else None
        records = track_share(predictor, bench, outputs, shares[world.rank], run_id, world, config.progress)
        report = None
        if world.is_main:
            wait_for_records(outputs, todo, run_id)
            report = build_report(bench, outputs, config.model_name(), read_records(outputs, bench.videos))
            write_report(report, bench, outputs, config.previews)
        return BenchmarkResult(report, [r["video"] for r in records],
                               [r["video"] for r in records if r["status"] == "failed"])
    finally:
        distributed.teardown(world)


# ---- sharding --------------------------------------------------------------------------------------------------------


def parse_shard(text: str) -> tuple[int, int]:
    """`"i/n"` -> (i, n) with 0 <= i < n."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard must look like i/n (e.g. 0/4), got {text!r}") from None
    if not 0 <= index < count:
        raise ValueError(f"--shard {text}: need 0 <= i < n")
    return index, count


def plan_run(bench: Benchmark, outputs: Outputs, shard: tuple[int, int], ranks: int) -> tuple[str, list[str], list]:
    """Rank 0's plan, broadcast to the others: a run id, this machine's videos still to do, and each rank's share."""
    counts = frame_counts(bench)
    machine = balance(counts, shard[1])[shard[0]]
    todo = [name for name in machine if not is_done(outputs, name)]
    return uuid.uuid4().hex, todo, balance({name: counts[name] for name in todo}, ranks)


def frame_counts(bench: Benchmark) -> dict[str, int]:
    """Frames per video from the folder listing (0 for a video whose frames cannot be listed: it fails on its own)."""
    counts = {}
    for name in bench.videos:
        try:
            counts[name] = len(list_frames(bench.video(name).files.frames))
        except (OSError, ValueError):
            counts[name] = 0
    return counts


def balance(frames: dict[str, int], parts: int) -> list[list[str]]:
    """Split videos into `parts` shares of about equal frames: longest first, each to the least loaded share (ties to
    the lowest share); each share keeps the input order."""
    load = [0] * parts
    owner = {}
    for name in sorted(frames, key=lambda n: -frames[n]):
        share = load.index(min(load))
        owner[name] = share
        load[share] += max(frames[name], 1)
    return [[name for name in frames if owner[name] == share] for share in range(parts)]


# ---- records ---------------------------------------------------------------------------------------------------------


def check_settings(outputs: Outputs, bench: Benchmark, config: BenchmarkConfig, write: bool = True) -> None:
    """`out` holds one benchmark run: its settings are written by the first run (`write`: by rank 0) and must match
    on every later one."""
    settings = {**bench.describe(), "model": config.model_name()}
    path = outputs.out / SETTINGS_FILE
    if path.is_file():
        earlier = json.loads(path.read_text())
        keys = ("task", "layout", "split", "model")
        changed = [f"{k} {earlier.get(k)!r} -> {settings[k]!r}" for k in keys if earlier.get(k) != settings[k]]
        if changed:
            raise ValueError(f"{outputs.out} holds the results of another benchmark run ({', '.join(changed)}); "
                             f"choose another --out, or delete that folder to start over")
        return
    if write:
        _write_json(path, settings)


def is_done(outputs: Outputs, name: str) -> bool:
    record = read_record(outputs.record(name))
    return record is not None and record.get("status") == "done"


def read_record(path: Path) -> dict | None:
    """A video's record, or None when it has none (records are replaced atomically, so never half written)."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def read_records(outputs: Outputs, names: list[str]) -> dict[str, dict | None]:
    return {name: read_record(outputs.record(name)) for name in names}


def _write_json(path: Path, value: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps(value, indent=1) + "\n")
    os.replace(partial, path)


def wait_for_records(outputs: Outputs, names: list[str], run_id: str) -> None:
    """Block until every video in `names` has a record written by this run (another rank's share)."""
    pending = list(names)
    while pending:
        pending = [n for n in pending if (read_record(outputs.record(n)) or {}).get("run") != run_id]
        if pending:
            time.sleep(POLL_SECONDS)


# ---- tracking --------------------------------------------------------------------------------------------------------


def load_predictor(config: BenchmarkConfig, world: World) -> VideoPredictor:
    """The predictor on this rank's device, built as the published benchmark scripts build theirs: without the
    builder's post-processing (`apply_postprocessing=False`: no hole filling, no stability-based multimask choice)
    and with the task's `non_overlap_masks`; with the "window" memory bank, since a benchmark never re-prompts a
    tracked frame, so a video of any length needs the same memory. A hub model is fetched into the hub cache by rank 0 before the others
    read it there (offline, it must already be cached); a packaged model (`sam2pp-demo`) is read from the package."""
    task_rules = {"non_overlap_masks": PROTOCOLS[config.task].non_overlap_masks, "threads": config.threads,
                  "compile_image_encoder": config.compile, "compile_step": config.compile, "memory_bank": "window"}
    if config.checkpoint is None:
        if not world.is_main:
            distributed.barrier(world)
        hub = resolve_hub_model(config.model, config=config.config)
        if world.is_main:
            distributed.barrier(world)
        checkpoint, preset = hub.checkpoint, hub.config
    else:
        checkpoint, preset = config.checkpoint, config.config or DEFAULT_CHECKPOINT_CONFIG
    model_config = replace(resolve_config(preset), apply_postprocessing=False)
    model = build_model(model_config, checkpoint=checkpoint, device=world.device)
    return VideoPredictor(model, **task_rules)


def track_share(predictor: VideoPredictor | None, bench: Benchmark, outputs: Outputs, names: list[str], run_id: str,
                world: World, progress: bool) -> list[dict]:
    """Run `names` one after the other, with a progress bar and one timing line per video."""
    where = f" rank {world.rank}/{world.size}" if world.distributed else ""
    bar = tqdm(names, desc=f"benchmark {bench.task}{where}", unit="video", disable=not progress,
               position=world.local_rank if world.distributed else None)
    records = []
    for name in bar:
        record = run_video(predictor, bench, outputs, name, run_id, world.rank)
        records.append(record)
        if record["status"] == "failed":
            line = f"{name}: failed: {record['error']}"
        else:
            line = f"{name}: {record['frames']} frames in {record['seconds']:.1f} s ({record['fps']:.1f} fps)"
            bar.set_postfix(video=name, fps=f"{record['fps']:.1f}")
        if progress:
            bar.write(line)
    return records


def run_video(predictor: VideoPredictor, bench: Benchmark, outputs: Outputs, name: str, run_id: str,
              rank: int = 0) -> dict:
    """Track, write and score one video and leave its record; any error marks the video failed (its files are
    removed) and the run goes on with the next one."""
    protocol = PROTOCOLS[bench.task]
    record: dict = {"video": name, "task": bench.task, "run": run_id, "rank": rank}
    try:
        discard(protocol, bench, outputs, name)
        plan = protocol.prepare(bench.video(name))
        tracked = protocol.track(predictor, plan, outputs.predictions)
        record.update(status="done", frames=tracked.frames, objects=tracked.objects, seconds=tracked.seconds,
                      fps=tracked.fps)
        if bench.layout in NATIVE_RESULTS:
            NATIVE_RESULTS[bench.layout].write(outputs.predictions, name, tracked.seconds)
        record.update(score(protocol, plan, outputs, name))
    except Exception as err:  # one broken video must not stop the benchmark; its message goes in the report
        discard(protocol, bench, outputs, name)
        record.update(status="failed", error=describe_error(err, name))
    _write_json(outputs.record(name), record)
    return record


def score(protocol: TaskProtocol, plan, outputs: Outputs, name: str) -> dict:
    """{"scores": rows} for a scored video, else {"note": why not}; a video the evaluator rejects keeps its
    predictions and is reported unscored with the evaluator's message (its ground truth copy is removed)."""
    reason = protocol.write_truth(plan, outputs.ground_truth)
    if reason is not None:
        return {"note": reason}
    try:
        return {"scores": protocol.score(name, outputs.ground_truth, outputs.predictions)}
    except (OSError, ValueError) as err:
        protocol.discard(outputs.ground_truth, name)
        return {"note": f"not scored: {err}"}


def discard(protocol: TaskProtocol, bench: Benchmark, outputs: Outputs, name: str) -> None:
    for root in (outputs.predictions, outputs.ground_truth):
        protocol.discard(root, name)
    if bench.layout in NATIVE_RESULTS:
        shutil.rmtree(outputs.predictions / NATIVE_RESULTS[bench.layout].folder / name, ignore_errors=True)


def describe_error(err: Exception, name: str) -> str:
    """The error's message, naming the video (and the error type when it is not an input problem)."""
    message = str(err) or type(err).__name__
    if not isinstance(err, (OSError, ValueError)):
        message = f"{type(err).__name__}: {message}"
    return message if repr(name) in message else f"video {name!r}: {message}"
