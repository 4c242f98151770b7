"""The report on small sets made here: one scene per set, each byte string once, Opus audio, the
odd sets (no source, every stem silent, stems of different lengths), and hostile names."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import soundfile as sf

import stemlab
from stemlab.view.report import render_report, section

SR = 44100


def _folder(root, name, stems: dict[str, np.ndarray], source: np.ndarray | None = None):
    folder = root / name
    folder.mkdir()
    for stem, audio in stems.items():
        sf.write(folder / f"{stem}.wav", audio.T, SR)
    if source is not None:
        sf.write(folder / "mixture.wav", source.T, SR)
    return stemlab.open_set(folder, cache_dir=root / "cache")


def _tone(freq, seconds=1.0, level=0.3):
    t = np.arange(int(seconds * SR)) / SR
    return np.stack([level * np.sin(2 * np.pi * freq * t)] * 2).astype(np.float32)


def _payload(page):
    data = json.loads(re.search(r'id="stemlab-data">(.*?)</script>', page, re.S).group(1))
    blobs = dict(re.findall(r'data-stemlab-blob="(\w+)">(.*?)</script>', page, re.S))
    return data, blobs


def test_one_scene_per_set_with_each_file_once_in_opus(tmp_path):
    vocals, drums = _tone(440), _tone(110)
    truth = _folder(tmp_path, "truth", {"vocals": vocals, "drums": drums}, source=vocals + drums)
    same = _folder(tmp_path, "same", {"vocals": vocals, "drums": drums}, source=vocals + drums)
    report = render_report("two sets", sections=[section("truth", truth), section("copy", same)])
    data, blobs = _payload(report.html)
    first, second = data["scenes"]
    assert [s["label"] for s in data["scenes"]] == ["truth", "copy"] and len(first["audio"]) == 3
    assert first["audio"] == second["audio"]  # identical files: embedded once
    assert sum(1 for key in blobs if key in first["audio"]) == 3
    assert all(base64.b64decode(blobs[key])[:4] == b"OggS" for key in first["audio"])
    assert f"Ogg Opus at {report.audio_kbps} kbit/s" in report.html
    assert report.size_bytes == len(report.html.encode())


def test_odd_sets_render(tmp_path):
    """No source and stems of different lengths: the player spans the longest; every stem silent:
    the set still gets its rows (there is nothing to play, and it says so)."""
    ragged = _folder(tmp_path, "ragged", {"vocals": _tone(440, 0.5), "drums": _tone(110, 1.0)})
    quiet = _folder(tmp_path, "quiet", {"vocals": np.zeros((2, SR), np.float32), "bass": np.zeros((2, SR), np.float32)})
    report = render_report("odd", sections=[section("ragged", ragged), section("quiet", quiet)])
    data, _ = _payload(report.html)
    ragged_scene, quiet_scene = data["scenes"]
    assert abs(ragged_scene["state"]["duration"] - 1.0) < 1e-3 and abs(ragged_scene["state"]["t1"] - 1.0) < 1e-3
    assert len(quiet_scene["audio"]) == 2 and all(t["silent"] for t in quiet_scene["state"]["tracks"])


def test_names_from_providers_cannot_inject_markup(tmp_path):
    hostile = "<img src=x onerror=alert(1)>"
    s = _folder(tmp_path, "hostile", {"vocals": _tone(440)}, source=_tone(440))
    page = render_report(hostile, sections=[section(hostile, s, description=hostile)]).html
    body = page.split('<script type="application/json"')[0]
    assert hostile not in body and "&lt;img src=x onerror=alert(1)&gt;" in body
    data, _ = _payload(page)
    assert data["scenes"][0]["label"] == hostile  # the page puts it in with textContent
