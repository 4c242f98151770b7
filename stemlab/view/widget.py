"""``StemView``: stacked waveform/spectrogram rows with an in-browser, sample-synced stem mixer.

The kernel computes what is drawn (min/max envelopes, 8-bit spectrogram PNGs, axis labels) and
sets it as traits; the browser (``stemview.js``) draws it and plays every track with Web Audio:
one ``AudioBufferSourceNode`` and one ``GainNode`` per track, all started at the same
``AudioContext`` time.

Audio is deliberately *not* a trait, so a notebook saved with widget state stays small: the MP3s
live on the Python object (:meth:`StemView.set_audio`) and go to the page as binary buffers of
custom comm messages when the page asks for them.

Message protocol (custom messages on the widget's comm):

=================  ==========================================================  ===========
direction          content                                                     buffers
=================  ==========================================================  ===========
page -> kernel     ``{"type": "need-audio"}`` (sent by every page on load)      none
page -> kernel     ``{"type": "need-audio", "version": v, "missing": [i, ...]}``  none
kernel -> page     ``{"type": "audio", "index": i, "count": n, "version": v,    ``[mp3]``
                   "digest": d}`` (``digest`` optional)
kernel -> page     ``{"type": "audio-list", "version": v, "count": n,           none
                   "digests": [d, ...]}``
kernel -> page     ``{"type": "no-audio"}`` (asked before ``set_audio``)        none
kernel -> page     ``{"type": "seek", "t": seconds}``                           none
=================  ==========================================================  ===========

A page asks for all the audio on load. Later :meth:`StemView.set_audio` calls send only
``audio-list`` (a digest per track); the page takes what it has decoded already (the way back
from the residual layout decodes nothing) and asks for the ``missing`` indices of that version.
The same MP3s always get the same version. Pages without a kernel (``to_html``, the report)
answer ``need-audio`` from their embedded audio, and the report's page sends ``audio-list``
itself when it switches sets (see :mod:`~stemlab.view.standalone`).

The page writes ``position`` (about 10 Hz while playing, and on pause and seek), ``playing``,
``status``, ``gains_db``, ``muted``, ``soloed`` and ``ab``; from its own controls ``view``,
``scale``, ``channels``, ``show``, ``t0``/``t1`` (wheel, drag-select, zoom buttons) and
``loop`` (shift-drag, the loop button), and per row ``notes_shown`` (the notes toggle) and
``hear`` (audio, a synth of the notes, or both). Whoever computes the rows (the
:class:`~stemlab.view.explorer.Explorer`) observes those and answers with new data and
``shown`` (and ``notes``, transcribed when a row first wants them); until then the page draws the data it has, remapped from ``shown``'s window, and
shows a busy state after 200 ms. With ``shown`` empty (a plain view, a standalone page) nobody
refines the data: zooming rescales what there is.

Examples
--------
>>> import numpy as np
>>> view = StemView(tracks=[{"name": "mix", "kind": "source"}, {"name": "drums"}], duration=6.0)
>>> [t["kind"] for t in view.tracks], view.gains_db, view.muted
(['source', 'stem'], [0.0, 0.0], [False, False])
>>> view.t1
6.0
>>> view.waves = pack_waves(np.zeros((2, 1, 2, view.columns)))
>>> len(view.waves) == 2 * 1 * 2 * 1000 * 4
True
"""

from __future__ import annotations

import hashlib
import math
import os
import pathlib
import uuid
from collections.abc import Sequence

import anywidget
import numpy as np
from traitlets import Bool, Bytes, Dict, Float, Int, List, TraitError, Tuple, Unicode, default, observe, validate

from ..dsp import gram
from .spectrogram import SCALES, colormap_lut

__all__ = ["StemView", "pack_waves", "pack_notes", "energy_matrix", "GAIN_MIN_DB", "GAIN_MAX_DB"]

GAIN_MIN_DB = -60.0  # the bottom of the fader: silence
GAIN_MAX_DB = 12.0
VIEWS = ("waveform", "spectrogram", "both")
KINDS = ("source", "stem", "residual", "sum")
AB_MODES = ("stems", "source")
CHANNELS = ("mid", "stereo")
SHOWS = ("stems", "residual")
HEAR_MODES = ("audio", "notes", "both")  # a row plays its audio, a synth of its notes, or both
NOTE_FIELDS = ("onset", "offset", "pitch", "velocity", "confidence")  # the float32 columns of notes
CONTROLS = ("view", "scale", "channels", "show", "zoom", "loop")
KERNEL_CONTROLS = ("view", "scale", "channels", "show")  # need a kernel to recompute the rows


