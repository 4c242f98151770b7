"""Exports: folder, MUSDB18, NI STEMS (.stem.mp4), zip and MIDI, checked against what reads them
(soundfile, museval, ffprobe, PyAV, pretty_midi) and against the real MUSDB18 sample."""

from __future__ import annotations

import json
import logging
import re
import struct
import subprocess
import sys
import zipfile
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import stemlab
from stemlab.errors import UsageError
from stemlab.exports import export, write
from stemlab.exports.stems_mp4 import add_stem_box, read_stem_box, stem_metadata
from stemlab.exports.tracks import MUSDB_GROUPS, musdb_groups
from stemlab.exports.writing import check_stem_name
from stemlab.files import sha256_of
from stemlab.sandbox.synth import synth_stems
from stemlab.stemset import StemSet
from stemlab.taxonomy import TWELVE_STEMS

from test_cli import assert_one_line_error, one_json, stemlab as run_stemlab

ROOT = Path(__file__).resolve().parents[1]
ROCK = ROOT.parent / "shared" / "data" / "musdb18-sample-80s-rock"
SR = 22050
LSB24 = 2.0 ** -23


def make_set(folder: Path, stems: dict, *, sr: int = SR, source: np.ndarray | None = None,
             subtype: str = "FLOAT") -> Path:
    """A folder of ``<stem>.wav`` (and ``mixture.wav`` when ``source`` is given)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, audio in stems.items():
        sf.write(folder / f"{name}.wav", np.asarray(audio).T, sr, subtype=subtype)
    if source is not None:
        sf.write(folder / "mixture.wav", np.asarray(source).T, sr, subtype=subtype)
    return folder


def read(path: Path) -> np.ndarray:
    return sf.read(path, dtype="float64", always_2d=True)[0].T


@pytest.fixture
def three(tmp_path):
    """vocals, drums, bass at 22.05 kHz, 3 s, with their sum as the mixture."""
    stems = synth_stems(duration=3.0, sr=SR, names=("vocals", "drums", "bass"), seed=1)
    folder = make_set(tmp_path / "three", stems, source=sum(stems.values()))
    return stems, folder


# ------------------------------------------------------------------------------------------ folder


def test_folder_writes_every_stem_and_the_mixture_aligned_and_recorded(three, tmp_path):
    stems, folder = three
    out = export(stemlab.StemSet.open(folder), tmp_path / "out")
    assert out == tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["bass.wav", "drums.wav", "export.json", "mixture.wav",
                                                     "vocals.wav"]
    record = json.loads((out / "export.json").read_text())
    assert record["sr"] == SR and record["channels"] == 2 and record["length"] == 3 * SR
    assert record["bit_depth"] == 24 and record["subtype"] == "PCM_24" and record["mixture"] == "the source"
    assert record["shifts"] == {"vocals": 0, "drums": 0, "bass": 0} and record["clipped"] == {}
    assert {i["track"] for i in record["inputs"]} == {"source", "vocals", "drums", "bass"}
    assert all(i["sha256"] == sha256_of(folder / i["file"]) for i in record["inputs"])
    for name, audio in [*stems.items(), ("mixture", sum(stems.values()))]:
        info = sf.info(out / f"{name}.wav")
        assert (info.samplerate, info.channels, info.frames, info.subtype) == (SR, 2, 3 * SR, "PCM_24")
        assert np.abs(read(out / f"{name}.wav") - audio).max() <= LSB24  # within 1 LSB
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left


@pytest.mark.parametrize("bit_depth, file_format, subtype, lsb", [
    (16, "wav", "PCM_16", 2.0 ** -15), (24, "flac", "PCM_24", LSB24), (16, "flac", "PCM_16", 2.0 ** -15),
    (32, "wav", "FLOAT", 0.0)])
def test_bit_depths_and_flac(three, tmp_path, bit_depth, file_format, subtype, lsb):
    stems, folder = three
    out = export(stemlab.StemSet.open(folder), tmp_path / "out", bit_depth=bit_depth, file_format=file_format)
    vocals = out / f"vocals.{file_format}"
    assert sf.info(vocals).subtype == subtype and sf.info(vocals).format == file_format.upper()
    assert np.abs(read(vocals) - stems["vocals"]).max() <= lsb
    assert json.loads((out / "export.json").read_text())["files"]["vocals"] == vocals.name


def test_a_late_stem_and_an_early_stem_are_moved_into_place(tmp_path, caplog):
    stems = synth_stems(duration=3.0, sr=SR, names=("vocals", "drums", "bass"), seed=2)
    late, early, far = 1234, 500, 9000  # samples; far is 0.41 s, searched on block means first
    moved = dict(stems)
    moved["bass"] = np.concatenate([np.zeros((2, late), np.float32), stems["bass"]], axis=1)  # starts late
    moved["vocals"] = stems["vocals"][:, early:]  # starts early: its first 500 samples are missing
    moved["drums"] = np.concatenate([np.zeros((2, far), np.float32), stems["drums"][:, :-far]], axis=1)
    folder = make_set(tmp_path / "set", moved, source=sum(stems.values()))
    with caplog.at_level(logging.WARNING, logger="stemlab"):
        result = write(stemlab.StemSet.open(folder), tmp_path / "out")
    assert result.record["shifts"] == {"vocals": -early, "drums": far, "bass": late}
    assert any("bass started 1,234 samples (56.0 ms) late" in r.getMessage() for r in caplog.records)
    out = result.path
    lengths = {sf.info(p).frames for p in out.glob("*.wav")}
    assert lengths == {3 * SR}  # every file the source's length
    assert np.abs(read(out / "bass.wav") - stems["bass"]).max() <= LSB24  # in place, all of it
    vocals = read(out / "vocals.wav")
    assert np.abs(vocals[:, early:] - stems["vocals"][:, early:]).max() <= LSB24 and not vocals[:, :early].any()
    drums = read(out / "drums.wav")  # its file ended with the song, so its last 9,000 samples are silence
    assert np.abs(drums[:, :-far] - stems["drums"][:, :-far]).max() <= LSB24 and not drums[:, -far:].any()
    record = json.loads((out / "export.json").read_text())
    assert record["shifts"]["bass"] == late and any("moved 1,234 samples earlier" in n for n in record["notes"])
    # the check agrees that the exported folder (but for the drums' lost tail) recombines
    report = stemlab.check(stemlab.StemSet.open(out))
    assert report.lag_samples == 0 and [s.lag_samples for s in report.stems] == [0, 0, 0]


def test_stems_of_other_lengths_rates_and_channels_are_conformed(tmp_path):
    stems = synth_stems(duration=2.0, sr=SR, names=("vocals", "bass"), seed=3)
    folder = make_set(tmp_path / "set", {"vocals": stems["vocals"]}, source=sum(stems.values()))
    sf.write(folder / "bass.wav", stems["bass"].mean(axis=0)[: SR].T, SR)  # mono and 1 s short
    result = write(stemlab.StemSet.open(folder), tmp_path / "out")
    bass = read(result.path / "bass.wav")
    assert bass.shape == (2, 2 * SR) and not bass[:, SR:].any()
    actions = [step["action"] for step in result.record["steps"]]
    assert actions == ["channels", "padded"]


def test_clipping_is_reported_and_float_keeps_the_peaks(tmp_path, caplog):
    loud = np.full((2, SR), 0.7, np.float32)
    folder = make_set(tmp_path / "set", {"vocals": loud, "bass": loud})  # no source: the mixture is 1.4
    with caplog.at_level(logging.WARNING, logger="stemlab"):
        result = write(stemlab.StemSet.open(folder), tmp_path / "pcm")
    assert result.record["clipped"] == {"mixture.wav": {"samples": 2 * SR, "peak": pytest.approx(1.4)}}
    assert result.record["mixture"] == "the sum of the stems"
    assert any("were clipped" in r.getMessage() and "mixture.wav" in r.getMessage() for r in caplog.records)
    assert read(result.path / "mixture.wav").max() <= 1.0
    floats = write(stemlab.StemSet.open(folder), tmp_path / "float", bit_depth=32)
    assert floats.record["clipped"] == {} and any("above full scale" in n for n in floats.record["notes"])
    assert read(floats.path / "mixture.wav").max() == pytest.approx(1.4)


def test_an_existing_target_is_refused_unless_forced(three, tmp_path):
    _, folder = three
    stemset = stemlab.StemSet.open(folder)
    target = tmp_path / "out"
    target.mkdir()
    export(stemset, target)  # an empty folder is fine
    (target / "mine.txt").write_text("keep")
    with pytest.raises(UsageError, match="is not empty; pass force=True"):
        export(stemset, target)
    export(stemset, target, force=True)
    assert not (target / "mine.txt").exists() and (target / "vocals.wav").exists()
    with pytest.raises(UsageError, match="holds this set's own files"):
        export(stemset, folder, force=True)
    assert (folder / "vocals.wav").exists()
    (tmp_path / "afile").write_text("x")
    with pytest.raises(UsageError, match="is a file"):
        export(stemset, tmp_path / "afile")
    with pytest.raises(UsageError, match="FLAC holds 16 or 24-bit"):
        export(stemset, tmp_path / "f", file_format="flac", bit_depth=32)
    with pytest.raises(UsageError, match="no export format 'wav'"):
        export(stemset, tmp_path / "f", format="wav")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_force_replaces_only_an_empty_folder_or_an_earlier_export(three, tmp_path):
    _, folder = three
    stemset = stemlab.StemSet.open(folder)
    project = tmp_path / "proj"
    project.mkdir()
    (project / "session.als").write_text("a DAW session")
    with pytest.raises(UsageError, match="holds other files .*; choose an empty folder") as info:
        export(stemset, project, force=True)
    assert "\n" not in str(info.value)
    assert sorted(p.name for p in project.iterdir()) == ["session.als"]
    # the file exports may replace a file, never a folder
    files = [("zip", "s.zip"), ("midi", "s.mid")] + [("stems-mp4", "s.stem.mp4")] * bool(find_spec("av"))
    for format, name in files:
        with pytest.raises(UsageError, match="is a folder"):
            export(stemset, project, format=format, force=True)
        (tmp_path / name).write_text("old")
        assert export(stemset, tmp_path / name, format=format, force=True).read_bytes() != b"old"
    assert sorted(p.name for p in project.iterdir()) == ["session.als"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("name", ["../../x", "/abs/x", "a\\b", ".hidden", "", "nul\0x", "a..b", "mixture",
                                  "Source", "mix"])
def test_a_stem_name_that_is_not_a_plain_file_name_is_refused(tmp_path, name):
    name = str(tmp_path / "abs" / "x") if name == "/abs/x" else name  # should it escape, inside tmp_path
    wav = make_set(tmp_path / "in", {"vocals": np.zeros((2, SR), np.float32)}) / "vocals.wav"
    kept = list(tmp_path.rglob("*"))
    for format, target in [("folder", tmp_path / "a" / "b" / "out"), ("zip", tmp_path / "a" / "b" / "out.zip")]:
        stemset = StemSet({name: wav}, source=wav, derived_dir=tmp_path / "derived")  # open() makes names safe
        with pytest.raises(UsageError, match="cannot be written as a file") as info:
            export(stemset, target, format=format)
        assert "\n" not in str(info.value)
    assert set(tmp_path.rglob("*")) - set(kept) == {tmp_path / "a", tmp_path / "a" / "b"}  # nothing else written
    with pytest.raises(UsageError, match="must be a plain file name"):
        check_stem_name(name)
    # the same set with a plain name exports
    plain = StemSet({"vocals": wav}, source=wav, derived_dir=tmp_path / "derived")
    assert (export(plain, tmp_path / "plain") / "vocals.wav").exists()
    assert check_stem_name("unknown_theremin") == "unknown_theremin"


def test_a_two_stem_set(tmp_path):
    stems = synth_stems(duration=2.0, sr=SR, names=("vocals", "guitar", "bass"), seed=5)
    two = {"vocals": stems["vocals"], "instrumental": stems["guitar"] + stems["bass"]}
    folder = make_set(tmp_path / "two", two, source=sum(two.values()))
    out = stemlab.StemSet.open(folder).export(tmp_path / "out")
    assert sorted(p.name for p in out.glob("*.wav")) == ["instrumental.wav", "mixture.wav", "vocals.wav"]
    assert np.abs(read(out / "instrumental.wav") - two["instrumental"]).max() <= LSB24


# ------------------------------------------------------------------------------------------- musdb


def test_musdb_groups():
    groups = musdb_groups(TWELVE_STEMS)
    assert groups == {"drums": ["drums", "percussion"], "bass": ["bass"],
                      "other": ["guitar", "keyboard", "strings", "synth", "fx", "brass", "woodwinds"],
                      "vocals": ["vocals", "backing_vocals"]}
    assert sorted(sum(groups.values(), [])) == sorted(TWELVE_STEMS)
    assert set(MUSDB_GROUPS["other"]) == set(groups["other"])
    assert musdb_groups(["vocals", "drums", "bass", "other"]) == {"drums": ["drums"], "bass": ["bass"],
                                                                  "other": ["other"], "vocals": ["vocals"]}
    assert musdb_groups(["vocals", "drums", "bass"])["other"] == []  # nothing else: other is silent
    assert musdb_groups(["vocals", "drums", "bass", "unknown_theremin"])["other"] == ["unknown_theremin"]
    with pytest.raises(UsageError, match=r"no bass stem \(its other holds it together with the rest\)"):
        musdb_groups(["vocals", "drums", "other"])


@pytest.mark.slow
def test_the_musdb_sample_round_trips_sample_for_sample_and_museval_scores_it_perfect(tmp_path):
    import museval

    result = write(stemlab.StemSet.open(ROCK), tmp_path / "Music Delta - 80s Rock", format="musdb")
    out = result.path
    assert sorted(p.name for p in out.iterdir()) == ["bass.wav", "drums.wav", "export.json", "mixture.wav",
                                                     "other.wav", "vocals.wav"]
    assert result.record["shifts"] == {"vocals": 0, "drums": 0, "bass": 0, "other": 0}
    for name in ("mixture", "drums", "bass", "other", "vocals"):
        info = sf.info(out / f"{name}.wav")
        assert (info.samplerate, info.channels, info.frames) == (44100, 2, 300032)
        exported, original = read(out / f"{name}.wav"), read(ROCK / f"{name}.flac")
        assert np.abs(exported - original).max() <= LSB24  # 16-bit material: exact in 24 bits
    names = ["drums", "bass", "other", "vocals"]
    references = np.stack([read(ROCK / f"{n}.flac").T for n in names])
    estimates = np.stack([read(out / f"{n}.wav").T for n in names])
    sdr, isr, sir, sar = museval.evaluate(references, estimates, win=44100, hop=44100)
    assert np.nanmin(sdr) > 100 and np.nanmin(isr) > 100 and np.nanmin(sar) > 100  # identical: inf


@pytest.fixture(scope="module")
def twelve(tmp_path_factory):
    """The 12-stem synthesised song at 44.1 kHz, 3 s, written as a folder with its mixture."""
    stems = synth_stems(duration=3.0, sr=44100, seed=7)
    folder = make_set(tmp_path_factory.mktemp("twelve") / "set", stems, sr=44100, source=sum(stems.values()))
    return stems, folder


@pytest.mark.slow
def test_musdb_of_a_twelve_stem_set_sums_its_groups_and_museval_agrees(twelve, tmp_path):
    import museval

    stems, folder = twelve
    stemset = stemlab.StemSet.open(folder)
    result = write(stemset, tmp_path / "a", format="musdb")
    assert result.record["groups"]["vocals"] == ["vocals", "backing_vocals"]
    expected = {group: sum(stems[n] for n in members) for group, members in MUSDB_GROUPS.items()}
    for group, audio in expected.items():
        assert np.abs(read(result.path / f"{group}.wav") - audio).max() <= 2 * LSB24, group
    assert np.abs(read(result.path / "mixture.wav") - sum(stems.values())).max() <= LSB24
    # one export against another (24 against 16-bit), as museval scores an estimate
    other = write(stemset, tmp_path / "b", format="musdb", bit_depth=16)
    names = ["drums", "bass", "other", "vocals"]
    references = np.stack([read(result.path / f"{n}.wav").T[: 2 * 44100] for n in names])
    estimates = np.stack([read(other.path / f"{n}.wav").T[: 2 * 44100] for n in names])
    sdr, *_ = museval.evaluate(references, estimates, win=44100, hop=44100)
    assert np.nanmin(sdr) > 60  # 16-bit quantisation, nothing else


def test_musdb_resamples_and_makes_stereo(tmp_path):
    stems = synth_stems(duration=1.0, sr=SR, names=("vocals", "drums", "bass", "guitar"), seed=8)
    mono = {name: audio.mean(axis=0, keepdims=True) for name, audio in stems.items()}
    folder = make_set(tmp_path / "set", mono)
    result = write(stemlab.StemSet.open(folder), tmp_path / "out", format="musdb")
    info = sf.info(result.path / "other.wav")
    assert (info.samplerate, info.channels, info.frames) == (44100, 2, 44100)
    assert any("resampled from 22,050 Hz to 44,100 Hz" in n for n in result.record["notes"])
    assert result.record["groups"]["other"] == ["guitar"]


def test_musdb_refuses_a_vocals_and_instrumental_set(tmp_path):
    stems = synth_stems(duration=1.0, sr=SR, names=("vocals", "guitar"), seed=9)
    folder = make_set(tmp_path / "two", {"vocals": stems["vocals"], "instrumental": stems["guitar"]})
    with pytest.raises(UsageError) as info:
        export(stemlab.StemSet.open(folder), tmp_path / "out", format="musdb")
    message = str(info.value)
    assert "no drums and no bass stem" in message and "instrumental" in message and "'folder'" in message
    assert "\n" not in message and not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------- stems-mp4


def ffprobe(path: Path) -> dict:
    done = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return json.loads(done.stdout)


def decode_stream(path: Path, index: int) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.audio[index]
        frames = [frame.to_ndarray() for frame in container.decode(stream)]
    audio = np.concatenate(frames, axis=1)
    if audio.dtype == np.int32:
        return audio.astype(np.float64) / 2.0 ** 31
    if audio.dtype == np.int16:
        return audio.astype(np.float64) / 2.0 ** 15
    return audio.astype(np.float64)


def test_stems_mp4_of_the_musdb_sample(tmp_path):
    pytest.importorskip("av")
    from stemlab.dsp import estimate_lag, shift

    path = export(stemlab.StemSet.open(ROCK), tmp_path / "rock.stem.mp4", format="stems-mp4")
    probe = ffprobe(path)
    streams = probe["streams"]
    assert [s["codec_type"] for s in streams] == ["audio"] * 5
    assert {(s["codec_name"], s["sample_rate"], s["channels"]) for s in streams} == {("aac", "44100", 2)}
    assert [s["disposition"]["default"] for s in streams] == [1, 0, 0, 0, 0]  # players play the master
    assert [s["tags"]["handler_name"] for s in streams] == ["Master", "Drums", "Bass", "Other", "Vocals"]
    assert probe["format"]["tags"]["major_brand"].strip() == "M4A"
    for s in streams:
        assert abs(int(s["duration_ts"]) - 300032) <= 1024  # one AAC frame
        assert 200_000 <= int(s["bit_rate"]) <= 300_000
    metadata = read_stem_box(path)
    assert metadata["version"] == 1 and [s["name"] for s in metadata["stems"]] == ["Drums", "Bass", "Other", "Vocals"]
    assert [s["color"] for s in metadata["stems"]] == ["#009E73", "#D55E00", "#CC79A7", "#56B4E9"]
    import av

    with av.open(str(path)) as container:
        assert len(container.streams.audio) == 5
    drums = decode_stream(path, 1)
    truth = read(ROCK / "drums.flac")
    lag = estimate_lag(truth, drums, max_lag=4096, excerpt=88200)
    aligned = shift(drums, lag, truth.shape[1])
    assert abs(lag) <= 1024 and np.corrcoef(aligned.ravel(), truth.ravel())[0, 1] > 0.99


def test_stems_mp4_alac_is_lossless_and_the_stem_box_moves_no_chunk(twelve, tmp_path):
    pytest.importorskip("av")
    stems, folder = twelve
    result = write(stemlab.StemSet.open(folder), tmp_path / "song.stem.mp4", format="stems-mp4", codec="alac")
    assert result.record["codec"] == "alac" and result.record["groups"]["drums"] == ["drums", "percussion"]
    streams = ffprobe(result.path)["streams"]
    assert [(s["codec_name"], int(s["duration_ts"])) for s in streams] == [("alac", 3 * 44100)] * 5
    vocals = decode_stream(result.path, 4)
    assert np.abs(vocals - (stems["vocals"] + stems["backing_vocals"])).max() <= 2 * LSB24
    # the box went into moov/udta; everything before moov, and every chunk offset, is as PyAV wrote it
    data = result.path.read_bytes()
    moov = data.rindex(b"moov") - 4
    plain = tmp_path / "plain.mp4"
    plain.write_bytes(_strip_stem_box(data))
    assert plain.read_bytes()[:moov] == data[:moov] and read_stem_box(plain) is None
    assert _chunk_offsets(plain.read_bytes()) == _chunk_offsets(data)
    add_stem_box(plain, stem_metadata())
    add_stem_box(plain, stem_metadata())  # replaces, never duplicates
    assert plain.read_bytes().count(b"stem{") == 1 and read_stem_box(plain) == stem_metadata()
    assert np.array_equal(decode_stream(plain, 4), vocals)
    assert len(ffprobe(plain)["streams"]) == 5


def _boxes(data: bytes, start: int, end: int):
    while start + 8 <= end:
        size, kind = struct.unpack(">I4s", data[start:start + 8])
        yield kind, start, size
        start += size


def _strip_stem_box(data: bytes) -> bytes:
    """The file with its moov/udta/stem box taken out, sizes fixed (the inverse of add_stem_box)."""
    moov = next(o for k, o, s in _boxes(data, 0, len(data)) if k == b"moov")
    udta = next(o for k, o, s in _boxes(data, moov + 8, len(data)) if k == b"udta")
    udta_size = struct.unpack(">I", data[udta:udta + 4])[0]
    stem, stem_size = next((o, s) for k, o, s in _boxes(data, udta + 8, udta + udta_size) if k == b"stem")
    out = bytearray(data[:stem] + data[stem + stem_size:])
    for at in (moov, udta):
        out[at:at + 4] = struct.pack(">I", struct.unpack(">I", out[at:at + 4])[0] - stem_size)
    return bytes(out)


def _chunk_offsets(data: bytes) -> list[list[int]]:
    """Every track's stco (or co64) chunk offsets."""
    tables, at = [], 0
    while (at := data.find(b"stco", at + 1)) > 0 or (at := data.find(b"co64", at + 1)) > 0:
        count = struct.unpack(">I", data[at + 8:at + 12])[0]
        wide = data[at:at + 4] == b"co64"
        fmt = f">{count}{'Q' if wide else 'I'}"
        tables.append(list(struct.unpack(fmt, data[at + 12:at + 12 + struct.calcsize(fmt)])))
    assert len(tables) == 5
    return tables


