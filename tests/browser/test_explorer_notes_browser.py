"""The explorer's notes in Chromium: drawn over the spectrograms where the spectrogram puts their
time and pitch (through zooms and frequency-scale changes), and played by the page's synth in
sync with the stems.

The page is the explorer of the demo song exported with ``save_html`` (no JupyterLab: the
fastest harness), its rows' notes loaded beforehand (``Explorer.load_notes``) from the song's
MIDI score through the explorer's ``notes=`` seam; the page's toggles then draw them without a
kernel. Rectangles are read through the page's hooks: each plot's ``data-notes`` (how many are
drawn) and its row's ``noteBoxes`` (where, in CSS px of the plot), checked against positions
computed here from the notes' times and ``spectrogram.row_frequencies``.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import sync_playwright

import stemlab
from browser import launch_chromium
from stemlab.demo import song_notes
from stemlab.view.explorer import Explorer
from stemlab.view.spectrogram import row_frequencies

pytestmark = pytest.mark.browser

PLAYER = "[...globalThis.__stemlab.players.values()][0]"
MODEL = f"{PLAYER}.model"
ROW = "[...{player}.views][0].rows.find((r) => r.track.name === name)".format(player=PLAYER)
SYNTH_AHEAD = 0.35  # s, as in stemview.js


def midi_notes() -> dict[str, pd.DataFrame]:
    """The demo song's notes from its MIDI score, as ``stemlab.transcribe`` tables, by stem name."""
    return {name: table.reset_index(drop=True) for name, table in song_notes().groupby("stem")}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("notes")
    song = stemlab.demo_song(cache_dir=str(folder / "cache"))
    score = midi_notes()
    ex = Explorer(song, notes=score, view="spectrogram")
    ex.load_notes(["bass", "drums"])
    page = folder / "explorer.html"
    ex.save_html(page)
    return page, song, {name: table.sort_values("onset", kind="stable").reset_index(drop=True)
                        for name, table in score.items()}


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        browser = launch_chromium(p)
        yield browser
        browser.close()


def _open(browser, page_file):
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(page_file.as_uri())
    page.wait_for_function(f"() => globalThis.__stemlab?.players?.size && {PLAYER}.ready", timeout=30_000)
    return page, errors


def _boxes(page, name):
    """The rectangles drawn on row ``name`` and the plot's drawing size (CSS px)."""
    return page.evaluate(f"""(name) => {{ const row = {ROW}; const dpr = devicePixelRatio || 1;
        return {{ boxes: row.noteBoxes, width: row.canvas.width / dpr, height: row.canvas.height / dpr,
                  count: Number(row.plot.dataset.notes ?? -1) }}; }}""", name)


def _drawn(page):
    """Wait for the next frame the page draws in (drawing is one requestAnimationFrame later)."""
    page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")


def _window(page):
    return page.evaluate(f"() => {{ const w = {PLAYER}.window(); return [w.t0, w.t1]; }}")


def _expected_y(hz, scale, sr, height):
    """Where the spectrogram puts ``hz``: its rows are equal steps between row_frequencies' edges."""
    edges = row_frequencies(scale, 20_000, sr)
    return (1 - float(np.interp(hz, edges, np.linspace(0, 1, len(edges))))) * height


def _box_of(drawn, onset):
    return next(b for b in drawn["boxes"] if abs(b["onset"] - onset) < 1e-4)


def _check_note(page, name, note, sr, scale):
    drawn = _boxes(page, name)
    t0, t1 = _window(page)
    box = _box_of(drawn, note.onset)
    x = (note.onset - t0) / (t1 - t0) * drawn["width"]
    hz = 440 * 2 ** ((note.pitch - 69) / 12)
    y = _expected_y(hz, scale, sr, drawn["height"])
    assert box["x"] == pytest.approx(x, abs=1.0), (box, x)
    assert box["y"] + box["h"] / 2 == pytest.approx(y, abs=1.5), (box, y, scale)
    end = (note.offset - t0) / (t1 - t0) * drawn["width"]
    assert box["x"] + box["w"] == pytest.approx(max(end, x + 2), abs=1.0)
    return box


