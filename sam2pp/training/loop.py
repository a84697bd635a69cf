"""`train(config)`: the published training loop, usable from a notebook, the command line and torchrun.

A step takes one task (drawn by the task mixer, the same on every rank) and `clips_per_step` clips of it per rank;
each clip is unrolled through the model (`unroll.py`) and scored by the task's loss; gradients are averaged over
clips and ranks (DistributedDataParallel), the other tasks' parameters get none, the learning rates are set for the
step's fraction of training (after backward, before `optimizer.step`, as published), gradients are clipped and the
optimiser steps. All randomness of a step comes from generators seeded by (seed, step, clip), so a resumed run
equals an uninterrupted one and a 2-rank run equals a 1-rank run with the same global batch.
"""

from __future__ import annotations

import contextlib
import os
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..checkpoint import load_strict, read_checkpoint, resolve_config
from ..modeling.model import SAM2PlusModel
from ..modeling.tracker import Tracker
from . import distributed
from .checkpoints import MODEL_FILE, RESUME_FILE, restore_rng_states, save_model, save_resume
from .clip import Clip
from .config import TrainConfig
from .interrupt import StopRequest, TrainingInterrupted
from .losses import clip_loss, num_objects_for_loss
from .monitor import METRICS_FILE, Monitor, read_records
from .optim import apply_lora, build_optimizer, clip_gradients, format_trainable_table, freeze, set_progress, task_of
from .prompts import plan_prompts
from .run_folder import CONFIG_FILE, clear_run, open_run
from .sources import ClipSources
from .unroll import unroll


@dataclass
class TrainResult:
    """What `train` returns: the per-step history, the validation scores, and where the files are."""

    history: list[dict]
    validations: list[dict]
    out: Path
    checkpoint: Path
    model: SAM2PlusModel = field(repr=False)


class ClipObjective(nn.Module):
    """The model, the training unroll and the loss as one module, so DistributedDataParallel sees one forward."""

    def __init__(self, model: SAM2PlusModel, config: TrainConfig):
        super().__init__()
        self.model = model
        self.tracker = Tracker(model)
        self.config = config

    def forward(self, clip: Clip, seeds: "StepSeeds"):
        prompts = self.config.prompts
        rng = np.random.default_rng(seeds.prompts)
        generator = torch.Generator().manual_seed(seeds.clicks)
        plan = plan_prompts(clip, rng, prompts, generator)
        outputs = unroll(self.tracker, clip, plan, prompts, rng, generator)
        losses = clip_loss(outputs, clip, num_objects_for_loss(clip.num_objects), self.config.loss)
        return losses, outputs


@dataclass(frozen=True)
class StepSeeds:
    """Seeds of one clip of one step. Prompt decisions are shared by every clip of a step (as the published rng is
    shared by every rank); data, augmentation, clicks and dropout are per clip."""

    data: int
    augment: int
    prompts: int
    clicks: int
    dropout: int

    @classmethod
    def of(cls, seed: int, step: int, clip: int) -> StepSeeds:
        draw = lambda *key: int(np.random.SeedSequence([seed, *key]).generate_state(1)[0])  # noqa: E731
        return cls(draw(1, step, clip), draw(2, step, clip), draw(3, step), draw(4, step, clip), draw(5, step, clip))


def build_training_model(config: TrainConfig, init: str | Path | None = None) -> SAM2PlusModel:
    """The model in training mode: preset or JSON config, drop-path set, `init` loaded strictly, freezing and LoRA.

    The random initialisation is seeded by `config.seed`, so every rank and every rerun starts from the same weights.
    """
    torch.manual_seed(config.seed)
    model_config = resolve_config(config.model)
    model_config.image_encoder.trunk.drop_path_rate = config.drop_path
    model = SAM2PlusModel(model_config)
    init = init or config.init
    if init is not None:
        load_strict(model, read_checkpoint(init))
    freeze(model, list(config.freeze))
    if config.lora is not None:
        apply_lora(model, config.lora)
    return model.train()