def test_stems_mp4_without_pyav_says_how_to_install_it(three, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)  # import av raises ImportError
    _, folder = three
    with pytest.raises(UsageError, match=r"pip install 'stemlab\[stems\]'"):
        export(stemlab.StemSet.open(folder), tmp_path / "x.stem.mp4", format="stems-mp4")
    assert not list(tmp_path.glob("*.stem.mp4"))


# --------------------------------------------------------------------------------------- zip, midi


def test_zip_holds_the_folder_export_and_a_manifest_whose_hashes_match(three, tmp_path):
    import hashlib

    stems, folder = three
    result = write(stemlab.StemSet.open(folder), tmp_path / "song.zip", format="zip", file_format="flac")
    with zipfile.ZipFile(result.path) as archive:
        names = sorted(archive.namelist())
        manifest = json.loads(archive.read("song/manifest.json"))
        assert names == sorted(f"song/{n}" for n in ("bass.flac", "drums.flac", "export.json", "manifest.json",
                                                      "mixture.flac", "vocals.flac"))
        assert sorted(f["path"] for f in manifest["files"]) == sorted(n[5:] for n in names if "manifest" not in n)
        for entry in manifest["files"]:
            data = archive.read(f"song/{entry['path']}")
            assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["bytes"]
        archive.extractall(tmp_path / "unzipped")
    assert np.abs(read(tmp_path / "unzipped" / "song" / "bass.flac") - stems["bass"]).max() <= LSB24
    with pytest.raises(UsageError, match="already exists"):
        export(stemlab.StemSet.open(folder), result.path, format="zip")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_midi_is_one_track_per_stem(three, tmp_path):
    import pretty_midi

    _, folder = three
    result = write(stemlab.StemSet.open(folder), tmp_path / "song.mid", format="midi")
    path = result.path
    facts = result.to_dict()
    assert facts["format"] == "midi" and facts["sr"] is None and [f["path"] for f in facts["files"]] == [str(path)]
    pm = pretty_midi.PrettyMIDI(str(path))
    assert [i.name for i in pm.instruments] == ["vocals", "drums", "bass"]
    assert [i.is_drum for i in pm.instruments] == [False, True, False]
    assert sum(len(i.notes) for i in pm.instruments) > 0
    with pytest.raises(UsageError, match="already exists"):
        export(stemlab.StemSet.open(folder), path, format="midi")
    with pytest.raises(UsageError, match="file_format"):
        export(stemlab.StemSet.open(folder), path, format="midi", file_format="flac")


