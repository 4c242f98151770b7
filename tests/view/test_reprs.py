"""Notebook reprs stay small whatever the song's length: players get their MP3s over the comm
(tests/test_notebooks.py saves every executed notebook and checks its size)."""

import numpy as np
import pytest
import soundfile as sf

import stemlab
from stemlab.sandbox.synth import synth_stems
from stemlab.view import set_view

SR = 22050
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _set(folder, seconds, *, seed=3):
    stems = synth_stems(duration=seconds, sr=SR, names=("vocals", "drums", "bass"), seed=seed)
    folder.mkdir(parents=True)
    for name, audio in stems.items():
        sf.write(folder / f"{name}.wav", audio.T, SR, subtype="FLOAT")
    sf.write(folder / "mixture.wav", sum(stems.values()).T, SR, subtype="FLOAT")
    return stemlab.StemSet.open(folder)


@pytest.fixture(scope="module")
def short_and_long(tmp_path_factory):
    root = tmp_path_factory.mktemp("reprs")
    return _set(root / "short", 1.0), _set(root / "long", 60.0)


def _sent(widget):
    """What the widget sends when a page asks for audio: [(message, buffers)]."""
    messages = []
    widget.send = lambda content, buffers=None: messages.append((content, buffers))
    widget._handle_message(widget, {"type": "need-audio"}, [])
    return messages


def _shown(obj, monkeypatch) -> list[dict]:
    """The bundles ``obj`` displays in a notebook."""
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda data, raw=False: shown.append(data))
    obj._ipython_display_()
    return shown


def test_stem_set_repr_holds_no_audio_and_does_not_grow_with_the_song(short_and_long, monkeypatch):
    short, long = short_and_long
    sizes = []
    for s in (short, long):
        still, view = _shown(s, monkeypatch)
        assert "re-run this cell" in still["text/html"] and "<audio" not in still["text/html"]
        assert "stemlab-still" in still["text/html"] and still["text/plain"] == repr(s)
        assert WIDGET_VIEW in view and "data:audio" not in str(still) + str(view)
        widget = set_view.widget(s)
        assert widget.html.count("<audio") == 4 and "data:audio" not in widget.html
        sizes.append(len(str(still)) + len(str(view)) + len(widget.html))
    assert max(sizes) < 10_000 and abs(sizes[0] - sizes[1]) < 100  # 1 s or 60 s: the same few kB


def test_stem_set_players_get_one_mp3_each_over_the_comm(short_and_long):
    short, _ = short_and_long
    messages = _sent(set_view.widget(short))
    assert [m["key"] for m, _ in messages] == ["0", "1", "2", "3"]  # the source, then every stem
    assert all(m["type"] == "audio" and len(b) == 1 and (b[0][:3] == b"ID3" or b[0][0] == 0xFF) for m, b in messages)
    assert _sent(set_view.widget(short["drums"]))[0][0]["key"] == "0"  # a Stem: one player


def test_listen_plays_over_the_comm_unless_embed_is_asked_for(monkeypatch):
    sizes, embedded = [], []
    for seconds in (1, 30):
        tone = 0.1 * np.sin(np.arange(SR * seconds) * 0.05).astype(np.float32)
        players = stemlab.listen(tone, tone * 0.5, sr=SR, labels=["tone", "quieter"])
        still, view = _shown(players, monkeypatch)
        assert WIDGET_VIEW in view and "data:audio" not in str(still) + players.widget().html
        sizes.append(len(str(still)) + len(str(view)) + len(players.widget().html))
        assert [m["key"] for m, _ in _sent(players.widget())] == ["0", "1"]
        kept = stemlab.listen(tone, sr=SR, embed=True)
        [page] = _shown(kept, monkeypatch)
        assert "data:audio/mpeg;base64," in page["text/html"] and WIDGET_VIEW not in page
        embedded.append(len(page["text/html"]))
    assert sizes[0] == sizes[1] and sizes[0] < 5_000
    assert embedded[1] > 10 * embedded[0]  # the keyword is what lets audio into the notebook


def test_check_repr_is_bounded_whatever_the_length(short_and_long):
    sizes = [len(stemlab.check(s)._repr_html_()) for s in short_and_long]
    assert max(sizes) < 100_000 and max(sizes) < 1.5 * min(sizes)


def test_comparison_says_identical_and_shows_agreement_one_way(tmp_path, short_and_long):
    short, _ = short_and_long
    other = _set(tmp_path / "other", 1.0, seed=9)
    comparison = stemlab.compare(short, other, reference=short, bss=False)
    assert comparison.table[comparison.table.set == short.label].identical.any()
    html = comparison._repr_html_()
    assert "identical" in html and "inf" not in html
    forward, backward = f"{short.label} vs {other.label}", f"{other.label} vs {short.label}"
    assert comparison.pairs() == [forward] and comparison.pairs(both_directions=True) == [forward, backward]
    assert list(comparison.pivot("agreement_si_sdr").columns) == [forward] and backward not in html
    assert list(comparison.pivot("agreement_si_sdr", both_directions=True).columns) == [forward, backward]
    text = comparison.pivot("si_sdr", digits=1)
    assert set(text[short.label]) == {"identical"} and all(v.count(".") == 1 for v in text[other.label])
    scores = comparison.scores(digits=1)
    assert set(scores[scores.set == short.label].si_sdr) == {"identical"}


def test_a_finished_notebook_bar_becomes_text(monkeypatch):
    """In a notebook a tqdm bar is a widget: once closed, its output is a line of text, so the saved
    notebook has no view of a closed widget (which shows "model not found" when reopened)."""
    import IPython.display
    import tqdm.auto
    import tqdm.notebook

    from stemlab.progress import byte_bar

    events = []

    class Handle:
        def update(self, data, raw=False):
            events.append(("update", data))

    def display(obj, display_id=None, **_):
        events.append(("display", type(obj).__name__))
        return Handle() if display_id else None

    monkeypatch.setattr(IPython.display, "display", display)
    monkeypatch.setattr(tqdm.notebook, "display", display)
    monkeypatch.setattr(tqdm.auto, "tqdm", tqdm.notebook.tqdm)
    with byte_bar(desc="download") as bar:
        bar.grow(1000)
        bar.advance(1000)
        container = bar._bar.container
    assert [e[0] for e in events] == ["display", "update"]
    assert events[1][1]["text/plain"].startswith("download: 100%")
    assert container.comm is None  # the widget itself is closed
