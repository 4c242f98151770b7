"""The built-in demo: the song's true stems, the sandbox library built from them, ``stemlab demo``."""

import base64
import io
import json
import re
from pathlib import Path

import numpy as np

from stemlab.demo import demo_song, song_info
from stemlab.demo.run import run_demo
from stemlab.taxonomy import TWELVE_STEMS


def test_demo_song_is_twelve_true_stems_summing_to_the_source():
    s = demo_song()
    info = song_info()
    assert s.names == list(TWELVE_STEMS) and s.provider == "demo"
    assert s.duration >= 30 and s.sr == info["sr"]
    audible = [stem.name for stem in s if np.abs(stem.audio).max() > 0]
    assert len(audible) >= 7 and {"vocals", "backing_vocals", "drums", "bass", "keyboard"} <= set(audible)
    assert sorted(set(TWELVE_STEMS) - set(audible)) == sorted(info["silent_stems"])
    total = sum(np.asarray(stem.audio, dtype=np.float64) for stem in s)
    assert np.abs(total - s.source.audio).max() < 1e-5  # the mix is the sum (24-bit source file)
    # lead vocals sit in the centre; backing vocals are spread wide
    vocals, backing = s["vocals"].audio, s["backing_vocals"].audio
    assert abs(20 * np.log10(np.std(vocals[0]) / np.std(vocals[1]))) < 1.0  # within 1 dB (stereo reverb)
    assert np.corrcoef(backing[0], backing[1])[0, 1] < 0.9
    assert demo_song().folder == s.folder  # the second call only opens it


def test_stemlab_demo_separates_fetches_checks_and_reports(demo_run):
    text, report, cache, _ = demo_run
    rows = {line.split("  ")[0].strip(): line for line in text.splitlines()
            if line.startswith(("local ", "cqtai ", "apiframe "))}
    assert set(rows) == {"local hpss", "local repet-sim", "local center", "local nmf", "local oracle",
                         "cqtai 12 stems", "cqtai 2 stems", "apiframe stems"}
    assert all(" yes " in line for line in rows.values())
    assert "drums +" in rows["local hpss"] and "identical" in rows["cqtai 12 stems"]
    page = report.read_text()
    assert "Scores against the true stems" in page
    assert report.stat().st_size <= 10_000_000 and report.stat().st_mode & 0o777 == 0o644  # mailable, readable
    payload = json.loads(re.search(r'id="stemlab-data">(.*?)</script>', page, re.S).group(1))
    scenes = {scene["label"]: scene for scene in payload["scenes"]}
    assert list(scenes) == ["true stems", *rows]  # every set on the one player
    assert len(scenes["true stems"]["audio"]) == 10  # the source and the 9 audible stems; silent ones get none
    assert scenes["cqtai 12 stems"]["audio"][1:] == scenes["true stems"]["audio"][1:]  # identical stems, once
    blobs = dict(re.findall(r'data-stemlab-blob="(\w+)">(.*?)</script>', page, re.S))
    assert all(base64.b64decode(blobs[key][:8])[:4] == b"OggS" for scene in scenes.values() for key in scene["audio"])
    kbps = re.search(r"Ogg Opus at (\d+) kbit/s", page).group(1)
    assert f"audio Ogg Opus {kbps} kbit/s" in text
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    quoted = float(re.search(r"demo-report\.html  \(([\d.]+) MB", readme).group(1))
    assert abs(quoted - report.stat().st_size / 1e6) < 0.5, "update the report size the README quotes"
    # the page and the terminal report the same span; the table fits 80 columns
    assert re.search(r"in (\d+) s\.", page).group(1) == re.search(r"made in (\d+) s", text).group(1)
    table = text.split("\n\n")[1].splitlines()
    assert table[0].startswith("set ") and len(table) > 9 and max(map(len, table)) <= 80
    manifests = {p: p.stat().st_mtime_ns for p in (cache / "sets").glob("*/manifest.json")}
    again = io.StringIO()
    assert run_demo(cache_dir=str(cache), progress=False, out=again) == 0
    # the second run reads every separation and fetch from the cache (benchmarks/bench_demo.py times it)
    assert {p: p.stat().st_mtime_ns for p in (cache / "sets").glob("*/manifest.json")} == manifests
    assert len(manifests) == 9  # the demo song, five local methods, three fetched splits
    assert all(" yes " in line for line in again.getvalue().splitlines() if line.startswith("local "))


def test_the_demo_table_and_compare_give_the_same_numbers(demo_run):
    """One truth scorer: the demo's printed improvements are compare(reference=truth)'s."""
    import stemlab

    text, _, cache, _ = demo_run
    line = next(line for line in text.splitlines() if line.startswith("local nmf"))
    printed = dict(part.strip().rsplit(" ", 1) for part in line.split("  ")[-1].split(", "))
    truth = demo_song(cache_dir=cache)
    scores = stemlab.compare(stemlab.separate(truth, method="nmf", cache_dir=cache), reference=truth,
                             bss=False).scores().set_index("stem")
    assert set(printed) == {"drums", "bass", "other"}
    for stem, value in printed.items():
        assert float(value) == round(scores.loc[stem, "si_sdr_improvement"], 1)
