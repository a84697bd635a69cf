"""The wheel works outside the repository: `python -m build`, install into a fresh virtual environment, then
`sam2pp demo` and `sam2pp track` from a folder outside the checkout (about a minute, mostly the demo).

- The build runs without isolation (`--no-isolation`): an isolated build downloads setuptools on every run, and the
  dev setup already has the build backend (`build` and `setuptools>=77` are dev extras).
- The wheel goes into an empty venv with `--no-deps`, and a `.pth` file then shows that venv this environment's
  site-packages, so torch & co. are reused instead of downloaded (gigabytes of CUDA wheels for a fresh torch).
  `--system-site-packages` would not do: it shows the base interpreter's packages, not this venv's. The checkout is
  not on the path (the editable install's import hook is not run from there), and the test checks that `sam2pp`
  is imported from the wheel.
- The cache (`XDG_CACHE_HOME`) is fresh, so the sample clip is generated from its seed as on a user's machine; the
  compiled op built by this environment is copied in, and used only if the wheel's kernel sources hash the same.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.wheel
pytest.importorskip("build", reason="the `build` package is missing (pip install -e '.[dev]')")


def run(*args, cwd: Path, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(map(str, args))} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(the venv's bin folder, a work folder outside the checkout, the environment to run it with)."""
    from sam2pp import kernels

    base = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    run(sys.executable, "-m", "build", "--no-isolation", "--outdir", base / "dist", ROOT, cwd=base, env=env)
    wheel, = (base / "dist").glob("sam2pp-*.whl")
    run(sys.executable, "-m", "venv", "--without-pip", base / "venv", cwd=base, env=env)
    python = base / "venv" / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel,
        cwd=base, env=env)
    venv_site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=base,
                         env=env).stdout.strip())
    ours = {sysconfig.get_paths()[key] for key in ("purelib", "platlib")}
    (venv_site / "zz_test_dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    cache = base / "cache"
    if kernels._cache_root().is_dir():
        shutil.copytree(kernels._cache_root(), cache / "sam2pp" / "kernels", symlinks=True)
    env.update(XDG_CACHE_HOME=str(cache), HF_HUB_OFFLINE="1")
    work = base / "work"
    work.mkdir()
    return base / "venv" / "bin", work, env, wheel


def test_the_wheel_holds_what_a_user_needs(installed):
    *_, wheel = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("sam2pp/widgets/static/prompt_widget.js", "sam2pp/widgets/static/frame_canvas.js",
                   "sam2pp/widgets/static/track_viewer.css",
                   "sam2pp/csrc/bindings.cpp", "sam2pp/csrc/connected_components.cu",
                   "sam2pp/csrc/connected_components.h", "sam2pp/data/samples.py", "sam2pp-0.1.0.dist-info/LICENSE"):
        assert needed in names or needed.replace("dist-info/", "dist-info/licenses/") in names, needed
    assert not [n for n in names if n.startswith(("tests/", "data_samples/", "notebooks/"))]


def test_demo_and_track_run_from_the_wheel_outside_the_checkout(installed):
    bin_dir, work, env, _ = installed
    where = run(bin_dir / "python", "-c", "import sam2pp, sam2pp.widgets; print(sam2pp.__file__)", cwd=work, env=env)
    assert Path(where.stdout.strip()).is_relative_to(bin_dir.parent), where.stdout
    assert run(bin_dir / "sam2pp", "--version", cwd=work, env=env).stdout.startswith("sam2pp ")

    shipped = run(bin_dir / "python", "-c", "from sam2pp.checkpoint import packaged_checkpoint; "
                  "print(packaged_checkpoint('sam2pp-demo'))", cwd=work, env=env)
    assert Path(shipped.stdout.strip()).is_relative_to(bin_dir.parent), shipped.stdout  # package data in the wheel
    demo = run(bin_dir / "sam2pp", "demo", "--out", "demo", cwd=work, env=env)
    assert "scipy fallback" not in demo.stderr, demo.stderr  # the kernel sources came with the wheel
    for task, result in (("mask", "Annotations/synth-shapes/00047.png"), ("box", "Boxes/synth-shapes.txt"),
                         ("point", "Points/synth-shapes.npz")):
        assert (work / "demo" / task / result).is_file() and (work / "demo" / task / "preview.gif").is_file()
    sample = Path(env["XDG_CACHE_HOME"]) / "sam2pp" / "data_samples" / "synth-shapes"
    assert len(list((sample / "JPEGImages" / "synth-shapes").glob("*.jpg"))) == 48  # generated from its seed

    make_checkpoint = ("import torch; from sam2pp.demo import random_model; torch.save({'model': "
                       "random_model('sam2pp_tiny', 0, torch.device('cpu')).state_dict()}, 'tiny.pt')")
    run(bin_dir / "python", "-c", make_checkpoint, cwd=work, env=env)
    run(bin_dir / "sam2pp", "track", sample / "JPEGImages" / "synth-shapes", "--task", "box", "--prompt",
        sample / "Boxes" / "synth-shapes.txt", sample / "Boxes" / "synth-shapes_2.txt", "--checkpoint", "tiny.pt",
        "--config", "sam2pp_tiny", "--out", "track", "--preview-size", "240", cwd=work, env=env)
    boxes = [np.loadtxt(work / "track" / "Boxes" / name, delimiter=",") for name in ("synth-shapes.txt",
                                                                                     "synth-shapes_2.txt")]
    assert [b.shape for b in boxes] == [(48, 4), (48, 4)]
    assert Image.open(work / "track" / "preview.gif").size == (240, 135)
