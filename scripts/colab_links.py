"""Point every "Open in Colab" badge and the notebooks' Colab install cell at the repository of pyproject.toml.

`[project.urls] Repository` in pyproject.toml is the one place that names the repository (a fork sets its own URL
there and runs this script). The badges in README.md and in each notebook's first cell open
`notebooks/<name>.ipynb` of that repository's `BRANCH` on Colab; each notebook's first code cell installs
`sam2pp[notebooks] @ git+<repository>` when it runs on Colab. A notebook without a badge gets one under its title,
one without the install cell gets `INSTALL_CELL` after its first cell. `--check` changes nothing and exits 1 when
a file differs (tests/test_colab_links.py runs it).

    python scripts/colab_links.py [--check]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BRANCH = "main"
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
BADGE = re.compile(r"\[!\[Open In Colab\]\(" + re.escape(BADGE_IMAGE) +
                   r"\)\]\(https://colab\.research\.google\.com/github/[^)\s]+?/blob/[^/)\s]+/(?P<path>[^)\s]+)\)")
SOURCE = re.compile(r'(?P<head>os\.environ\.get\("SAM2PP_SOURCE", ")[^"]*(?P<tail>")')
INSTALL_CELL = '''\
# On Colab: install sam2pp with its notebook extras and turn on Colab's manager for third-party widgets.
# Anywhere else this cell does nothing: install with `bash scripts/setup.sh` or `pip install "sam2pp[notebooks]"`.
import os
import sys

if "google.colab" in sys.modules:
    # The source is set in pyproject.toml ([project.urls] Repository, see scripts/colab_links.py); a fork can also
    # run `%env SAM2PP_SOURCE=git+https://github.com/<you>/sam2pp` in a cell above.
    SAM2PP_SOURCE = os.environ.get("SAM2PP_SOURCE", "git+{repo}")
    %pip install -q "sam2pp[notebooks] @ {{SAM2PP_SOURCE}}"
    from google.colab import output

    output.enable_custom_widget_manager()'''


def repository(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """The repository URL of pyproject.toml, without a trailing slash or `.git`."""
    url = tomllib.loads(pyproject.read_text())["project"]["urls"]["Repository"]
    return url.rstrip("/").removesuffix(".git")


def badge(repo: str, path: str) -> str:
    """A Markdown badge that opens `path` (relative to the repository root) of `repo` on Colab."""
    owner_name = repo.split("github.com/", 1)[-1]
    notebook = f"https://colab.research.google.com/github/{owner_name}/blob/{BRANCH}/{path}"
    return f"[![Open In Colab]({BADGE_IMAGE})]({notebook})"


def fix_badges(text: str, repo: str) -> str:
    return BADGE.sub(lambda m: badge(repo, m["path"]), text)


def fix_notebook(notebook: dict, path: str, repo: str) -> list[str]:
    """Give the notebook its badge and install cell, pointed at `repo`; returns why it cannot (nothing when done)."""
    cells = notebook["cells"]
    if not cells or cells[0]["cell_type"] != "markdown":
        return [f"{path}: the first cell must be markdown (the title, where the Colab badge goes)"]
    first = "".join(cells[0]["source"])
    if not BADGE.search(first):
        title, _, rest = first.partition("\n")
        first = f"{title}\n\n{badge(repo, path)}\n" + (f"\n{rest.lstrip(chr(10))}" if rest.strip() else "")
    cells[0]["source"] = _lines(fix_badges(first, repo))
    code = [c for c in cells if c["cell_type"] == "code"]
    if not code or not SOURCE.search("".join(code[0]["source"])):
        cells.insert(1, {"cell_type": "code", "execution_count": None, "id": "colab-install", "metadata": {},
                         "outputs": [], "source": _lines(INSTALL_CELL.format(repo=repo))})
    install = next(c for c in cells if c["cell_type"] == "code")
    install["source"] = _lines(SOURCE.sub(lambda m: f"{m['head']}git+{repo}{m['tail']}", "".join(install["source"])))
    return []


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def run(check: bool) -> list[str]:
    """Fix (or, with `check`, compare) README.md and notebooks/*.ipynb; returns the problems and differences."""
    repo = repository()
    problems = []
    readme = ROOT / "README.md"
    files = {readme: fix_badges(readme.read_text(), repo)}
    if BADGE.search(readme.read_text()) is None:
        problems.append("README.md has no Colab badge")
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        notebook = json.loads(path.read_text())
        problems += fix_notebook(notebook, path.relative_to(ROOT).as_posix(), repo)
        files[path] = json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"
    for path, text in files.items():
        if text != path.read_text():
            if check:
                problems.append(f"{path.relative_to(ROOT)} lacks a Colab badge or install cell for {repo}, or names "
                                f"another repository (run scripts/colab_links.py)")
            else:
                path.write_text(text)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when a file differs")
    problems = run(parser.parse_args(argv).check)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
