"""plot_pianoroll: one bar per note at its pitch and time, on the axes given; truth behind."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import stemlab  # noqa: E402
from stemlab.demo import song_notes  # noqa: E402
from stemlab.errors import UsageError  # noqa: E402
from stemlab.transcription.notes import note_frame  # noqa: E402


def test_bars_sit_at_each_note_s_time_and_pitch_on_the_given_axes():
    notes = note_frame([0.5, 1.0], [0.9, 2.0], [60, 67], [90, 60], [1.0, 0.5]).assign(stem="keyboard")
    truth = note_frame([0.5], [1.0], [60], [90], [1.0])
    fig, ax = plt.subplots()
    drawn = stemlab.plot_pianoroll(notes, ax=ax, truth=truth)
    assert [c.get_label() for c in drawn] == ["truth", "keyboard"] and all(c.axes is ax for c in drawn)
    boxes = [p.vertices for p in drawn[1].get_paths()]
    corners = [(v[:, 0].min(), v[:, 0].max(), v[:, 1].min(), v[:, 1].max()) for v in boxes]
    assert np.allclose(corners, [(0.5, 0.9, 59.6, 60.4), (1.0, 2.0, 66.6, 67.4)])
    assert ax.get_xlim() == (0.5, 2.0) and ax.get_ylim() == (58.5, 68.5)
    assert "C4" in [t.get_text() for t in ax.get_yticklabels()]
    plt.close(fig)


def test_drum_notes_are_labelled_with_the_drums_names():
    drums = song_notes().query("stem == 'drums'")
    fig, ax = plt.subplots()
    stemlab.plot_pianoroll(drums, ax=ax, t0=0, t1=4)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert {"kick", "snare", "closed hat"} <= set(labels)
    plt.close(fig)


def test_a_table_without_note_columns_is_refused_in_one_line():
    import pandas as pd

    with pytest.raises(UsageError, match="plot_pianoroll takes a notes table .* no offset, onset, pitch column"):
        stemlab.plot_pianoroll(pd.DataFrame({"time": [0.0]}))
