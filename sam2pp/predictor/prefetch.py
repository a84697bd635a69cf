"""Model inputs made ahead of tracking on worker threads, so decoding and resizing leave the tracking thread.

PIL's decoders and resampling and numpy's table look-up release the GIL, so a worker runs beside the model on
another core. Workers keep to at most `ahead` frames beyond the one being tracked, hold the frame source only weakly
between frames (a session dropped mid-propagation stops them), and hand an error back to the frame that needs it.
"""

from __future__ import annotations

import threading
import traceback
import weakref
from typing import TYPE_CHECKING, Sequence

import torch

if TYPE_CHECKING:
    from .frames import FrameSource


class Prefetcher:
    """Prepares `source._preprocess(i, size)` for the frames of `order` (tracking order) on `workers` threads.

    Positions of `order` below the one tracking last asked for are dropped unread; a frame no worker has started
    when tracking asks for it is left to the tracking thread (`take` answers None), which is then no slower than
    without workers. Only the first `ahead` positions past the last one asked for are ever claimed.
    """

    def __init__(self, source: FrameSource, order: Sequence[int], size: int, ahead: int, workers: int):
        if ahead < 1 or workers < 1:
            raise ValueError(f"prefetching needs ahead >= 1 and workers >= 1, got {ahead} and {workers}")
        self.order, self.size, self.ahead = order, size, ahead
        self._source = weakref.ref(source, lambda _: self.stop())
        self._cond = threading.Condition()
        self._next = 0  # the next position of `order` a worker may claim
        self._floor = 0  # positions below it are no longer wanted
        self._end = len(order)  # where a stream ended, once a worker finds out
        self._done: dict[int, torch.Tensor | BaseException] = {}
        self._stopped = False
        self._threads = [threading.Thread(target=self._work, name=f"sam2pp-frames-{k}", daemon=True)
                         for k in range(workers)]
        for thread in self._threads:
            thread.start()

    def take(self, index: int) -> torch.Tensor | None:
        """The input of frame `index`, waiting for the worker that makes it; None when no worker has it (not in
        `order`, passed already, or not started: the caller makes it). A worker's error is raised here."""
        position = self._position(index)
        with self._cond:
            if position is None or position < self._floor or position >= self._end or self._stopped:
                return None
            self._floor = position
            for passed in [p for p in self._done if p < position]:
                del self._done[passed]
            self._cond.notify_all()
            if position >= self._next:
                self._next = self._floor = position + 1
                return None
            while position not in self._done and position < self._end and not self._stopped:
                self._cond.wait()
            result = self._done.pop(position, None)
            self._floor = position + 1
            self._cond.notify_all()
        if isinstance(result, BaseException):
            result.add_note(f"(while preparing frame {index} ahead of tracking, on a worker thread)")
            raise result
        return result

    def stop(self) -> None:
        """Let the workers end (one busy with a frame finishes it unread); does not wait for them."""
        with self._cond:
            self._stopped = True
            self._done.clear()
            self._cond.notify_all()

    def join(self, timeout: float | None = None) -> None:
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout)

    def _position(self, index: int) -> int | None:
        try:
            return self.order.index(index)
        except ValueError:
            return None

    def _claim(self) -> int | None:
        """The next position to prepare, once it is within `ahead` of the tracking thread; None: stop."""
        with self._cond:
            while not self._stopped and self._next < self._end and self._next >= self._floor + self.ahead:
                self._cond.wait()
            if self._stopped or self._next >= self._end:
                return None
            self._next += 1
            return self._next - 1

    def _work(self) -> None:
        while (position := self._claim()) is not None:
            source = self._source()
            if source is None:
                return
            index = self.order[position]
            try:
                if not source.available(index):  # a stream that ended
                    with self._cond:
                        self._end = min(self._end, position)
                        self._cond.notify_all()
                    return
                result = source._preprocess(index, self.size)
            except Exception as exc:  # handed to the tracking thread, without frames that hold the source
                traceback.clear_frames(exc.__traceback__)
                result = exc
            del source
            with self._cond:
                if position >= self._floor and not self._stopped:
                    self._done[position] = result
                self._cond.notify_all()
            del result
