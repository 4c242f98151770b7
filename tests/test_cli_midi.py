"""``stemlab midi``: on a set fetched through the sandbox, on the demo set and on a folder, with the
CLI's contract (one JSON object, exit codes, one-line errors), and notes scored by mir_eval against
the sandbox song's score."""

import json

import mido
import mir_eval
import numpy as np
import pretty_midi
import pytest
import soundfile as sf

from conftest import CLIP_ID
from test_cli import assert_one_line_error, one_json, stemlab


def hz(pitches):
    return 440.0 * 2.0 ** ((np.asarray(pitches, float) - 69.0) / 12.0)


def track_names(path):
    return [next(m.name for m in t if m.type == "track_name") for t in mido.MidiFile(path).tracks
            if any(m.type == "track_name" for m in t)]


def test_midi_of_a_fetched_set_scores_against_the_song_s_score(sandbox_env, sandbox, tmp_path):
    from stemlab.sandbox.synth import synth_notes

    assert stemlab("fetch", "cqtai", CLIP_ID, "--json").returncode == 0
    out = one_json(stemlab("midi", CLIP_ID, "--json", "-o", str(tmp_path / "song.mid")))
    assert set(out) == {"midi", "stems"} and out["midi"] == str(tmp_path / "song.mid")
    assert [set(s) for s in out["stems"]] == [{"name", "notes", "method"}] * 12
    methods = {s["name"]: s["method"] for s in out["stems"]}
    assert (methods["vocals"], methods["bass"], methods["drums"], methods["keyboard"]) == \
        ("monophonic", "monophonic", "drums", "polyphonic")
    counts = {s["name"]: s["notes"] for s in out["stems"]}
    assert counts["brass"] == counts["woodwinds"] == counts["fx"] == 0  # silent in this song
    assert track_names(out["midi"]) == [s["name"] for s in out["stems"]]
    played = {i.name: i for i in pretty_midi.PrettyMIDI(out["midi"]).instruments}
    for stem in ("vocals", "bass"):
        truth = [n for n in synth_notes(4.0) if n[0] == stem]
        got = played[stem].notes
        assert len(got) == counts[stem]
        f1 = mir_eval.transcription.precision_recall_f1_overlap(
            np.array([[n[1], n[2]] for n in truth]), hz([n[3] for n in truth]),
            np.array([[n.start, n.end] for n in got]).reshape(-1, 2), hz([n.pitch for n in got]),
            onset_tolerance=0.05, pitch_tolerance=50.0, offset_ratio=None)[2]
        assert f1 >= 0.9, f"{stem}: note F1 {f1:.3f}"
    again = one_json(stemlab("midi", CLIP_ID, "--json", "-o", str(tmp_path / "again.mid")))
    assert again["stems"] == out["stems"] and len(sandbox.submits) == 1  # cached notes, no second job


def test_midi_of_the_demo_set_and_of_a_folder_in_plain_text(tmp_path, sandbox_env):
    import stemlab as lib

    lib.demo_song(cache_dir=sandbox_env["STEMLAB_CACHE_DIR"])
    done = stemlab("midi", "demo-paper-lanterns", "--stem", "bass", "--stem", "synth")
    assert done.returncode == 0, done.stderr
    assert "wrote demo-paper-lanterns.mid: 2 tracks" in done.stdout and "bass" in done.stdout
    assert track_names("demo-paper-lanterns.mid") == ["bass", "synth"]

    folder = tmp_path / "my stems"
    folder.mkdir()
    t = np.arange(22050 * 2) / 22050
    sf.write(folder / "bass.wav", 0.3 * np.sin(2 * np.pi * 110 * t), 22050)
    sf.write(folder / "mixture.wav", 0.3 * np.sin(2 * np.pi * 110 * t), 22050)
    out = one_json(stemlab("midi", str(folder), "--json", "--method", "monophonic"))
    assert out["midi"] == "my_stems.mid" and out["stems"] == [{"name": "bass", "notes": 1, "method": "monophonic"}]
    assert [n.pitch for n in pretty_midi.PrettyMIDI("my_stems.mid").instruments[0].notes] == [45]


@pytest.mark.parametrize("args, words", [
    (["midi", "./nowhere"], "the folder ./nowhere does not exist"),
    (["midi", "no-such-set"], "no set 'no-such-set'"),
    (["midi", "{folder}", "--stem", "drums"], "no stem 'drums' in this set; it has bass"),
    (["midi", "{folder}", "-o", "{folder}"], "is a folder: pass a file name"),
    (["midi", "{folder}", "-o", "missing/x.mid"], "the folder missing does not exist"),
    (["midi", "{folder}", "--method", "crepe"], "invalid choice: 'crepe'"),
])
def test_midi_usage_errors_exit_2_in_one_line(tmp_path, sandbox_env, sandbox, args, words):
    folder = tmp_path / "set"
    folder.mkdir()
    sf.write(folder / "bass.wav", np.zeros(2205), 22050)
    result = stemlab(*(a.format(folder=folder) for a in args))
    assert_one_line_error(result, 2)
    assert words in result.stderr and sandbox.requests == []
    assert not list(tmp_path.glob("*.mid"))


def test_a_stem_that_will_not_decode_is_exit_3_and_leaves_no_file(tmp_path, sandbox_env):
    folder = tmp_path / "set"
    folder.mkdir()
    (folder / "bass.mp3").write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x00" + bytes(2000))
    result = stemlab("midi", str(folder), "-o", str(tmp_path / "out.mid"))
    assert_one_line_error(result, 3)
    assert not (tmp_path / "out.mid").exists() and not list(tmp_path.glob(".*.tmp*"))


def test_json_is_the_only_thing_on_stdout(tmp_path, sandbox_env):
    folder = tmp_path / "set"
    folder.mkdir()
    sf.write(folder / "vocals.wav", np.zeros(22050), 22050)
    result = stemlab("midi", str(folder), "--json", "-o", str(tmp_path / "v.mid"))
    assert result.returncode == 0 and json.loads(result.stdout)["stems"][0]["notes"] == 0
