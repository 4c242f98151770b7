"""``stemlab demo``: the whole fetch pipeline on the built-in demo song, offline, with no key.

It starts the sandbox in-process, fetches the demo song's 12-stem and 2-stem splits through the
real CQTAI client and its 2-stem split through the real Apiframe client, checks that each set
recombines to its source, and prints a table. A second run reads everything from the cache.
"""

from __future__ import annotations

import sys
import time

__all__ = ["run_demo"]


def _fetch_all(sb, settings, progress: bool):
    from ..fetch import fetch
    from . import DEMO_CLIP_ID

    song = sb.song(DEMO_CLIP_ID)
    requests = {
        "cqtai 12 stems": dict(provider="cqtai", clip_id=song.clip_id),
        "cqtai 2 stems": dict(provider="cqtai", clip_id=song.clip_id, two=True),
        "apiframe stems": dict(provider="apiframe", parent_job_id=song.parent_job_id, index=1),
    }
    for label, request in requests.items():
        started = time.perf_counter()
        stemset = fetch(request.pop("provider"), settings=settings, progress=progress, **request)
        yield label, stemset, time.perf_counter() - started


def run_demo(*, cache_dir: str | None = None, open_report: bool = False, progress: bool = True, out=sys.stdout) -> int:
    """Run the demo; returns the CLI exit code (0 when every set recombines)."""
    from ..analysis.check import check
    from ..sandbox import Sandbox
    from ..sandbox.cli import SANDBOX_KEYS
    from . import song_info
    from .library import demo_library

    started = time.perf_counter()
    library = demo_library(cache_dir=cache_dir)
    info = song_info()
    print(f"stemlab demo: \"{info['title']}\" ({info['duration_s']:.0f} s, {len(info['stems'])} audible stems), "
          f"served by the sandbox on 127.0.0.1 through the real provider clients", file=out)
    rows = []
    with Sandbox(library, cqtai_key=SANDBOX_KEYS["cqtai"], apiframe_key=SANDBOX_KEYS["apiframe"],
                 polls_to_complete=2) as sb:
        settings = sb.settings(cache_dir=cache_dir, poll_interval=0.05)
        for label, stemset, seconds in _fetch_all(sb, settings, progress):
            rows.append((label, stemset, seconds, check(stemset)))
    print(f"\n{'set':<16} {'stems':>5} {'fetch':>7}  {'lag':>5} {'gain dB':>8} {'residual dB':>12}  check", file=out)
    for label, stemset, seconds, report in rows:
        print(f"{label:<16} {len(stemset):>5} {seconds:>6.2f}s  {report.lag_samples:>5} {report.gain_db:>+8.2f} "
              f"{report.residual_db:>12.1f}  {'recombines' if report.ok else 'FAILS: ' + '; '.join(report.problems)}",
              file=out)
    print(f"\nsets cached in {rows[0][1].folder.parent}; total {time.perf_counter() - started:.1f} s", file=out)
    return 0 if all(report.ok for *_, report in rows) else 1
