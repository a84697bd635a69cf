"""Output locations are checked before work starts, with errors naming the path."""

from __future__ import annotations

import pytest

from sam2pp.io.paths import check_output_file, check_output_folder


def test_output_folder_is_created_and_left_empty(tmp_path):
    folder = check_output_folder(tmp_path / "a" / "b")
    assert folder.is_dir() and not list(folder.iterdir())


def test_a_file_in_the_way_of_an_output_folder(tmp_path):
    (tmp_path / "out").write_text("an earlier log")
    with pytest.raises(NotADirectoryError, match=r"out is a file, so output folder .*out/Boxes cannot be created"):
        check_output_folder(tmp_path / "out" / "Boxes")
    assert (tmp_path / "out").read_text() == "an earlier log"


def test_output_file_that_is_a_folder(tmp_path):
    (tmp_path / "m.json").mkdir()
    with pytest.raises(IsADirectoryError, match=r"m\.json is a folder; give a file name"):
        check_output_file(tmp_path / "m.json")
    (tmp_path / "old.json").write_text("{}")
    assert check_output_file(tmp_path / "old.json").read_text() == "{}"
    assert check_output_file(tmp_path / "new" / "m.json").parent.is_dir()
