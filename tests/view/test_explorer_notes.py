"""The explorer's notes: asked for only when a row wants them (shown or heard), with the busy
state while they come, kept, and sent to the page as compact float32 arrays per row.

Most tests give the demo song's true score (``song.mid``, one track per stem) through the
explorer's ``notes=`` seam; one runs the default, :func:`stemlab.transcribe`, for real.
"""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import stemlab
import stemlab.analysis.notes
from stemlab.demo import song_notes
from stemlab.errors import UsageError
from stemlab.view.explorer import Explorer
from stemlab.view.spectrogram import LOG_FMIN
from stemlab.view.widget import NOTE_FIELDS, StemView, pack_notes

def midi_notes() -> dict[str, pd.DataFrame]:
    """The demo song's notes from its MIDI score, as ``stemlab.transcribe`` tables, by stem name."""
    return {name: table.reset_index(drop=True) for name, table in song_notes().groupby("stem")}


def table_of(view: StemView, name: str) -> np.ndarray:
    return np.frombuffer(view.notes[name]["data"], "<f4").reshape(-1, len(NOTE_FIELDS))


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    return stemlab.demo_song(cache_dir=str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="module")
def score():
    return midi_notes()


class Counting:
    """A ``notes=`` callable that counts its calls and records the busy state during each."""

    def __init__(self, score, explorer_box):
        self.score, self.box, self.calls, self.busy = score, explorer_box, [], []

    def __call__(self, stem):
        self.calls.append(stem.name)
        self.busy.append(self.box[0].view.busy if self.box else None)
        return self.score[stem.name]


def test_notes_are_transcribed_when_a_row_first_wants_them_then_kept(song, score):
    box = []
    source = Counting(score, box)
    ex = Explorer(song, notes=source)
    box.append(ex)
    assert source.calls == [] and ex.view.notes == {} and ex.view.notes_shown == []
    assert ex.view.nyquist == song.sr / 2

    ex.view.set_state({"notes_shown": ["bass"]})  # as the page's toggle writes it
    assert source.calls == ["bass"] and source.busy == ["transcribing bass"] and ex.view.busy == ""
    table = table_of(ex.view, "bass")
    truth = score["bass"].sort_values("onset")
    assert table.shape == (len(truth), 5) and ex.view.notes["bass"]["drums"] is False
    assert np.allclose(table[:, 0], truth.onset, atol=1e-5) and np.allclose(table[:, 1], truth.offset, atol=1e-5)
    assert table[:, 2].tolist() == truth.pitch.tolist() and table[:, 3].tolist() == truth.velocity.tolist()
    assert (table[:, 4] == 1).all() and (np.diff(table[:, 0]) >= 0).all()

    ex.view.set_state({"notes_shown": []})
    ex.view.set_state({"notes_shown": ["bass"]})  # off and on: kept, not transcribed again
    ex.show_notes("drums")
    assert source.calls == ["bass", "drums"] and ex.view.notes_shown == ["bass", "drums"]
    assert ex.view.notes["drums"]["drums"] is True and set(table_of(ex.view, "drums")[:, 2]) >= {36, 38, 42}
    ex.show_notes("bass", False)
    assert ex.view.notes_shown == ["drums"] and "bass" in ex.view.notes  # hidden, still in the page

    # Hearing a row's notes needs them too.
    ex.view.set_state({"hear": {"vocals": "notes"}})
    assert source.calls[-1] == "vocals" and "vocals" in ex.view.notes
    ex.hear("guitar", "both")
    assert ex.view.hear == {"vocals": "notes", "guitar": "both"} and source.calls[-1] == "guitar"
    ex.hear("guitar", "audio")
    assert source.calls.count("guitar") == 1
    with pytest.raises(UsageError, match="mode must be"):
        ex.hear("guitar", "loud")
    # Small: a 41 s song's notes are a few kB, in the trait the saved notebook keeps.
    assert sum(len(v["data"]) for v in ex.view.notes.values()) < 20_000


def test_the_notes_survive_the_residual_layout_and_go_into_saved_pages(song, score):
    ex = Explorer(song, notes=score)
    ex.show_notes("bass")
    ex.view.show = "residual"
    assert "bass" in ex.view.notes and ex.view.notes_shown == ["bass"]
    ex.view.show = "stems"
    state = ex.view.page_state()
    assert state["notes_shown"] == ["bass"] and state["notes"]["bass"]["data"] == ex.view.notes["bass"]["data"]
    assert "nyquist" in state


