"""Transcription: how right (on the demo song, scored by mir_eval against the MIDI it was rendered
from) and how fast (on a 12-stem, 3-minute set), against librosa's plain ``pyin``.

Accuracy: per stem, note F1 with a 50 ms onset tolerance and 50 cents of pitch, offsets ignored,
then with offsets (20% of the note or 50 ms); drums as onset F1 per class (kick, snare, hi-hat with
the cymbals), and their mean. Targets: monophonic stems (vocals, bass) >= 0.9, drums' mean >= 0.9,
polyphonic stems >= 0.6.

Speed: the demo's stems tiled to 180 s (nine audible, three silent, as real 12-stem splits are),
every stem transcribed by its kind's method with no cache, against ``librosa.pyin`` with its
documented example range (C2-C7) on the same twelve stems, measured in the same run. Target: at
most 0.5 x real time in stem-seconds (2160 stem-seconds in at most 1080 s).

Run: ``python benchmarks/bench_midi.py [--seconds 180] [--skip-speed]``; the accuracy table is
also written to ``benchmarks/out/midi.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import librosa
import mir_eval
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import OUT  # noqa: E402

import stemlab  # noqa: E402
from stemlab.demo import song_notes  # noqa: E402
from stemlab.transcription.drums import DRUM_CLASSES  # noqa: E402
from stemlab.transcription.kinds import kind_of  # noqa: E402
from stemlab.transcription.stems import transcribe_audio  # noqa: E402

TARGETS = {"monophonic": 0.9, "drums": 0.9, "polyphonic": 0.6}
SCORED_DRUMS = ("kick", "snare", "hihat")


def hz(pitches) -> np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(pitches, float) - 69.0) / 12.0)


def note_f1(estimate, reference, offsets: bool) -> float:
    return mir_eval.transcription.precision_recall_f1_overlap(
        reference[["onset", "offset"]].to_numpy(float), hz(reference.pitch),
        estimate[["onset", "offset"]].to_numpy(float).reshape(-1, 2), hz(estimate.pitch),
        onset_tolerance=0.05, pitch_tolerance=50.0, offset_ratio=0.2 if offsets else None)[2]


def hits(notes, keys=None) -> np.ndarray:
    """Onsets of the notes on ``keys`` (all keys: None), hits within 30 ms counted once."""
    onsets = np.sort((notes if keys is None else notes[notes.pitch.isin(keys)]).onset.to_numpy(float))
    kept = []
    for onset in onsets:
        if not kept or onset - kept[-1] >= 0.03:
            kept.append(onset)
    return np.asarray(kept)


def drum_f1(estimate, reference) -> dict[str, float]:
    """Onset F1 per class the reference plays; for a stem with none of them (shakers,
    tambourines), onset F1 whatever the class."""
    scores = {name: mir_eval.onset.f_measure(hits(reference, DRUM_CLASSES[name]), hits(estimate, DRUM_CLASSES[name]),
                                             window=0.05)[0]
              for name in SCORED_DRUMS if len(hits(reference, DRUM_CLASSES[name]))}
    return scores or {"any class": mir_eval.onset.f_measure(hits(reference), hits(estimate), window=0.05)[0]}


def accuracy(song) -> list[dict]:
    truth = song_notes()
    rows = []
    for stem in song.names:
        reference = truth[truth.stem == stem]
        if not len(reference):
            continue
        kind = kind_of(stem)
        started = time.perf_counter()
        estimate = stemlab.transcribe(song[stem])
        seconds = time.perf_counter() - started
        row = {"stem": stem, "method": kind.method, "true": len(reference), "found": len(estimate),
               "seconds": round(seconds, 2), "target": TARGETS[kind.method]}
        if kind.method == "drums":
            per_class = drum_f1(estimate, reference)
            row.update(per_class={k: round(v, 3) for k, v in per_class.items()},
                       f1=round(float(np.mean(list(per_class.values()))), 3), f1_offsets=None)
        else:
            row.update(f1=round(note_f1(estimate, reference, False), 3),
                       f1_offsets=round(note_f1(estimate, reference, True), 3))
        rows.append(row)
    return rows


def print_table(rows: list[dict]) -> None:
    print("| stem | method | true notes | found | note F1 | with offsets | target | |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        detail = (" (" + ", ".join(f"{k} {v:.2f}" for k, v in r["per_class"].items()) + ")") if "per_class" in r else ""
        offsets = "" if r["f1_offsets"] is None else f"{r['f1_offsets']:.2f}"
        print(f"| {r['stem']} | {r['method']}{detail} | {r['true']} | {r['found']} | {r['f1']:.2f} | {offsets} | "
              f">= {r['target']} | {'met' if r['f1'] >= r['target'] else 'MISSED'} |")


def tiled(song, seconds: float) -> dict[str, np.ndarray]:
    n = int(seconds * song.sr)
    return {stem.name: np.resize(np.asarray(stem.audio).mean(axis=0), n).astype(np.float32) for stem in song}


def speed(song, seconds: float) -> bool:
    stems = tiled(song, seconds)
    stem_seconds = seconds * len(stems)
    print(f"\nspeed: {len(stems)} stems x {seconds:.0f} s = {stem_seconds:.0f} stem-seconds at {song.sr} Hz", flush=True)
    started = time.perf_counter()
    for name, mono in stems.items():
        t = time.perf_counter()
        silent = not np.any(mono)
        found = 0 if silent else len(transcribe_audio(mono, song.sr, stem=name))
        print(f"  stemlab  {name:<15} {time.perf_counter() - t:6.1f} s  {found:5d} notes", flush=True)
    ours = time.perf_counter() - started
    started = time.perf_counter()
    for name, mono in stems.items():
        t = time.perf_counter()
        y = librosa.resample(mono, orig_sr=song.sr, target_sr=22050)
        librosa.pyin(y, fmin=librosa.note_to_hz("C2"), fmax=librosa.note_to_hz("C7"), sr=22050)
        print(f"  pyin     {name:<15} {time.perf_counter() - t:6.1f} s", flush=True)
    baseline = time.perf_counter() - started
    ok = ours <= 0.5 * stem_seconds
    print(f"transcribe   stemlab {ours:8.1f} s ({ours / stem_seconds:.3f} x real time)   librosa.pyin (plain) "
          f"{baseline:8.1f} s ({baseline / stem_seconds:.3f} x real time)   ratio {baseline / ours:5.1f}x   "
          f"(target <= 0.5 x real time)  {'PASS' if ok else 'MISS'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-midi-") as cache:
        song = stemlab.demo_song(cache_dir=cache)
        rows = accuracy(song)
        print_table(rows)
        OUT.mkdir(exist_ok=True)
        (OUT / "midi.json").write_text(json.dumps(rows, indent=2) + "\n")
        ok = all(r["f1"] >= r["target"] for r in rows)
        if not args.skip_speed:
            ok = speed(song, args.seconds) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
