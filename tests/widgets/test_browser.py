"""Both widgets in a real JupyterLab, driven by Chromium through Playwright.

A notebook with the tiny random-init model on a shipped sample is run in Lab; the test clicks,
drags, scrubs and presses keys in the page, then asks the kernel what arrived. Screenshots of
each widget go to the ignored `artifacts/` folder (`scripts/refresh_readme_images.py` copies them
into the README's `docs/images/`). Skipped (with the reason) when Chromium,
Playwright or JupyterLab are missing; see ../shared/notes/browser-testing.md for the recipe.
"""

from __future__ import annotations

import ast
import io
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from availability import unavailable
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data_samples" / "synth-shapes" / "JPEGImages" / "synth-shapes"
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = next((p for p in (shutil.which("chromium"), "/usr/lib/chromium/chromium") if p and Path(p).exists()), None)

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
pytest.importorskip("jupyterlab", reason="jupyterlab is not installed (pip install jupyterlab)")
jupyter_client = pytest.importorskip("jupyter_client")
psutil = pytest.importorskip("psutil")
if CHROMIUM is None:
    unavailable("no chromium binary (apt-get install chromium fonts-liberation)")

NOTEBOOK_CELLS = [
    f"""import numpy as np
from PIL import Image
from sam2pp.io import list_frames
from sam2pp.demo import demo_predictor
from sam2pp.widgets import PromptWidget, TrackViewer

frames = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in list_frames({str(SAMPLE)!r})[:8]])
predictor = demo_predictor(prefer_pretrained=False, device="cpu")  # seeded: the same screenshots on every run""",
    """state = predictor.init_state(frames)
w = PromptWidget(predictor, state, max_display_size=320)  # 480x270 shown at 320x180: clicks are scaled by 1.5
w.new_object("mask")
w""",
    """tracked = predictor.init_state(frames)
predictor.add_points(tracked, 0, 1, [[150, 120]], [1])
predictor.add_box(tracked, 0, 2, [300, 60, 420, 170])
predictor.add_track_point(tracked, 0, 3, [240, 200])
v = TrackViewer(list(predictor.propagate(tracked)), tracked, fps=8)
v.trail = 8
v""",
]
TIMEOUT = 60.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_notebook(path: Path) -> None:
    cells = [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": src}
             for src in NOTEBOOK_CELLS]
    kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.write_text(json.dumps({"cells": cells, "metadata": {"kernelspec": kernelspec}, "nbformat": 4,
                                "nbformat_minor": 5}))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 with fresh config dirs; yields (base url, token, notebook dir, runtime dir)."""
    base = tmp_path_factory.mktemp("lab")
    dirs = {name: base / name for name in ("config", "data", "runtime", "ipython", "settings", "workspaces", "nb")}
    for d in dirs.values():
        d.mkdir()
    for plugin, settings in [("apputils-extension/notification", {"fetchNews": "false"}),
                             ("notebook-extension/tracker", {"windowingMode": "none"})]:
        target = dirs["settings"] / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(settings))
    _write_notebook(dirs["nb"] / "widgets.ipynb")
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(dirs["config"]), "JUPYTER_DATA_DIR": str(dirs["data"]),
           "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]), "IPYTHONDIR": str(dirs["ipython"]),
           "JUPYTERLAB_SETTINGS_DIR": str(dirs["settings"]), "JUPYTERLAB_WORKSPACES_DIR": str(dirs["workspaces"]),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    log = open(base / "server.log", "wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={dirs['nb']}", "--LabApp.expose_app_in_browser=True",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.news_url=None"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2).status == 200,
              "the Jupyter server to answer", exceptions=(OSError,))
        yield url, token, dirs["nb"], dirs["runtime"]
    finally:
        children = psutil.Process(server.pid).children(recursive=True)
        server.terminate()
        for child in children:
            if child.is_running():
                child.terminate()
        psutil.wait_procs([psutil.Process(server.pid), *children] if server.poll() is None else children, timeout=10)
        log.close()


def _wait(predicate, what: str, timeout: float = TIMEOUT, exceptions=()):
    """Poll `predicate` until it returns a truthy value (returned) or fail naming `what`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except exceptions as error:
            last = error
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}" + (f" (last error: {last})" if last else ""))


