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


# ---- zoom, loop, keyboard, busy: no kernel here, so zooming rescales the exported data -----------

MODEL = "globalThis.__stemlabPage.model"


def _window(page):
    return page.evaluate(f"() => [{MODEL}.get('t0'), {MODEL}.get('t1')]")


def _drag(page, box, start, stop, *, shift=False):
    """Press at ``start``, move to ``stop`` (fractions of the plot's width), release."""
    y = box["y"] + box["height"] / 2
    if shift:
        page.keyboard.down("Shift")
    page.mouse.move(box["x"] + start * box["width"], y)
    page.mouse.down()
    page.mouse.move(box["x"] + (start + stop) / 2 * box["width"], y)
    page.mouse.move(box["x"] + stop * box["width"], y)
    page.mouse.up()
    if shift:
        page.keyboard.up("Shift")


def test_wheel_zooms_around_the_pointer_and_drag_selects(browser, server):
    page, errors = _open(browser, f"{server}/view.html")
    plot = page.locator('.sl-plot[data-name="mid"]')
    box = plot.bounding_box()
    before = plot.locator("canvas").evaluate("(c) => c.toDataURL()")
    page.mouse.move(box["x"] + 0.3 * box["width"], box["y"] + box["height"] / 2)
    page.mouse.wheel(0, -400)  # wheel up: zoom in, around the pointer
    page.wait_for_function(f"() => {MODEL}.get('t1') - {MODEL}.get('t0') < {SECONDS} * 0.8")
    t0, t1 = _window(page)
    assert t0 > 0 and t1 < SECONDS
    assert t0 + 0.3 * (t1 - t0) == pytest.approx(0.3 * SECONDS, abs=0.02)  # the time under the pointer stays
    # No kernel refines the rows: the data stays the exported one, drawn rescaled, and no busy state.
    assert page.evaluate(f"() => {PLAYER}.dataWindow()") == {"t0": 0, "t1": SECONDS}
    assert page.evaluate("() => document.querySelector('.stemlab').className") == "stemlab"
    page.wait_for_timeout(100)
    assert plot.locator("canvas").evaluate("(c) => c.toDataURL()") != before
    assert page.inner_text(".sl-axis-label") != "time"  # the window is shown

    _drag(page, box, 0.2, 0.6)  # drag-select: zoom to the selection
    z0, z1 = _window(page)
    assert (z0, z1) == (pytest.approx(t0 + 0.2 * (t1 - t0), abs=0.02), pytest.approx(t0 + 0.6 * (t1 - t0), abs=0.02))
    assert page.evaluate(f"() => {PLAYER}.position()") == 0  # a drag is no click: no seek

    page.mouse.move(box["x"] + 0.5 * box["width"], box["y"] + 5)
    page.keyboard.down("Shift")
    page.mouse.wheel(0, 100)  # shift-wheel scrolls in time, same span
    page.keyboard.up("Shift")
    s0, s1 = _window(page)
    assert s0 > z0 and s1 - s0 == pytest.approx(z1 - z0, rel=1e-6)
    page.click(".sl-zoom .sl-tool:has-text('full')")
    assert _window(page) == [0, SECONDS]
    assert errors == []
    page.close()


def test_loop_repeats_sample_synced_then_clears(browser, server):
    page, errors = _open(browser, f"{server}/view.html")
    box = page.locator('.sl-plot[data-name="low"]').bounding_box()
    _drag(page, box, 1 / SECONDS, 2.2 / SECONDS, shift=True)  # shift-drag: a loop, no zoom
    loop = page.evaluate(f"() => {MODEL}.get('loop')")
    assert loop == [pytest.approx(1.0, abs=0.03), pytest.approx(2.2, abs=0.03)] and _window(page) == [0, SECONDS]
    assert page.locator(".sl-loop").is_visible() and page.locator(".sl-loop-button").get_attribute("aria-pressed") == "true"

    page.click(".sl-play")
    positions = []
    for _ in range(30):
        positions.append(page.evaluate(f"() => {PLAYER}.position()"))
        time.sleep(0.1)
    assert all(loop[0] - 1e-6 <= t <= loop[1] + 1e-6 for t in positions), positions
    assert any(b < a for a, b in zip(positions, positions[1:])), "playback never wrapped back into the loop"
    sources = page.evaluate(f"() => {PLAYER}.sources.map((s) => [s.loop, s.loopStart, s.loopEnd])")
    assert len(sources) == 4 and all(s == [True, loop[0], loop[1]] for s in sources)  # the same span everywhere
    assert page.evaluate(f"() => {PLAYER}.model.get('position')") <= loop[1]

    page.click(".sl-loop-clear")  # cleared while playing: playback goes on past the loop's end
    assert page.evaluate(f"() => {MODEL}.get('loop')") == [] and not page.locator(".sl-loop").is_visible()
    page.wait_for_function(f"() => {PLAYER}.position() > {loop[1] + 0.3}", timeout=3000)
    assert page.evaluate(f"() => {PLAYER}.sources.every((s) => !s.loop)")
    page.click(".sl-play")

    _drag(page, box, 0.5, 0.75)  # zoom, then loop what is visible
    page.click(".sl-loop-button")
    assert page.evaluate(f"() => {MODEL}.get('loop')") == _window(page)
    page.click(".sl-loop-button")  # pressed again: cleared
    assert page.evaluate(f"() => {MODEL}.get('loop')") == []
    assert errors == []
    page.close()


