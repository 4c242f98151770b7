"""Explorer benchmark, 12 stems x 3 min (+ source), every figure against a baseline or a target.

* first paint: building every row (envelope and spectrogram image of the source and 12 stems,
  ready for the browser), cold (no view cache yet) and warm, against
  ``librosa.display.waveshow`` + ``specshow`` per track (measured on 3 tracks, scaled to 13);
* a zoom update (every row recomputed for a new window), target <= 100 ms;
* peak RSS of a fresh process that opens the set and explores it, against the decoded set's size
  (target <= 1.3 x decoded + 150 MB);
* the size of a saved notebook holding an explorer on the set, executed by nbclient (target <= 2 MB).

Run: ``python benchmarks/bench_explore.py``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import big_library, median_time, verdict  # noqa: E402

import matplotlib  # noqa: E402

matplotlib.use("Agg")

from stemlab.fetching import fetch  # noqa: E402
from stemlab.sandbox import Sandbox  # noqa: E402


def fetched_set(cache: Path):
    with Sandbox(big_library(), polls_to_complete=0) as sb:
        return fetch("cqtai", clip_id="big", settings=sb.settings(cache_dir=cache), progress=False).decode_all()


def clear_view_caches(stemset) -> None:
    for path in stemset.derived_dir.glob("*"):
        if any(kind in path.name for kind in (".summary.", ".stft2048.")):
            path.unlink()


def librosa_baseline(stemset, tracks: int = 3) -> float:
    """Seconds for waveshow + specshow of one track (median over ``tracks``), as a notebook would."""
    import librosa
    import librosa.display
    import matplotlib.pyplot as plt
    import numpy as np

    times = []
    for stem in list(stemset)[:tracks]:
        started = time.perf_counter()
        y = np.asarray(stem.audio).mean(axis=0)
        fig, (a, b) = plt.subplots(2, 1, figsize=(10, 3))
        librosa.display.waveshow(y, sr=stemset.sr, ax=a)
        D = librosa.amplitude_to_db(np.abs(librosa.stft(y)), ref=np.max)
        librosa.display.specshow(D, sr=stemset.sr, x_axis="time", y_axis="log", ax=b)
        fig.canvas.draw()
        plt.close(fig)
        times.append(time.perf_counter() - started)
    return float(np.median(times))


RSS_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    from stemlab.stemset import StemSet
    from stemlab.view.explorer import Explorer
    s = StemSet.open(sys.argv[1])
    decoded = sum(np.asarray(t.audio).nbytes for t in [s.source, *s])
    ex = Explorer(s)
    for t0 in (0, 30, 60, 120):
        ex.zoom(t0, t0 + 20)
    ex.scale_select.value = "mel"
    ex.zoom(0, s.duration)
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork and exec
    hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    print(json.dumps({"decoded": decoded, "peak_rss": hwm * 1024}))
""")


def notebook_size(set_dir: Path, work: Path) -> int:
    import nbformat
    from nbclient import NotebookClient
    import nbclient.output_widget as output_widget

    output_widget.OutputWidget.sync_state = lambda self: None  # jupyter/nbclient#312
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(f"import stemlab\ns = stemlab.StemSet.open({str(set_dir)!r})"),
        nbformat.v4.new_code_cell("ex = stemlab.explore(s)\nex"),
        nbformat.v4.new_code_cell("ex.zoom(30, 40)"),
    ])
    NotebookClient(nb, timeout=300, kernel_name="python3").execute()
    path = work / "explorer.ipynb"
    nbformat.write(nb, path)
    return path.stat().st_size


def main() -> int:
    from stemlab.view.explorer import Explorer

    work = Path(tempfile.mkdtemp(prefix="stemlab-bench-explore-"))
    stemset = fetched_set(work / "cache")
    results = []

    cold = median_time(lambda: Explorer(stemset), repeat=3, setup=lambda: clear_view_caches(stemset))
    warm = median_time(lambda: Explorer(stemset), repeat=3)
    per_track = librosa_baseline(stemset)
    tracks = len(stemset) + 1
    baseline = per_track * tracks
    print(f"first paint: {tracks} rows, waveform + spectrogram; baseline {per_track:.2f} s per track x {tracks}")
    results.append(verdict("paint cold", cold, baseline, "librosa waveshow+specshow", target=50))
    results.append(verdict("paint warm", warm, baseline, "librosa waveshow+specshow", target=50))
    print(f"{'':12} first paint <= 1.5 s: cold {cold:.2f} s {'PASS' if cold <= 1.5 else 'MISS'}, "
          f"warm {warm:.2f} s {'PASS' if warm <= 1.5 else 'MISS'}")
    results.append(warm <= 1.5)

    explorer = Explorer(stemset)
    windows = iter([(t, t + 10.0) for t in range(0, 170, 7)] * 4)
    zoom = median_time(lambda: explorer.zoom(*next(windows)), repeat=15)
    print(f"{'zoom':12} stemlab {zoom * 1000:8.1f} ms  (target <= 100 ms)  {'PASS' if zoom <= 0.1 else 'MISS'}")
    results.append(zoom <= 0.1)

    out = subprocess.run([sys.executable, "-c", RSS_SCRIPT, str(stemset.folder)], capture_output=True, text=True,
                         check=True)
    rss = json.loads(out.stdout.strip().splitlines()[-1])
    limit = 1.3 * rss["decoded"] + 150e6
    print(f"{'peak RSS':12} stemlab {rss['peak_rss'] / 1e6:8.0f} MB  decoded set {rss['decoded'] / 1e6:.0f} MB, "
          f"limit 1.3x + 150 MB = {limit / 1e6:.0f} MB  ratio {rss['peak_rss'] / rss['decoded']:.2f}x  "
          f"{'PASS' if rss['peak_rss'] <= limit else 'MISS'}")
    results.append(rss["peak_rss"] <= limit)

    size = notebook_size(stemset.folder, work)
    print(f"{'notebook':12} saved with an explorer: {size / 1e6:.2f} MB (target <= 2 MB)  {'PASS' if size <= 2e6 else 'MISS'}")
    results.append(size <= 2e6)
    shutil.rmtree(work, ignore_errors=True)
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
