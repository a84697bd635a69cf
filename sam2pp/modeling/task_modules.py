"""Per-task copies of a module, or one module shared by every task, looked up by task name.

SAM 2++ keeps one memory attention, memory encoder, high-resolution projection and decoder head per task; its
ablations share the memory modules instead, or split the image encoder. Either layout lives in a `TaskModuleDict`
keyed by task ("mask", "box", "point"), so callers write `self.memory_attention[task]` whatever the layout. The
published checkpoint stores per-task modules under flat names (`memory_attention_mask.*`) and a shared module under
its plain name (`memory_attention.*`); `keep_published_task_names(parent)` makes the parent save and load its task
dicts under those names, so `state_dict()` and strict loading speak the published key layout.
"""

from __future__ import annotations

import copy
import re
from typing import Callable, Iterable

from torch import nn

TASKS: tuple[str, ...] = ("mask", "box", "point")

# The child name of a module shared by every task (`memory_attention.all.*` in `named_parameters`).
SHARED = "all"


class TaskModuleDict(nn.ModuleDict):
    """`{task: module}`, or one module answering for every task (`TaskModuleDict.shared`).

    A shared module is registered once, so `parameters()` yields it once and `state_dict()` saves it once. `tasks`
    lists the tasks served; `keys()` lists the stored children (`"all"` alone when shared).
    """

    def __init__(self, make: Callable[[str], nn.Module] | None = None, tasks: Iterable[str] = TASKS, **modules):
        super().__init__({t: make(t) for t in tasks} if make is not None else modules)
        self.tasks: tuple[str, ...] = tuple(self._modules)

    @classmethod
    def shared(cls, module: nn.Module, tasks: Iterable[str] = TASKS) -> TaskModuleDict:
        """One `module` used by every task in `tasks`."""
        tasks = tuple(tasks)
        if SHARED in tasks:
            raise ValueError(f"{SHARED!r} names the shared module and cannot be a task")
        shared = cls(**{SHARED: module})
        shared.tasks = tasks
        return shared

    @classmethod
    def build(cls, make: Callable[[], nn.Module], separate: bool, tasks: Iterable[str] = TASKS) -> TaskModuleDict:
        """One `make()` shared by every task, or (`separate`) a copy of it per task.

        `make` runs once either way and the copies start identical, as published: under one seed, every layout
        starts from the same weights, in the shared modules and in the rest of the model built after it.
        """
        module = make()
        return cls(lambda _: copy.deepcopy(module), tasks) if separate else cls.shared(module, tasks)

    @property
    def is_shared(self) -> bool:
        return SHARED in self._modules

    def __getitem__(self, task: str | None) -> nn.Module:
        """The module of `task`; a shared dict also answers None (the module every task uses)."""
        if self.is_shared and (task is None or task in self.tasks):
            return self._modules[SHARED]
        if task is None:
            raise KeyError(f"this module has one copy per task ({', '.join(self.tasks)}): name the task")
        if task not in self.tasks:
            raise KeyError(f"unknown task {task!r}; this module has {', '.join(self.tasks)}")
        return self._modules[task]


def _flat_prefix(prefix: str, name: str, child: str) -> str:
    """The published key prefix of child `child` of the task dict `name`: unsuffixed when shared."""
    return f"{prefix}{name}." if child == SHARED else f"{prefix}{name}_{child}."


def _task_dicts(parent: nn.Module) -> list[tuple[str, TaskModuleDict]]:
    return [(name, child) for name, child in parent.named_children() if isinstance(child, TaskModuleDict)]


def _to_published(parent: nn.Module, state_dict, prefix: str, _meta) -> None:
    for name, _ in _task_dicts(parent):
        nested = re.compile(re.escape(f"{prefix}{name}.") + r"([^.]+)\.")
        for key in [k for k in state_dict if nested.match(k)]:
            flat = nested.sub(lambda m: _flat_prefix(prefix, name, m.group(1)), key, count=1)
            state_dict[flat] = state_dict.pop(key)


def _from_published(parent: nn.Module, state_dict, prefix: str, *_args) -> None:
    for name, task_dict in _task_dicts(parent):
        for child in task_dict.keys():
            flat, nested = _flat_prefix(prefix, name, child), f"{prefix}{name}.{child}."
            for key in [k for k in state_dict if k.startswith(flat) and not k.startswith(nested)]:
                state_dict[nested + key[len(flat):]] = state_dict.pop(key)


def keep_published_task_names(parent: nn.Module) -> None:
    """Save and load every `TaskModuleDict` child of `parent` under the published names: `<child>_<task>.*` for a
    per-task module, `<child>.*` for a shared one."""
    parent.register_state_dict_post_hook(_to_published)
    parent.register_load_state_dict_pre_hook(_from_published)
