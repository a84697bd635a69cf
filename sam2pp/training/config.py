"""Training configuration: typed dataclasses, JSON in and out, presets, and up-front validation.

Every knob that sets the memory or time of a step (image size, frames per clip, objects per clip, correction clicks)
is checked before training starts, with the field named, so a bad value fails in the first second rather than at
step 10,000.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from ..data.synthetic import TRAINING_SPEC, SyntheticSpec
from ..modeling.task_modules import TASKS
from ..plain import PlainReader, to_plain
from .data import LAYOUTS as DATA_LAYOUTS
from .checkpoints import atomic_write_text
from .losses import LossConfig
from .optim import LoraConfig, OptimConfig
from .prompts import PromptConfig, scale_gaussian_stages
from .transforms import AugmentConfig

LAYOUTS = ("auto", *DATA_LAYOUTS)


@dataclass
class DataSource:
    """A folder of videos for one task (the CONTRACT section-4 or the Tracking-Any-Granularity layout)."""

    task: str
    root: str
    layout: str = "auto"
    split: str = "train"


@dataclass
class SyntheticData:
    """The endless seeded synthetic source (`sam2pp.data.synthetic`), used for every task without a folder.

    `rich` turns on every event of `TRAINING_SPEC` (re-entry, look-alike distractors, rotation, zoom, shake, light
    changes, clutter); held-out validation clips are drawn with the same settings from unseen seeds.
    """

    seed: int = 0
    clips_per_epoch: int = 64
    size: tuple[int, int] = (320, 240)
    num_frames: int = 12
    num_objects: int = 3
    rich: bool = False

    def spec(self, seed: int | None = None, num_frames: int | None = None) -> SyntheticSpec:
        """The generator settings of one video (the run's seed unless `seed` is given)."""
        base = TRAINING_SPEC if self.rich else SyntheticSpec()
        return replace(base, seed=self.seed if seed is None else seed, size=self.size, num_objects=self.num_objects,
                       num_frames=self.num_frames if num_frames is None else num_frames)


@dataclass
class DataConfig:
    """Where clips come from and how they are cut: frames and objects per clip, task mixing, clips per step."""

    sources: tuple[DataSource, ...] = ()
    synthetic: SyntheticData = field(default_factory=SyntheticData)
    num_frames: int = 8
    max_objects: dict[str, int] = field(default_factory=lambda: {"mask": 3, "box": 1, "point": 3})
    task_probs: dict[str, float] = field(default_factory=lambda: {"mask": 0.3, "box": 0.3, "point": 0.4})
    clips_per_step: int = 1


@dataclass
class ValidationConfig:
    """Held-out clips scored with the `sam2pp eval` metrics; `root` None means synthetic clips from unseen seeds."""

    root: str | None = None
    every: int = 0
    tasks: tuple[str, ...] = TASKS
    max_videos: int = 4
    synthetic_seeds: tuple[int, ...] = (900001, 900002)
    synthetic_frames: int = 16


@dataclass
class TrainConfig:
    """One training run. `steps` counts optimiser steps; the point curriculum and the cosine schedule follow the
    fraction of them done. `model` is a preset name or a ModelConfig JSON path; `init` a checkpoint to start from."""

    model: str = "sam2pp_tiny"
    init: str | None = None
    steps: int = 200
    seed: int = 123
    drop_path: float = 0.1
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    prompts: PromptConfig = field(default_factory=PromptConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    freeze: tuple[str, ...] = ()
    lora: LoraConfig | None = None
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    device: str = "auto"
    bf16: bool = True
    threads: int = 1
    log_every: int = 1
    save_every: int = 50
    picture_every: int = 50

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)

    def to_json(self, path: str | Path) -> None:
        """Written atomically: a run folder's config.json is whole or the previous one."""
        atomic_write_text(Path(path), json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return PlainReader().read(cls, data, "config")

    @classmethod
    def from_json(cls, path: str | Path) -> TrainConfig:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read training config {path}: {exc}") from exc
        return cls.from_dict(data)

    def validate(self, image_size: int) -> None:
        """Raise ValueError naming the field for any value training cannot run with."""
        problems = list(_problems(self, image_size))
        if problems:
            raise ValueError("invalid training config:\n  " + "\n  ".join(problems))


def _problems(cfg: TrainConfig, image_size: int):
    positive = {
        "steps": cfg.steps, "data.num_frames": cfg.data.num_frames, "data.clips_per_step": cfg.data.clips_per_step,
        "threads": cfg.threads, "log_every": cfg.log_every, "save_every": cfg.save_every,
        "data.synthetic.clips_per_epoch": cfg.data.synthetic.clips_per_epoch,
    }
    yield from (f"{k} must be a positive integer, got {v!r}" for k, v in positive.items() if not _pos_int(v))
    if cfg.augment.image_size != image_size:
        yield f"augment.image_size is {cfg.augment.image_size} but the model {cfg.model!r} takes {image_size}"
    if not 0 <= cfg.drop_path < 1:
        yield f"drop_path must lie in [0, 1), got {cfg.drop_path}"
    for key, table in (("data.max_objects", cfg.data.max_objects), ("data.task_probs", cfg.data.task_probs)):
        unknown = sorted(set(table) - set(TASKS))
        if unknown:
            yield f"{key} has unknown task(s) {unknown}; tasks are {list(TASKS)}"
    yield from (f"data.max_objects.{t} must be a positive integer, got {n!r}"
                for t, n in cfg.data.max_objects.items() if not _pos_int(n))
    probs = cfg.data.task_probs
    if any(not isinstance(p, (int, float)) or p < 0 for p in probs.values()) or sum(probs.values()) <= 0:
        yield f"data.task_probs must be non-negative with a positive sum, got {probs}"
    if cfg.data.num_frames > cfg.data.synthetic.num_frames and len(cfg.data.sources) < len(TASKS):
        yield (f"data.num_frames ({cfg.data.num_frames}) exceeds data.synthetic.num_frames "
               f"({cfg.data.synthetic.num_frames})")
    for i, src in enumerate(cfg.data.sources):
        if src.task not in TASKS:
            yield f"data.sources[{i}].task must be one of {list(TASKS)}, got {src.task!r}"
        if src.layout not in LAYOUTS:
            yield f"data.sources[{i}].layout must be one of {list(LAYOUTS)}, got {src.layout!r}"
        if not Path(src.root).is_dir():
            yield f"data.sources[{i}].root {src.root} is not a folder"
    if cfg.validation.root is not None and not Path(cfg.validation.root).is_dir():
        yield f"validation.root {cfg.validation.root} is not a folder"
    if cfg.init is not None and not Path(cfg.init).is_file():
        yield f"init checkpoint {cfg.init} is not a file"
    if cfg.device not in ("auto", "cpu") and not cfg.device.startswith("cuda"):
        yield f"device must be auto, cpu or cuda[:N], got {cfg.device!r}"


def _pos_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


# ---- presets ----------------------------------------------------------------------------------------------------


def published() -> TrainConfig:
    """The published three-task recipe (b+ at 1024 px from SAM 2.1 weights, LoRA r 128 on the image encoder and
    memory attention). `steps` stands for 150 epochs over the Tracking-Any-Granularity train split; set it from
    the size of your data. Give `init` (a converted SAM 2.1 or the SAM 2++ checkpoint) and `data.sources`."""
    cfg = TrainConfig(model="sam2pp_hiera_b+", steps=30000, lora=LoraConfig(), augment=AugmentConfig(image_size=1024))
    cfg.data.synthetic.size = (1024, 576)
    return cfg


def tiny_cpu() -> TrainConfig:
    """The published recipe scaled to the tiny model on a laptop CPU (recipe section 7.2): 256 px, 8 frames, at most
    2 objects, no LoRA, a from-scratch learning rate, the point gaussian scaled by 256 / 1024."""
    cfg = TrainConfig(model="sam2pp_tiny", steps=300, augment=AugmentConfig(image_size=256))
    cfg.data.max_objects = {"mask": 2, "box": 1, "point": 2}
    stages = scale_gaussian_stages(cfg.prompts.gaussian_stages, 256)
    cfg.prompts = dataclasses.replace(cfg.prompts, gaussian_stages=stages)
    cfg.optim = dataclasses.replace(cfg.optim, lr=1e-3, lr_end=1e-4, vision_lr=1e-3, vision_lr_end=1e-4)
    cfg.validation.every = 100
    return cfg


def smoke() -> TrainConfig:
    """A few seconds a step: the tiny model, 4 frames of one object, 2 correction clicks; for tests and demos."""
    cfg = tiny_cpu()
    cfg.steps, cfg.save_every, cfg.picture_every = 6, 3, 0
    cfg.data.num_frames = 4
    cfg.data.max_objects = {"mask": 1, "box": 1, "point": 1}
    cfg.data.synthetic = SyntheticData(clips_per_epoch=8, size=(160, 120), num_frames=6, num_objects=2)
    cfg.prompts = dataclasses.replace(cfg.prompts, num_correction_clicks=2)
    cfg.validation = ValidationConfig(every=0, max_videos=1, synthetic_frames=6)
    return cfg


def _demo_base() -> TrainConfig:
    """`tiny_cpu` on the demo model's rich synthetic clips (the held-out clips of `training.demo_model` come from
    the same generator, with seeds training never draws)."""
    cfg = tiny_cpu()
    cfg.save_every, cfg.picture_every = 50, 250
    cfg.data.synthetic = SyntheticData(seed=2026, clips_per_epoch=512, size=(320, 240), num_frames=16, num_objects=3,
                                       rich=True)
    return cfg


def demo_images() -> TrainConfig:
    """Stage 1 of the demo model: promptable segmentation (masks and boxes) on single frames of the rich synthetic
    clips, as SAM 2 trains on images before videos; about 8x cheaper per step than an 8-frame clip."""
    cfg = _demo_base()
    cfg.steps = 3000
    cfg.data.num_frames = 1
    cfg.data.task_probs = {"mask": 0.5, "box": 0.5, "point": 0.0}
    cfg.data.max_objects = {"mask": 3, "box": 3, "point": 1}
    cfg.validation = ValidationConfig(tasks=())
    return cfg


def _demo_video(num_frames: int, steps: int) -> TrainConfig:
    """A video stage of the demo model: clips of `num_frames`, every task, prompted as the demo is used (a mask,
    box or point on the first frame only, one correction click), so that the memory path has to carry the object.

    Measured: 600 two-frame mask steps from the `demo_images` weights reach IoU 0.72 on the first tracked frame of
    held-out clips, where 1,100 steps of the full published prompt simulation on 8-frame clips stayed at 0.05 (the
    model learned to ignore its memories); hence the curriculum of clip lengths 2, 4, 8."""
    cfg = _demo_base()
    cfg.steps = steps
    cfg.data.num_frames = num_frames
    cfg.data.max_objects = {"mask": 3, "box": 1, "point": 2}
    cfg.prompts = dataclasses.replace(cfg.prompts, prob_to_use_pt_input=0.0, num_init_cond_frames=1,
                                      rand_init_cond_frames=False, num_frames_to_correct=1, num_correction_clicks=1)
    cfg.validation = ValidationConfig(tasks=())
    return cfg


def demo_video2() -> TrainConfig:
    """Stage 2 of the demo model: 1,500 steps on 2-frame clips, from the `demo_images` checkpoint."""
    return _demo_video(2, 1500)


def demo_video4() -> TrainConfig:
    """Stage 3 of the demo model: 1,000 steps on 4-frame clips, from the `demo_video2` checkpoint."""
    return _demo_video(4, 1000)


def demo_video8() -> TrainConfig:
    """Stage 4 of the demo model: 1,000 steps on 8-frame clips from the `demo_video4` checkpoint, validated every
    500 steps on held-out rich clips."""
    cfg = _demo_video(8, 1000)
    cfg.validation = ValidationConfig(every=500, max_videos=4, synthetic_frames=24)
    return cfg


def demo_video12() -> TrainConfig:
    """Stage 5 of the demo model: 600 steps on 12-frame clips from the `demo_video8` checkpoint at 0.3 times the
    earlier stages' learning rate, with more point clips and up to 3 points per clip.

    Its point targets and prompts are one gaussian of radius 12 and sigma 4 model pixels throughout (the published
    point tool's 50 / 16 at 1024 px, scaled to 256: the `sam2pp_tiny` config's `point_prompt_radius` /
    `point_prompt_sigma`, which `add_track_point` uses). The predictor encodes a prompt's memory from its 4x
    down-sampled logits, binarized: measured on the stage-4 weights, the quarter-scaled last published stage that the
    earlier stages end on (radius 1, sigma 0.5) and radius 5 / sigma 2 both leave no positive pixel there, so every
    point of a clip gets the same, empty memory; radius 12 / sigma 4 leaves a disc of about 60 pixels, the size of
    the binarized target that training encodes."""
    cfg = _demo_video(12, 600)
    cfg.data.task_probs = {"mask": 0.3, "box": 0.25, "point": 0.45}
    cfg.data.max_objects = {"mask": 3, "box": 1, "point": 3}
    cfg.prompts = dataclasses.replace(cfg.prompts, gaussian_stages=((0.0, 50, 16.0),))  # 12 / 4 at 256
    cfg.optim = dataclasses.replace(cfg.optim, lr=3e-4, lr_end=3e-5, vision_lr=3e-4, vision_lr_end=3e-5)
    cfg.validation = ValidationConfig(every=300, max_videos=4, synthetic_frames=24)
    return cfg


def demo() -> TrainConfig:
    """The shipped demo model (`sam2pp-demo`), last stage: 400 steps on 4-frame clips from the `demo_video12`
    checkpoint in which half the mask and box clips are prompted by clicks or a noised box on the first frame.

    Measured: the video stages, prompted with masks only, made the decoder forget sparse prompts (two clicks far apart
    changed the mask output by 10.4 logits after `demo_images`, by 0.08 after `demo_video12`); the widgets' clicks
    and the point task's first-frame object pointer need them. After this stage: 11.6. `DEMO_STAGES` lists the whole
    curriculum."""
    cfg = demo_video12()
    cfg.steps = 400
    cfg.data.num_frames = 4
    cfg.data.task_probs = {"mask": 0.4, "box": 0.3, "point": 0.3}
    cfg.prompts = dataclasses.replace(cfg.prompts, prob_to_use_pt_input=0.5)
    cfg.validation = ValidationConfig(tasks=())
    cfg.picture_every = 0
    return cfg


DEMO_STAGES = ("demo_images", "demo_video2", "demo_video4", "demo_video8", "demo_video12", "demo")
"""The demo model's curriculum: each stage starts from the previous stage's checkpoint."""


PRESETS: dict[str, Callable[[], TrainConfig]] = {
    "published": published,
    "demo": demo,
    "demo_images": demo_images,
    "demo_video2": demo_video2,
    "demo_video4": demo_video4,
    "demo_video8": demo_video8,
    "demo_video12": demo_video12,
    "tiny_cpu": tiny_cpu,
    "smoke": smoke,
}


def load_config(name_or_path: str | Path) -> TrainConfig:
    """A preset by name, or a JSON file written by `TrainConfig.to_json`."""
    if str(name_or_path) in PRESETS:
        return PRESETS[str(name_or_path)]()
    path = Path(name_or_path)
    if path.suffix != ".json" or not path.is_file():
        raise ValueError(f"unknown training config {str(name_or_path)!r}: give a preset "
                         f"({', '.join(sorted(PRESETS))}) or an existing .json file")
    return TrainConfig.from_json(path)