def test_notes_are_drawn_where_the_spectrogram_shows_them(browser, exported):
    page_file, song, score = exported
    page, errors = _open(browser, page_file)
    assert page.locator(".sl-plot[data-notes]").count() == 0  # nothing drawn until toggled
    assert page.locator('.sl-panel[data-name="guitar"] .sl-notes').is_disabled()  # no notes in this page
    for name in ("bass", "drums"):
        page.click(f'.sl-panel[data-name="{name}"] .sl-notes')
    page.wait_for_function("() => document.querySelectorAll('.sl-plot[data-notes]').length === 2")
    _drawn(page)
    assert page.evaluate(f"() => {MODEL}.get('notes_shown')") == ["bass", "drums"]
    assert _boxes(page, "bass")["count"] == len(score["bass"]) and _boxes(page, "drums")["count"] == len(score["drums"])
    assert page.get_attribute('.sl-panel[data-name="bass"] .sl-notes', "aria-pressed") == "true"

    bass = score["bass"]
    note = bass[bass.onset > 21.0].iloc[0]
    _check_note(page, "bass", note, song.sr, "log")

    # Something is painted there: the pixel at the box's centre changes when the toggle goes off.
    box = _box_of(_boxes(page, "bass"), note.onset)
    pixel = f"""(name) => {{ const c = {ROW}.canvas; const d = devicePixelRatio || 1;
        return [...c.getContext('2d').getImageData(({box['x']} + 1) * d, ({box['y']} + {box['h']} / 2) * d, 1, 1).data]; }}"""
    with_notes = page.evaluate(pixel, "bass")
    page.click('.sl-panel[data-name="bass"] .sl-notes')
    _drawn(page)
    assert page.evaluate(pixel, "bass") != with_notes and page.get_attribute('.sl-plot[data-name="bass"]', "data-notes") is None
    page.click('.sl-panel[data-name="bass"] .sl-notes')
    _drawn(page)

    # Wheel-zoom around the note's onset, then drag-select around it: the note stays on its time.
    plot = page.locator('.sl-plot[data-name="bass"]').bounding_box()
    x = plot["x"] + note.onset / song.duration * plot["width"]
    page.mouse.move(x, plot["y"] + plot["height"] / 2)
    page.mouse.wheel(0, -600)
    page.wait_for_function(f"() => {PLAYER}.window().t1 - {PLAYER}.window().t0 < {song.duration} * 0.7")
    _drawn(page)
    _check_note(page, "bass", note, song.sr, "log")
    t0, t1 = _window(page)
    a, b = note.onset - 1.5, note.onset + 2.0
    page.mouse.move(plot["x"] + (a - t0) / (t1 - t0) * plot["width"], plot["y"] + 10)
    page.mouse.down()
    page.mouse.move(plot["x"] + (b - t0) / (t1 - t0) * plot["width"], plot["y"] + 10, steps=4)
    page.mouse.up()
    z0, z1 = _window(page)
    assert z1 - z0 == pytest.approx(3.5, abs=0.1)
    _drawn(page)
    zoomed = _check_note(page, "bass", note, song.sr, "log")
    assert zoomed["w"] > 3 * box["w"]  # wider, as the spectrogram under it
    in_window = ((bass.offset > z0) & (bass.onset < z1)).sum()
    assert _boxes(page, "bass")["count"] == in_window

    # Another frequency scale: the notes move to where that scale puts their pitch.
    for scale in ("mel", "linear"):
        page.evaluate(f"(s) => {MODEL}.set('scale', s)", scale)
        _drawn(page)
        _check_note(page, "bass", note, song.sr, scale)

    # Drum hits are ticks at their onsets, in their kit piece's lane (kick at the bottom).
    page.evaluate(f"() => {MODEL}.set('scale', 'log')")
    _drawn(page)
    drums = score["drums"]
    visible = drums[(drums.onset > z0 + 0.1) & (drums.onset < z1 - 0.1)]
    kick, snare, ride = (visible[visible.pitch == key].iloc[0] for key in (36, 38, 51))
    drawn = _boxes(page, "drums")
    lanes = page.evaluate(f"() => {PLAYER}.noteSets.get('drums').lanes.map((l) => l.id)")
    assert lanes == ["kick", "snare", "tom", "hat", "cymbal"]
    lane = drawn["height"] / len(lanes)
    for hit, index in ((kick, 0), (snare, 1), (ride, 4)):
        tick = _box_of(drawn, hit.onset)
        assert tick["x"] == pytest.approx((hit.onset - z0) / (z1 - z0) * drawn["width"], abs=1.0)
        bottom = drawn["height"] - index * lane
        assert bottom - lane - 0.01 <= tick["y"] < tick["y"] + tick["h"] <= bottom + 0.01, (tick, index)

    # Waveform and spectrogram: the notes stay on the spectrogram, in the lower part of the row.
    page.evaluate(f"() => {MODEL}.set('view', 'both')")
    _drawn(page)
    drawn = _boxes(page, "bass")
    assert drawn["count"] == in_window and all(b["y"] > 0.38 * drawn["height"] for b in drawn["boxes"])
    # Waveform only: the notes are drawn over it, on the row's own pitch range.
    page.evaluate(f"() => {MODEL}.set('view', 'waveform')")
    _drawn(page)
    drawn = _boxes(page, "bass")
    low, high = bass.pitch.min(), bass.pitch.max()
    step = drawn["height"] / (high - low + 3)
    box = _box_of(drawn, note.onset)
    assert box["y"] == pytest.approx((high + 1 - note.pitch) * step, abs=0.6)
    assert errors == []
    page.close()


