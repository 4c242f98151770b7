"""StemSet: names, indexing, iteration, folders of audio files, and the notebook repr."""

import numpy as np
import pytest
import soundfile as sf

from stemlab.encode import write_mp3
from stemlab.errors import UsageError
from stemlab.sandbox.synth import synth_stems
from stemlab.stemset import StemSet
from stemlab.view import set_view

SR = 44100


@pytest.fixture
def folder(tmp_path):
    stems = synth_stems(duration=1.5, sr=SR, names=("vocals", "drums", "bass"), seed=5)
    for name, audio in stems.items():
        write_mp3(tmp_path / f"{name}.mp3", audio, SR)
    sf.write(tmp_path / "mixture.flac", sum(stems.values()).T, SR)
    (tmp_path / "notes.txt").write_text("not audio")
    return tmp_path


def test_a_folder_of_files_is_a_stem_set(folder):
    s = StemSet.open(folder)
    assert s.names == ["vocals", "drums", "bass"]  # canonical order, not alphabetical
    assert s.source is not None and s.source.path.name == "mixture.flac"
    assert [stem.name for stem in s] == s.names and len(s) == 3 and "drums" in s and "fx" not in s
    assert s["vocals"].audio.shape == (2, int(1.5 * SR)) and s.sr == SR
    with pytest.raises(KeyError, match="no stem 'guitar'"):
        s["guitar"]
    assert s.duration == pytest.approx(1.5)


def test_mono_and_resampled_views_are_cached_separately(folder):
    s = StemSet.open(folder)
    mono = s.with_options(sr=22050, mono=True)
    assert mono["bass"].audio.shape == (1, int(1.5 * 22050)) and mono.sr == 22050
    assert s["bass"].audio.shape == (2, int(1.5 * SR))
    derived = sorted(p.name.split(".", 2)[2] for p in s.derived_dir.iterdir() if p.name.startswith("bass."))
    assert derived == ["22050.mono.npy", "native.npy"]


def test_repr_is_a_table_whose_players_get_their_mp3s_over_the_comm(folder):
    s = StemSet.open(folder)
    html, still = set_view.widget(s).html, s._repr_html_()
    assert html.count("<audio") == 4 and "data:audio" not in html + still and "audio/wav" not in html
    assert "<audio" not in still and "re-run this cell" in still  # where widgets cannot render
    rows = html.split("<tbody>")[1].split("</tr>")[:-1]
    assert ">source<" in rows[0] and "font-weight:bold" in rows[0]  # the source comes first, in bold
    assert not any("font-weight:bold" in row for row in rows[1:])


def test_empty_folder_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no audio files"):
        StemSet.open(tmp_path)
    with pytest.raises(UsageError, match="not a folder"):
        StemSet.open(tmp_path / "missing")


def test_arrays_and_decode_all(folder):
    s = StemSet.open(folder).decode_all()
    arrays = s.arrays()
    assert set(arrays) == {"vocals", "drums", "bass"}
    error = sum(arrays.values()) - s.source.audio
    snr = 10 * np.log10(np.sum(s.source.audio ** 2) / np.sum(error ** 2))
    assert snr > 20  # MP3 stems against a lossless mix: coding noise only
