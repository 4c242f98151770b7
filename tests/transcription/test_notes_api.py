"""stemlab.transcribe, Stem.notes/midi and StemSet.to_midi on the demo set and on a folder: the
tidy table, one MIDI track per stem named after it, the cache per content and method, errors."""

from __future__ import annotations

import json

import mido
import numpy as np
import pandas as pd
import pretty_midi
import pytest
import soundfile as sf

import stemlab
import stemlab.transcription.stems as stems
from stemlab.errors import UsageError
from stemlab.transcription.kinds import kind_of
from stemlab.transcription.notes import NOTE_COLUMNS

SILENT = ("synth", "fx", "woodwinds")  # the demo's silent stems


@pytest.fixture(scope="module")
def demo_notes(demo_set):
    return stemlab.transcribe(demo_set)


def test_transcribe_gives_one_tidy_table_for_the_whole_set(demo_set, demo_notes):
    assert list(demo_notes.columns) == ["stem", *NOTE_COLUMNS]
    counts = demo_notes.groupby("stem").size()
    assert set(counts.index) == set(demo_set.names) - set(SILENT)  # silent stems: no notes
    assert (demo_notes.offset > demo_notes.onset).all() and demo_notes.velocity.between(1, 127).all()
    assert demo_notes.confidence.between(0, 1).all()
    for stem, rows in demo_notes.groupby("stem"):
        assert rows.onset.is_monotonic_increasing
        if not kind_of(stem).is_drum:
            assert rows.pitch.between(*kind_of(stem).pitch_range).all(), stem


def test_one_stem_a_subset_and_an_id_give_the_same_notes(demo_set, demo_notes):
    bass = stemlab.transcribe(demo_set["bass"])
    assert bass.equals(demo_notes[demo_notes.stem == "bass"].reset_index(drop=True))
    two = stemlab.transcribe(demo_set.folder, stems=["vocals", "synth"])
    assert set(two.stem) == {"vocals"}
    assert demo_set["bass"].notes().equals(bass.drop(columns="stem"))


def test_to_midi_writes_one_named_track_per_stem_with_its_program(demo_set, demo_notes, tmp_path):
    path = demo_set.to_midi(tmp_path / "song.mid")
    tracks = [t for t in mido.MidiFile(path).tracks if any(m.type == "track_name" for m in t)]
    names = [next(m.name for m in t if m.type == "track_name") for t in tracks]
    assert names == demo_set.names  # all 12, silent ones too, in the set's order
    for name, track in zip(names, tracks):
        notes_on = [m for m in track if m.type == "note_on" and m.velocity > 0]
        assert len(notes_on) == (demo_notes.stem == name).sum(), name
        programs = [m.program for m in track if m.type == "program_change"]
        channels = {m.channel for m in notes_on}
        if kind_of(name).is_drum:
            assert channels <= {9}, name  # General MIDI's percussion channel (10)
        else:
            assert programs == [kind_of(name).program] and 9 not in channels, name
    back = {i.name: i for i in pretty_midi.PrettyMIDI(str(path)).instruments}
    vocals = demo_notes[demo_notes.stem == "vocals"]
    assert [n.pitch for n in back["vocals"].notes] == vocals.pitch.tolist()
    assert np.allclose([n.start for n in back["vocals"].notes], vocals.onset, atol=2e-3)  # tick rounding


def test_stem_midi_is_one_instrument_named_after_the_stem(demo_set):
    pm = demo_set["drums"].midi()
    assert [(i.name, i.is_drum) for i in pm.instruments] == [("drums", True)]
    assert {n.pitch for n in pm.instruments[0].notes} <= {36, 38, 42}
    assert demo_set["synth"].midi().instruments[0].notes == []


def test_notes_are_cached_per_content_and_method_and_a_damaged_cache_is_rebuilt(demo_set, monkeypatch):
    first = demo_set["vocals"].notes()
    cached = demo_set["vocals"].derived_path("notes.monophonic.v1", ".json")
    assert cached.exists() and json.loads(cached.read_text())["method"] == "monophonic"
    calls = []
    real = stems.transcribe_monophonic
    monkeypatch.setattr(stems, "transcribe_monophonic", lambda *a, **k: calls.append(1) or real(*a, **k))
    fresh = stemlab.StemSet.open(demo_set.folder)  # a new object: the cache on disk answers
    assert fresh["vocals"].notes().equals(first) and calls == []
    cached.write_text('{"columns": {"onset": [1.0')  # torn
    assert fresh["vocals"].notes().equals(first) and calls == [1]
    assert json.loads(cached.read_text())["columns"]["pitch"] == first.pitch.tolist()
    other = fresh["vocals"].notes(method="polyphonic")  # another method: its own file
    assert demo_set["vocals"].derived_path("notes.polyphonic.v1", ".json").exists() and len(other)


def test_a_folder_set_is_transcribed_into_the_cache_not_into_the_folder(tmp_path):
    from stemlab.sandbox.synth import synth_notes, synth_stems

    folder = tmp_path / "stems"
    folder.mkdir()
    stems = synth_stems(duration=4.0, sr=22050, names=("vocals", "bass", "drums"))
    for name, audio in stems.items():
        sf.write(folder / f"{name}.wav", audio.T, 22050, subtype="FLOAT")
    before = sorted(p.name for p in folder.iterdir())
    notes = stemlab.transcribe(folder, cache_dir=tmp_path / "cache")
    assert sorted(p.name for p in folder.iterdir()) == before
    assert list((tmp_path / "cache").rglob("vocals.*.notes.monophonic.v1.json"))
    truth = pd.DataFrame(synth_notes(4.0), columns=["stem", "onset", "offset", "pitch"])
    for stem in ("vocals", "bass"):
        estimate, reference = notes[notes.stem == stem], truth[truth.stem == stem]
        assert len(estimate) == len(reference) and (estimate.pitch.values == reference.pitch.values).all(), stem


def test_unknown_methods_and_things_that_are_not_sets_are_one_line_errors(demo_set):
    with pytest.raises(UsageError, match="unknown transcription method 'crepe': use one of monophonic, polyphonic, drums"):
        stemlab.transcribe(demo_set["bass"], method="crepe")
    with pytest.raises(UsageError, match="transcribe takes a stem set, a set folder or a set id, not int"):
        stemlab.transcribe(42)


def test_a_stem_with_nan_samples_is_a_one_line_error_naming_the_file(tmp_path):
    from stemlab.errors import DecodeError
    from stemlab.transcription.stems import transcribe_audio

    folder = tmp_path / "stems"
    folder.mkdir()
    y = 0.3 * np.sin(2 * np.pi * 220 * np.arange(22050) / 22050)
    y[100:110] = np.nan
    sf.write(folder / "keyboard.wav", y, 22050, subtype="FLOAT")
    with pytest.raises(DecodeError, match="keyboard.wav has NaN or infinite samples, so the keyboard stem cannot"):
        stemlab.transcribe(folder, cache_dir=tmp_path / "cache")
    with pytest.raises(UsageError, match="the bass audio has NaN or infinite samples"):
        transcribe_audio(np.full(100, np.inf, np.float32), 22050, stem="bass")
    assert not list((tmp_path / "cache").rglob("*.notes.*"))
