"""Polyphonic transcription, scored by mir_eval: the demo song's polyphonic stems against the MIDI
they were rendered from, and random chords the test writes and synthesises itself."""

from __future__ import annotations

import time
from pathlib import Path

import mir_eval
import numpy as np
import pandas as pd
import pretty_midi
import pytest

import stemlab
from stemlab.transcription import polyphonic
from stemlab.transcription.notes import NOTE_COLUMNS, empty_notes
from stemlab.transcription.polyphonic import transcribe_polyphonic

SONG_MIDI = Path(stemlab.__file__).parent / "demo" / "data" / "song.mid"
RANGES = {"keyboard": (21, 108), "guitar": (40, 88), "strings": (28, 100), "brass": (34, 84),
          "backing_vocals": (40, 84)}
TARGET_F1 = 0.6


def _midi_to_hz(pitch):
    return 440.0 * 2.0 ** ((np.asarray(pitch, float) - 69.0) / 12.0)


def note_f1(notes: pd.DataFrame, reference: list, offset_ratio: float | None = None) -> float:
    """mir_eval's note F1 (50 ms onsets, 50 cents) of a notes table against pretty_midi notes."""
    ref_intervals = np.array([[n.start, n.end] for n in reference])
    ref_pitches = _midi_to_hz([n.pitch for n in reference])
    if notes.empty:
        return 0.0
    _, _, f1, _ = mir_eval.transcription.precision_recall_f1_overlap(
        ref_intervals, ref_pitches, notes[["onset", "offset"]].to_numpy(), _midi_to_hz(notes["pitch"]),
        onset_tolerance=0.05, pitch_tolerance=50.0, offset_ratio=offset_ratio)
    return f1


@pytest.fixture(scope="session")
def demo_truth():
    return {inst.name: inst.notes for inst in pretty_midi.PrettyMIDI(str(SONG_MIDI)).instruments}


# Measured note F1 without offsets (librosa 0.11): keyboard 0.68, guitar 0.70, strings 0.65, brass 0.94,
# backing_vocals 0.61. Backing vocals sit close to the bar: about half their notes are "aahs" re-sung on
# the same pitch with no change of level (heavy reverb), which no onset cue in the audio reveals, so
# the reachable F1 is about 0.64 even with every other note right.
@pytest.mark.parametrize("stem", list(RANGES))
def test_demo_stem_note_f1(demo_set, demo_truth, stem):
    y = demo_set[stem].audio.mean(axis=0)
    notes = transcribe_polyphonic(y, demo_set.sr, pitch_range=RANGES[stem])
    assert note_f1(notes, demo_truth[stem]) >= TARGET_F1


def test_demo_speed(demo_set):
    y = demo_set["strings"].audio.mean(axis=0)
    t0 = time.perf_counter()
    transcribe_polyphonic(y, demo_set.sr, pitch_range=RANGES["strings"])
    assert time.perf_counter() - t0 <= 0.15 * y.size / demo_set.sr


# --- material the test makes itself -------------------------------------------------------------

def random_chords(seed: int, seconds: float = 12.0) -> pretty_midi.PrettyMIDI:
    """Seeded random polyphony: chords of 2-4 notes (some repeated), with arpeggiated notes between."""
    rng = np.random.default_rng(seed)
    midi = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(program=0, name="chords")
    t = 0.2
    while t < seconds - 1.0:
        root = int(rng.integers(45, 64))
        shape = [0, 4, 7, 12] if rng.random() < 0.5 else [0, 3, 7, 10]
        chord = sorted({root + shape[i] for i in rng.choice(4, size=int(rng.integers(2, 5)), replace=False)})
        duration = float(rng.uniform(0.3, 0.9))
        for _ in range(int(rng.integers(1, 3))):               # a chord, sometimes struck twice
            velocity = int(rng.integers(60, 110))
            for pitch in chord:
                inst.notes.append(pretty_midi.Note(velocity, pitch, t, t + duration))
            t += duration + float(rng.uniform(0.05, 0.2))
        if rng.random() < 0.5:                                 # a short run of single notes
            for _ in range(int(rng.integers(2, 5))):
                pitch = int(rng.integers(55, 80))
                inst.notes.append(pretty_midi.Note(int(rng.integers(60, 110)), pitch, t, t + 0.25))
                t += 0.3
    midi.instruments.append(inst)
    return midi


