"""Drum transcription: per-class onset F1 (mir_eval) on the demo's drums and on synthesised patterns."""

from __future__ import annotations

import io
from importlib.resources import files

import mir_eval
import numpy as np
import pretty_midi
import pytest
import soundfile as sf

from stemlab.sandbox.library import encode_mp3
from stemlab.sandbox.synth import synth_notes, synth_stems
from stemlab.transcription.drums import (
    DRUM_CLASSES,
    HIHAT,
    KICK,
    SNARE,
    transcribe_drums,
)
from stemlab.transcription.notes import NOTE_COLUMNS, empty_notes

SR = 22050
CLASSES = ("kick", "snare", "hihat")


def _dedupe(times, gap=0.03):
    out = []
    for t in np.sort(np.asarray(times, float)):
        if not out or t - out[-1] > gap:
            out.append(t)
    return np.array(out)


def _class_f1(ref_onsets, ref_keys, notes) -> dict[str, float]:
    """Per-class onset F1 (50 ms window); ref onsets of a class are the truth hits whose key is in it."""
    ref_onsets, ref_keys = np.asarray(ref_onsets), np.asarray(ref_keys)
    scores = {}
    for name in CLASSES:
        keys = list(DRUM_CLASSES[name])
        ref = _dedupe(ref_onsets[np.isin(ref_keys, keys)])
        est = _dedupe(notes.onset[notes.pitch.isin(keys)].to_numpy())
        scores[name] = mir_eval.onset.f_measure(ref, est, window=0.05)[0]
    return scores


def _report(scores):
    return ", ".join(f"{k} F1={v:.3f}" for k, v in scores.items()) + f"; mean={np.mean(list(scores.values())):.3f}"


# --- a small drum synth -------------------------------------------------------------------------

def _kick(rng, sr=SR):
    t = np.arange(int(0.35 * sr)) / sr
    freq = 50 + 100 * np.exp(-t / 0.03)                      # pitch sweep ~150 -> 50 Hz
    phase = 2 * np.pi * np.cumsum(freq) / sr
    click = rng.standard_normal(t.size) * np.exp(-t / 0.002) * 0.1
    return np.sin(phase) * np.exp(-t / 0.12) + click


def _snare(rng, sr=SR):
    t = np.arange(int(0.25 * sr)) / sr
    tone = np.sin(2 * np.pi * 190 * t) * np.exp(-t / 0.05)
    spec = np.fft.rfft(rng.standard_normal(t.size))
    f = np.fft.rfftfreq(t.size, 1 / sr)
    spec[(f < 1000) | (f > 8000)] = 0                        # band noise 1-8 kHz
    noise = np.fft.irfft(spec, t.size)
    noise /= np.abs(noise).max()
    return 0.6 * tone + 0.7 * noise * np.exp(-t / 0.07)


def _hat(rng, sr=SR):
    t = np.arange(int(0.08 * sr)) / sr
    noise = np.diff(rng.standard_normal(t.size + 1))            # high-passed noise
    spec = np.fft.rfft(noise)
    spec[np.fft.rfftfreq(t.size, 1 / sr) < min(6000, 0.3 * sr)] = 0   # above 6 kHz (lower at low rates)
    noise = np.fft.irfft(spec, t.size)
    return 0.5 * noise / np.abs(noise).max() * np.exp(-t / 0.02)


_VOICES = {KICK: _kick, SNARE: _snare, HIHAT: _hat}


def _faded(voice, sr=SR):
    """``voice`` with a 20 ms fade-out, so its end is no click."""
    n = min(voice.size, int(0.02 * sr))
    voice[-n:] *= np.linspace(1.0, 0.0, n)
    return voice


def _render(hits, duration, seed=0, sr=SR):
    """Mix (time, key, gain) hits with the synth above; a fresh random voice for every hit."""
    rng = np.random.default_rng(seed)
    y = np.zeros(int(duration * sr) + sr)
    for t, key, gain in hits:
        voice = _faded(_VOICES[key](rng, sr), sr) * gain
        start = int(t * sr + 0.5)
        y[start:start + voice.size] += voice
    y += 1e-4 * rng.standard_normal(y.size)
    return (0.5 * y / np.abs(y).max()).astype(np.float32)


