"""The monophonic method against notes it did not make: the demo song's score (rendered with real
instrument samples) and melodies this file synthesises with vibrato, glides, scoops, repeated
notes, slurs and a detuned reference pitch. mir_eval scores every estimate."""

from __future__ import annotations

import mir_eval
import numpy as np
import pytest

from stemlab.demo import song_notes
from stemlab.transcription.kinds import kind_of
from stemlab.transcription.monophonic import estimate_tuning, transcribe_monophonic
from stemlab.transcription.notes import NOTE_COLUMNS

SR = 22050


def note_f1(estimate, reference, *, offsets: bool = False) -> float:
    """mir_eval's note F1: onsets within 50 ms, pitch within 50 cents (offsets 20% / 50 ms)."""
    hz = lambda p: 440.0 * 2.0 ** ((np.asarray(p, float) - 69.0) / 12.0)  # noqa: E731
    return mir_eval.transcription.precision_recall_f1_overlap(
        np.asarray(reference[["onset", "offset"]], float), hz(reference["pitch"]),
        np.asarray(estimate[["onset", "offset"]], float).reshape(-1, 2), hz(estimate["pitch"]),
        onset_tolerance=0.05, pitch_tolerance=50.0, offset_ratio=0.2 if offsets else None)[2]


@pytest.mark.parametrize("stem", ["vocals", "bass"])
def test_demo_song_lines_reach_note_f1_of_0_9(demo_set, stem):
    truth = song_notes().query("stem == @stem")
    notes = transcribe_monophonic(demo_set[stem].audio.mean(axis=0), demo_set.sr, pitch_range=kind_of(stem).pitch_range)
    f1 = note_f1(notes, truth)
    assert f1 >= 0.9, f"{stem}: note F1 {f1:.3f} ({len(notes)} notes for {len(truth)})"
    assert note_f1(notes, truth, offsets=True) >= 0.5
    assert notes.pitch.between(*kind_of(stem).pitch_range).all()


# ----------------------------------------------------------------------------- made here


def melody(seed: int, *, tuning_cents: float = 0.0, n: int = 40):
    """A sung-like line: ``(audio at SR, true notes as (onset, offset, pitch) rows)``.

    Notes of 0.15-0.8 s; a third are repeated at the same pitch after a 30 ms gap; a third are slurred
    (no gap, no new attack) into the next; long notes get 5.5 Hz vibrato of +-35 cents after 0.2 s;
    phrase starts scoop up from 40 cents below; slurs glide over 50 ms. Five harmonics, reverb-free.
    """
    rng = np.random.default_rng(seed)
    pitch, t, rows, f0_parts, env_parts = 62, 0.25, [], [], []
    f0_parts.append(np.zeros(int(0.25 * SR)))
    env_parts.append(np.zeros(int(0.25 * SR)))
    previous_slur, previous_pitch = False, float(pitch)
    for i in range(n):
        length = float(rng.choice([0.15, 0.25, 0.4, 0.6, 0.8]))
        move = rng.random()
        if i and move < 0.3:
            pass  # repeated note
        else:
            pitch = int(np.clip(pitch + rng.choice([-5, -4, -3, -2, -1, 1, 2, 3, 4, 5]), 50, 76))
        slur = i < n - 1 and move > 0.7 and not previous_slur
        m = int(length * SR)
        k = np.arange(m) / SR
        cents = np.zeros(m)
        if not previous_slur:
            cents += -40.0 * np.clip(1 - k / 0.08, 0, None)  # scoop
        if length >= 0.4:
            cents += 35.0 * np.sin(2 * np.pi * 5.5 * np.clip(k - 0.2, 0, None)) * (k > 0.2)
        midi = pitch + (tuning_cents + cents) / 100.0
        if previous_slur:  # glide from the previous note over 50 ms
            glide = np.clip(k / 0.05, 0, 1)
            midi = previous_pitch + (midi - previous_pitch) * glide
        f0_parts.append(440.0 * 2 ** ((midi - 69) / 12))
        attack = np.ones(m) if previous_slur else np.clip(k / 0.02, 0, 1)
        gap = 0 if slur else int(0.03 * SR)
        release = np.ones(m)
        release[m - gap:] = 0.0
        level = 10 ** (rng.uniform(-12, 0) / 20)
        env_parts.append(level * attack * release * (1 - 0.3 * k / length))
        rows.append((t, t + length - gap / SR, pitch))
        t += length
        previous_slur, previous_pitch = slur, midi[-1]
    f0 = np.concatenate(f0_parts + [np.zeros(int(0.3 * SR))])
    env = np.concatenate(env_parts + [np.zeros(int(0.3 * SR))])
    phase = 2 * np.pi * np.cumsum(f0) / SR
    y = sum(a * np.sin(h * phase) for h, a in zip(range(1, 6), (1.0, 0.5, 0.35, 0.2, 0.1)))
    y = 0.3 * env * y + 1e-4 * rng.standard_normal(len(env))
    truth = {"onset": np.array([r[0] for r in rows]), "offset": np.array([r[1] for r in rows]),
             "pitch": np.array([r[2] for r in rows])}
    return y.astype(np.float32), truth


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_synthesised_melodies_reach_note_f1_of_0_9(seed):
    import pandas as pd

    y, truth = melody(seed, tuning_cents=20.0 * (seed - 2.5))
    notes = transcribe_monophonic(y, SR, pitch_range=(40, 84))
    f1 = note_f1(notes, pd.DataFrame(truth))
    assert f1 >= 0.9, f"seed {seed}: note F1 {f1:.3f} ({len(notes)} notes for {len(truth['onset'])})"