class StemView(anywidget.AnyWidget):
    """One row per track (source first, then stems), a shared time axis, and a synced mixer.

    Parameters are the traits below, all optional; ``tracks`` sets the row count, and
    ``gains_db``/``muted``/``soloed`` follow it by name: a row keeps its settings, a name that
    comes back (after another track list) gets its settings back, new rows start at 0 dB, unmuted.

    Traits
    ------
    tracks : list of dict
        Per row: ``{"name", "label", "kind", "silent"}`` (and optionally ``"color"``, a CSS
        colour). ``kind`` is ``"source"``, ``"stem"``, ``"residual"`` or ``"sum"``; ``label``
        defaults to ``name``, ``silent`` to False.
    duration : float
        Seconds; every track shares the source's timeline.
    view : {"waveform", "spectrogram", "both"}
    t0, t1 : float
        The visible window in seconds (``t1`` defaults to ``duration``).
    columns : int
        Data columns of every envelope and spectrogram image.
    waves : bytes
        float32 little-endian ``(n_tracks, wave_channels, 2, columns)``: per column min then max,
        in [-1, 1], over [t0, t1]. See :func:`pack_waves`.
    wave_channels : {1, 2}
        1 (mid) or 2 (left and right, drawn as two halves).
    wave_points : bytes
        For sample-level zoom: float32 ``(n_tracks, wave_channels, n_points)``, the raw samples
        spanning [t0, t1] inclusive (point ``k`` is at ``t0 + k * (t1 - t0) / (n_points - 1)``);
        drawn as a line with dots instead of the envelope. Empty otherwise.
    specs : list of bytes
        One 8-bit grayscale PNG per track (rows x columns, row 0 = highest frequency), ``b""``
        for silent tracks. See :func:`gray_png`.
    colormap : bytes
        256 x 3 uint8 RGB lookup table applied to the gray PNGs (default: magma).
    freq_ticks : list of (float, str)
        ``(fraction from the bottom, label)`` for the spectrogram's frequency axis.
    db_label : str
        The colour scale's caption, e.g. ``"-80 .. 0 dBFS (shared by all stems)"``.
    gains_db : list of float
        Per-track fader in dB, clipped to [-60, +12]; -60 means silence.
    muted, soloed : list of bool
        DAW semantics: with any stem soloed, only soloed and unmuted stems play, else all
        unmuted stems. The source row takes no part in the stem mix.
    ab : {"stems", "source"}
        ``"source"`` plays only the source, level-matched to the current stem mix.
    ab_labels : list of two str
        The A/B buttons' captions (default ``["Stems", "Source"]``).
    energy : list of list of float
        Gram matrix ``<x_i, x_j> / N`` of all tracks' audio (see :func:`energy_matrix`); the mix
        power for linear gains ``g`` is ``g^T E g``.
    playing : bool
        Set by the page; set it from Python to play or pause.
    position : float
        Seconds, written by the page. Use :meth:`seek` to move it.
    status : str
        Written by the page (e.g. ``"ready: 13 tracks decoded in 2.4 s"``).
    scale : {"log", "mel", "linear"}; channels : {"mid", "stereo"}; show : {"stems", "residual"}
        What the rows should show, written by the page's controls (and by Python); the kernel
        recomputes the rows and sets ``shown``.
    controls : list of str
        The page's controls, among ``"view"``, ``"scale"``, ``"channels"``, ``"show"`` (these
        need a kernel), ``"zoom"`` and ``"loop"`` (default: the last two).
    loop : list of float
        ``[t0, t1]``: playback repeats that span (sample-synced on every track); ``[]``: no loop.
    shown : dict
        What the data traits hold: ``{"t0", "t1", "view", "scale", "channels", "show"}``, set
        with the data by whoever computes it; ``{}`` (default): the data is for the window the
        page had when it arrived, and nobody refines it.
    busy : str
        Set by the kernel while it computes new rows (e.g. ``"computing the residual"``); the
        page shows it, and dims the plots, after 200 ms.
    notes : dict
        Transcribed notes by row name: ``{"drums": bool, "data": bytes}`` with ``data`` float32
        little-endian ``(n, 5)``: onset s, offset s, MIDI pitch (for drums the General MIDI
        percussion key), velocity 1-127, confidence 0-1, sorted by onset (see
        :func:`pack_notes`); or ``{"error": str}`` when the notes could not be had.
    notes_shown : list of str
        Names of the rows whose notes are drawn over their plot (the rows' notes toggles): on a
        spectrogram at their pitch's frequency (drum hits as ticks in lanes), over a waveform
        on the row's own pitch range.
    hear : dict
        ``{name: "audio" | "notes" | "both"}``: what a row plays, its audio, a synth rendering
        of its notes in sync, or both (rows not listed: ``"audio"``). A row's fader, mute and
        solo apply to its synth too.
    nyquist : float
        Hz at the top of the spectrograms' frequency axis (half the sample rate); the page maps
        note pitches onto that axis (default 22050).

    Examples
    --------
    >>> view = StemView(tracks=[{"name": "mix", "kind": "source"}, {"name": "bass"}], duration=3)
    >>> view.set_audio([b"...mp3 bytes...", b"...mp3 bytes..."])   # doctest: +SKIP
    >>> view.muted = [False, True]          # the page follows
    >>> view.seek(1.5)                      # doctest: +SKIP
    >>> html = view.to_html()               # a self-contained player page
    >>> html.startswith("<!doctype html>")
    True
    >>> view.loop = [1.0, 2.5]              # playback repeats 1.0 .. 2.5 s
    >>> view.tracks = [{"name": "mix", "kind": "source"}, {"name": "drums"}]
    >>> view.tracks = [{"name": "mix", "kind": "source"}, {"name": "bass"}]
    >>> view.muted                          # bass got its settings back
    [False, True]
    """

    _esm = pathlib.Path(__file__).parent / "stemview.js"
    _css = pathlib.Path(__file__).parent / "stemview.css"

    _uid = Unicode().tag(sync=True)
    tracks = List(Dict()).tag(sync=True)
    duration = Float(0.0).tag(sync=True)
    view = Unicode("both").tag(sync=True)
    t0 = Float(0.0).tag(sync=True)
    t1 = Float(0.0).tag(sync=True)
    columns = Int(1000).tag(sync=True)
    waves = Bytes(b"").tag(sync=True)
    wave_channels = Int(1).tag(sync=True)
    wave_points = Bytes(b"").tag(sync=True)
    specs = List(Bytes()).tag(sync=True)
    colormap = Bytes(b"").tag(sync=True)
    freq_ticks = List(Tuple(Float(), Unicode())).tag(sync=True)
    db_label = Unicode("").tag(sync=True)
    gains_db = List(Float()).tag(sync=True)
    muted = List(Bool()).tag(sync=True)
    soloed = List(Bool()).tag(sync=True)
    ab = Unicode("stems").tag(sync=True)
    ab_labels = List(Unicode(), default_value=["Stems", "Source"]).tag(sync=True)
    energy = List(List(Float())).tag(sync=True)
    playing = Bool(False).tag(sync=True)
    position = Float(0.0).tag(sync=True)
    status = Unicode("").tag(sync=True)
    scale = Unicode("log").tag(sync=True)
    channels = Unicode("mid").tag(sync=True)
    show = Unicode("stems").tag(sync=True)
    controls = List(Unicode(), default_value=["zoom", "loop"]).tag(sync=True)
    loop = List(Float()).tag(sync=True)
    shown = Dict().tag(sync=True)
    busy = Unicode("").tag(sync=True)
    notes = Dict().tag(sync=True)
    notes_shown = List(Unicode()).tag(sync=True)
    hear = Dict().tag(sync=True)
    nyquist = Float(22050.0).tag(sync=True)

    def __init__(self, **kwargs):
        if "t1" not in kwargs and "duration" in kwargs:
            kwargs["t1"] = float(kwargs["duration"])
        if "colormap" not in kwargs:
            kwargs["colormap"] = colormap_lut("magma")
        self._audio: list[bytes] = []
        self._audio_version = 0
        self._audio_digests: list[str] = []
        self._versions: dict[tuple[str, ...], int] = {}  # the same MP3s keep their version
        self._audio_requested = False
        self._mixer_memory: dict[str, tuple[float, bool, bool]] = {}  # by track name
        super().__init__(**kwargs)
        self.on_msg(self._handle_message)

    # ---- defaults and validation ------------------------------------------------------------

    @default("_uid")
    def _default_uid(self):
        return uuid.uuid4().hex

    @validate("tracks")
    def _valid_tracks(self, proposal):
        rows = []
        for i, track in enumerate(proposal["value"]):
            if not isinstance(track.get("name"), str) or not track["name"]:
                raise TraitError(f"tracks[{i}] needs a non-empty 'name', got {track!r}")
            kind = track.get("kind", "stem")
            if kind not in KINDS:
                raise TraitError(f"tracks[{i}]['kind'] must be one of {KINDS}, got {kind!r}")
            rows.append({**track, "kind": kind, "label": str(track.get("label") or track["name"]),
                         "silent": bool(track.get("silent", False))})
        if sum(row["kind"] == "source" for row in rows) > 1:
            raise TraitError("at most one track may have kind 'source'")
        return rows

    @observe("duration")
    def _window_follows_duration(self, change):
        if self.t1 <= self.t0:
            self.t1 = change["new"]

    @observe("tracks")
    def _resize_mixer(self, change):
        previous = change["old"] if isinstance(change["old"], list) else []
        current = list(zip(self.gains_db, self.muted, self.soloed))
        if previous:  # settings follow the names, and are remembered for names that go away
            self._mixer_memory.update(zip([t["name"] for t in previous], current))
            rows = [self._mixer_memory.get(t["name"], (0.0, False, False)) for t in change["new"]]
        else:  # the first track list: values given before it keep their places
            rows = [(_at(self.gains_db, i, 0.0), _at(self.muted, i, False), _at(self.soloed, i, False))
                    for i in range(len(change["new"]))]
        with self.hold_trait_notifications():
            self.gains_db = [float(g) for g, _, _ in rows]
            self.muted = [bool(m) for _, m, _ in rows]
            self.soloed = [bool(x) for _, _, x in rows]

    @validate("view")
    def _valid_view(self, proposal):
        return _one_of("view", proposal["value"], VIEWS)

    @validate("ab")
    def _valid_ab(self, proposal):
        return _one_of("ab", proposal["value"], AB_MODES)

    @validate("scale")
    def _valid_scale(self, proposal):
        return _one_of("scale", proposal["value"], SCALES)

    @validate("channels")
    def _valid_channels(self, proposal):
        return _one_of("channels", proposal["value"], CHANNELS)

    @validate("show")
    def _valid_show(self, proposal):
        return _one_of("show", proposal["value"], SHOWS)

    @validate("controls")
    def _valid_controls(self, proposal):
        for name in proposal["value"]:
            _one_of("controls", name, CONTROLS)
        return proposal["value"]

    @validate("loop")
    def _valid_loop(self, proposal):
        loop = [float(t) for t in proposal["value"]]
        if loop and not (len(loop) == 2 and all(math.isfinite(t) for t in loop) and 0 <= loop[0] < loop[1]):
            raise TraitError(f"loop must be [] or [t0, t1] with 0 <= t0 < t1, got {proposal['value']!r}")
        if loop and self.duration:
            loop = [min(loop[0], self.duration), min(loop[1], self.duration)]
            if not loop[1] > loop[0]:
                raise TraitError(f"loop {proposal['value']!r} is past the end ({self.duration:.2f} s)")
        return loop

    @validate("hear")
    def _valid_hear(self, proposal):
        for name, mode in proposal["value"].items():
            _one_of(f"hear[{name!r}]", mode, HEAR_MODES)
        return proposal["value"]

    @validate("notes_shown")
    def _valid_notes_shown(self, proposal):
        return list(dict.fromkeys(proposal["value"]))  # each name once, in order

    @validate("wave_channels")
    def _valid_wave_channels(self, proposal):
        if proposal["value"] not in (1, 2):
            raise TraitError(f"wave_channels must be 1 or 2, got {proposal['value']!r}")
        return proposal["value"]

    @validate("columns")
    def _valid_columns(self, proposal):
        if proposal["value"] < 1:
            raise TraitError(f"columns must be >= 1, got {proposal['value']!r}")
        return proposal["value"]

    @validate("duration", "t0", "t1", "position")
    def _valid_seconds(self, proposal):
        value = proposal["value"]
        if not math.isfinite(value) or value < 0:
            raise TraitError(f"{proposal['trait'].name} must be a finite number of seconds >= 0, got {value!r}")
        return value

    @validate("gains_db")
    def _valid_gains(self, proposal):
        gains = []
        for value in proposal["value"]:
            if math.isnan(value):
                raise TraitError("gains_db must not contain NaN")
            gains.append(min(GAIN_MAX_DB, max(GAIN_MIN_DB, float(value))))
        return gains

    @validate("colormap")
    def _valid_colormap(self, proposal):
        if len(proposal["value"]) not in (0, 256 * 3):
            raise TraitError(f"colormap must be 768 bytes (256 RGB entries), got {len(proposal['value'])}")
        return proposal["value"]

    @validate("energy")
    def _valid_energy(self, proposal):
        matrix = proposal["value"]
        if any(len(row) != len(matrix) for row in matrix):
            raise TraitError("energy must be a square matrix (n_tracks x n_tracks)")
        return matrix

    # ---- audio and transport ----------------------------------------------------------------

    def set_audio(self, mp3s: Sequence[bytes | bytearray | memoryview | str | os.PathLike]) -> None:
        """Give the player one MP3 per track (bytes, or paths to MP3 files), in row order.

        The bytes stay on this Python object; pages that already asked for audio get the new
        set at once, later pages when they load.
        """
        audio = [pathlib.Path(item).read_bytes() if isinstance(item, (str, os.PathLike)) else bytes(item)
                 for item in mp3s]
        if self.tracks and len(audio) != len(self.tracks):
            raise ValueError(f"set_audio got {len(audio)} files for {len(self.tracks)} tracks")
        digests = [hashlib.blake2b(mp3, digest_size=8).hexdigest() for mp3 in audio]
        self._audio, self._audio_digests = audio, digests
        if tuple(digests) not in self._versions:
            self._versions[tuple(digests)] = len(self._versions) + 1
        self._audio_version = self._versions[tuple(digests)]
        if self._audio_requested:
            if audio:
                self.send({"type": "audio-list", "version": self._audio_version, "count": len(audio),
                           "digests": digests})
            else:
                self._send_audio()

    @property
    def audio(self) -> list[bytes]:
        """The MP3 bytes given to :meth:`set_audio` (a copy of the list)."""
        return list(self._audio)

    def seek(self, t: float) -> None:
        """Move the playhead of every page showing this widget to ``t`` seconds (playing or not)."""
        t = float(t)
        if not math.isfinite(t):
            raise ValueError(f"seek needs a finite time, got {t!r}")
        self.send({"type": "seek", "t": min(max(t, 0.0), self.duration or t)})

    def play(self) -> None:
        """Start playback in the page (same as ``view.playing = True``)."""
        self.playing = True

    def pause(self) -> None:
        """Pause playback in the page (same as ``view.playing = False``)."""
        self.playing = False

    def page_state(self) -> dict:
        """The synced traits as a page without a kernel should get them (what :meth:`to_html`
        embeds): page-only controls (zoom, loop), no busy state, and ``shown`` empty, so that
        zooming rescales the data the page holds (its window becomes ``t0``/``t1``).

        >>> StemView(controls=["scale", "zoom"]).page_state()["controls"]
        ['zoom']
        """
        state = {name: getattr(self, name) for name in StemView.class_own_traits(sync=True)}
        if self.shown.get("t1", 0) > self.shown.get("t0", 0):  # the window the data is for
            state.update(t0=self.shown["t0"], t1=self.shown["t1"])
        state.update(playing=False, status="", busy="", shown={},
                     controls=[c for c in self.controls if c not in KERNEL_CONTROLS])
        return state

    def to_html(self, path: str | os.PathLike | None = None, *, title: str | None = None) -> str:
        """A self-contained HTML page (no CDN, works from ``file://``) with this view and its audio.

        Writes it to ``path`` when given; returns the HTML either way. The page has no kernel:
        it keeps the page-only controls (zoom, loop), and zooming rescales the data it holds
        (see :meth:`page_state`).
        """
        from .standalone import standalone_html

        html = standalone_html(state=self.page_state(), esm=str(self._esm), css=str(self._css), audio=self._audio,
                               title=title)
        if path is not None:
            pathlib.Path(path).write_text(html, encoding="utf-8")
        return html

    def _handle_message(self, _widget, content, _buffers) -> None:
        if isinstance(content, dict) and content.get("type") == "need-audio":
            self._audio_requested = True
            missing = content.get("missing")
            if missing is None:
                self._send_audio()
            elif content.get("version") == self._audio_version and isinstance(missing, list):
                self._send_audio([i for i in missing if isinstance(i, int) and 0 <= i < len(self._audio)])

    def _send_audio(self, indices: Sequence[int] | None = None) -> None:
        if not self._audio:
            self.send({"type": "no-audio"})
            return
        count = len(self._audio)
        for index in range(count) if indices is None else indices:
            self.send({"type": "audio", "index": index, "count": count, "version": self._audio_version,
                       "digest": self._audio_digests[index]}, buffers=[self._audio[index]])


