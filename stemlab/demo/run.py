"""``stemlab demo``: the whole of stemlab on the built-in demo song, offline, with no key.

1. loads the demo song and its true stems;
2. separates it locally with every method (hpss, repet-sim, center, nmf, oracle);
3. serves its true stems through the sandbox and fetches them with the real CQTAI (12 and 2
   stems) and Apiframe clients;
4. checks that every set recombines to its source, and scores every set against the truth;
5. writes one self-contained HTML report and prints its path.

A second run reads the separations and fetches from the cache.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

__all__ = ["run_demo", "LOCAL_METHODS"]

LOCAL_METHODS = ("hpss", "repet-sim", "center", "nmf", "oracle")


def _fetched(sb, settings):
    """``label -> (description, fetch call)`` for the three provider splits of the demo song."""
    from ..fetching import fetch
    from . import DEMO_CLIP_ID

    song = sb.song(DEMO_CLIP_ID)
    return {
        "cqtai 12 stems": ("CQTAI gen_stem_all through the sandbox (the real client code)",
                           lambda: fetch("cqtai", clip_id=song.clip_id, settings=settings, progress=False)),
        "cqtai 2 stems": ("CQTAI gen_stem_two through the sandbox",
                          lambda: fetch("cqtai", clip_id=song.clip_id, two=True, settings=settings, progress=False)),
        "apiframe stems": ("Apiframe stems action through the sandbox",
                           lambda: fetch("apiframe", parent_job_id=song.parent_job_id, index=1, settings=settings,
                                         progress=False)),
    }


def _summary(scores: list[dict]) -> str:
    parts = [f"{r['stem']} {_db(r['si_sdr_improvement'], r['si_sdr'])}" for r in scores if not r["silent"]]
    return ", ".join(parts)


def _db(improvement: float, score: float) -> str:
    """An improvement in dB, or "identical" when the estimate is the reference itself (> 100 dB)."""
    return "identical" if score > 100 else f"{improvement:+.1f}"


def run_demo(*, cache_dir: str | None = None, settings=None, open_report: bool = False, progress: bool = True,
             out=sys.stdout) -> int:
    """Run the demo; returns the CLI exit code (0 when every set recombines)."""
    from tqdm.auto import tqdm

    from ..analysis.check import check
    from ..analysis.compare import compare
    from ..cache import Cache
    from ..files import atomic_write_bytes
    from ..config import Settings
    from ..view.report import render_report, section
    from ..sandbox.server import SANDBOX_KEYS, Sandbox
    from ..separation import separate
    from ..view.explorer import Explorer
    from . import demo_song, song_info
    from .library import demo_library

    started = time.perf_counter()
    settings = Settings.of(settings, cache_dir=cache_dir)
    info = song_info()
    steps = 2 + len(LOCAL_METHODS) + 3 + 1
    rows, sections = [], []
    with tqdm(total=steps, desc="stemlab demo", disable=not progress, leave=False) as bar:
        def step(label: str, make, description: str, *, scored: bool = True):
            bar.set_postfix_str(label)
            t0 = time.perf_counter()
            stemset = make()
            seconds = time.perf_counter() - t0
            report = check(stemset)
            scores = (compare(stemset, reference=truth, bss=False, settings=settings).scores().to_dict("records")
                      if scored else [])
            rows.append((label, stemset, seconds, report, scores))
            sections.append(section(label, stemset, report, description=description, scores=scores))
            bar.update()

        truth = demo_song(settings=settings)
        bar.update()
        for method in LOCAL_METHODS:
            step(f"local {method}", lambda m=method: separate(truth, method=m, settings=settings),
                 f"stemlab.separate(song, method={method!r}): no key, no network")
        with Sandbox(demo_library(settings=settings), cqtai_key=SANDBOX_KEYS["cqtai"],
                     apiframe_key=SANDBOX_KEYS["apiframe"], polls_to_complete=2) as sb:
            served = sb.settings(cache_dir=settings.cache_dir, poll_interval=0.05)
            for label, (description, make) in _fetched(sb, served).items():
                step(label, make, description)
        bar.set_postfix_str("report")
        player = Explorer(truth).to_html()
        truth_section = section("true stems", truth, check(truth), player_html=player,
                                description="The 12 true stems (9 audible) and their sum, the mix. Play, mute, solo "
                                            "and A/B them in sync.")
        intro = (f"<p>The demo song <b>{info['title']}</b> ({info['duration_s']:.0f} s, {info['bpm']} bpm, "
                 f"{info['key']}) was rendered from MIDI with real instrument samples, so its true stems are "
                 f"known. It was separated locally by five classic methods and fetched from both providers' APIs "
                 f"through stemlab's sandbox, all offline. Generated by <code>stemlab demo</code> in "
                 f"{time.perf_counter() - started:.0f} s.</p>")
        page = render_report(f"stemlab demo: {info['title']}", sections=[truth_section, *sections], intro_html=intro)
        path = Cache(settings.cache_dir).root / "reports" / "demo-report.html"
        atomic_write_bytes(path, page.encode("utf-8"))
        bar.update()

    print(f"stemlab demo: \"{info['title']}\" ({info['duration_s']:.0f} s, {len(info['stems'])} audible of 12 true "
          f"stems), no key, no network\n", file=out)
    print(f"{'set':<16} {'stems':>5} {'seconds':>8}  {'recombines':<10}  SI-SDR improvement over the mix (dB)", file=out)
    for label, stemset, seconds, report, scores in rows:
        verdict = "yes" if report.ok else "NO"
        print(f"{label:<16} {len(stemset):>5} {seconds:>8.1f}  {verdict:<10}  {_summary(scores)}", file=out)
    print(f"\nreport: {path}  ({path.stat().st_size / 1e6:.1f} MB, self-contained)", file=out)
    print(f"total {time.perf_counter() - started:.1f} s", file=out)
    if open_report:
        _open(path, out)
    return 0 if all(report.ok for _, _, _, report, _ in rows) else 1


def _open(path: Path, out) -> None:
    import webbrowser

    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        print("(no browser found here: open the report file yourself)", file=out)
        return
    browser.open(path.resolve().as_uri())
