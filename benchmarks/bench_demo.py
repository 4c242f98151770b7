"""``stemlab demo``: a second run, served from the cache, against the first run, in the same process.

The first run separates the demo song five ways, fetches three splits through the sandbox, scores
and checks every set and writes the report. A second run must read every separation and fetch
from the cache, so it should cost a fraction of the first: what is left is scoring, checking and
the report. Baseline: the cold run, measured in the same run (median of ``--repeat`` warm runs).

Target: warm <= 0.5 x cold (ratio >= 2x).

Run: ``python benchmarks/bench_demo.py [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import median_time, verdict  # noqa: E402

from stemlab.demo.run import run_demo  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cache = Path(tempfile.mkdtemp(prefix="bench-demo-"))
    try:
        started = time.perf_counter()
        assert run_demo(cache_dir=cache, progress=False, out=io.StringIO()) == 0
        cold = time.perf_counter() - started
        warm = median_time(lambda: run_demo(cache_dir=cache, progress=False, out=io.StringIO()), repeat=args.repeat)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    ok = verdict("demo warm", warm, cold, "cold run", target=2.0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
