"""How many threads torch splits one CPU op over (intra-op threads): a default that survives a busy machine.

torch starts with one thread per physical core. A small model's ops are too short to split: the threads mostly wait
for each other, and while another process holds a core every op waits for the thread that lost it (10-70x slower on
a shared 2-core machine). A large model's ops are long enough for more threads to pay. So a predictor runs models
with an input of at most `SMALL_MODEL_MAX_SIZE` px on one thread and leaves larger ones at torch's default.

The user's choice wins, in this order: an explicit `threads` (`--threads`, `VideoPredictor(..., threads=)`), then
OMP_NUM_THREADS or MKL_NUM_THREADS, then a count set earlier with `torch.set_num_threads`.
"""

from __future__ import annotations

import os

SMALL_MODEL_MAX_SIZE = 512
"""Input size (px) up to which a model runs on one thread by default (`sam2pp_tiny` is 256 px, b+ 1024 px)."""
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")

_chosen: int | None = None
"""The count the last default set, so that a later default may replace it (a user's count is never replaced)."""


def default_threads(image_size: int) -> int:
    """One thread for a small model, torch's start-up count (one per physical core) for a large one."""
    import torch

    return 1 if image_size <= SMALL_MODEL_MAX_SIZE else torch.get_num_interop_threads()


def thread_env() -> str | None:
    """`NAME=value` of the first thread variable the user set, or None."""
    return next((f"{name}={os.environ[name]}" for name in THREAD_ENV if os.environ.get(name)), None)


def apply_threads(threads: int | None = None, image_size: int | None = None) -> int:
    """Set torch's intra-op thread count for this process and return the count in effect.

    threads: the user's count, always applied. Without it, the default for a model of `image_size` px is applied
    unless a thread variable is set or torch's count was changed by someone else (it is neither torch's start-up
    count, which is also its inter-op count, nor the count an earlier default set); without `image_size` nothing
    changes.
    """
    import torch

    global _chosen
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be a positive integer, got {threads!r}")
        torch.set_num_threads(threads)
        return threads
    current = torch.get_num_threads()
    if image_size is None or thread_env() or current not in (torch.get_num_interop_threads(), _chosen):
        return current
    wanted = default_threads(image_size)
    if wanted != current:
        torch.set_num_threads(wanted)
    _chosen = wanted
    return wanted


__all__ = ["SMALL_MODEL_MAX_SIZE", "THREAD_ENV", "apply_threads", "default_threads", "thread_env"]
