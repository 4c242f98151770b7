"""The demo's HTML report in headless Chromium, opened from file:// with every network request
refused: pictures load, the true stems' synced player plays, the per-stem MP3 players play."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from browser import launch_chromium

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def test_report_works_offline_with_players_and_plots(demo_run):
    _, report, _, _ = demo_run
    ARTIFACTS.mkdir(exist_ok=True)
    refused = []
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1200, "height": 900})

        def guard(route):
            url = route.request.url
            if url.startswith(("file:", "data:", "blob:", "about:")):
                route.continue_()
            else:
                refused.append(url)
                route.abort()

        page.route("**/*", guard)
        page.goto(report.resolve().as_uri())
        images = page.locator("img")
        assert images.count() >= 8
        page.wait_for_function("() => [...document.images].every((img) => img.complete && img.naturalWidth > 0)")

        player = page.frame_locator("iframe.player")
        expect(player.locator(".sl-status")).to_have_text(re.compile("^ready"), timeout=60_000)
        player.locator(".sl-play").click()
        time.sleep(1.5)
        frame = next(f for f in page.frames if f is not page.main_frame)
        position = frame.evaluate("() => [...globalThis.__stemlab.players.values()][0].position()")
        assert position > 0.5

        audios = page.locator("audio[data-mp3]")
        assert audios.count() >= 20
        assert page.evaluate("() => [...document.querySelectorAll('audio[data-mp3]')].every((a) => a.src.startsWith('blob:'))")
        played = page.evaluate("""async () => {
            const audio = document.querySelector('audio[data-mp3]');
            await audio.play();
            await new Promise((done) => setTimeout(done, 1200));
            audio.pause();
            return audio.currentTime;
        }""")
        assert played > 0.5
        page.screenshot(path=str(ARTIFACTS / "demo-report.png"))
        browser.close()
    assert refused == []