def test_keyboard_space_plays_and_m_s_act_on_the_focused_row(browser, server):
    page, errors = _open(browser, f"{server}/view.html")
    page.evaluate("() => document.body.insertAdjacentHTML('beforeend', '<input id=outside>')")
    mixer = f"() => [{MODEL}.get('muted'), {MODEL}.get('soloed'), {MODEL}.get('playing')]"
    page.focus('.sl-panel[data-name="low"]')
    page.keyboard.press("m")
    page.keyboard.press("s")
    assert page.evaluate(mixer) == [[False, True, False, False], [False, True, False, False], False]
    page.keyboard.press("S")
    page.click('.sl-plot[data-name="high"]')  # a click focuses the row's plot (and seeks)
    page.keyboard.press("m")
    assert page.evaluate(mixer) == [[False, True, False, True], [False] * 4, False]
    page.focus('.sl-panel[data-kind="source"]')
    page.keyboard.press("m")  # the source row has no mute
    assert page.evaluate(mixer)[0] == [False, True, False, True]
    page.keyboard.press(" ")
    assert page.evaluate(mixer)[2] is True
    page.keyboard.press(" ")
    assert page.evaluate(mixer)[2] is False
    # Keys typed outside the widget are not its own.
    page.click("#outside")
    page.keyboard.type("m s")
    assert page.input_value("#outside") == "m s"
    assert page.evaluate(mixer) == [[False, True, False, True], [False] * 4, False]
    assert errors == []
    page.close()


def test_busy_state_after_200_ms_and_one_window_at_a_time_to_the_kernel(browser, server):
    """The page behaves as with a kernel when ``shown`` is set (here from the page, as the kernel would)."""
    page, errors = _open(browser, f"{server}/view.html")
    shown = {"t0": 0, "t1": SECONDS, "view": "both", "scale": "log", "channels": "mid", "show": "stems"}
    page.evaluate(f"(shown) => {MODEL}.set('shown', shown)", shown)
    opacity = "() => Number(getComputedStyle(document.querySelector('.sl-busy')).opacity)"
    early = page.evaluate(f"""async () => {{
        const started = performance.now();
        {MODEL}.set('busy', 'computing the residual');
        const stale = document.querySelector('.stemlab').classList.contains('sl-stale');
        await new Promise((r) => setTimeout(r, 50));
        return [stale, ({opacity})(), performance.now() - started];
    }}""")
    assert early[0] is True
    if early[2] < 180:  # (measured in the page: a loaded machine may take longer to come back)
        assert early[1] == 0, early  # a short recomputation shows nothing
    page.wait_for_function(f"() => ({opacity})() === 1", timeout=2000)  # shown after 200 ms
    assert page.inner_text(".sl-busy") == "computing the residual\u2026"
    page.wait_for_function("() => Number(getComputedStyle(document.querySelector('.sl-plot canvas')).opacity) < 0.5",
                           timeout=2000)  # the stale rows dimmed
    page.evaluate(f"() => {MODEL}.set('busy', '')")
    page.wait_for_function(f"() => ({opacity})() === 0", timeout=2000)

    # Another scale asked for: the spectrograms computed for "log" are not drawn under "mel".
    spec_pixel = """() => { const c = document.querySelector('.sl-plot[data-name="mid"] canvas');
        const g = c.getContext('2d'); return [...g.getImageData(c.width / 2, c.height * 0.8, 1, 1).data]; }"""
    drawn = page.evaluate(spec_pixel)
    page.evaluate(f"() => {MODEL}.set('scale', 'mel')")
    page.wait_for_timeout(100)
    blank = page.evaluate(spec_pixel)
    assert blank != drawn and page.evaluate("() => document.querySelector('.stemlab').classList.contains('sl-stale')")
    page.evaluate(f"(shown) => {MODEL}.set('shown', {{ ...shown, scale: 'mel' }})", shown)
    page.wait_for_timeout(100)
    assert page.evaluate(spec_pixel) == drawn  # (the same pictures: this page has no kernel to send others)

    # Wheel: the page zooms at once, sends one window, and holds the next until the rows come back.
    box = page.locator('.sl-plot[data-name="mid"]').bounding_box()
    page.mouse.move(box["x"] + 0.5 * box["width"], box["y"] + 10)
    page.mouse.wheel(0, -300)
    first = _window(page)
    page.mouse.wheel(0, -300)
    page.mouse.wheel(0, -300)
    assert _window(page) == first and page.evaluate(f"() => {PLAYER}.window().t1 - {PLAYER}.window().t0") < first[1] - first[0]
    page.wait_for_timeout(300)
    assert page.evaluate("() => document.querySelector('.stemlab').classList.contains('sl-refining')")
    page.evaluate(f"(w) => {MODEL}.set('shown', {{ ...{MODEL}.get('shown'), t0: w[0], t1: w[1] }})", first)
    latest = _window(page)
    assert latest[1] - latest[0] < first[1] - first[0]  # the held window went out
    assert errors == []
    page.close()