def _pattern(seed, bars=8, bpm=110):
    """A random 16th-note groove: kick, backbeat snare (+ ghosts), hats; levels vary, many hits coincide."""
    rng = np.random.default_rng(seed)
    step = 60 / bpm / 4
    hits = []
    for i in range(bars * 16):
        t = 0.1 + i * step + rng.uniform(-0.004, 0.004)
        if i % 4 == 0 and rng.random() < 0.9 or rng.random() < 0.12:
            hits.append((t, KICK, rng.uniform(0.5, 1.0)))
        if i % 8 == 4 or rng.random() < 0.08:
            hits.append((t, SNARE, rng.uniform(0.6, 1.0) if i % 8 == 4 else rng.uniform(0.15, 0.35)))
        if i % 2 == 0 and rng.random() < 0.95 or rng.random() < 0.2:
            hits.append((t, HIHAT, rng.uniform(0.2, 0.6)))
    return hits, bars * 16 * step + 0.5


# --- tests ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def demo(demo_set):
    """The demo song (the session's) and its MIDI tracks by stem name."""
    midi = pretty_midi.PrettyMIDI(str(files("stemlab.demo") / "data" / "song.mid"))
    return demo_set, {inst.name: inst for inst in midi.instruments}


def test_demo_drums_per_class_f1(demo):
    song, truth = demo
    notes = transcribe_drums(song["drums"].audio.mean(axis=0), song.sr)
    ref = truth["drums"].notes
    scores = _class_f1([n.start for n in ref], [n.pitch for n in ref], notes)
    assert np.mean(list(scores.values())) >= 0.92, _report(scores)
    assert min(scores.values()) >= 0.85, _report(scores)


def test_demo_percussion_onsets(demo):
    song, truth = demo
    notes = transcribe_drums(song["percussion"].audio.mean(axis=0), song.sr)
    ref = _dedupe([n.start for n in truth["percussion"].notes])
    f1 = mir_eval.onset.f_measure(ref, _dedupe(notes.onset.to_numpy()), window=0.05)[0]
    assert f1 >= 0.9, f"class-agnostic onset F1 on the percussion stem: {f1:.3f}"


def test_demo_percussion_has_no_kicks_or_snares(demo):
    # a shaker + tambourine stem: every hit is high noise, none may be taken for a kick or snare
    song, truth = demo
    notes = transcribe_drums(song["percussion"].audio.mean(axis=0), song.sr)
    kicks = notes.pitch.isin(list(DRUM_CLASSES["kick"])).sum()
    snares = notes.pitch.isin(list(DRUM_CLASSES["snare"])).sum()
    assert kicks <= 2 and snares <= 2, f"{kicks} kicks and {snares} snares in {len(notes)} percussion notes"
    assert notes.pitch.isin(list(DRUM_CLASSES["hihat"])).sum() >= 0.9 * len(truth["percussion"].notes)


def test_hats_alone_give_no_kicks_or_snares():
    rng = np.random.default_rng(5)
    hits = [(0.1 + 0.125 * i, HIHAT, rng.uniform(0.2, 0.6)) for i in range(64)]
    notes = transcribe_drums(_render(hits, 8.2, 5), SR)
    assert not notes.pitch.isin([KICK, SNARE]).any(), notes[notes.pitch != HIHAT]
    hats = notes.onset[notes.pitch == HIHAT].to_numpy()
    assert mir_eval.onset.f_measure(np.array([h[0] for h in hits]), hats, 0.05)[0] >= 0.95


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_low_sample_rate_still_finds_hats(seed):
    # at 11025 Hz there is nothing above 5.5 kHz: the hi-hat band moves down to what exists
    sr = 11025
    hits, duration = _pattern(seed)
    notes = transcribe_drums(_render(hits, duration, seed, sr=sr), sr)
    scores = _class_f1([h[0] for h in hits], [h[1] for h in hits], notes)
    assert scores["hihat"] >= 0.7 and min(scores["kick"], scores["snare"]) >= 0.85, _report(scores)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_synthetic_patterns_per_class_f1(seed):
    hits, duration = _pattern(seed)
    notes = transcribe_drums(_render(hits, duration, seed), SR)
    scores = _class_f1([h[0] for h in hits], [h[1] for h in hits], notes)
    assert min(scores.values()) >= 0.9, _report(scores)


