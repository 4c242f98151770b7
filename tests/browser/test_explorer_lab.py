"""The explorer in JupyterLab under headless Chromium: the guided-tour notebook, played and mixed.

Starts JupyterLab on 127.0.0.1, opens ``notebooks/01_explore_stems.ipynb``, runs all cells,
clicks Play, mutes one stem and solos another, and checks that the mixer's state changed in the
page (buttons, Web Audio gains) and in the kernel, and that the playhead advanced. A screenshot
is saved in ``test-artifacts/``. If the browser cannot start, the test fails.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import sync_playwright

from browser import NOTEBOOK, jupyter_env, jupyter_lab_command, kernel_exec, launch_chromium, run_all_cells, \
    wait_for_kernel_idle

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
TOKEN = "stemlab-browser-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(ROOT / "notebooks" / "01_explore_stems.ipynb", root)
    port = _free_port()
    env = jupyter_env(tmp_path / "jupyter")
    env["STEMLAB_CACHE_DIR"] = str(tmp_path / "cache")
    command = jupyter_lab_command(root, port=port, token=TOKEN)
    command[0] = str(Path(sys.executable).with_name("jupyter"))  # this venv's jupyter
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=(tmp_path / "lab.log").open("w"))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/api/status", params={"token": TOKEN}, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        else:
            raise RuntimeError(f"JupyterLab did not start: {(tmp_path / 'lab.log').read_text()[-2000:]}")
        yield base
    finally:
        for kernel in httpx.get(f"{base}/api/kernels", params={"token": TOKEN}, timeout=5).json():
            httpx.delete(f"{base}/api/kernels/{kernel['id']}", params={"token": TOKEN}, timeout=10)
        server.terminate()
        server.wait(timeout=20)


def _names(page) -> list[str]:
    return eval(kernel_exec(page, "print([t['name'] for t in explorer.view.tracks])"))


def test_notebook_plays_mutes_and_solos_in_jupyterlab(lab):
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{lab}/lab/tree/01_explore_stems.ipynb?reset&token={TOKEN}")
        wait_for_kernel_idle(page, timeout=120_000)
        run_all_cells(page)
        page.wait_for_function(
            f"() => [...document.querySelectorAll('{NOTEBOOK} .stemlab .sl-status')]"
            ".some((el) => el.textContent.startsWith('ready'))", timeout=180_000)
        wait_for_kernel_idle(page, timeout=180_000)  # every cell has run
        widget = page.locator(f"{NOTEBOOK} .stemlab").first
        widget.scroll_into_view_if_needed()
        uid = kernel_exec(page, "print(explorer.view._uid)")
        names = _names(page)
        assert names[0] == "source" and "vocals" in names and "drums" in names

        playhead = widget.locator(".sl-playhead").first
        start_left = page.evaluate("(el) => parseFloat(el.style.left || '0')", playhead.element_handle())
        widget.locator(".sl-play").click()
        time.sleep(2.0)
        playing, position = kernel_exec(page, "print(explorer.view.playing, explorer.view.position)").split()
        assert playing == "True" and float(position) > 1.0
        page.wait_for_function("(el) => parseFloat(el.style.left || '0') > 0", arg=playhead.element_handle())
        assert page.evaluate("(el) => parseFloat(el.style.left)", playhead.element_handle()) > start_left

        widget.locator(".sl-panel[data-name='drums'] .sl-mute").click()
        widget.locator(".sl-panel[data-name='vocals'] .sl-solo").click()
        assert widget.locator(".sl-panel[data-name='drums'] .sl-mute").get_attribute("aria-pressed") == "true"
        assert widget.locator(".sl-panel[data-name='vocals'] .sl-solo").get_attribute("aria-pressed") == "true"
        time.sleep(0.5)
        muted = eval(kernel_exec(page, "print(explorer.view.muted)"))
        soloed = eval(kernel_exec(page, "print(explorer.view.soloed)"))
        assert muted[names.index("drums")] and soloed[names.index("vocals")]
        assert sum(muted) == 1 and sum(soloed) == 1
        gains = page.evaluate("(uid) => globalThis.__stemlab.players.get(uid).gainNodes.map((g) => g.gain.value)", uid)
        audible = [name for name, gain in zip(names, gains) if gain > 1e-3]
        assert audible == ["vocals"]

        _, later = kernel_exec(page, "print(explorer.view.playing, explorer.view.position)").split()
        assert float(later) > float(position)
        page.screenshot(path=str(ARTIFACTS / "explorer-lab.png"), full_page=False)
        browser.close()


def _executed_explorer_notebook(folder: Path, cache: Path) -> Path:
    """A small notebook with an explorer on the demo song, executed by nbclient (widget state saved)."""
    import os

    import nbclient.output_widget as output_widget
    import nbformat
    from nbclient import NotebookClient

    output_widget.OutputWidget.sync_state = lambda self: None  # jupyter/nbclient#312
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import stemlab\nexplorer = stemlab.explore(stemlab.demo_song())\nexplorer")])
    os.environ["STEMLAB_CACHE_DIR"] = str(cache)
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    path = folder / "saved.ipynb"
    nbformat.write(nb, path)
    return path


def _shows_the_explorer_without_a_kernel(page) -> str:
    """Wait until the output says to re-run, and the rows are visible: drawn by the widget from saved
    state, or as the still picture. Returns which."""
    page.wait_for_function(
        f"() => [...document.querySelectorAll('{NOTEBOOK} .jp-OutputArea-output')]"
        ".some((el) => el.offsetParent !== null && /re-run (this|the) cell/.test(el.textContent))", timeout=60_000)
    if page.locator(f"{NOTEBOOK} .stemlab-snapshot img").is_visible():
        assert page.locator(f"{NOTEBOOK} .stemlab-snapshot img").evaluate("(img) => img.naturalWidth") > 500
        return "picture"
    assert page.locator(f"{NOTEBOOK} .sl-plot").count() >= 13
    return "widget"


def test_explorer_opens_without_a_kernel(lab, tmp_path):
    """Reopened later, the explorer still shows its rows and says to re-run the cell to play: with
    the widget state saved in the notebook (nbclient saves it) and without (JupyterLab's default)."""
    import json

    root = tmp_path / "root"  # the lab fixture serves this folder
    saved = _executed_explorer_notebook(root, tmp_path / "cache")
    stateless = json.loads(saved.read_text())
    stateless["metadata"].pop("widgets", None)
    (root / "stateless.ipynb").write_text(json.dumps(stateless))
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        seen = []
        for name in ("saved.ipynb", "stateless.ipynb"):
            page.goto(f"{lab}/lab/tree/{name}?reset&token={TOKEN}")
            seen.append(_shows_the_explorer_without_a_kernel(page))
        page.screenshot(path=str(ARTIFACTS / "explorer-no-kernel.png"))
        assert seen[1] == "picture"
        browser.close()
