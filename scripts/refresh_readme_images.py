"""Refresh the README's widget screenshots in docs/images/, on purpose.

The browser tests (tests/widgets/test_browser.py) drive both widgets in a real JupyterLab and save a screenshot of
each to the ignored artifacts/ folder; they never touch the tracked pictures. This script runs them and copies the
fresh screenshots over docs/images/ (then review and commit them). It needs the dev setup (`bash scripts/setup.sh
--dev`: Playwright, JupyterLab and Chromium).

    python scripts/refresh_readme_images.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"
DOC_IMAGES = ROOT / "docs" / "images"
SCREENSHOTS = ("prompt_widget.png", "track_viewer.png")


def main() -> int:
    for name in SCREENSHOTS:
        (ARTIFACTS / name).unlink(missing_ok=True)
    tests = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=-ra", "-q",
                            "tests/widgets/test_browser.py"], cwd=ROOT)
    missing = [name for name in SCREENSHOTS if not (ARTIFACTS / name).is_file()]
    if tests.returncode != 0 or missing:
        print(f"the browser tests failed or were skipped (missing: {', '.join(missing) or 'none'}); "
              f"docs/images/ is unchanged", file=sys.stderr)
        return 1
    DOC_IMAGES.mkdir(parents=True, exist_ok=True)
    for name in SCREENSHOTS:
        shutil.copyfile(ARTIFACTS / name, DOC_IMAGES / name)
        print(f"{DOC_IMAGES / name} <- {ARTIFACTS / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