class Kernel:
    """Evaluates expressions in the notebook's kernel through jupyter_client."""

    def __init__(self, url: str, token: str, runtime: Path):
        sessions = json.load(urllib.request.urlopen(f"{url}/api/sessions?token={token}", timeout=5))
        kernel_id = sessions[0]["kernel"]["id"]
        self.client = jupyter_client.BlockingKernelClient(connection_file=str(runtime / f"kernel-{kernel_id}.json"))
        self.client.load_connection_file()
        self.client.start_channels()

    def eval(self, expr: str):
        reply = self.client.execute_interactive(
            "", user_expressions={"out": f"__import__('json').dumps({expr})"}, output_hook=lambda msg: None, timeout=30,
        )
        out = reply["content"]["user_expressions"]["out"]
        if out["status"] != "ok":
            raise AssertionError(f"kernel could not evaluate {expr!r}: {out.get('ename')}: {out.get('evalue')}")
        return json.loads(ast.literal_eval(out["data"]["text/plain"]))

    def close(self):
        self.client.stop_channels()


def _pixels(locator) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(locator.screenshot())).convert("RGB")).astype(np.int16)


def _changed_fraction(a: np.ndarray, b: np.ndarray) -> float:
    return float((np.abs(a - b).max(axis=2) > 24).mean())


def _keep_screenshot(locator, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    locator.screenshot(path=str(ARTIFACTS / name))


@pytest.fixture(scope="module")
def page(lab):
    if not SAMPLE.is_dir():
        unavailable(f"{SAMPLE} is absent")
    url, token, _, _ = lab
    messages: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"])
        context = browser.new_context(viewport={"width": 1280, "height": 1400}, accept_downloads=True)
        context.set_default_timeout(TIMEOUT * 1000)
        page = context.new_page()
        page.on("console", lambda m: messages.append(f"console {m.type}: {m.text}"))
        page.on("pageerror", lambda e: messages.append(f"pageerror: {e}"))
        page.goto(f"{url}/lab/tree/widgets.ipynb?token={token}")
        page.wait_for_function(
            "() => window.jupyterapp?.shell?.currentWidget?.sessionContext?.session?.kernel?.status === 'idle'",
            timeout=TIMEOUT * 1000,
        )
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        page.wait_for_selector(".jp-OutputArea-output canvas.s2p-canvas[data-rendered-frame='0']")
        page.wait_for_selector(".jp-OutputArea-output canvas.s2v-canvas[data-rendered-frame='0']")
        yield page
        errors = [m for m in messages if m.startswith("pageerror")]
        context.close()
        browser.close()
    assert not errors, "\n".join(errors)


@pytest.fixture(scope="module")
def kernel(lab, page):
    url, token, _, runtime = lab
    client = Kernel(url, token, runtime)
    yield client
    client.close()


def test_prompt_widget_clicks_box_slider_and_keys(page, kernel):
    canvas = page.locator(".jp-OutputArea-output canvas.s2p-canvas")
    assert canvas.evaluate("c => [c.width, c.height]") == [320, 180]
    scale = canvas.evaluate("c => c.width / c.clientWidth") * 1.5  # CSS px -> canvas px -> video px
    before = _pixels(canvas)

    canvas.click(position={"x": 100, "y": 60})
    canvas.click(position={"x": 160, "y": 90}, modifiers=["Shift"])
    _wait(lambda: len(kernel.eval("w.prompts")) == 2, "two clicks to reach the kernel")
    clicks = kernel.eval("w.prompts")
    assert [c["label"] for c in clicks] == [1, 0]
    assert clicks[0]["xy"] == pytest.approx([100 * scale, 60 * scale], abs=1.5)
    assert clicks[1]["xy"] == pytest.approx([160 * scale, 90 * scale], abs=1.5)

    page.locator(".s2p-new-box").click()
    _wait(lambda: kernel.eval("w.tool") == "box", "the box tool after '+ box'")
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + 200, box["y"] + 30)
    page.mouse.down()
    page.mouse.move(box["x"] + 280, box["y"] + 120, steps=6)
    page.mouse.up()
    page.locator(".s2p-new-point").click()
    _wait(lambda: kernel.eval("w.tool") == "track_point", "the track-point tool after '+ point'")
    canvas.click(position={"x": 60, "y": 150})
    _wait(lambda: len(kernel.eval("w.prompts")) == 4, "the box and the track point to reach the kernel")
    prompts = kernel.eval("w.prompts")
    assert prompts[2]["kind"] == "box" and prompts[2]["task"] == "box"
    assert prompts[2]["box_xyxy"] == pytest.approx([200 * scale, 30 * scale, 280 * scale, 120 * scale], abs=1.5)
    assert prompts[3]["kind"] == "track_point" and prompts[3]["xy"] == pytest.approx([60 * scale, 150 * scale], abs=1.5)
    assert kernel.eval("state.obj_ids") == [1, 2, 3]  # the predictor ran for every object
    assert kernel.eval("sorted(r.obj_id for r in w.track.rows(0))") == [1, 2, 3]

    page.wait_for_selector("canvas.s2p-canvas[data-prompt-markers='4']")
    page.wait_for_function("() => Number(document.querySelector('canvas.s2p-canvas').dataset.overlayObjects) >= 1")
    assert _changed_fraction(before, _pixels(canvas)) > 0.002
    _keep_screenshot(page.locator(".s2p-prompt"), "prompt_widget.png")

    page.locator(".s2p-prompt").focus()
    page.keyboard.press("ArrowRight")
    _wait(lambda: kernel.eval("w.frame_idx") == 1, "ArrowRight to step to frame 1")
    page.wait_for_selector("canvas.s2p-canvas[data-rendered-frame='1']")
    page.keyboard.press("u")
    _wait(lambda: len(kernel.eval("w.prompts")) == 3, "'u' to undo the track point")
    assert kernel.eval("state.obj_ids") == [1, 2]
    slider = page.locator(".s2p-slider")
    slider.fill("5")
    _wait(lambda: kernel.eval("w.frame_idx") == 5, "the slider to move to frame 5")
    slider.focus()
    page.keyboard.press("ArrowRight")  # JupyterLab's own binding would swallow this without the opt-out
    _wait(lambda: kernel.eval("w.frame_idx") == 6, "ArrowRight on the focused slider")
    page.wait_for_selector("canvas.s2p-canvas[data-rendered-frame='6']")
    assert page.locator(".jp-Notebook .jp-Cell").count() == 3  # no key leaked into Lab's notebook commands


