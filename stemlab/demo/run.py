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

__all__ = ["run_demo", "summary_table", "LOCAL_METHODS"]

LOCAL_METHODS = ("hpss", "repet-sim", "center", "nmf", "oracle")
ELAPSED = "<!--stemlab:elapsed-->"  # in the page until the span it reports has ended


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


def summary_table(rows: list[tuple[str, int, float, bool, str]], width: int = 80) -> str:
    """The demo's table, wrapped to ``width`` columns: a long list of scores continues on the
    next lines, under its own column, and never breaks a row.

    >>> print(summary_table([("local nmf", 3, 1.25, True, "drums +4.1, bass +2.0, other +1.5")], width=60))
    set              stems      s  recombines  SI-SDR gain (dB)
    local nmf            3    1.2  yes         drums +4.1, bass
                                               +2.0, other +1.5
    """
    import textwrap

    lead = 16 + 1 + 5 + 1 + 6 + 2 + 10 + 2
    lines = [f"{'set':<16} {'stems':>5} {'s':>6}  {'recombines':<10}  SI-SDR gain (dB)"]
    for label, stems, seconds, ok, scores in rows:
        wrapped = textwrap.wrap(scores, width=width - lead) or [""]
        lines.append(f"{label[:16]:<16} {stems:>5} {seconds:>6.1f}  {'yes' if ok else 'NO':<10}  {wrapped[0]}".rstrip())
        lines += [" " * lead + more for more in wrapped[1:]]
    return "\n".join(lines)


def run_demo(*, cache_dir: str | None = None, settings=None, open_report: bool = False, progress: bool = True,
             out=sys.stdout) -> int:
    """Run the demo; returns the CLI exit code (0 when every set recombines)."""
    from ..analysis.check import check
    from ..analysis.compare import compare
    from ..cache import Cache
    from ..config import Settings
    from ..files import atomic_write_bytes
    from ..progress import progress_bar
    from ..view.report import render_report, scores_line, section
    from ..sandbox.server import SANDBOX_KEYS, Sandbox
    from ..separation import separate
    from . import demo_song, song_info
    from .library import demo_library

    started = time.perf_counter()
    settings = Settings.of(settings, cache_dir=cache_dir)
    info = song_info()
    sets = 1 + len(LOCAL_METHODS) + 3
    rows, sections = [], []
    # one step per set, then as much again for the report (encoding every player, drawing every set)
    with progress_bar(total=2 * sets, desc="stemlab demo", disable=not progress, leave=True,
                      bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed} {postfix}") as bar:
        def step(label: str, make, description: str):
            bar.set_postfix_str(label)
            t0 = time.perf_counter()
            stemset = make()
            seconds = time.perf_counter() - t0
            report = check(stemset)
            scores = compare(stemset, reference=truth, bss=False, settings=settings).scores().to_dict("records")
            rows.append((label, stemset, seconds, report, scores))
            sections.append(section(label, stemset, report, description=description, scores=scores))
            bar.update()

        truth = demo_song(settings=settings)
        truth_section = section("true stems", truth, check(truth),
                                description="The 12 true stems and their sum, the mix: what every other set is "
                                            "scored against.")
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

        def report_progress(fraction: float) -> None:
            bar.n = sets + round(sets * fraction, 2)
            bar.refresh()

        intro = (f"<b>{info['title']}</b> ({info['duration_s']:.0f} s, {info['bpm']} bpm, {info['key']}) was "
                 f"rendered from MIDI with real instrument samples, so its true stems are known. Below, five "
                 f"classic local separations and both providers' splits (fetched through stemlab's sandbox) "
                 f"of it, all offline. Made by <code>stemlab demo</code> in {ELAPSED}.")
        made = render_report(f"stemlab demo: {info['title']}", sections=[truth_section, *sections],
                             intro_html=intro, progress=report_progress)
        path = Cache(settings.cache_dir).root / "reports" / "demo-report.html"
        elapsed = time.perf_counter() - started  # one span for the page and the terminal
        atomic_write_bytes(path, made.html.replace(ELAPSED, f"{elapsed:.0f} s", 1).encode("utf-8"))
        bar.n = bar.total
        bar.set_postfix_str("done")

    print(f"stemlab demo: \"{info['title']}\" ({info['duration_s']:.0f} s, {len(info['stems'])} audible of 12 true "
          f"stems), no key, no network\n", file=out)
    print(summary_table([(label, len(stemset), seconds, report.ok, scores_line(scores))
                         for label, stemset, seconds, report, scores in rows]), file=out)
    print(f"\nreport: {path}  ({path.stat().st_size / 1e6:.1f} MB, self-contained; audio Ogg Opus "
          f"{made.audio_kbps} kbit/s)", file=out)
    print(f"made in {elapsed:.0f} s", file=out)
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
