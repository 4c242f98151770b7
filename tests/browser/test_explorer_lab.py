"""The explorer in JupyterLab under headless Chromium: the guided-tour notebook, played and mixed.

Starts JupyterLab on 127.0.0.1, opens ``notebooks/01_explore_stems.ipynb``, runs all cells,
clicks Play, mutes one stem and solos another, and checks that the mixer's state changed in the
page (buttons, Web Audio gains) and in the kernel, and that the playhead advanced. A screenshot
is saved in ``test-artifacts/``. If the browser cannot start, the test fails.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from browser import jupyter_lab, NOTEBOOK, jupyter_env, kernel_exec, launch_chromium, run_all_cells, \
    wait_for_kernel_idle

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
TOKEN = "stemlab-browser-test"


@pytest.fixture
def lab(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(ROOT / "notebooks" / "01_explore_stems.ipynb", root)
    env = jupyter_env(tmp_path / "jupyter")
    env["STEMLAB_CACHE_DIR"] = str(tmp_path / "cache")
    with jupyter_lab(root, env=env, token=TOKEN, log=tmp_path / "lab.log") as base:
        yield base


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


# ---- what the user set survives the residual and back; wheel zoom, drag-select, loop, keys ------

def _explorer_notebook(folder: Path) -> str:
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import stemlab\nexplorer = stemlab.explore(stemlab.demo_song())\nexplorer")],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.write(nb, folder / "explorer.ipynb")
    return "explorer.ipynb"


def _kernel(page, expression: str):
    return eval(kernel_exec(page, f"print(repr({expression}))"))


def test_settings_survive_the_residual_and_wheel_zoom_and_loop_work(lab, tmp_path):
    name = _explorer_notebook(tmp_path / "root")  # the lab fixture serves this folder
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{lab}/lab/tree/{name}?reset&token={TOKEN}")
        wait_for_kernel_idle(page, timeout=120_000)
        run_all_cells(page)
        page.wait_for_function(
            f"() => [...document.querySelectorAll('{NOTEBOOK} .stemlab .sl-status')]"
            ".some((el) => el.textContent.startsWith('ready'))", timeout=180_000)
        wait_for_kernel_idle(page, timeout=180_000)
        widget = page.locator(f"{NOTEBOOK} .stemlab").first
        uid = kernel_exec(page, "print(explorer.view._uid)")
        player = f"globalThis.__stemlab.players.get('{uid}')"
        names = _names(page)
        duration = _kernel(page, "explorer.view.duration")
        ready = (f"(n) => {player}.ready && {player}.buffers.length === n && !{player}.incoming"
                 f" && document.querySelectorAll('{NOTEBOOK} .stemlab .sl-panel').length === n")

        # Mute, solo and a gain, set in the page.
        widget.locator(".sl-panel[data-name='drums'] .sl-mute").click()
        widget.locator(".sl-panel[data-name='vocals'] .sl-solo").click()
        widget.locator(".sl-panel[data-name='bass'] .sl-gain").evaluate(
            "(el) => { el.value = '-6'; el.dispatchEvent(new Event('input')); el.dispatchEvent(new Event('change')); }")
        widget.locator(".sl-ab-button[data-ab='source']").click()  # A/B on the source
        box = widget.locator(".sl-plot[data-name='vocals']").bounding_box()
        page.mouse.click(box["x"] + 0.5 * box["width"], box["y"] + 5)  # a click seeks
        time.sleep(0.5)
        position = _kernel(page, "explorer.view.position")
        assert position == pytest.approx(duration / 2, abs=0.1)
        expected = {"drums": (0.0, True, False), "vocals": (0.0, False, True), "bass": (-6.0, False, False)}

        def mixer_in_kernel():
            rows = _kernel(page, "[(t['name'], g, m, s) for t, g, m, s in zip(explorer.view.tracks, "
                                 "explorer.view.gains_db, explorer.view.muted, explorer.view.soloed)]")
            return {n: (g, m, s) for n, g, m, s in rows}

        assert {n: mixer_in_kernel()[n] for n in expected} == expected

        # To the residual: busy after 200 ms while the kernel computes it the first time.
        widget.locator(".sl-seg[data-control='show'] button[data-value='residual']").click()
        time.sleep(0.6)
        busy = widget.evaluate("(el) => [el.classList.contains('sl-stale'), "
                               "Number(getComputedStyle(el.querySelector('.sl-busy')).opacity), "
                               "el.querySelector('.sl-busy').textContent]")
        assert busy == [True, 1, "computing the residual\u2026"]
        page.wait_for_function(ready, arg=3, timeout=120_000, polling=50)
        wait_for_kernel_idle(page)
        assert not widget.evaluate("(el) => el.classList.contains('sl-stale')")
        assert [t.split(":")[0] for t in widget.locator(".sl-panel .sl-label").all_inner_texts()] == \
            ["source", "stem sum", "residual"]

        # And back: fast, nothing decoded again, and every setting is there, in the page and in the kernel.
        started = time.perf_counter()
        widget.locator(".sl-seg[data-control='show'] button[data-value='stems']").click()
        page.wait_for_function(ready, arg=len(names), timeout=60_000, polling=20)
        back = time.perf_counter() - started
        assert back < 1.5, f"the way back took {back:.2f} s"
        assert "decoded before" in widget.locator(".sl-status").inner_text()
        assert widget.locator(".sl-panel[data-name='drums'] .sl-mute").get_attribute("aria-pressed") == "true"
        assert widget.locator(".sl-panel[data-name='vocals'] .sl-solo").get_attribute("aria-pressed") == "true"
        assert widget.locator(".sl-panel[data-name='bass'] .sl-gain").input_value() == "-6"
        assert widget.locator(".sl-panel[data-name='bass'] .sl-db").inner_text() == "-6.0 dB"
        wait_for_kernel_idle(page)
        assert {n: mixer_in_kernel()[n] for n in expected} == expected
        assert sum(m for _, m, _ in mixer_in_kernel().values()) == 1
        assert _kernel(page, "explorer.view.ab") == "source"
        assert widget.locator(".sl-ab-button[data-ab='source']").get_attribute("aria-pressed") == "true"
        assert page.evaluate(f"() => {player}.position()") == pytest.approx(position, abs=1e-3)
        widget.locator(".sl-ab-button[data-ab='stems']").click()
        audible = page.evaluate(f"() => {player}.mix().audible")
        assert [n for n, a in zip(names, audible) if a] == ["vocals"]

        # Wheel over a plot: zoom around the pointer; the kernel recomputes the rows for the new window.
        box = widget.locator(".sl-plot[data-name='vocals']").bounding_box()
        y = box["y"] + box["height"] / 2
        page.mouse.move(box["x"] + 0.4 * box["width"], y)
        page.mouse.wheel(0, -400)
        shown_window = "(explorer.view.shown['t0'], explorer.view.shown['t1'])"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _kernel(page, shown_window)[1] >= duration:
            time.sleep(0.2)
        t0, t1 = _kernel(page, "(explorer.view.t0, explorer.view.t1)")
        assert 0 < t0 and t1 < duration and _kernel(page, shown_window) == (t0, t1)
        assert t0 + 0.4 * (t1 - t0) == pytest.approx(0.4 * duration, abs=0.05)  # the point under the pointer stays
        assert page.evaluate(f"() => {player}.dataWindow()") == {"t0": t0, "t1": t1}

        # Drag-select: zoom to the selection.
        def drag(start, stop, shift=False):
            if shift:
                page.keyboard.down("Shift")
            page.mouse.move(box["x"] + start * box["width"], y)
            page.mouse.down()
            page.mouse.move(box["x"] + (start + stop) / 2 * box["width"], y)
            page.mouse.move(box["x"] + stop * box["width"], y)
            page.mouse.up()
            if shift:
                page.keyboard.up("Shift")

        drag(0.25, 0.75)
        expect = (t0 + 0.25 * (t1 - t0), t0 + 0.75 * (t1 - t0))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _kernel(page, shown_window)[1] - _kernel(page, shown_window)[0] > (t1 - t0) * 0.6:
            time.sleep(0.2)
        z0, z1 = _kernel(page, "(explorer.view.t0, explorer.view.t1)")
        assert (z0, z1) == (pytest.approx(expect[0], abs=0.05), pytest.approx(expect[1], abs=0.05))
        assert _kernel(page, shown_window) == (z0, z1)

        # Shift-drag: a loop, which playback repeats (position wraps back into it).
        drag(0.3, 0.4, shift=True)
        time.sleep(0.5)
        loop = _kernel(page, "explorer.view.loop")
        assert loop == [pytest.approx(z0 + 0.3 * (z1 - z0), abs=0.05), pytest.approx(z0 + 0.4 * (z1 - z0), abs=0.05)]
        widget.locator(".sl-play").click()
        positions = []
        for _ in range(30):
            positions.append(page.evaluate(f"() => {player}.position()"))
            time.sleep(0.1)
        assert all(loop[0] - 1e-6 <= t <= loop[1] + 1e-6 for t in positions), positions
        assert any(b < a for a, b in zip(positions, positions[1:])), "playback never wrapped back into the loop"
        assert loop[0] <= _kernel(page, "explorer.view.position") <= loop[1]

        # Keys: M on the focused row (not the notebook's "to markdown"), Space pauses.
        widget.locator(".sl-panel[data-name='drums']").focus()
        page.keyboard.press("m")
        page.keyboard.press(" ")
        time.sleep(0.5)
        assert not mixer_in_kernel()["drums"][1] and _kernel(page, "explorer.view.playing") is False
        assert page.locator(f"{NOTEBOOK} .jp-MarkdownCell").count() == 0
        page.screenshot(path=str(ARTIFACTS / "explorer-lab-zoom-loop.png"), full_page=False)
        assert errors == []
        browser.close()
