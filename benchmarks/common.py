"""Shared helpers for the benchmarks: medians, a printed verdict line, a cached big library."""

from __future__ import annotations

import contextlib
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

OUT = Path(__file__).resolve().parent / "out"


def median_time(fn: Callable[[], object], *, repeat: int = 3, setup: Callable[[], object] | None = None) -> float:
    """Median wall time of ``fn()`` over ``repeat`` runs (``setup()`` before each, untimed)."""
    times = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def interleaved(ours: Callable[[], object], baseline: Callable[[], object], *, repeat: int = 5,
                setup: Callable[[], object] | None = None) -> tuple[float, float]:
    """Median times of ``ours()`` and ``baseline()`` run alternately, so that a shared, noisy
    machine's slow and fast moments fall on both (``setup()`` runs untimed before each of ours)."""
    a, b = [], []
    for _ in range(repeat):
        if setup is not None:
            setup()
        started = time.perf_counter()
        ours()
        a.append(time.perf_counter() - started)
        started = time.perf_counter()
        baseline()
        b.append(time.perf_counter() - started)
    print(f"  (runs, alternating: ours {' '.join(f'{x:.2f}' for x in a)} | baseline {' '.join(f'{x:.2f}' for x in b)})")
    return statistics.median(a), statistics.median(b)


def verdict(name: str, ours: float, baseline: float, baseline_name: str, *, target: float) -> bool:
    """Print one line: our median, the baseline's, their ratio and the target. Returns pass/fail."""
    ratio = baseline / ours if ours > 0 else float("inf")
    ok = ratio >= target
    print(f"{name:<12} stemlab {ours:8.3f} s   {baseline_name} {baseline:8.3f} s   ratio {ratio:6.1f}x "
          f"(target >= {target:g}x)  {'PASS' if ok else 'MISS'}")
    return ok


def big_library(*, stems: int = 12, seconds: float = 180.0) -> Path:
    """A sandbox library with one song of ``stems`` stems x ``seconds`` s, encoded once and reused."""
    from stemlab.sandbox.library import read_library, write_song
    from stemlab.sandbox.synth import synth_stems
    from stemlab.taxonomy import TWELVE_STEMS

    root = OUT / f"library-{stems}x{int(seconds)}s"
    if (root / "big" / "song.json").exists() and "big" in read_library(root):
        return root
    print(f"(one-time setup: synthesising and encoding {stems} stems x {seconds:.0f} s into {root})", flush=True)
    audio = synth_stems(duration=seconds, names=TWELVE_STEMS[:stems], seed=7)
    write_song(root, "big", stems=audio, two={}, title="benchmark song")
    return root


@contextlib.contextmanager
def sandbox_process(library: Path, throttle: float | None = None, *, polls_to_complete: int = 1):
    """The sandbox in a process of its own, like a remote provider: the client's threads and the
    server's do not share one GIL. Yields its base URL (keys: ``sk-bench``, ``afk_bench``)."""
    script = Path(__file__).resolve().parent / "sandbox_process.py"
    server = subprocess.Popen([sys.executable, str(script), str(library), str(throttle or 0), str(polls_to_complete)],
                              stdout=subprocess.PIPE, text=True)
    try:
        yield server.stdout.readline().strip()
    finally:
        server.terminate()
        server.wait(timeout=10)
