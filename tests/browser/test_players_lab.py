"""The notebook players in JupyterLab under headless Chromium: a StemSet's table and ``listen()``
get their MP3s over the comm (nothing in the notebook), play, and hide their stills."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import sync_playwright

from browser import jupyter_lab, NOTEBOOK, jupyter_env, launch_chromium, run_all_cells, wait_for_kernel_idle

pytestmark = pytest.mark.browser

TOKEN = "stemlab-players-test"
CELLS = ["import numpy as np\nimport stemlab\ns = stemlab.demo_song()\ns",
         "stemlab.listen(s['drums'], np.zeros((2, 44100), np.float32), sr=s.sr, labels=['drums', 'silence'])"]


def _executed(nb, path: Path, env: dict) -> None:
    """``nb`` run by nbclient (the test's own cache) and saved with its widget state, trusted as a
    notebook JupyterLab saved itself would be (an untrusted one renders no widget at all)."""
    from nbclient import NotebookClient

    executed = nbformat.from_dict(json.loads(json.dumps(nb)))
    NotebookClient(executed, timeout=120, kernel_name="python3", store_widget_state=True).execute()
    nbformat.write(executed, path)
    subprocess.run([str(Path(sys.executable).with_name("jupyter")), "trust", str(path)], env=env, check=True,
                   capture_output=True)


@pytest.fixture
def lab(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    kernel = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS], metadata=kernel)
    nbformat.write(nb, root / "players.ipynb")
    env = jupyter_env(tmp_path / "jupyter")
    env["STEMLAB_CACHE_DIR"] = str(tmp_path / "cache")
    _executed(nb, root / "saved.ipynb", env)
    with jupyter_lab(root, env=env, token=TOKEN, log=tmp_path / "lab.log") as base:
        yield base


def test_players_get_their_audio_over_the_comm_and_play(lab):
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        page.goto(f"{lab}/lab/tree/players.ipynb?reset&token={TOKEN}")
        wait_for_kernel_idle(page, timeout=120_000)
        run_all_cells(page)
        players = f"{NOTEBOOK} audio[data-mp3]"
        page.wait_for_function(f"() => document.querySelectorAll('{players}').length === 13 + 2", timeout=120_000)
        page.wait_for_function(f"() => [...document.querySelectorAll('{players}')]"
                               ".every((a) => (a.getAttribute('src') || '').startsWith('blob:'))", timeout=60_000)
        durations = page.evaluate(f"""async () => Promise.all([...document.querySelectorAll('{players}')].map(
            (a) => new Promise((done) => {{ a.preload = 'metadata'; if (a.readyState > 0) done(a.duration);
              a.addEventListener('loadedmetadata', () => done(a.duration)); a.load(); }})))""")
        assert len(durations) == 15 and all(d > 40 for d in durations[:14]) and durations[14] == pytest.approx(1, abs=0.1)
        played = page.evaluate(f"""async () => {{ const a = document.querySelector('{players}');
            await a.play(); await new Promise((r) => setTimeout(r, 700)); a.pause(); return a.currentTime; }}""")
        assert played > 0.2
        stills = page.locator(f"{NOTEBOOK} .stemlab-still")
        assert stills.count() == 2 and not stills.first.is_visible() and not stills.last.is_visible()
        notes = page.evaluate(f"() => [...document.querySelectorAll('{NOTEBOOK} [data-stemlab-note]')]"
                              ".map((n) => n.textContent)")
        assert notes == ["", ""]  # the kernel answered
        saved = json.dumps(page.evaluate("() => window.jupyterapp.shell.currentWidget.content.model.toJSON()"))
        assert "data:audio" not in saved and len(saved) < 100_000
        browser.close()


def test_a_saved_notebook_reopens_with_its_tables_and_says_to_rerun(lab):
    """Saved with widget state, the players' widgets render from it (no "model not found"), and
    with no kernel behind their models they say to re-run the cell."""
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        page.goto(f"{lab}/lab/tree/saved.ipynb?reset&token={TOKEN}")
        page.wait_for_function(f"() => [...document.querySelectorAll('{NOTEBOOK} [data-stemlab-note]')]"
                               ".filter((n) => /re-run this cell/.test(n.textContent)).length === 2", timeout=60_000)
        assert page.locator(f"{NOTEBOOK} audio[data-mp3]").count() == 15
        assert "Error displaying widget" not in page.locator(NOTEBOOK).inner_text()
        browser.close()
