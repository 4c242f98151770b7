"""The comparison view in Chromium: its A/B buttons switch between the two sets while playing."""

import time

import pytest
from playwright.sync_api import sync_playwright

from browser import launch_chromium

pytestmark = pytest.mark.browser


def test_ab_switches_sets_while_playing(small_comparison, tmp_path):
    view = small_comparison.view(stem="vocals")
    page_file = tmp_path / "compare.html"
    view.view.to_html(page_file)
    gains = "() => [...globalThis.__stemlab.players.values()][0].gainNodes.map((n) => n.gain.value)"
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page()
        page.goto(page_file.as_uri())
        page.wait_for_function("() => [...(globalThis.__stemlab?.players?.values() ?? [])][0]?.ready", timeout=15_000)
        assert page.locator(".sl-ab-button").all_inner_texts() == ["B: b", "A: a"]
        page.locator(".sl-play").click()
        time.sleep(0.6)
        b_side = page.evaluate(gains)
        assert b_side[0] < 1e-3 and b_side[1] > 0.5 and max(b_side[2:]) < 1e-3  # B plays, alone
        page.locator(".sl-ab-button[data-ab='source']").click()
        time.sleep(0.6)
        a_side = page.evaluate(gains)
        assert a_side[0] > 0.5 and max(a_side[1:]) < 1e-3  # A plays, alone, level-matched
        position = page.evaluate("() => [...globalThis.__stemlab.players.values()][0].position()")
        assert position > 0.8  # one continuous playback: the switch did not restart it
        browser.close()