def test_load_notes_fills_the_page_without_showing_them(song, score):
    ex = Explorer(song, notes=score)
    ex.load_notes()
    assert set(ex.view.notes) == set(score) and ex.view.notes_shown == []  # the mapping's stems only
    assert ex.view.notes["percussion"]["drums"] is True and ex.view.notes["keyboard"]["drums"] is False


def test_a_failure_is_shown_on_the_row_and_tried_again_when_switched_on_again(song, score):
    attempts = []

    def flaky(stem):
        attempts.append(stem.name)
        if len(attempts) == 1:
            raise RuntimeError("model not downloaded")
        return score[stem.name]

    ex = Explorer(song, notes=flaky)
    ex.view.set_state({"notes_shown": ["bass"]})
    assert ex.view.notes["bass"] == {"error": "RuntimeError: model not downloaded"} and ex.view.busy == ""
    ex.view.set_state({"notes_shown": ["bass", "drums"]})  # another row: bass is not asked again
    assert attempts == ["bass", "drums"]
    ex.view.set_state({"notes_shown": ["drums"]})
    ex.view.set_state({"notes_shown": ["drums", "bass"]})
    assert attempts == ["bass", "drums", "bass"] and "data" in ex.view.notes["bass"]
    with pytest.raises(UsageError, match="no stem"):
        ex.show_notes("nonsense")
    with pytest.raises(UsageError, match="no notes for 'fx'"):
        Explorer(song, notes=score).show_notes("fx")


def test_the_default_is_stemlab_transcribe_imported_when_first_needed(song, score, monkeypatch):
    ex = Explorer(song)
    got = []
    monkeypatch.setattr(stemlab.analysis.notes, "transcribe", lambda stem: got.append(stem) or score[stem.name])
    ex.show_notes("strings")
    assert [s.name for s in got] == ["strings"] and got[0] is song["strings"]
    assert len(table_of(ex.view, "strings")) == len(score["strings"])


def test_the_default_transcribes_the_stem_for_real(song):
    ex = Explorer(song)
    ex.show_notes("bass")
    sent = table_of(ex.view, "bass")
    expected = stemlab.transcribe(song["bass"])  # cached now: the same table
    assert len(sent) == len(expected) > 50
    assert np.allclose(sent[:, 0], expected.onset, atol=1e-4) and (sent[:, 2] == expected.pitch).all()
    assert ex.view.notes["bass"]["drums"] is False


def test_drum_rows_follow_the_table_or_the_stem_name(song, score):
    tagged = score["bass"].copy()
    tagged.attrs["drums"] = True
    ex = Explorer(song, notes={"bass": tagged, "drums": score["drums"]})
    ex.load_notes(["bass", "drums"])
    assert ex.view.notes["bass"]["drums"] is True and ex.view.notes["drums"]["drums"] is True


def test_pack_notes_and_the_traits_validate():
    data = pack_notes([2.0, 1.0, 3.0, np.nan], [2.5, 0.5, 3.5, 4.0], [60, 62, 64, 65], [127, 64, 200, 1],
                      [0.5, 1.0, 2.0, 1.0])
    table = np.frombuffer(data, "<f4").reshape(-1, 5)
    assert table.tolist() == [[2.0, 2.5, 60.0, 127.0, 0.5], [3.0, 3.5, 64.0, 127.0, 1.0]]  # bad rows out, clipped
    assert pack_notes([], [], []) == b""
    with pytest.raises(ValueError):
        pack_notes([1.0], [2.0, 3.0], [60])
    view = StemView(tracks=[{"name": "bass"}], duration=2.0)
    with pytest.raises(Exception, match="hear"):
        view.hear = {"bass": "synth"}
    view.notes_shown = ["bass", "bass"]
    assert view.notes_shown == ["bass"]


def test_the_page_maps_frequencies_as_the_spectrogram_does():
    """The page's log axis starts where the kernel's does; its note layout reads the five fields."""
    js = (Path(stemlab.__file__).parent / "view" / "stemview.js").read_text()
    assert float(re.search(r"const LOG_FMIN = ([\d.]+);", js).group(1)) == LOG_FMIN
    assert int(re.search(r"const NOTE_FIELDS = (\d+);", js).group(1)) == len(NOTE_FIELDS)
