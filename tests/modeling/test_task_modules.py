"""TaskModuleDict: per-task and shared layouts, lookup errors, and the published state-dict names of each."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sam2pp.modeling.task_modules import TASKS, TaskModuleDict, keep_published_task_names


class Parent(nn.Module):
    def __init__(self, separate: bool):
        super().__init__()
        keep_published_task_names(self)
        self.head = TaskModuleDict.build(lambda: nn.Linear(2, 3), separate)
        self.plain = nn.Linear(3, 1)


def test_per_task_dict_has_one_module_per_task():
    heads = TaskModuleDict.build(lambda: nn.Linear(2, 3), separate=True)
    assert not heads.is_shared and heads.tasks == TASKS
    assert len({id(heads[t]) for t in TASKS}) == 3
    with pytest.raises(KeyError, match="unknown task 'pose'; this module has mask, box, point"):
        heads["pose"]
    with pytest.raises(KeyError, match="one copy per task"):
        heads[None]


def test_shared_dict_answers_every_task_with_one_module():
    linear = nn.Linear(2, 3)
    heads = TaskModuleDict.shared(linear)
    assert heads.is_shared and heads.tasks == TASKS
    assert all(heads[t] is linear for t in TASKS) and heads[None] is linear
    assert len(list(heads.parameters())) == 2
    with pytest.raises(KeyError, match="unknown task 'pose'"):
        heads["pose"]
    with pytest.raises(ValueError, match="cannot be a task"):
        TaskModuleDict.shared(linear, tasks=("mask", "all"))


@pytest.mark.parametrize("separate", [True, False], ids=["separate", "shared"])
def test_state_dict_uses_published_names_and_round_trips(separate):
    parent = Parent(separate)
    keys = set(parent.state_dict())
    if separate:
        assert keys == {f"head_{t}.{p}" for t in TASKS for p in ("weight", "bias")} | {"plain.weight", "plain.bias"}
    else:
        assert keys == {"head.weight", "head.bias", "plain.weight", "plain.bias"}
    other = Parent(separate)
    other.load_state_dict(parent.state_dict(), strict=True)
    for task in TASKS:
        assert torch.equal(other.head[task].weight, parent.head[task].weight)


def test_layouts_do_not_load_into_each_other():
    with pytest.raises(RuntimeError, match=r"Unexpected key\(s\) in state_dict: \"head\.weight\""):
        Parent(separate=True).load_state_dict(Parent(separate=False).state_dict(), strict=True)
    with pytest.raises(RuntimeError, match=r"Unexpected key\(s\) in state_dict: \"head_mask\.weight\""):
        Parent(separate=False).load_state_dict(Parent(separate=True).state_dict(), strict=True)
