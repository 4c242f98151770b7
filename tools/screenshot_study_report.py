#!/usr/bin/env python3
"""Screenshot a study's ``report.html`` in Debian's Chromium (headless, through Playwright).

Run from the repository root, with the venv that has Playwright::

    .venv/bin/python tools/screenshot_study_report.py STUDY/report.html --out report.png

Options: ``--out PNG`` (default: ``report.png`` beside the page), ``--width``/``--height`` (the
viewport, default 1200x900), ``--full-page`` (the whole page, not only the first screen),
``--chromium PATH`` (default ``/usr/bin/chromium``). The page is opened from ``file://`` and every
request that is not ``file:``, ``data:`` or ``blob:`` is refused, as a reader offline would see it.
Uses the system's Chromium; never ``playwright install``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def screenshot(report: Path, out: Path, *, width: int = 1200, height: int = 900, full_page: bool = False,
               chromium: str = "/usr/bin/chromium") -> list[str]:
    """Save a PNG of ``report`` to ``out``; return the page's errors and refused requests (empty when clean)."""
    from playwright.sync_api import sync_playwright

    problems: list[str] = []

    def guard(route):
        if route.request.url.startswith(("file:", "data:", "blob:", "about:")):
            route.continue_()
        else:
            problems.append(f"refused {route.request.url}")
            route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.route("**/*", guard)
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.on("console", lambda msg: problems.append(f"console: {msg.text}") if msg.type == "error" else None)
            page.goto(report.resolve().as_uri(), wait_until="load")
            page.wait_for_function("() => [...document.images].every((img) => img.complete)")
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out), full_page=full_page)
        finally:
            browser.close()
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="the study's report.html")
    parser.add_argument("--out", type=Path, help="the PNG to write (default: report.png beside the page)")
    parser.add_argument("--width", type=int, default=1200)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("--full-page", action="store_true", help="the whole page, not only the first screen")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="the Chromium executable")
    args = parser.parse_args(argv)
    if not args.report.is_file():
        parser.error(f"{args.report} is not a file")
    out = args.out or args.report.with_name("report.png")
    problems = screenshot(args.report, out, width=args.width, height=args.height, full_page=args.full_page,
                          chromium=args.chromium)
    for problem in problems:
        print(problem, file=sys.stderr)
    print(out)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