def test_vibrato_and_a_glide_do_not_split_a_held_note():
    t = np.arange(int(1.5 * SR)) / SR
    cents = 45 * np.sin(2 * np.pi * 6 * t) + np.where(t < 0.1, -60 * (1 - t / 0.1), 0)
    phase = 2 * np.pi * np.cumsum(220 * 2 ** (cents / 1200)) / SR
    y = (0.3 * np.sin(phase) + 0.1 * np.sin(2 * phase)) * np.clip(t / 0.02, 0, 1)
    notes = transcribe_monophonic(y.astype(np.float32), SR, pitch_range=(40, 84))
    assert notes.pitch.tolist() == [57]
    assert notes.onset.iloc[0] < 0.05 and notes.offset.iloc[0] > 1.4


def test_repeated_notes_are_separated_at_their_onsets():
    t = np.arange(int(0.25 * SR)) / SR
    hit = np.sin(2 * np.pi * 196 * t) * np.clip(t / 0.01, 0, 1) * np.exp(-t / 0.4)
    y = np.concatenate([hit] * 4 + [np.zeros(SR // 4)]).astype(np.float32) * 0.4
    notes = transcribe_monophonic(y, SR, pitch_range=(40, 84))
    assert notes.pitch.tolist() == [55] * 4
    assert np.allclose(notes.onset, [0.0, 0.25, 0.5, 0.75], atol=0.03)


def test_tuning_is_estimated_so_a_detuned_line_reads_at_its_own_pitches():
    y, truth = melody(7, tuning_cents=40.0, n=20)
    notes = transcribe_monophonic(y, SR, pitch_range=(40, 84))
    assert (notes.pitch.value_counts().index.isin(truth["pitch"])).all()
    assert estimate_tuning(np.array([60.4, 62.38, 64.42])) == pytest.approx(0.4, abs=0.02)
    assert estimate_tuning(np.array([60.49, 61.51])) == pytest.approx(0.5, abs=0.02) or \
        estimate_tuning(np.array([60.49, 61.51])) == pytest.approx(-0.5, abs=0.02)


def test_silence_and_noise_floor_give_an_empty_table_of_the_right_types():
    for y in (np.zeros(SR, np.float32), np.zeros(10, np.float32)):
        notes = transcribe_monophonic(y, SR)
        assert list(notes.columns) == list(NOTE_COLUMNS) and len(notes) == 0
        assert notes.dtypes.astype(str).tolist() == ["float64", "float64", "int64", "int64", "float64"]


def test_the_same_audio_gives_the_same_notes():
    y, _ = melody(4, n=12)
    first, second = transcribe_monophonic(y, SR), transcribe_monophonic(y.copy(), SR)
    assert first.equals(second)


def test_any_input_rate_gives_the_same_pitches():
    import librosa

    y, truth = melody(5, n=12)
    at_44k = librosa.resample(y, orig_sr=SR, target_sr=44100)
    assert transcribe_monophonic(at_44k, 44100).pitch.tolist() == transcribe_monophonic(y, SR).pitch.tolist()
