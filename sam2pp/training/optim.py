"""What trains and how fast: the published AdamW recipe, module groups for freezing, and LoRA adapters via `peft`.

Optimiser (published `yaml:444-487`, `training/optimizer.py`): AdamW with parameter groups keyed by
(role, layer-decay scale, weight decay). Role "vision" is every `image_encoder.*` parameter, "base" the rest; each
role's learning rate follows a cosine over the fraction w of training done, `end + (start - end)(1 + cos pi w) / 2`,
with no warm-up. Weight decay is 0 for every parameter with "bias" in its name and every `torch.nn.LayerNorm`
parameter; the convolutional `LayerNorm2d` is not a `torch.nn.LayerNorm` and keeps the decay, as published.
Layer decay scales the Hiera trunk's learning rates by depth (Hiera `get_layer_id`): with L blocks, block k gets
`decay**(L - k)`, the patch embedding `decay**(L + 1)`, the position embeddings 1.

Module groups partition the parameters (`group_of`); tasks overlay them (`task_of`), so `freeze(model,
["image_encoder", "task:box"])` stops the shared image encoder and every box-only module.

LoRA (`yaml:533-551`): adapters on the image encoder and on each task's memory attention; every other weight of a
wrapped module is frozen. The base weights keep their plain keys in `state_dict()` (only `lora_A` / `lora_B` keys are
added), and `merge_lora` folds the adapters in, leaving exactly the published keys.
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass
from typing import Iterable, Sequence

import torch
from torch import nn

from ..modeling.hiera import Hiera
from ..modeling.task_modules import TASKS

ROLES: tuple[str, ...] = ("base", "vision")


# ---- configuration --------------------------------------------------------------------------------------------


@dataclass
class OptimConfig:
    """AdamW, the two cosine learning-rate schedules, weight decay, trunk layer decay and gradient clipping.

    Defaults are the published values. `layer_decay_with_lora` False reproduces the published run, in which LoRA
    renamed the trunk's parameters and the layer decay silently fell back to 1 for every adapter; True applies the
    depth scales to the adapters too. `grad_clip_norm` None turns clipping off.
    """

    lr: float = 5e-5
    lr_end: float = 5e-6
    vision_lr: float = 5e-6
    vision_lr_end: float = 5e-7
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.1
    layer_decay: float = 0.9
    layer_decay_with_lora: bool = False
    grad_clip_norm: float | None = 0.1

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)
        problems = [f"OptimConfig.{k} must be a finite number >= 0, got {v!r}"
                    for k, v in self._rates().items() if not _finite(v) or v < 0]
        if len(self.betas) != 2 or not all(_finite(b) and 0 <= b < 1 for b in self.betas):
            problems.append(f"OptimConfig.betas must be two numbers in [0, 1), got {self.betas!r}")
        if not _finite(self.eps) or self.eps <= 0:
            problems.append(f"OptimConfig.eps must be > 0, got {self.eps!r}")
        if not _finite(self.layer_decay) or not 0 < self.layer_decay <= 1:
            problems.append(f"OptimConfig.layer_decay must lie in (0, 1] (1 = off), got {self.layer_decay!r}")
        if self.grad_clip_norm is not None and (not _finite(self.grad_clip_norm) or self.grad_clip_norm <= 0):
            problems.append(f"OptimConfig.grad_clip_norm must be > 0 or None (off), got {self.grad_clip_norm!r}")
        if problems:
            raise ValueError("; ".join(problems))

    def _rates(self) -> dict[str, float]:
        keys = ("lr", "lr_end", "vision_lr", "vision_lr_end", "weight_decay")
        return {k: getattr(self, k) for k in keys}

    def schedule(self, role: str) -> tuple[float, float]:
        """(start, end) learning rate of a role."""
        return {"base": (self.lr, self.lr_end), "vision": (self.vision_lr, self.vision_lr_end)}[role]


@dataclass
class LoraConfig:
    """LoRA adapters on `targets` (keys of `LORA_TARGETS`); an adapter's output is scaled by alpha / rank.

    Defaults are the published ones: rank 128, alpha 32 (scale 0.25), dropout 0.1 on the adapter input, no bias.
    """

    rank: int = 128
    alpha: float = 32.0
    dropout: float = 0.1
    targets: tuple[str, ...] = ("image_encoder", "memory_attention")

    def __post_init__(self) -> None:
        self.targets = tuple(self.targets)
        problems = []
        if not isinstance(self.rank, int) or isinstance(self.rank, bool) or self.rank <= 0:
            problems.append(f"LoraConfig.rank must be a positive integer, got {self.rank!r}")
        if not _finite(self.alpha) or self.alpha <= 0:
            problems.append(f"LoraConfig.alpha must be > 0, got {self.alpha!r}")
        if not _finite(self.dropout) or not 0 <= self.dropout < 1:
            problems.append(f"LoraConfig.dropout must lie in [0, 1), got {self.dropout!r}")
        unknown = [t for t in self.targets if t not in LORA_TARGETS]
        if unknown or not self.targets or len(set(self.targets)) != len(self.targets):
            problems.append(f"LoraConfig.targets must be distinct names among {sorted(LORA_TARGETS)}, "
                            f"got {list(self.targets)}")
        if problems:
            raise ValueError("; ".join(problems))


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# ---- module groups --------------------------------------------------------------------------------------------

# Base groups, in display order; the patterns are disjoint, so every parameter is in exactly one group.
_EMBEDDINGS = (r"(obj_ptr_proj|obj_ptr_tpos_proj|mask_downsample)\."
               r"|(maskmem_tpos_enc|no_mem_embed|no_mem_pos_enc|no_obj_ptr|no_obj_embed_spatial)$")
_DECODER_HEADS = ("conv_s0", "conv_s1", "output_upscaling", "output_hypernetworks_mlps")
BASE_GROUPS: dict[str, re.Pattern] = {
    # Hiera trunk and FPN neck (shared, or one per task)
    "image_encoder": re.compile(r"image_encoder\."),
    "prompt_encoder": re.compile(r"sam_prompt_encoder\."),
    # two-way transformer, output tokens, IoU and object-score heads: shared by the tasks
    "decoder": re.compile(r"sam_unified_decoder\.(?!box_head\.|(%s)\.)" % "|".join(_DECODER_HEADS)),
    # each task's conv_s0/conv_s1, upscaling and hypernetwork MLPs
    "decoder_heads": re.compile(r"sam_unified_decoder\.(%s)\." % "|".join(_DECODER_HEADS)),
    "box_head": re.compile(r"sam_unified_decoder\.box_head\."),
    "memory_attention": re.compile(r"memory_attention\."),
    "memory_encoder": re.compile(r"memory_encoder\."),
    # object-pointer projections, no-memory / no-object embeddings, mask down-sampler, memory temporal encodings
    "embeddings": re.compile(_EMBEDDINGS),
}
TASK_GROUPS: dict[str, str] = {f"task:{t}": t for t in TASKS}

# Paths of the task dicts (`TaskModuleDict`): a parameter under `<path>.<task>.` is that task's own.
_TASK_DICT_PATHS = ("image_encoder", "memory_attention", "memory_encoder",
                    *(f"sam_unified_decoder.{h}" for h in _DECODER_HEADS))
_TASK_PARAM = re.compile(r"(?:%s)\.(%s)\." % ("|".join(map(re.escape, _TASK_DICT_PATHS)), "|".join(TASKS)))
_TASK_ONLY = {"box": re.compile(r"sam_unified_decoder\.box_head\.")}


def known_groups() -> list[str]:
    return [*BASE_GROUPS, *TASK_GROUPS]


def group_of(name: str) -> str:
    """The base group of the parameter `name` (as in `model.named_parameters()`)."""
    for group, pattern in BASE_GROUPS.items():
        if pattern.match(name):
            return group
    raise ValueError(f"parameter {name!r} is in no module group; the groups are {', '.join(BASE_GROUPS)} "
                     "(add its module to optim.BASE_GROUPS)")


def task_of(name: str) -> str | None:
    """The task owning the parameter `name`, or None for a module every task uses."""
    found = _TASK_PARAM.match(name)
    if found:
        return found.group(1)
    return next((task for task, pattern in _TASK_ONLY.items() if pattern.match(name)), None)


def in_group(name: str, group: str) -> bool:
    """Whether the parameter `name` is in `group`, a base group or a task group ("task:box")."""
    if group in TASK_GROUPS:
        return task_of(name) == TASK_GROUPS[group]
    return group_of(name) == group


def check_groups(groups: Iterable[str]) -> list[str]:
    """`groups` as a list, or a ValueError naming the unknown ones and listing the known groups."""
    groups = list(groups)
    unknown = [g for g in groups if g not in BASE_GROUPS and g not in TASK_GROUPS]
    if unknown:
        raise ValueError(f"unknown module group(s) {unknown}; known groups: {', '.join(known_groups())}")
    return groups


def freeze(model: nn.Module, groups: Sequence[str]) -> list[str]:
    """Stop gradients (`requires_grad = False`) for every parameter in any of `groups`; returns their names.

    Freeze before `build_optimizer`, which only takes trainable parameters.
    """
    groups = check_groups(groups)
    frozen = []
    for name, param in model.named_parameters():
        if any(in_group(name, g) for g in groups):
            param.requires_grad_(False)
            frozen.append(name)
    return frozen


# ---- parameter groups and the schedule ------------------------------------------------------------------------


@dataclass(frozen=True)
class ParamSetting:
    """How one parameter is optimised: its role's schedule times `lr_scale`, with or without weight decay."""

    role: str
    lr_scale: float
    decay: bool


