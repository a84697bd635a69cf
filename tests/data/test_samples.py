"""`sample_folder`: the repository's shipped sample when there is one, else the same clip generated into the cache."""

from __future__ import annotations

import numpy as np
import pytest
from availability import unavailable

from sam2pp.data import samples
from sam2pp.data.samples import sample_folder
from sam2pp.io import read_boxes_txt, read_palette_png


def test_the_repository_copy_is_used_in_a_checkout():
    if not (samples.REPO_SAMPLES / "synth-shapes").is_dir():
        unavailable(f"{samples.REPO_SAMPLES} is absent (not a checkout)")
    assert sample_folder("synth-shapes") == samples.REPO_SAMPLES / "synth-shapes"


def test_without_the_repository_the_sample_is_generated_once_into_the_cache(tmp_path, monkeypatch):
    shipped = samples.REPO_SAMPLES / "synth-crowd"
    monkeypatch.setattr(samples, "REPO_SAMPLES", tmp_path / "absent")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = sample_folder("synth-crowd")
    assert folder == tmp_path / "cache" / "sam2pp" / "data_samples" / "synth-crowd"
    assert len(list((folder / "JPEGImages" / "synth-crowd").glob("*.jpg"))) == 36
    assert [p.name for p in folder.parent.iterdir()] == ["synth-crowd"]  # no partial folder left beside it
    stamp = (folder / "Boxes" / "synth-crowd.txt").stat().st_mtime_ns
    assert sample_folder("synth-crowd") == folder
    assert (folder / "Boxes" / "synth-crowd.txt").stat().st_mtime_ns == stamp  # not generated again
    if shipped.is_dir():  # the same clip as the repository's (masks and boxes exactly; JPEG bytes may differ)
        np.testing.assert_array_equal(read_boxes_txt(folder / "Boxes" / "synth-crowd.txt"),
                                      read_boxes_txt(shipped / "Boxes" / "synth-crowd.txt"))
        np.testing.assert_array_equal(read_palette_png(folder / "Annotations" / "synth-crowd" / "00020.png"),
                                      read_palette_png(shipped / "Annotations" / "synth-crowd" / "00020.png"))


def test_an_unknown_sample_is_named():
    with pytest.raises(ValueError, match="unknown sample 'nope'"):
        sample_folder("nope")