def synthesise(midi: pretty_midi.PrettyMIDI, sr: int, seed: int) -> np.ndarray:
    """Additive synth: 10 slightly inharmonic partials with amplitudes falling with partial number
    and decaying faster the higher they are, a few cents of detune per note, an attack-decay-release
    envelope, and a little noise."""
    rng = np.random.default_rng(seed)
    notes = midi.instruments[0].notes
    y = np.zeros(int((midi.get_end_time() + 1.0) * sr))
    release = 0.08
    for note in notes:
        n = int((note.end - note.start + release) * sr)
        t = np.arange(n) / sr
        f0 = _midi_to_hz(note.pitch) * 2 ** (rng.uniform(-8, 8) / 1200)
        attack = np.minimum(t / 0.012, 1.0)
        held = np.where(t < note.end - note.start, 1.0,
                        np.exp(-(t - (note.end - note.start)) / (release / 4)))
        tone = np.zeros(n)
        for k in range(1, 11):
            fk = f0 * k * np.sqrt(1 + 2e-4 * k * k)
            if fk > 0.45 * sr:
                break
            tone += (k ** -1.0) * np.exp(-t * (1.0 + 0.4 * k)) * np.sin(2 * np.pi * fk * t + rng.uniform(0, 2 * np.pi))
        start = int(note.start * sr)
        y[start:start + n] += (note.velocity / 127) * 0.1 * attack * held * tone
    y += 1e-4 * rng.standard_normal(y.size)
    return y.astype(np.float32)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_synthesised_chords_note_f1(seed):
    midi = random_chords(seed)
    sr = 22050 if seed % 2 else 44100
    notes = transcribe_polyphonic(synthesise(midi, sr, seed), sr, pitch_range=(36, 96))
    assert note_f1(notes, midi.instruments[0].notes) >= TARGET_F1


# --- contract ----------------------------------------------------------------------------------

@pytest.mark.parametrize("y", [np.zeros(44100, np.float32), np.full(30000, 1e-7, np.float32),
                               np.zeros(100, np.float32)], ids=["zeros", "near-silent", "tiny"])
def test_silence_gives_an_empty_table(y):
    notes = transcribe_polyphonic(y, 44100)
    assert notes.empty
    assert tuple(notes.columns) == NOTE_COLUMNS
    assert notes.dtypes.equals(empty_notes().dtypes)


def test_deterministic_and_typed():
    midi = random_chords(7, seconds=5.0)
    y = synthesise(midi, 22050, 7)
    first = transcribe_polyphonic(y, 22050)
    second = transcribe_polyphonic(y.copy(), 22050)
    pd.testing.assert_frame_equal(first, second)
    assert not first.empty and tuple(first.columns) == NOTE_COLUMNS
    assert first.dtypes.equals(empty_notes().dtypes)
    assert (first["offset"] > first["onset"]).all()
    assert first["velocity"].between(1, 127).all() and first["confidence"].between(0, 1).all()


def test_notes_stay_within_pitch_range():
    midi = random_chords(11, seconds=6.0)
    y = synthesise(midi, 22050, 11)
    notes = transcribe_polyphonic(y, 22050, pitch_range=(55, 67))
    assert not notes.empty
    assert notes["pitch"].between(55, 67).all()


def test_given_tuning_is_used():
    """A stem tuned a third of a semitone sharp: with the tuning given (or estimated) the notes keep
    their pitch names."""
    midi = random_chords(5, seconds=5.0)
    sr = 22050
    sharp = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(program=0)
    inst.notes = list(midi.instruments[0].notes)
    sharp.instruments.append(inst)
    y = synthesise(sharp, sr, 5)
    # shift everything up by 0.3 semitones by resampling the time axis
    factor = 2 ** (0.3 / 12)
    shifted = np.interp(np.arange(0, y.size, factor), np.arange(y.size), y).astype(np.float32)
    for tuning in (0.3, None):
        notes = transcribe_polyphonic(shifted, sr, pitch_range=(36, 96), tuning=tuning)
        reference = [pretty_midi.Note(n.velocity, n.pitch, n.start / factor, n.end / factor) for n in inst.notes]
        assert note_f1(notes, reference) >= TARGET_F1, tuning


def test_rejects_bad_input():
    with pytest.raises(ValueError):
        transcribe_polyphonic(np.zeros((2, 1000), np.float32), 22050)
    with pytest.raises(ValueError):
        transcribe_polyphonic(np.zeros(1000, np.float32), 22050, pitch_range=(60, 50))
    with pytest.raises(ValueError):
        transcribe_polyphonic(np.full(22050, np.nan, np.float32), 22050)


# --- note-tracking steps ------------------------------------------------------------------------

def test_chord_notes_share_one_onset():
    notes = [(100, 200, 0, 1.0), (103, 200, 4, 1.0), (105, 200, 7, 1.0), (300, 400, 2, 1.0)]
    moved = polyphonic._common_onsets(notes)
    assert [n[0] for n in moved] == [103, 103, 103, 300]


def test_sustained_note_is_split_at_a_chord_change_but_a_decaying_one_is_not():
    frames = 400
    level = np.full((3, frames), -80.0)
    level[0, 50:350] = -6.0                                  # a held, bowed note
    level[1, 50:350] = -6.0 - 0.1 * np.arange(300)           # a struck note ringing on, decaying
    level[2, 200:350] = -6.0                                 # the new chord's note
    H = 10 ** (level / 20)
    notes = [(50, 350, 0, 0.5), (50, 350, 1, 0.5), (200, 350, 2, 0.5), (201, 350, 2, 0.5)]
    out = polyphonic._split_at_chord_changes(notes, level, H)
    assert [(n[0], n[2]) for n in out if n[2] in (0, 1)] == [(50, 0), (50, 1), (200, 0)]
