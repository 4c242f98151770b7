"""Fetch pipeline benchmark, 12 stems x 3 min, every figure against a baseline measured in this run.

* cold fetch (submit, poll, download 13 MP3s) from a sandbox capped at 2 MB/s per connection,
  against a sequential httpx download loop of the same files;
* warm open (a second ``fetch`` served from the cache, every array mapped), against a
  ``librosa.load`` loop over the cached MP3s;
* cold decode (MP3 -> .npy cache, every stem and the source), against a sequential
  ``soundfile.read`` loop.

Targets: fetch >= 8x, warm open >= 30x, cold decode >= 1.6x. Run: ``python benchmarks/bench_fetch.py``.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import big_library, interleaved, median_time, sandbox_process, verdict  # noqa: E402

from stemlab.config import Settings  # noqa: E402
from stemlab.fetching import fetch  # noqa: E402

THROTTLE = 2_000_000  # bytes per second per connection


def main(repeat: int = 3) -> int:
    library = big_library()
    work = Path(tempfile.mkdtemp(prefix="stemlab-bench-"))
    results = []
    with sandbox_process(library, THROTTLE) as url:
        settings = Settings.resolve(cqtai_url=f"{url}/cqtai", suno_cdn_url=f"{url}/suno-cdn", cqtai_api_key="sk-bench",
                                    poll_interval=0.05)
        runs = iter(range(1000))

        def cold_fetch():
            fetch("cqtai", clip_id="big", settings=settings.replace(cache_dir=work / f"cold-{next(runs)}"),
                  progress=False)

        cold = median_time(cold_fetch, repeat=repeat)
        stemset = fetch("cqtai", clip_id="big", settings=settings.replace(cache_dir=work / "warm"), progress=False)
        urls = [entry["url"] for entry in stemset.manifest["stems"]] + [stemset.manifest["source"]["url"]]
        total_mb = sum(e["size"] for e in stemset.manifest["stems"]) / 1e6 + stemset.manifest["source"]["size"] / 1e6

        def sequential_httpx():
            with httpx.Client() as client:
                for url in urls:
                    with client.stream("GET", url) as r, open(work / "seq.mp3", "wb") as f:
                        for chunk in r.iter_bytes():
                            f.write(chunk)

        baseline = median_time(sequential_httpx, repeat=repeat)
        print(f"13 files, {total_mb:.1f} MB, sandbox capped at {THROTTLE / 1e6:.0f} MB/s per connection")
        results.append(verdict("cold fetch", cold, baseline, "sequential httpx", target=8))

    tracks = [stemset.source, *stemset]
    derived = stemset.derived_dir

    def cold_decode():
        stemset.with_options().decode_all()

    def soundfile_loop():
        import soundfile as sf

        for track in tracks:
            sf.read(str(track.path), dtype="float32")

    decode, decode_baseline = interleaved(cold_decode, soundfile_loop, repeat=max(repeat, 5),
                                          setup=lambda: shutil.rmtree(derived, ignore_errors=True))
    results.append(verdict("cold decode", decode, decode_baseline, "soundfile loop", target=1.6))

    warm_settings = settings.replace(cache_dir=work / "warm")

    def warm_open():
        s = fetch("cqtai", clip_id="big", settings=warm_settings, progress=False)
        for track in [s.source, *s]:
            np.asarray(track.audio[:, :1])

    warm = median_time(warm_open, repeat=max(repeat, 5))

    def librosa_loop():
        for track in tracks:
            librosa.load(str(track.path), sr=None, mono=False)

    import librosa  # imported before timing: its import cost is not part of the baseline

    warm_baseline = median_time(librosa_loop, repeat=repeat)
    results.append(verdict("warm open", warm, warm_baseline, "librosa.load loop", target=30))
    shutil.rmtree(work, ignore_errors=True)
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