def train(
    config: TrainConfig,
    out: str | Path,
    *,
    init: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    callback: Callable[[dict], None] | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train as `config` says, writing checkpoints, logs and pictures to `out`; returns the history.

    `callback(record)` is called on rank 0 after every step with the step's record (for live plots); `resume`
    continues from `out/resume.pt` when it exists (with the same config only); `overwrite` deletes an earlier run's
    files in `out`, which are otherwise an error (`run_folder.open_run`). Ctrl-C stops after the current step with
    a resume point written, raising `TrainingInterrupted`; a non-finite loss or update raises FloatingPointError
    before anything of that step is saved.
    """
    out = Path(out)
    state = open_run(out, config, resume, overwrite)
    world = distributed.setup(config.device)
    _set_threads(config.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        model = build_training_model(config, init)
        config.validate(model.image_size)
        return _Run(config, out, model, world, callback, progress).run(state, clear=overwrite)
    finally:
        distributed.teardown(world)


def peak_memory_mib(device: torch.device) -> float:
    """This process's peak memory so far: the CUDA allocator's peak on a GPU, the peak resident set on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _set_threads(threads: int) -> None:
    """One intra-op thread by default (fastest for small models on a busy machine); OMP_NUM_THREADS wins."""
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(threads)


class _Run:
    """One training run's moving parts; `run` is the loop."""

    def __init__(self, config: TrainConfig, out: Path, model: SAM2PlusModel, world, callback, progress: bool):
        self.config, self.out, self.world, self.callback = config, out, world, callback
        self.model = model.to(world.device)
        objective = ClipObjective(self.model, config)
        if world.distributed:
            objective = DistributedDataParallel(objective, find_unused_parameters=True)
        self.objective = objective
        self.optimizer = build_optimizer(self.model, config.optim)
        self.sources = ClipSources(config, world, out)
        self.monitor = Monitor(out, config, world, progress)
        self.history: list[dict] = []
        self.validations: list[dict] = []
        self.saved = 0  # the step of the resume point on disk

    def run(self, state: dict | None, clear: bool) -> TrainResult:
        """The loop, from `state` (a resume file's contents) or step 0; `clear` deletes an earlier run's files."""
        start = self._resume(state) if state is not None else 0
        if self.world.is_main:
            if clear:
                clear_run(self.out)
            self.monitor.announce(format_trainable_table(self.model), self.sources.describe())
            self.config.to_json(self.out / CONFIG_FILE)
        self.monitor.start(start, self.config.steps)
        try:
            with StopRequest(not self.world.distributed, self.world.is_main) as stop:
                for step in range(start, self.config.steps):
                    record = self._step(step)
                    self.history.append(record)
                    self.monitor.step(record)
                    if self.world.is_main and self.callback is not None:
                        self.callback(record)
                    self._periodic(step + 1)
                    if stop.requested and step + 1 < self.config.steps:
                        if self.saved != step + 1:
                            self._save(step + 1)
                        raise TrainingInterrupted(step + 1, self.config.steps, self.out / RESUME_FILE)
        finally:
            self.monitor.close()
        return TrainResult(self.history, self.validations, self.out, self.out / MODEL_FILE, self.model)

    def _step(self, step: int) -> dict:
        cfg = self.config
        tic = time.perf_counter()
        task, indices = self.sources.schedule(step)
        fraction = step / cfg.steps
        self.optimizer.zero_grad(set_to_none=True)
        totals: dict[str, float] = {}
        clips = []
        for k, index in enumerate(indices):
            seeds = StepSeeds.of(cfg.seed, step, k * self.world.size + self.world.rank)  # place in the global batch
            clip = self.sources.clip(task, index, seeds, fraction).to(self.world.device)
            torch.manual_seed(seeds.dropout)
            with self._sync(last=k == len(indices) - 1), self._autocast():
                losses, outputs = self.objective(clip, seeds)
            loss = losses["core_loss"]
            if not torch.isfinite(loss):
                terms = ", ".join(f"{k} {v.item()}" for k, v in losses.items() if not torch.isfinite(v))
                raise FloatingPointError(f"step {step + 1}: the {task} loss is not finite ({terms}) on clip "
                                         f"{clip.video}@{clip.start}; {self._kept()}")
            (loss / len(indices)).backward()
            for key, value in losses.items():
                totals[key] = totals.get(key, 0.0) + value.item() / len(indices)
            clips.append((clip, outputs))
        self._drop_other_tasks(task)
        lrs = set_progress(self.optimizer, cfg.optim, fraction)
        norm = clip_gradients(self.model, cfg.optim)
        if norm is not None and not torch.isfinite(norm):
            raise FloatingPointError(f"step {step + 1}: the {task} gradient norm is {norm.item()} (the loss "
                                     f"{totals['core_loss']:.4g} is finite); {self._kept()}")
        self.optimizer.step()
        seconds = time.perf_counter() - tic
        self.monitor.maybe_picture(step, task, *clips[-1])
        return {"step": step + 1, "task": task, "losses": self._mean_over_ranks(totals), "lr": lrs,
                "seconds": seconds, "clips_per_s": len(indices) * self.world.size / seconds,
                "peak_mib": peak_memory_mib(self.world.device)}

    def _sync(self, last: bool):
        """Gradients are all-reduced on the last clip of a step only."""
        if self.world.distributed and not last:
            return self.objective.no_sync()
        return contextlib.nullcontext()

    def _autocast(self):
        enabled = self.config.bf16 and self.world.device.type == "cuda"
        return torch.autocast(self.world.device.type, dtype=torch.bfloat16, enabled=enabled)

    def _drop_other_tasks(self, task: str) -> None:
        """Only the shared modules and the step's task modules are updated (no momentum, no weight decay for the
        rest): DDP may hand unused parameters zero gradients, which AdamW would still act on."""
        for name, param in self.model.named_parameters():
            owner = task_of(name)
            if owner is not None and owner != task:
                param.grad = None

    def _mean_over_ranks(self, totals: dict[str, float]) -> dict[str, float]:
        if not self.world.distributed:
            return totals
        keys = sorted(totals)
        values = torch.tensor([totals[k] for k in keys], dtype=torch.float64, device=self.world.device)
        torch.distributed.all_reduce(values)
        return {k: v / self.world.size for k, v in zip(keys, values.tolist())}

    def _periodic(self, done: int) -> None:
        cfg, last = self.config, done == self.config.steps
        every = cfg.validation.every
        if last or done % cfg.save_every == 0:
            self._save(done)
        if last or (every and done % every == 0):
            self._validate(done)

    def _kept(self) -> str:
        """Where a run that stops on a non-finite value leaves its files."""
        if not self.saved:
            return "stopped before any checkpoint was written"
        return f"stopped; {self.out / RESUME_FILE} and {MODEL_FILE} of step {self.saved} are untouched"

    def _save(self, done: int) -> None:
        bad = next((n for n, p in self.model.named_parameters() if not torch.isfinite(p).all()), None)
        if bad is not None:
            raise FloatingPointError(f"step {done}: weight {bad} is no longer finite after the update; "
                                     f"{self._kept()}")
        if self.world.is_main:
            save_model(self.model, self.out / MODEL_FILE)
            save_resume(self.out / RESUME_FILE, self.model, self.optimizer, done,
                        {"history": self.history, "validations": self.validations}, self.config.to_dict())
        self.saved = done
        distributed.barrier(self.world)

    def _validate(self, done: int) -> None:
        if self.world.is_main and self.config.validation.tasks:
            scores = self.sources.validate(self.model, done, self.monitor.progress)
            record = {"step": done, "scores": scores}
            self.validations.append(record)
            self.monitor.validation(record)
        distributed.barrier(self.world)

    def _resume(self, state: dict) -> int:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        restore_rng_states(state["rng"])
        self.history = list(state["history"]["history"])
        self.validations = list(state["history"]["validations"])
        if self.world.is_main:
            print(f"resuming {self.out} at step {state['step']} of {self.config.steps}")
        self.saved = int(state["step"])
        return self.saved


def read_history(out: str | Path) -> list[dict]:
    """The per-step records a run wrote to `out/metrics.jsonl` (what notebooks plot; a line being written is left
    out)."""
    return read_records(Path(out) / METRICS_FILE)[0]