def test_simultaneous_kick_and_hat_are_both_found():
    # kicks on every beat, hats on every other beat (so half the kicks are alone) and between
    beats = 0.2 + 0.5 * np.arange(16)
    together = beats[::2]
    hits = [(t, KICK, 0.9) for t in beats] + [(t, HIHAT, 0.4) for t in together]
    hits += [(t + 0.25, HIHAT, 0.4) for t in beats]
    notes = transcribe_drums(_render(hits, 8.5), SR)
    kicks = notes.onset[notes.pitch == KICK].to_numpy()
    hats = notes.onset[notes.pitch.isin(list(DRUM_CLASSES["hihat"]))].to_numpy()
    assert mir_eval.onset.f_measure(beats, kicks, 0.05)[0] == 1.0, kicks
    found = [np.min(np.abs(hats - t)) < 0.05 for t in together]
    assert all(found), f"hats on kick beats found: {sum(found)}/{len(together)}"
    hat_f1 = mir_eval.onset.f_measure(np.sort(np.r_[together, beats + 0.25]), hats, 0.05)[0]
    assert hat_f1 >= 0.9, f"hi-hat F1 {hat_f1:.3f}"


class TestSandboxKit:
    """The drum voice of stemlab's own sandbox synth: a 150 -> 45 Hz sine-sweep kick every 2 beats,
    cut off at 0.4 s (a click); a white-noise + 190 Hz snare on 2 and 4, its tail cut off under the
    next hat; 8th-note hats 16 dB below the kick, one on every kick and snare. The sandbox serves
    its songs as MP3, so the stems also go through an MP3 round trip."""

    SR = 44100

    @staticmethod
    def _drums(duration, seed, mp3):
        stereo = synth_stems(duration=duration, sr=TestSandboxKit.SR, names=("drums",), seed=seed)["drums"]
        if mp3:
            decoded, sr = sf.read(io.BytesIO(encode_mp3(stereo, TestSandboxKit.SR)), dtype="float32")
            assert sr == TestSandboxKit.SR
            stereo = decoded.T
        return stereo.mean(axis=0)

    @pytest.mark.parametrize("mp3", [False, True], ids=["raw", "mp3"])
    @pytest.mark.parametrize("seed", [0, 1])
    @pytest.mark.parametrize("duration", [8.0, 30.0])
    def test_per_class_f1(self, duration, seed, mp3):
        notes = transcribe_drums(self._drums(duration, seed, mp3), self.SR)
        truth = synth_notes(duration, names=("drums",))
        scores = _class_f1([n[1] for n in truth], [n[3] for n in truth], notes)
        assert min(scores.values()) >= 0.9, _report(scores)

    def test_first_hit_at_time_zero_and_no_click_onsets(self):
        notes = transcribe_drums(self._drums(4.0, 0, False), self.SR)
        kicks = np.sort(notes.onset[notes.pitch == KICK].to_numpy())
        assert kicks.size and abs(kicks[0]) < 0.02, kicks              # the hit at t = 0
        truth = np.unique([n[1] for n in synth_notes(4.0, names=("drums",))])
        # the kick's cut-off at 0.4 s after each kick is a click, no hit of any class
        stray = [t for t in notes.onset if np.min(np.abs(truth - t)) > 0.05]
        assert not stray, stray


def test_silence_gives_an_empty_table():
    for y in (np.zeros(SR * 2, np.float32), np.zeros(0, np.float32)):
        notes = transcribe_drums(y, SR)
        assert notes.empty
        assert tuple(notes.columns) == NOTE_COLUMNS
        assert dict(notes.dtypes) == dict(empty_notes().dtypes)


def test_table_contract_and_determinism():
    hits, duration = _pattern(7, bars=2)
    y = _render(hits, duration, 7)
    first, second = transcribe_drums(y, SR), transcribe_drums(y.copy(), SR)
    assert first.equals(second)
    assert tuple(first.columns) == NOTE_COLUMNS
    assert dict(first.dtypes) == dict(empty_notes().dtypes)
    assert (first.offset > first.onset).all() and first.onset.is_monotonic_increasing
    assert first.velocity.between(1, 127).all() and first.confidence.between(0, 1).all()
    assert set(first.pitch) <= {KICK, SNARE, HIHAT}
