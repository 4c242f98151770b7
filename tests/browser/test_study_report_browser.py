"""The study's report in headless Chromium, opened from file:// with every network request refused:
no errors, every figure decodes, and a linked MP3 of the cache loads."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from browser import launch_chromium

pytestmark = pytest.mark.browser
TESTS = Path(__file__).resolve().parents[1]


def _build_study():
    """``build_study`` of tests/test_study_report.py (the same small study)."""
    spec = importlib.util.spec_from_file_location("study_report_frames", TESTS / "test_study_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_study


LOAD = """async (el) => {
    el.preload = "metadata";
    const loaded = new Promise((done) => {
        el.addEventListener("loadedmetadata", () => done("loaded"), { once: true });
        el.addEventListener("error", () => done(`error ${el.error && el.error.code}`), { once: true });
    });
    el.load();
    return [await loaded, el.readyState, el.duration];
}"""


def test_report_loads_offline_with_its_figures_and_audio(tmp_path):
    report = _build_study()(tmp_path)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
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
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.goto(report.as_uri(), wait_until="load")
        page.wait_for_function("() => [...document.images].every((img) => img.complete)", timeout=15_000)
        widths = page.evaluate("() => [...document.images].map((img) => img.naturalWidth)")
        assert len(widths) == 4 and all(w > 0 for w in widths), widths
        players = page.locator("ol.disagree audio")
        assert players.count() > 4
        state, ready, duration = players.first.evaluate(LOAD)
        assert state == "loaded" and ready >= 1 and 0.1 < duration < 0.5, (state, ready, duration)  # 0.2 s of tone
        assert page.evaluate("document.documentElement.scrollWidth") <= 1200
        browser.close()
    assert refused == [] and errors == []