def test_track_viewer_scrub_play_toggle_export(page, kernel, lab):
    canvas = page.locator(".jp-OutputArea-output canvas.s2v-canvas")
    first = _pixels(canvas)
    page.locator(".s2v-slider").fill("4")
    page.wait_for_selector("canvas.s2v-canvas[data-rendered-frame='4']")
    assert kernel.eval("v.frame_idx") == 4
    assert _changed_fraction(first, _pixels(canvas)) > 0.002
    _keep_screenshot(page.locator(".s2v-viewer"), "track_viewer.png")

    shown = int(canvas.get_attribute("data-overlay-objects"))
    page.locator(".s2v-object[data-obj-id='3'] input").uncheck()
    _wait(lambda: kernel.eval("v.hidden") == [3], "hiding object 3")
    page.wait_for_function(f"() => document.querySelector('canvas.s2v-canvas').dataset.overlayObjects === '{shown - 1}'")

    canvas.click(position={"x": 10, "y": 10})
    page.keyboard.press(" ")
    _wait(lambda: kernel.eval("v.playing"), "space to start playback")
    _wait(lambda: kernel.eval("v.frame_idx") != 4, "playback to advance")
    page.keyboard.press(" ")
    _wait(lambda: not kernel.eval("v.playing"), "space to pause")
    page.keyboard.press("Home")
    _wait(lambda: kernel.eval("v.frame_idx") == 0, "Home to go to frame 0")

    with page.expect_download() as download:
        page.locator(".s2v-export-png").click()
    assert download.value.suggested_filename == "frame_00000.png"
    _, _, nbdir, _ = lab
    assert Image.open(nbdir / "frame_00000.png").size == (480, 270)
