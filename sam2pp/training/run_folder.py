"""A run folder before a run starts in it, checked from its files alone (before the model is built or the data
scanned, so that a wrong command fails in a second and changes nothing): an earlier run's files are never replaced
unless asked (`resume` continues it, `overwrite` starts over), and a run resumes only with the config it started
with, because a resumed run must end with the weights an uninterrupted one would have.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from .checkpoints import MODEL_FILE, RESUME_FILE, load_resume
from .config import TrainConfig
from .monitor import METRICS_FILE, VALIDATION_FILE

CONFIG_FILE = "config.json"
RUN_FILES = (RESUME_FILE, MODEL_FILE, METRICS_FILE, VALIDATION_FILE, CONFIG_FILE)
"""What `overwrite` deletes (with any `.tmp` a kill left beside them); pictures and predictions are replaced by name."""

FREE_TO_CHANGE = frozenset({"device", "threads", "log_every", "save_every", "picture_every", "validation"})
"""Top-level config fields a resumed run may change: they set where a run runs and what it shows, not its weights."""
MAX_CHANGES_SHOWN = 6


class RunFolderError(ValueError):
    """A run folder that cannot be used as asked; the message says what to do instead."""


def open_run(out: Path, config: TrainConfig, resume: bool, overwrite: bool) -> dict[str, Any] | None:
    """The resume state to continue from (None: start at step 0). Reads only; raises `RunFolderError` for a folder
    that is a file, an earlier run met without `resume` or `overwrite`, or a resume with a changed config."""
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"run folder {out} is a file; --out takes a folder (new or of an earlier run)")
    if resume and overwrite:
        raise RunFolderError("give --resume (continue the run in the folder) or --overwrite (start it over), not both")
    if resume:
        path = out / RESUME_FILE
        if not path.is_file():
            return None
        state = load_resume(path)
        changes = config_changes(state["config"], config)
        if changes:
            shown = "; ".join(changes[:MAX_CHANGES_SHOWN])
            more = f"; and {len(changes) - MAX_CHANGES_SHOWN} more" if len(changes) > MAX_CHANGES_SHOWN else ""
            raise RunFolderError(f"{path}: not resumed, the config differs from the run's in {len(changes)} "
                                 f"setting(s) (run's -> now): {shown}{more}. Resume with the run's own config "
                                 f"({out / CONFIG_FILE}), or start over with --overwrite")
        return state
    earlier, resumable = _earlier_run(out)
    if earlier is not None and not overwrite:
        way = "continue it with --resume, or start over" if resumable else "start over"
        raise RunFolderError(f"{out} holds {earlier}: {way} with --overwrite (deletes its checkpoints and logs), "
                             f"or choose another --out")
    return None


def clear_run(out: Path) -> None:
    """Delete an earlier run's checkpoints and logs (`overwrite`), so nothing of it can be resumed or mixed in."""
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)
        (out / f"{name}.tmp").unlink(missing_ok=True)


def config_changes(saved: dict[str, Any], current: TrainConfig) -> list[str]:
    """`key old -> new` for every setting that differs, dotted (`optim.lr`), except those in `FREE_TO_CHANGE`. The
    saved config is read as a config first, so a field added since the run started counts at its default."""
    try:
        saved = TrainConfig.from_dict(saved).to_dict()
    except (ValueError, TypeError, KeyError):  # a field since removed: compared as saved
        pass
    old, new = _flat(json.loads(json.dumps(saved))), _flat(json.loads(json.dumps(current.to_dict())))
    missing = object()
    return [f"{key} {_show(old.get(key, missing))} -> {_show(new.get(key, missing))}"
            for key in sorted(set(old) | set(new))
            if key.split(".", 1)[0] not in FREE_TO_CHANGE and old.get(key, missing) != new.get(key, missing)]


def _earlier_run(out: Path) -> tuple[str | None, bool]:
    """What an earlier run left in `out`, in words (None: nothing would be lost by starting there), and whether it
    can be resumed."""
    resume = out / RESUME_FILE
    if resume.is_file():
        try:
            state = torch.load(resume, map_location="cpu", weights_only=True, mmap=True)
            step, steps = int(state["step"]), int(state["config"]["steps"])
        except Exception:  # a corrupt resume file is still an earlier run's
            return f"an earlier run's {RESUME_FILE}", False
        if step >= steps:
            return f"a finished run ({steps} steps)", False
        return f"an unfinished run (resume point at step {step} of {steps})", True
    found = [name for name in (MODEL_FILE, METRICS_FILE) if (out / name).is_file() and (out / name).stat().st_size]
    return (f"an earlier run's {' and '.join(found)}" if found else None), False


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict):
        return {prefix: data}
    flat: dict[str, Any] = {}
    for key, value in data.items():
        flat.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def _show(value: Any) -> str:
    return "(absent)" if not isinstance(value, (str, int, float, bool, list, dict, type(None))) else json.dumps(value)