def param_settings(model: nn.Module, config: OptimConfig) -> dict[str, ParamSetting]:
    """`ParamSetting` of every parameter of `model` (trainable or not), by name."""
    layer_norm = {id(p) for m in model.modules() if isinstance(m, nn.LayerNorm) for p in m.parameters(recurse=False)}
    scales = _layer_scales(model, config)
    return {
        name: ParamSetting(
            role="vision" if name.startswith("image_encoder.") else "base",
            lr_scale=scales.get(name, 1.0),
            decay="bias" not in name and id(p) not in layer_norm,
        )
        for name, p in model.named_parameters()
    }


def _layer_scales(model: nn.Module, config: OptimConfig) -> dict[str, float]:
    """Layer-decay scales of the trunk parameters (Hiera `get_layer_id` with the published `*pos_embed*` -> 1)."""
    encoder = getattr(model, "image_encoder", None)
    if not config.layer_decay_with_lora and encoder is not None and _lora_layers(encoder):
        return {}
    scales = {}
    for prefix, trunk in model.named_modules():
        if not (isinstance(trunk, Hiera) and prefix.startswith("image_encoder.")):
            continue
        depth = len(trunk.blocks)
        for rest, _ in trunk.named_parameters():
            scales[f"{prefix}.{rest}"] = config.layer_decay ** (depth + 1 - _layer_id(rest, depth))
    return scales


