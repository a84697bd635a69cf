"""The one error of unusable training data, which lists every problem found so that one run fixes them all."""

from __future__ import annotations


class DatasetError(ValueError):
    """Training data that cannot be used; `problems` lists every file and what is wrong with it."""

    def __init__(self, *problems: str):
        self.problems = list(problems)
        if len(problems) == 1:
            message = problems[0]
        else:
            message = f"{len(problems)} problems in the training data:\n" + "\n".join(f"- {p}" for p in problems)
        super().__init__(message)
