"""Per-task copies of a module, looked up by task name.

SAM 2++ keeps one memory attention, memory encoder, high-resolution projection and decoder head per task. Here they
live in a `TaskModuleDict` keyed by task ("mask", "box", "point"), so callers write `self.memory_attention[task]`
instead of branching on the task. The published checkpoint stores them under flat names (`memory_attention_mask.*`);
`keep_published_task_names(parent)` makes the parent save and load its task dicts under those names, so
`state_dict()` and strict loading speak the published key layout.
"""

from __future__ import annotations

import re
from typing import Callable, Iterable

from torch import nn

TASKS: tuple[str, ...] = ("mask", "box", "point")


class TaskModuleDict(nn.ModuleDict):
    """`{task: module}` with a readable error for a task it does not hold."""

    def __init__(self, make: Callable[[str], nn.Module] | None = None, tasks: Iterable[str] = TASKS, **modules):
        super().__init__({t: make(t) for t in tasks} if make is not None else modules)

    def __getitem__(self, task: str) -> nn.Module:
        if task not in self._modules:
            raise KeyError(f"unknown task {task!r}; this module has {', '.join(self.keys())}")
        return self._modules[task]


def _task_dict_names(parent: nn.Module) -> list[str]:
    return [name for name, child in parent.named_children() if isinstance(child, TaskModuleDict)]


def _to_published(parent: nn.Module, state_dict, prefix: str, _meta) -> None:
    for name in _task_dict_names(parent):
        nested = re.compile(re.escape(f"{prefix}{name}.") + r"([^.]+)\.")
        for key in [k for k in state_dict if nested.match(k)]:
            state_dict[nested.sub(lambda m: f"{prefix}{name}_{m.group(1)}.", key, count=1)] = state_dict.pop(key)


def _from_published(parent: nn.Module, state_dict, prefix: str, *_args) -> None:
    for name in _task_dict_names(parent):
        for task in parent.get_submodule(name).keys():
            flat = f"{prefix}{name}_{task}."
            for key in [k for k in state_dict if k.startswith(flat)]:
                state_dict[f"{prefix}{name}.{task}.{key[len(flat):]}"] = state_dict.pop(key)


def keep_published_task_names(parent: nn.Module) -> None:
    """Save and load every `TaskModuleDict` child of `parent` as `<child>_<task>.*` (the published flat names)."""
    parent.register_state_dict_post_hook(_to_published)
    parent.register_load_state_dict_pre_hook(_from_published)