def _layer_id(rest: str, depth: int) -> int:
    """0 for the stem, k + 1 for block k, depth + 1 (scale 1) for the position embeddings and anything else."""
    if "pos_embed" in rest:
        return depth + 1
    if rest.startswith("patch_embed."):
        return 0
    if rest.startswith("blocks."):
        return int(rest.split(".")[1]) + 1
    return depth + 1


def build_optimizer(model: nn.Module, config: OptimConfig) -> torch.optim.AdamW:
    """AdamW over the trainable parameters of `model`, grouped by `param_settings`, with the schedule at w = 0.

    Each group carries `name`, `role`, `lr_scale` and `decay`, which `set_progress` reads; they are saved in
    `optimizer.state_dict()`. Build it after freezing and LoRA: frozen parameters are left out.
    """
    settings = param_settings(model, config)
    groups: dict[ParamSetting, dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        s = settings[name]
        if s not in groups:
            label = f"{s.role}/{'wd' if s.decay else 'no_wd'}/lr_x{s.lr_scale:.4g}"
            groups[s] = {"params": [], "name": label, "role": s.role, "lr_scale": s.lr_scale, "decay": s.decay}
        groups[s]["params"].append(param)
    if not groups:
        raise ValueError("the model has no trainable parameters (all frozen?)")
    optimizer = torch.optim.AdamW(list(groups.values()), lr=config.lr, betas=config.betas, eps=config.eps,
                                  weight_decay=config.weight_decay)
    set_progress(optimizer, config, 0.0)
    return optimizer


def cosine(start: float, end: float, w: float) -> float:
    """The cosine from `start` (w = 0) to `end` (w = 1)."""
    return end + 0.5 * (start - end) * (1 + math.cos(math.pi * w))


def set_progress(optimizer: torch.optim.Optimizer, config: OptimConfig, w: float) -> dict[str, float]:
    """Set every group's lr and weight decay for the fraction `w` in [0, 1] of training done; returns the
    unscaled lr of each role.

    As published, call it every step after `backward` and before `optimizer.step` (and before unscaling and
    clipping the gradients).
    """
    if not _finite(w) or not 0 <= w <= 1:
        raise ValueError(f"training progress must lie in [0, 1], got {w!r}")
    lrs = {role: cosine(*config.schedule(role), w) for role in ROLES}
    for group in optimizer.param_groups:
        if "role" not in group:
            raise ValueError(f"optimizer group {group.get('name', '?')!r} has no role: build it with build_optimizer")
        group["lr"] = lrs[group["role"]] * group["lr_scale"]
        group["weight_decay"] = config.weight_decay if group["decay"] else 0.0
    return lrs


def clip_gradients(model: nn.Module, config: OptimConfig) -> torch.Tensor | None:
    """Clip all gradients to L2 norm `grad_clip_norm` (unscale AMP gradients first); returns the norm before."""
    if config.grad_clip_norm is None:
        return None
    return nn.utils.clip_grad_norm_(model.parameters(), max_norm=config.grad_clip_norm, norm_type=2.0)


# ---- LoRA -----------------------------------------------------------------------------------------------------

# Model attribute -> leaf modules adapted inside it (matched as name suffixes), as published.
LORA_TARGETS: dict[str, tuple[str, ...]] = {
    "image_encoder": ("patch_embed.proj", "attn.qkv", "attn.proj", "mlp.layers.0", "mlp.layers.1",
                      "neck.convs.0.conv", "neck.convs.1.conv", "neck.convs.2.conv"),
    "memory_attention": ("q_proj", "k_proj", "v_proj", "out_proj", "linear1", "linear2"),
}


def apply_lora(model: nn.Module, config: LoraConfig) -> nn.Module:
    """Wrap the target modules of `config.targets` with LoRA adapters in place; returns `model`.

    Inside each target (all its task copies) only the adapters train afterwards; the rest of the model is untouched.
    Adapters start at zero (lora_B = 0), so the model's outputs do not change.
    """
    import peft

    for target in config.targets:
        module = _submodule(model, target)
        if _lora_layers(module):
            raise ValueError(f"{target} already has LoRA adapters; merge_lora first")
        lora = peft.LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout, bias="none",
                               target_modules=list(LORA_TARGETS[target]))
        try:
            peft.inject_adapter_in_model(lora, module)
        except ValueError as exc:
            raise ValueError(f"cannot add LoRA to {target}: {exc}") from exc
        del module.peft_config  # the adapters' settings live in LoraConfig, not on our modules
        for _, layer in _lora_layers(module):
            _keep_plain_keys(layer)
    return model