def test_the_synth_plays_the_notes_in_sync_with_the_transport(browser, exported):
    page_file, song, score = exported
    page, errors = _open(browser, page_file)
    both = pd.concat([score["bass"], score["drums"]])
    for name in ("bass", "drums"):
        page.click(f'.sl-panel[data-name="{name}"] .sl-hear')  # audio -> notes
    assert page.evaluate(f"() => {MODEL}.get('hear')") == {"bass": "notes", "drums": "notes"}
    assert page.inner_text('.sl-panel[data-name="bass"] .sl-hear') == "N"

    page.evaluate(f"() => {PLAYER}.seek(20)")
    page.click(".sl-play")
    time.sleep(1.2)
    state = page.evaluate(f"""() => {{ const p = {PLAYER}; const names = p.model.get('tracks').map((t) => t.name);
        return {{ ctx: p.ctx.state, position: p.position(), scheduled: p.take.synth.scheduled, names,
                  gains: p.gainNodes.map((g) => g.gain.value),
                  synth: Object.fromEntries([...p.take.synth.outputs].map(([i, g]) => [names[i], g.gain.value])) }}; }}""")
    assert state["ctx"] == "running"
    gains = dict(zip(state["names"], state["gains"]))
    assert gains["bass"] == 0 and gains["drums"] == 0 and gains["vocals"] > 0.5  # notes instead of the stems
    assert state["synth"] == {"bass": pytest.approx(1.0), "drums": pytest.approx(1.0)}
    # Scheduled: the notes from the start to a look-ahead past the position, no more.
    lo = ((both.onset >= 20) & (both.onset < state["position"] - 0.1)).sum()
    hi = ((both.onset >= 20) & (both.onset < state["position"] + SYNTH_AHEAD + 0.15)).sum()
    assert 0 < lo <= state["scheduled"] <= hi, (lo, state, hi)

    # Solo bass: only its synth sounds, and it does sound.
    page.click('.sl-panel[data-name="bass"] .sl-solo')
    rms = page.evaluate(f"""async () => {{
        const p = {PLAYER}; const analyser = p.ctx.createAnalyser(); analyser.fftSize = 8192;
        p.take.bus.connect(analyser);
        let peak = 0; const data = new Float32Array(analyser.fftSize);
        for (let n = 0; n < 8; n++) {{
            await new Promise((r) => setTimeout(r, 120));
            analyser.getFloatTimeDomainData(data);
            peak = Math.max(peak, Math.sqrt(data.reduce((s, v) => s + v * v, 0) / data.length));
        }}
        p.take.bus.disconnect(analyser);
        return peak; }}""")
    audio = page.evaluate(f"() => {PLAYER}.gainNodes.map((g) => g.gain.value)")
    assert max(audio) < 1e-3 and rms > 1e-3, (audio, rms)
    page.click('.sl-panel[data-name="bass"] .sl-solo')

    # A loop: every pass schedules the loop's notes again, against the same clock as the stems.
    page.evaluate(f"() => {PLAYER}.setLoop([20, 21])")
    time.sleep(2.4)
    looped = page.evaluate(f"() => [{PLAYER}.take.synth.scheduled, {PLAYER}.position()]")
    per_pass = ((both.onset >= 20) & (both.onset < 21)).sum()
    assert 20 <= looped[1] <= 21 and looped[0] >= 2 * per_pass, (looped, per_pass)

    # Back to audio: the stem plays again and its synth is silent.
    for _ in range(2):
        page.click('.sl-panel[data-name="bass"] .sl-hear')  # notes -> both -> audio
    time.sleep(0.3)
    state = page.evaluate(f"""() => {{ const p = {PLAYER}; const names = p.model.get('tracks').map((t) => t.name);
        return [p.gainNodes[names.indexOf('bass')].gain.value,
                p.take.synth.outputs.get(names.indexOf('bass'))?.gain.value ?? 0]; }}""")
    assert state[0] > 0.9 and state[1] < 1e-3
    page.click(".sl-play")  # pause: no voice is left playing
    assert page.evaluate(f"() => {PLAYER}.take") is None
    assert errors == []
    page.close()
