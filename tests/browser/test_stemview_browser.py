"""StemView in a real browser, without JupyterLab: the standalone export driven by Chromium.

A source and three stems (sine tones at 220, 440 and 880 Hz, 12 s) are exported with
``to_html``, served from 127.0.0.1 (and opened as file://), and played: the AudioContext runs,
the position and the playhead advance, M/S/A-B buttons set the GainNode values (read through
the ``globalThis.__stemlab`` test hook while playing), the audio spectrum follows, a click on a
plot seeks, and playback stops by itself at the end.
"""

from __future__ import annotations

import functools
import http.server
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import sync_playwright

from browser import launch_chromium
from stemlab.encode import mp3_bytes
from stemlab.view.spectrogram import gray_png
from stemlab.view.widget import StemView, energy_matrix, pack_waves

pytestmark = pytest.mark.browser

SR = 44100
SECONDS = 12.0  # long enough for every check below to run while playing
FREQS = {"low": 220.0, "mid": 440.0, "high": 880.0}
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

PLAYER = "[...globalThis.__stemlab.players.values()][0]"
GAINS = f"() => {PLAYER}.gainNodes.map((node) => node.gain.value)"


def _display_data(audio: list[np.ndarray], columns: int = 600, rows: int = 96):
    """Min/max envelopes and log-frequency spectrogram PNGs, as the kernel side would send them."""
    envelopes, pngs = [], []
    n_fft = 2048
    starts = np.linspace(0, audio[0].shape[1] - n_fft, columns).astype(int)
    centers = np.geomspace(50, 8000, rows)
    for a in audio:
        mono = a.mean(0)
        frames = mono[: a.shape[1] // columns * columns].reshape(columns, -1)
        envelopes.append([[frames.min(1), frames.max(1)]])
        spectrum = np.abs(np.fft.rfft(np.stack([mono[s:s + n_fft] for s in starts]) * np.hanning(n_fft))) / 512
        image = np.stack([np.interp(centers, np.fft.rfftfreq(n_fft, 1 / SR), m) for m in spectrum], axis=1)
        pngs.append(gray_png(np.clip(1 + 20 * np.log10(np.maximum(image, 1e-9)) / 80, 0, 1)[::-1]))
    ticks = [(float(np.log(f / 50) / np.log(8000 / 50)), label) for f, label in ((100, "100 Hz"), (1000, "1 kHz"))]
    return pack_waves(np.array(envelopes)), pngs, ticks


@pytest.fixture(scope="module")
def page_dir(tmp_path_factory):
    t = np.arange(int(SECONDS * SR)) / SR
    stems = [np.stack([0.2 * np.sin(2 * np.pi * f * t)] * 2).astype(np.float32) for f in FREQS.values()]
    audio = [sum(stems), *stems]
    waves, specs, ticks = _display_data(audio)
    view = StemView(
        tracks=[{"name": "mix", "label": "Source", "kind": "source"}] + [{"name": n} for n in FREQS],
        duration=SECONDS, columns=600, waves=waves, specs=specs, freq_ticks=ticks,
        db_label="-80 .. 0 dBFS (shared by all stems)", energy=energy_matrix(audio),
    )
    view.set_audio([mp3_bytes(a, SR) for a in audio])
    folder = tmp_path_factory.mktemp("stemview")
    view.to_html(folder / "view.html", title="StemView browser test")
    return folder, view


@pytest.fixture(scope="module")
def server(page_dir):
    folder, _ = page_dir
    handler = functools.partial(_QuietHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        browser = launch_chromium(p)  # a browser that cannot start fails the tests
        yield browser
        browser.close()


def _open(browser, url):
    page = browser.new_page(viewport={"width": 1100, "height": 420})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_function(f"() => globalThis.__stemlab?.players?.size && {PLAYER}.ready", timeout=15_000)
    return page, errors


def _settled_gains(page):
    time.sleep(0.35)  # ~30 time constants of the gain glide
    return page.evaluate(GAINS)


def _peak_frequencies(page, threshold_db=-50.0):
    """Frequencies (Hz) of the spectral peaks of what the player outputs right now."""
    return page.evaluate(f"""async () => {{
        const p = {PLAYER};
        const analyser = p.ctx.createAnalyser();
        analyser.fftSize = 8192;
        analyser.smoothingTimeConstant = 0;
        p.take.bus.connect(analyser);
        await new Promise((r) => setTimeout(r, 300));
        const db = new Float32Array(analyser.frequencyBinCount);
        analyser.getFloatFrequencyData(db);
        p.take.bus.disconnect(analyser);
        const hz = p.ctx.sampleRate / analyser.fftSize, peaks = [];
        for (let k = 1; k < db.length - 1; k++)
            if (db[k] > {threshold_db} && db[k] >= db[k - 1] && db[k] >= db[k + 1]) peaks.push(k * hz);
        return peaks;
    }}""")


def _near(peaks, freq):
    return any(abs(p - freq) < 15 for p in peaks)


def test_plays_mixes_and_seeks_in_sync(browser, server, page_dir):
    _, view = page_dir
    page, errors = _open(browser, f"{server}/view.html")
    assert "ready: 4 tracks decoded" in page.inner_text(".sl-status")
    assert page.inner_text(".sl-time") == "0:00.0 / 0:12.0"
    assert page.locator(".sl-panel").count() == 4 and page.locator(".sl-plot canvas").count() == 4

    # Play: the context runs, the position advances everywhere, the playhead moves.
    page.click(".sl-play")
    time.sleep(1.5)
    state = page.evaluate(f"""() => {{ const p = {PLAYER};
        return {{ ctx: p.ctx.state, position: p.position(), trait: p.model.get("position"),
                  playing: p.model.get("playing"), sources: p.sources.length,
                  head: parseFloat(document.querySelector(".sl-playhead").style.left),
                  width: document.querySelector(".sl-overlay").clientWidth }}; }}""")
    assert state["ctx"] == "running" and state["playing"] is True and state["sources"] == 4
    assert 1.2 < state["position"] < 2.5 and state["trait"] > 1.0
    assert state["head"] == pytest.approx(state["position"] / SECONDS * state["width"], abs=15)
    assert page.inner_text(".sl-play") == "Pause" and page.inner_text(".sl-time") != "0:00.0 / 0:12.0"
    assert _settled_gains(page) == pytest.approx([0, 1, 1, 1], abs=1e-4)
    assert all(_near(_peak_frequencies(page), f) for f in FREQS.values())

    # Mute "low", then solo "high": DAW semantics on the GainNodes, and in the sound.
    page.click('.sl-panel[data-name="low"] .sl-mute')
    assert _settled_gains(page) == pytest.approx([0, 0, 1, 1], abs=1e-4)
    page.click('.sl-panel[data-name="high"] .sl-solo')
    assert _settled_gains(page) == pytest.approx([0, 0, 0, 1], abs=1e-4)
    peaks = _peak_frequencies(page)
    assert _near(peaks, 880) and not _near(peaks, 220) and not _near(peaks, 440)
    model = page.evaluate(f"() => ({{ muted: {PLAYER}.model.get('muted'), soloed: {PLAYER}.model.get('soloed') }})")
    assert model == {"muted": [False, True, False, False], "soloed": [False, False, False, True]}

    # A/B to the source: only the source plays, at the power of the current stem mix (the 880 Hz stem).
    page.click('.sl-ab-button[data-ab="source"]')
    energy = np.array(view.energy)
    match = np.sqrt(energy[3, 3] / energy[0, 0])
    gains = _settled_gains(page)
    assert gains[0] == pytest.approx(match, rel=1e-3) and max(gains[1:]) < 1e-4
    assert all(_near(_peak_frequencies(page), f) for f in FREQS.values())
    assert page.inner_text('.sl-panel[data-kind="source"] .sl-match') == f"match {20 * np.log10(match):.1f} dB"
    page.click('.sl-ab-button[data-ab="stems"]')
    assert _settled_gains(page) == pytest.approx([0, 0, 0, 1], abs=1e-4)

    # Changes made through the model (as from the kernel) drive the buttons and the audio.
    page.evaluate("() => globalThis.__stemlabPage.model.set('soloed', [false, false, false, false])")
    assert _settled_gains(page) == pytest.approx([0, 0, 1, 1], abs=1e-4)
    assert page.get_attribute('.sl-panel[data-name="high"] .sl-solo', "aria-pressed") == "false"

    # Click on a plot: the position jumps there and playback goes on, still in sync.
    assert page.evaluate(f"() => {PLAYER}.position()") < 0.75 * SECONDS, "checks too slow for the test audio"
    box = page.locator('.sl-plot[data-name="mid"]').bounding_box()
    page.mouse.click(box["x"] + 0.75 * box["width"], box["y"] + box["height"] / 2)
    time.sleep(0.2)
    position = page.evaluate(f"() => {PLAYER}.position()")
    assert 0.75 * SECONDS <= position < 0.75 * SECONDS + 0.5
    assert page.evaluate(f"() => {PLAYER}.playing") and _settled_gains(page) == pytest.approx([0, 0, 1, 1], abs=1e-4)

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "stemview.png"))

    # Pause keeps the position; near the end, playback stops by itself at the duration.
    page.click(".sl-play")
    paused = page.evaluate(f"() => {PLAYER}.position()")
    time.sleep(0.3)
    assert page.evaluate(f"() => {PLAYER}.position()") == paused and page.inner_text(".sl-play") == "Play"
    page.mouse.click(box["x"] + 0.95 * box["width"], box["y"] + 5)
    page.click(".sl-play")
    page.wait_for_function(f"() => !{PLAYER}.playing", timeout=3000)
    end = page.evaluate(f"() => [{PLAYER}.position(), {PLAYER}.model.get('playing')]")
    assert end == [SECONDS, False]
    assert errors == []
    page.close()


