"""Checks on output locations, made before long work starts: a bad `--out` or `--json` fails in a second, with a
message naming the path, instead of after the whole video has been tracked or scored."""

from __future__ import annotations

import tempfile
from pathlib import Path


def check_output_folder(folder: str | Path) -> Path:
    """Create `folder` (and its parents) if needed and make sure files can be written in it."""
    folder = Path(folder)
    for part in (folder, *folder.parents):
        if part.exists() and not part.is_dir():
            raise NotADirectoryError(f"{part} is a file, so output folder {folder} cannot be created there")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise OSError(f"cannot write to output folder {folder}: {err.strerror or err}") from None
    return folder


def check_output_file(path: str | Path) -> Path:
    """Make sure `path` can be written as a file: it is not a folder and its folder is writable (created if needed);
    an existing file is left as it is."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give a file name to write to")
    check_output_folder(path.parent)
    return path