def has_lora(model: nn.Module) -> bool:
    return bool(_lora_layers(model))


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every adapter into its base weight and put the plain module back; returns `model`.

    Afterwards `model.state_dict()` has exactly the keys of a model that never had adapters. The merged weights keep
    `requires_grad` False, as under LoRA.
    """
    for name, layer in _lora_layers(model):
        layer.merge(safe_merge=True)
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, layer.get_base_layer())
    return model


def _lora_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, layer) of every LoRA-wrapped module; none can exist unless peft has been imported."""
    lora = sys.modules.get("peft.tuners.lora")
    if lora is None:
        return []
    return [(name, m) for name, m in model.named_modules() if isinstance(m, lora.LoraLayer)]


def _submodule(model: nn.Module, target: str) -> nn.Module:
    try:
        return model.get_submodule(target)
    except AttributeError:
        raise ValueError(f"the model has no module {target!r} to adapt") from None


def _keep_plain_keys(layer: nn.Module) -> None:
    """Save and load the wrapped layer's own weights as `<layer>.weight`, not peft's `<layer>.base_layer.weight`,
    so LoRA only adds keys. Also expose the conv shape attributes the model reads (`in_channels`)."""
    base = layer.get_base_layer()
    for attr in ("in_channels", "out_channels"):
        if hasattr(base, attr):
            setattr(layer, attr, getattr(base, attr))
    layer.register_state_dict_post_hook(_base_keys_to_plain)
    layer.register_load_state_dict_pre_hook(_plain_keys_to_base)


def _base_keys_to_plain(layer: nn.Module, state_dict, prefix: str, _meta) -> None:
    inner = f"{prefix}base_layer."
    for key in [k for k in state_dict if k.startswith(inner)]:
        state_dict[prefix + key[len(inner):]] = state_dict.pop(key)


def _plain_keys_to_base(layer: nn.Module, state_dict, prefix: str, *_args) -> None:
    base = layer.get_base_layer()
    for name, _ in [*base.named_parameters(recurse=False), *base.named_buffers(recurse=False)]:
        if prefix + name in state_dict:
            state_dict[f"{prefix}base_layer.{name}"] = state_dict.pop(prefix + name)


# ---- what trains ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupCount:
    """Parameter values (elements) of one module group that train and that are frozen."""

    group: str
    trainable: int
    frozen: int

    @property
    def total(self) -> int:
        return self.trainable + self.frozen


def trainable_table(model: nn.Module) -> list[GroupCount]:
    """One row per base group (adapters counted in their module's group), then a "total" row."""
    counts = {g: [0, 0] for g in BASE_GROUPS}
    for name, param in model.named_parameters():
        counts[group_of(name)][0 if param.requires_grad else 1] += param.numel()
    rows = [GroupCount(g, t, f) for g, (t, f) in counts.items()]
    return rows + [GroupCount("total", sum(r.trainable for r in rows), sum(r.frozen for r in rows))]


def format_trainable_table(source: nn.Module | Sequence[GroupCount]) -> str:
    """`trainable_table` (of a model, or given rows) as aligned text, printed before training starts."""
    rows = trainable_table(source) if isinstance(source, nn.Module) else list(source)
    header = f"{'group':<18}{'trainable':>14}{'frozen':>14}{'total':>14}"
    line = lambda r: f"{r.group:<18}{r.trainable:>14,}{r.frozen:>14,}{r.total:>14,}"  # noqa: E731
    body = [line(r) for r in rows if r.group != "total"]
    totals = [line(r) for r in rows if r.group == "total"]
    return "\n".join([header, *body, "-" * len(header), *totals])