# --------------------------------------------------------------------------------------------- CLI


def test_cli_export_json_contract(three, tmp_path):
    _, folder = three
    out = one_json(run_stemlab("export", str(folder), "-o", str(tmp_path / "out"), "--json"))
    assert set(out) == {"format", "path", "files", "sr", "channels", "length", "shifts", "clipped", "notes"}
    assert out["format"] == "folder" and out["path"] == str(tmp_path / "out")
    assert out["sr"] == SR and out["channels"] == 2 and out["length"] == 3 * SR
    assert out["shifts"] == {"vocals": 0, "drums": 0, "bass": 0} and out["clipped"] == {}
    assert [Path(f["path"]).name for f in out["files"]] == ["mixture.wav", "vocals.wav", "drums.wav", "bass.wav",
                                                            "export.json"]
    for entry in out["files"]:
        assert set(entry) == {"path", "sha256", "bytes"}
        assert entry["sha256"] == sha256_of(entry["path"]) and entry["bytes"] == Path(entry["path"]).stat().st_size
    text = run_stemlab("export", str(folder), "--format", "zip", "-o", str(tmp_path / "s.zip"), "--flac")
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith(f"wrote {tmp_path / 's.zip'} (zip: 22,050 Hz") and "s.zip" in text.stdout


def test_cli_export_default_output_is_named_after_the_set(three, tmp_path):
    _, folder = three
    done = subprocess.run([sys.executable, "-m", "stemlab", "export", str(folder), "--format", "musdb", "--json"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["path"] == "three-musdb" and (tmp_path / "three-musdb" / "vocals.wav").exists()


def test_cli_export_errors_are_one_line(three, tmp_path):
    _, folder = three
    result = run_stemlab("export", str(folder), "--format", "wav")
    assert result.returncode == 2 and "invalid choice: 'wav'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and result.stdout == ""
    assert_one_line_error(run_stemlab("export", str(tmp_path / "nowhere"), "-o", str(tmp_path / "o")), 2)
    target = tmp_path / "taken"
    target.mkdir()
    (target / "x").write_text("x")
    refused = run_stemlab("export", str(folder), "-o", str(target))
    assert_one_line_error(refused, 2)
    assert "holds other files" in refused.stderr and "choose an empty folder" in refused.stderr
    assert_one_line_error(run_stemlab("export", str(folder), "-o", str(target), "--force"), 2)
    assert sorted(p.name for p in target.iterdir()) == ["x"]  # --force never empties a folder of other files
    assert run_stemlab("export", str(folder), "-o", str(tmp_path / "done"), "--quiet").returncode == 0
    refused = run_stemlab("export", str(folder), "-o", str(tmp_path / "done"))  # an earlier export
    assert_one_line_error(refused, 2)
    assert "--force" in refused.stderr
    assert run_stemlab("export", str(folder), "-o", str(tmp_path / "done"), "--force", "--quiet").returncode == 0
    two = make_set(tmp_path / "two", {"vocals": np.zeros((2, SR)), "instrumental": np.zeros((2, SR))})
    musdb = run_stemlab("export", str(two), "--format", "musdb", "-o", str(tmp_path / "m"))
    assert_one_line_error(musdb, 2)
    assert "no drums and no bass stem" in musdb.stderr and "'folder'" in musdb.stderr
    assert_one_line_error(run_stemlab("export", str(folder), "--flac", "--bit-depth", "32", "-o",
                                      str(tmp_path / "f")), 2)
    assert_one_line_error(run_stemlab("export", str(folder), "--format", "midi", "--codec", "alac"), 2)


def test_cli_export_of_the_current_folder_and_into_it(three, tmp_path):
    _, folder = three
    done = subprocess.run([sys.executable, "-m", "stemlab", "export", ".", "-o", str(tmp_path / "out"), "--json"],
                          capture_output=True, text=True, cwd=folder, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "out" / "export.json").read_text())["set"]["label"] == "three"
    here = tmp_path / "here"
    here.mkdir()
    done = subprocess.run([sys.executable, "-m", "stemlab", "export", str(folder), "-o", ".", "--json"],
                          capture_output=True, text=True, cwd=here, timeout=120)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in here.iterdir()) == ["bass.wav", "drums.wav", "export.json", "mixture.wav",
                                                      "vocals.wav"]  # filled in place: the shell is still in it
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    again = subprocess.run([sys.executable, "-m", "stemlab", "export", str(folder), "-o", ".", "--force"],
                           capture_output=True, text=True, cwd=here, timeout=120)
    assert_one_line_error(again, 2)
    assert "is the folder you are in" in again.stderr and (here / "export.json").exists()


