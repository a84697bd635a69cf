"""The "Open in Colab" badges and the notebooks' Colab install cell all name the repository of pyproject.toml."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("tomllib", reason="scripts/colab_links.py reads pyproject.toml with tomllib (Python 3.11+)")


def _script():
    spec = importlib.util.spec_from_file_location("colab_links", ROOT / "scripts" / "colab_links.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("colab_links", module)
    spec.loader.exec_module(module)
    return module


colab_links = _script()


def test_readme_and_every_notebook_point_at_the_repository():
    problems = colab_links.run(check=True)
    assert not problems, "\n".join(problems) + "\nrun: python scripts/colab_links.py"


def test_a_notebook_without_badge_or_install_cell_gets_both():
    notebook = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# Title\n", "\n", "Text.\n"]},
                          {"cell_type": "code", "metadata": {}, "outputs": [], "source": ["import sam2pp\n"]}]}
    assert colab_links.fix_notebook(notebook, "notebooks/07_new.ipynb", "https://github.com/someone/fork") == []
    title, install, code = ("".join(c["source"]) for c in notebook["cells"])
    assert title.startswith("# Title\n\n[![Open In Colab]") and title.endswith("\n\nText.\n")
    assert "github/someone/fork/blob/main/notebooks/07_new.ipynb)" in title
    assert 'os.environ.get("SAM2PP_SOURCE", "git+https://github.com/someone/fork")' in install
    assert "enable_custom_widget_manager()" in install and code == "import sam2pp\n"
    again = json.loads(json.dumps(notebook))
    colab_links.fix_notebook(again, "notebooks/07_new.ipynb", "https://github.com/someone/fork")
    assert again == notebook  # a second run changes nothing


def test_badges_follow_a_new_repository_url():
    text = colab_links.badge("https://github.com/OWNER/sam2pp", "notebooks/01_vos.ipynb")
    moved = colab_links.fix_badges(f"see {text} here", "https://github.com/team/sam2pp")
    assert moved == f"see {colab_links.badge('https://github.com/team/sam2pp', 'notebooks/01_vos.ipynb')} here"