# ---- helpers for the kernel side: the exact byte formats the page expects -------------------

def pack_waves(envelopes: np.ndarray) -> bytes:
    """``waves`` bytes from a ``(n_tracks, wave_channels, 2, columns)`` min/max array.

    >>> len(pack_waves(np.zeros((3, 2, 2, 10))))
    480
    """
    envelopes = np.asarray(envelopes)
    if envelopes.ndim != 4 or envelopes.shape[2] != 2:
        raise ValueError(f"envelopes must be (n_tracks, channels, 2, columns), got {envelopes.shape}")
    return np.clip(envelopes, -1, 1).astype("<f4").tobytes()


def pack_notes(onset, offset, pitch, velocity=None, confidence=None) -> bytes:
    """The ``data`` bytes of a row's ``notes``: float32 ``(n, 5)`` of onset, offset, pitch,
    velocity and confidence (velocity 100 and confidence 1 when not given), sorted by onset;
    notes with ``offset <= onset`` or a non-finite time are left out.

    >>> data = pack_notes([1.0, 0.5], [1.5, 0.75], [60, 64])
    >>> np.frombuffer(data, "<f4").reshape(-1, 5).tolist()
    [[0.5, 0.75, 64.0, 100.0, 1.0], [1.0, 1.5, 60.0, 100.0, 1.0]]
    """
    onset, offset, pitch = (np.asarray(x, np.float64).ravel() for x in (onset, offset, pitch))
    n = len(onset)
    velocity = np.full(n, 100.0) if velocity is None else np.asarray(velocity, np.float64).ravel()
    confidence = np.ones(n) if confidence is None else np.asarray(confidence, np.float64).ravel()
    if not all(len(x) == n for x in (offset, pitch, velocity, confidence)):
        raise ValueError("pack_notes needs columns of one length")
    table = np.column_stack([onset, offset, pitch, np.clip(velocity, 0, 127), np.clip(confidence, 0, 1)])
    keep = np.isfinite(table).all(axis=1) & (offset > onset) & (onset >= 0)
    table = table[keep]
    return table[np.argsort(table[:, 0], kind="stable")].astype("<f4").tobytes()


def energy_matrix(tracks: Sequence[np.ndarray]) -> list[list[float]]:
    """The ``energy`` trait: mean products ``<x_i, x_j> / N`` of equally long tracks.

    Each track is ``(channels, samples)`` or ``(samples,)``; channels are summed into the inner
    product, so ``g^T E g`` is the power of the mix ``sum g_i x_i`` (per sample, all channels).

    >>> x = np.ones((2, 100), np.float32)
    >>> energy_matrix([x, 0.5 * x])
    [[2.0, 1.0], [1.0, 0.5]]
    """
    arrays = [np.atleast_2d(np.asarray(t)) for t in tracks]
    channels = max((a.shape[0] for a in arrays), default=1)
    if any(a.shape[0] not in (1, channels) for a in arrays):
        raise ValueError(f"tracks mix channel counts {[a.shape[0] for a in arrays]}")
    return gram(arrays).tolist()


def _at(values: list, i: int, default):
    return values[i] if i < len(values) else default


def _one_of(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise TraitError(f"{name} must be one of {allowed}, got {value!r}")
    return value
