"""The demo's HTML report in headless Chromium, opened from file:// with every network request
refused: the first screen holds the player and every set's verdict; every set plays in sync on
it, switched at the same position; the A/B button goes to the true stems and back without a jump;
on a phone nothing is wider than the screen."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from browser import launch_chromium

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

PLAYER = "[...globalThis.__stemlab.players.values()][0]"
STATE = f"""() => {{
    const p = {PLAYER};
    const take = p.take;
    return {{ position: p.position(), ready: p.ready, playing: !!take, tracks: p.model.get("tracks").length,
              buffers: p.buffers.length, sources: take ? take.sources.length : 0,
              scene: globalThis.__stemlabPage.current(), now: document.getElementById("now-playing").textContent }};
}}"""


def _open(p, report, *, width, height):
    browser = launch_chromium(p)
    page = browser.new_page(viewport={"width": width, "height": height})
    refused, errors = [], []

    def guard(route):
        url = route.request.url
        if url.startswith(("file:", "data:", "blob:", "about:")):
            route.continue_()
        else:
            refused.append(url)
            route.abort()

    page.route("**/*", guard)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(report.resolve().as_uri())
    expect(page.locator(".sl-status")).to_have_text(re.compile("^ready"), timeout=60_000)
    return browser, page, refused, errors


def _settled(page, scene, timeout=30.0):
    """Wait until scene ``scene`` is decoded and installed on the player; return its state."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = page.evaluate(STATE)
        if state["scene"] == scene and state["ready"] and state["buffers"] == state["tracks"] and (
                not state["playing"] or state["sources"] == state["tracks"]):
            return state
        time.sleep(0.05)
    raise AssertionError(f"scene {scene} never settled: {page.evaluate(STATE)}")


def test_report_opens_on_the_player_and_every_set_plays_in_sync(demo_run):
    _, report, _, _ = demo_run
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser, page, refused, errors = _open(p, report, width=1200, height=900)
        play = page.locator(".sl-play").bounding_box()
        assert play["y"] + play["height"] < 400  # the Play button near the top of the first screen
        sets = page.locator(".sets button")
        labels = sets.all_inner_texts()
        assert len(labels) == 9 and all("recombines" in text for text in labels)
        assert all(box["y"] + box["height"] <= 900 for box in (b.bounding_box() for b in sets.all()))
        assert "identical to the truth" in labels[6]
        scores = page.locator("table").first.inner_text()
        assert "identical" in scores and all(abs(float(x)) < 100 for x in re.findall(r"[-+]?\d+\.\d", scores))
        page.screenshot(path=str(ARTIFACTS / "demo-report.png"))

        page.locator(".sl-play").click()
        time.sleep(1.0)
        state = _settled(page, 0)
        assert state["playing"] and state["position"] > 0.5 and state["sources"] == 10  # source + 9 audible

        for index in range(1, 9):
            before = page.evaluate(STATE)["position"]
            sets.nth(index).click()
            state = _settled(page, index)
            assert state["playing"], state
            assert state["position"] >= before - 0.05, (index, before, state)  # on from where it was
            assert state["now"] == labels[index].splitlines()[0]

        page.locator(".sets button").nth(1).click()  # local hpss
        _settled(page, 1)
        time.sleep(0.5)
        ab = page.locator("#ab-truth")
        expect(ab).to_have_text("A/B with the true stems")
        before, clicked = page.evaluate(STATE)["position"], time.monotonic()
        ab.click()
        state = _settled(page, 0)
        waited = time.monotonic() - clicked
        assert state["playing"] and state["sources"] == 10
        assert before - 0.05 <= state["position"] <= before + waited + 0.5, (before, waited, state)  # no jump
        expect(ab).to_have_text("back to local hpss")
        ab.click()
        state = _settled(page, 1)
        assert state["sources"] == 3  # source, drums, other
        browser.close()
    assert refused == [] and errors == []


def test_report_fits_a_phone(demo_run):
    _, report, _, _ = demo_run
    with sync_playwright() as p:
        browser, page, refused, errors = _open(p, report, width=390, height=844)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert page.locator(".sl-play").bounding_box()["y"] < 844
        page.screenshot(path=str(ARTIFACTS / "demo-report-phone.png"))
        browser.close()
    assert refused == [] and errors == []
