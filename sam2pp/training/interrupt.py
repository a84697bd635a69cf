"""Stopping a run cleanly on Ctrl-C: the first SIGINT lets the current step finish, the run writes a resume point
there and raises `TrainingInterrupted`; a second SIGINT stops at once (the last resume point written stays valid,
since every save is atomic). A step is never cut in half, so the resume point is exact."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from types import FrameType


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a run after step `step` of `steps`; `resume` is the resume point written there."""

    def __init__(self, step: int, steps: int, resume: Path):
        self.step, self.steps, self.resume = step, steps, resume
        super().__init__(f"stopped by Ctrl-C after step {step} of {steps}; resume point {resume}")


class StopRequest:
    """While entered, SIGINT asks the loop to stop after the current step instead of raising KeyboardInterrupt.

    Only in the main thread of a single-process run: under torchrun every rank would have to agree on the step (and
    torchrun ends its workers itself), so there Ctrl-C keeps its default and the run continues from its last save.
    """

    def __init__(self, enabled: bool, announce: bool):
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.announce = announce
        self.requested = False
        self._previous = None

    def __enter__(self) -> StopRequest:
        if self.enabled:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        if self.announce:  # os.write: a print here could re-enter a print the signal interrupted
            os.write(2, b"\nCtrl-C: stopping after this step and writing a resume point (Ctrl-C again stops at once)\n")