def test_works_from_file_url_and_with_two_views(browser, page_dir):
    folder, _ = page_dir
    page, errors = _open(browser, (folder / "view.html").as_uri())
    # A second view of the same model (a widget displayed twice): one player drives both.
    page.evaluate("""async () => {
        const host = document.createElement("div");
        document.body.appendChild(host);
        const { model, widget } = globalThis.__stemlabPage;
        await widget.render({ model, el: host });
    }""")
    assert page.locator(".stemlab").count() == 2 and page.evaluate("() => globalThis.__stemlab.players.size") == 1
    page.locator(".sl-play").nth(1).click()
    time.sleep(1.0)
    assert page.evaluate(f"() => [{PLAYER}.ctx.state, {PLAYER}.position() > 0.6]") == ["running", True]
    assert page.locator(".sl-play").nth(0).inner_text() == "Pause"
    heads = [float(page.locator(".sl-playhead").nth(k).evaluate("e => parseFloat(e.style.left)")) for k in (0, 1)]
    assert heads[0] > 0 and heads[1] > 0
    page.locator(".sl-panel[data-name='mid'] .sl-mute").nth(0).click()
    assert page.get_attribute(".stemlab >> nth=1 >> .sl-panel[data-name='mid'] .sl-mute", "aria-pressed") == "true"
    assert errors == []
    page.close()