def test_file_system_errors_are_one_line_usage_errors(three, tmp_path):
    _, folder = three
    stemset = stemlab.StemSet.open(folder)
    (tmp_path / "afile").write_text("x")
    for format, name in [("folder", "out"), ("zip", "out.zip"), ("midi", "out.mid")]:
        with pytest.raises(UsageError, match=rf"cannot write {re.escape(str(tmp_path / 'afile' / name))}: .*; choose"):
            export(stemset, tmp_path / "afile" / name, format=format)
    assert (tmp_path / "afile").read_text() == "x"
    if Path("/proc/self").is_dir():
        result = run_stemlab("export", str(folder), "-o", "/proc/nope")
        assert_one_line_error(result, 2)
        assert "cannot write /proc/nope: " in result.stderr and "unexpected" not in result.stderr


def test_a_fetched_set_is_exported_by_its_id(sandbox_env, sandbox):
    from conftest import CLIP_ID

    fetched = one_json(run_stemlab("fetch", "cqtai", CLIP_ID, "--json"))
    out = one_json(run_stemlab("export", fetched["job_id"], "--format", "musdb", "-o", "song-musdb", "--json"))
    assert out["sr"] == 44100 and out["channels"] == 2 and [Path(f["path"]).name for f in out["files"]] == [
        "mixture.wav", "drums.wav", "bass.wav", "other.wav", "vocals.wav", "export.json"]
    assert set(out["shifts"].values()) == {0}  # MP3 stems, decoded gaplessly: nothing to move
    record = json.loads(Path("song-musdb/export.json").read_text())
    assert record["groups"]["vocals"] == ["vocals", "backing_vocals"] and record["set"]["provider"] == "cqtai"
    assert {i["track"] for i in record["inputs"]} == {"source", *TWELVE_STEMS}
