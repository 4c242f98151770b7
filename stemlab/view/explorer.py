"""``stemlab.explore(s)``: look at and listen to a stem set in a notebook.

One row per track (the source on top), waveform and/or spectrogram, a shared time axis, and a
mixer (mute, solo, gain in dB) that plays every audible stem in sync in the browser, with a
playhead across the plots and a level-matched A/B switch between the source and the stem mix.
The widget's own controls choose the view, the frequency scale, stereo or mid waveforms, and stems
or the recombination residual. The mouse wheel (or a pinch) over the plots zooms around the
pointer, a drag zooms to the selection, shift-drag (or the loop button) sets a loop that playback
repeats; Space plays and pauses, M and S mute and solo the row that has the focus.

Each stem row also has a notes toggle (the note symbol) that draws the stem's transcribed notes
over its plot, and a hear button that plays the row's audio (A), a synth rendering of its notes
(N) in sync with the other stems, or both (AN). Notes come from :func:`stemlab.transcribe` (or
the explorer's ``notes=``), asked for only when a row first wants them, and kept. On a
spectrogram each note is a rectangle one semitone high at its pitch's frequency, on the row's
frequency scale, from onset to offset, more opaque the louder and surer it is; drum hits
(General MIDI percussion keys) are ticks in one lane per kit piece (kick at the bottom, then
snare, toms, hi-hat, cymbals, other percussion). With only the waveform shown the notes are
drawn over it, on the row's own pitch range. The page draws them from their times and pitches
with the spectrogram's own time and frequency mapping, so zooming and scale changes keep them
aligned.

>>> ex = stemlab.explore(s)                      # doctest: +SKIP
>>> ex                                           # doctest: +SKIP
>>> ex.zoom(20.0, 22.5); ex.view.muted           # doctest: +SKIP
>>> ex.view.loop = [20.0, 22.5]                  # doctest: +SKIP
>>> ex.show_notes("bass"); ex.hear("bass", "notes")  # doctest: +SKIP
>>> ex.save_html("stems.html")                   # doctest: +SKIP

The last line writes a self-contained page, for sharing.

The kernel computes what is drawn (envelopes and pooled spectrograms at the plot's resolution,
from data cached per stem) and the browser draws it; audio goes to the browser as the cached MP3
bytes over the widget's comm channel, never into the saved notebook.
"""

from __future__ import annotations

import html
import logging
import os
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path

from ..analysis.check import recombination
from ..config import Settings
from ..errors import UsageError
from ..fetching import as_set
from ..stemset import StemSet
from ..transcription.kinds import is_drum_stem
from .scene import window_traits
from .snapshot import snapshot_html, snapshot_png
from .spectrogram import DB_RANGE, SCALES, colormap_lut
from .tracks import Track, energy_matrix, mp3_all, prepare_tracks, tracks_of
from .widget import HEAR_MODES, StemView, pack_notes

__all__ = ["Explorer", "explore"]

VIEWS = ("waveform", "spectrogram", "both")
MIN_SPAN = 0.002  # s: the narrowest window (as in the page)

log = logging.getLogger(__name__)


class Explorer:
    """The explorer: a :class:`~stemlab.view.widget.StemView` whose controls (view, frequency
    scale, waveform channels, stems or residual, zoom, loop) are in the widget itself; this
    object observes them and recomputes the rows.

    What the user set (mute, solo, gain, A/B, position, loop) survives every change of view,
    scale, zoom and show: the mixer follows the rows by name, so the stems get theirs back when
    the residual layout is left, and the source row keeps its settings across layouts. Each
    layout (its tracks, energies and MP3s) and the last few sets of rows are cached, so going
    back is fast, and the page decodes no audio twice.

    Parameters
    ----------
    stemset : StemSet, set folder or set id, optional
    tracks : list of Track, optional
        Rows to show instead of a stem set's (the first may have ``kind="source"``); used by the
        comparison view. Give exactly one of ``stemset`` and ``tracks``.
    title : str, optional
        For the still picture and exports.
    view : {"waveform", "spectrogram", "both"}
    scale : {"log", "mel", "linear"}
        Frequency axis of the spectrograms.
    channels : {"mid", "stereo"}
        Waveforms of (L+R)/2, or left above right.
    t0, t1 : float, optional
        Initial time window (default: everything).
    residual : bool
        Show the source, the aligned stem sum and the residual instead of the stems.
    columns, rows : int
        Resolution of each row's data (the browser scales it to the plot's width).
    db_range : float
        dB shown below the loudest point; one range for every track.
    cache_dir, settings : optional
        Where a set named by id or folder is found and its display data is cached.
    notes : callable or mapping, optional
        Where rows' notes come from: a function ``stem -> DataFrame`` (called with the set's
        :class:`~stemlab.stemset.Stem`, or the :class:`~.tracks.Track` for ``tracks=``), or a
        mapping ``name -> DataFrame``; the tables have the columns of
        :mod:`stemlab.transcription.notes` (onset, offset, pitch, velocity, confidence). Default:
        :func:`stemlab.transcribe`. Called when a row's notes are first shown or heard.

    Examples
    --------
    >>> ex = Explorer(s)                                   # doctest: +SKIP
    >>> ex.view.show = "residual"; ex.view.show = "stems"  # doctest: +SKIP
    >>> ex.view.scale = "mel"; ex.view.loop = [20.0, 24.0] # doctest: +SKIP
    """

    ROWS_CACHED = 6  # sets of rows kept (the way back to a window, scale or layout is instant)

    def __init__(self, stemset=None, *, tracks: list[Track] | None = None, title: str | None = None,
                 view: str = "both", scale: str = "log", channels: str = "mid", t0: float | None = None,
                 t1: float | None = None, residual: bool = False, columns: int = 1000, rows: int = 72,
                 db_range: float = DB_RANGE, cache_dir: str | os.PathLike | None = None, settings=None,
                 notes: Callable | Mapping | None = None):
        if view not in VIEWS or scale not in SCALES or channels not in ("mid", "stereo"):
            raise UsageError(f"view must be one of {VIEWS}, scale one of {SCALES}, channels 'mid' or 'stereo'")
        if (stemset is None) == (tracks is None):
            raise UsageError("pass a stem set, or tracks=, to the explorer")
        if stemset is not None and not isinstance(stemset, StemSet):
            stemset = as_set(stemset, settings=Settings.of(settings, cache_dir=cache_dir), what="explore()")
        self.stemset = stemset
        self.title = title
        self.columns, self.rows, self.db_range = int(columns), int(rows), float(db_range)
        self._tracks: dict[bool, list[Track]] = {} if tracks is None else {False: list(tracks)}
        self._layouts: dict[str, dict] = {}
        self._rows_cache: OrderedDict = OrderedDict()
        self._shown_key = None
        self._updating = False
        self._notes_from = notes
        self._notes: dict[str, object] = {}  # name -> notes table, kept once had
        self._notes_wanted: set[str] = set()  # rows whose notes the page wanted at the last look
        duration = stemset.duration if stemset is not None else tracks[0].audio.shape[1] / tracks[0].sr
        start, stop = max(0.0, t0 or 0.0), min(duration, t1 or duration)
        if not stop > start:
            raise UsageError(f"the time window must have t1 > t0 within 0 .. {duration:.2f} s")
        # the residual needs a source to recombine to
        residual_possible = stemset is not None and stemset.source is not None
        if residual and not residual_possible:
            raise UsageError("residual=True needs a set with a source (its stems recombine to it)")
        controls = ["view", "scale", "channels"] + (["show"] if residual_possible else []) + ["zoom", "loop"]
        self.view = StemView(duration=duration, colormap=colormap_lut("magma"), columns=self.columns,
                             view=view, scale=scale, channels=channels, show="residual" if residual else "stems",
                             controls=controls, t0=start, t1=stop,
                             nyquist=(stemset.sr if stemset is not None else tracks[0].sr) / 2)
        self._show_tracks()
        self.view.observe(lambda _: self._load_wanted_notes(), names=["notes_shown", "hear", "tracks"])
        self.view.observe(self._settings_changed, names=["view", "scale", "channels", "t0", "t1"])
        self.view.observe(lambda _: self._updating or self._show_tracks(), names="show")
        self.widget = self.view
        # the names of the ipywidgets controls this explorer once had, kept for scripts
        self.view_select, self.scale_select = _Control(self.view, "view"), _Control(self.view, "scale")
        self.channel_select = _Control(self.view, "channels")
        self.track_select = _Control(self.view, "show", to_trait=lambda on: "residual" if on else "stems",
                                     from_trait=lambda show: show == "residual")
        self.range_select = _Range(self)

    # -- what is shown --------------------------------------------------------------------
    def tracks(self, residual: bool | None = None) -> list[Track]:
        """The tracks shown (``residual`` picks the stems or the residual layout)."""
        residual = self.view.show == "residual" if residual is None else residual
        if self.stemset is None:
            return self._tracks[False]
        if residual not in self._tracks:
            self._tracks[residual] = tracks_of(self.stemset, recombination=recombination(self.stemset)
                                               if residual else None)
        return self._tracks[residual]

    def _layout(self, show: str) -> dict:
        """Everything a layout needs but the rows (computed once)."""
        if show not in self._layouts:
            tracks = self.tracks(show == "residual")
            prepare_tracks(tracks)
            self._layouts[show] = {"tracks": [t.describe() for t in tracks], "energy": energy_matrix(tracks),
                                   "audio": mp3_all(tracks)}
        return self._layouts[show]

    def _show_tracks(self, **traits) -> None:
        show = self.view.show if self.stemset is not None else "stems"
        if show not in self._layouts and not self.view.busy:  # sent now, before the work
            self.view.busy = "computing the residual" if show == "residual" else "preparing the rows"
        try:
            layout = self._layout(show)
            with self.view.hold_sync():  # one update of the page: rows, data and mixer together
                self.view.tracks = layout["tracks"]  # the mixer follows by name (StemView)
                self.view.energy = layout["energy"]
                for name, value in traits.items():
                    setattr(self.view, name, value)
                self.refresh(force=False)
                self.view.busy = ""
        finally:
            if self.view.busy:
                self.view.busy = ""
        self.view.set_audio(layout["audio"])  # a set the page has seen is not decoded again

    def replace_tracks(self, tracks: list[Track], **traits) -> None:
        """Show other rows (same duration), keeping the view, window and scale; ``traits`` are
        StemView traits set with the new rows (in the same update of the page)."""
        if self.stemset is not None:
            raise UsageError("replace_tracks is for explorers built from tracks=")
        self._tracks = {False: list(tracks)}
        self._layouts.clear()
        self._rows_cache.clear()
        self._shown_key = None
        self._notes.clear()  # other rows under the same names: their notes are asked for again
        self.view.notes = {}
        self._show_tracks(**traits)
        self._load_wanted_notes()

    # -- notes ------------------------------------------------------------------------------
    def notes_of(self, name: str):
        """The notes table of row ``name`` (from ``notes=``, by default :func:`stemlab.transcribe`;
        computed once, then kept)."""
        if name not in self._notes:
            self._notes[name] = self._fetch_notes(name)
        return self._notes[name]

    def _fetch_notes(self, name: str):
        source = self._notes_from
        if isinstance(source, Mapping):
            if name not in source:
                raise UsageError(f"no notes for {name!r}: notes= has {', '.join(map(str, source)) or 'none'}")
            return source[name]
        if self.stemset is not None:
            if name not in self.stemset:
                raise UsageError(f"{name!r} is no stem of this set: notes are for {', '.join(self.stemset.names)}")
            subject = self.stemset[name]
        else:
            subject = next((t for t in self.tracks() if t.name == name), None)
            if subject is None:
                raise UsageError(f"no row {name!r}")
        return (source or _transcribe)(subject)

    def load_notes(self, names=None) -> None:
        """Get the notes of rows ``names`` (default: every stem row) now and send them to the page,
        without showing them (a page saved with :meth:`save_html` then has them to show)."""
        if names is None:  # every stem row (that ``notes=`` has, if a mapping)
            names = [t["name"] for t in self.view.tracks if t["kind"] == "stem"
                     and (not isinstance(self._notes_from, Mapping) or t["name"] in self._notes_from)]
        for name in names:
            self.notes_of(name)
            self._send_notes(name)

    def show_notes(self, name: str, on: bool = True) -> None:
        """Draw (or stop drawing) row ``name``'s notes over its plot, as its notes toggle does."""
        if on:
            self.notes_of(name)  # raises here rather than in the page
        shown = [n for n in self.view.notes_shown if n != name]
        self.view.notes_shown = shown + [name] if on else shown

    def hear(self, name: str, mode: str = "notes") -> None:
        """What row ``name`` plays: ``"audio"`` (its stem), ``"notes"`` (a synth of its notes, in
        sync) or ``"both"``, as its hear button does."""
        if mode not in HEAR_MODES:
            raise UsageError(f"mode must be one of {HEAR_MODES}, got {mode!r}")
        if mode != "audio":
            self.notes_of(name)
        self.view.hear = {**self.view.hear, name: mode}

    def _load_wanted_notes(self) -> None:
        """Send the notes the page wants (shown or heard rows) and has not got; a failure is the
        row's ``{"error"}`` entry, shown on its toggle."""
        view = self.view
        rows = {t["name"] for t in view.tracks}
        wanted = {n: None for n in [*view.notes_shown, *(n for n, mode in view.hear.items() if mode != "audio")]
                  if n in rows}
        before, self._notes_wanted = self._notes_wanted, set(wanted)
        # what the page lacks, and failures asked for again (a toggle switched off and on retries)
        missing = [n for n in wanted if n not in view.notes or ("error" in view.notes[n] and n not in before)]
        for name in missing:
            fresh = name not in self._notes
            if fresh and not view.busy:
                view.busy = f"transcribing {name}"
            try:
                self.notes_of(name)
            except Exception as error:  # noqa: BLE001 - the page shows it on the row
                log.warning("no notes for %s: %s", name, error)
                view.notes = {**view.notes, name: {"error": f"{type(error).__name__}: {error}"}}
            else:
                self._send_notes(name)
            finally:
                if fresh and view.busy == f"transcribing {name}":
                    view.busy = ""

    def _send_notes(self, name: str) -> None:
        table = self._notes[name]
        velocity, confidence = (table[key].to_numpy() if key in table else None for key in ("velocity", "confidence"))
        data = pack_notes(table["onset"].to_numpy(), table["offset"].to_numpy(), table["pitch"].to_numpy(),
                          velocity, confidence)
        label = next((t.get("label", name) for t in self.view.tracks if t["name"] == name), name)
        drums = table.attrs.get("drums") if isinstance(table.attrs.get("drums"), bool) else \
            is_drum_stem(name) or is_drum_stem(label)
        self.view.notes = {**self.view.notes, name: {"drums": drums, "data": data}}

    def zoom(self, t0: float, t1: float) -> None:
        """Show ``[t0, t1]`` seconds (the page follows; wheel and drag-select there come back here)."""
        duration = self.view.duration
        t0, t1 = max(0.0, float(t0)), min(duration, float(t1))
        if not t1 > t0:
            raise UsageError(f"zoom needs t1 > t0 within 0 .. {duration:.2f} s")
        with self.view.hold_trait_notifications():
            self.view.t0, self.view.t1 = t0, t1

    def _settings_changed(self, _change) -> None:
        if not self._updating:
            self.refresh(force=False)

    def _window(self) -> tuple[float, float]:
        duration = self.view.duration
        t0, t1 = min(max(0.0, self.view.t0), duration), min(self.view.t1, duration)
        if not t1 > t0:  # an empty window from a page: the smallest one the page allows
            t1 = min(duration, t0 + MIN_SPAN)
            t0 = max(0.0, t1 - MIN_SPAN)
        return t0, t1

    def refresh(self, force: bool = True) -> None:
        """Recompute every row for the current window, view and scale, at the window's resolution
        (with ``force=False``, only if something changed; rows computed lately come from a cache)."""
        t0, t1 = self._window()
        v = self.view
        show = v.show if self.stemset is not None else "stems"
        key = (show, t0, t1, v.view, v.scale, v.channels)
        if key == self._shown_key and not force:
            return
        cached = self._rows_cache.pop(key, None) if not force else None
        if cached is None:
            cached = self._compute(*key)
        self._rows_cache[key] = cached
        while len(self._rows_cache) > self.ROWS_CACHED:
            self._rows_cache.popitem(last=False)
        updates, self._rows = cached
        self._updating = True
        try:
            with v.hold_sync():
                v.t0, v.t1 = t0, t1
                for name, value in updates.items():
                    setattr(v, name, value)
        finally:
            self._updating = False
        self._shown_key = key

    def _compute(self, show: str, t0: float, t1: float, view: str, scale: str, channels: str):
        updates, rows = window_traits(self.tracks(show == "residual"), t0, t1, view=view, scale=scale,
                                      channels=channels, columns=self.columns, rows=self.rows, db_range=self.db_range)
        updates["shown"] = dict(t0=t0, t1=t1, view=view, scale=scale, channels=channels, show=show)
        return updates, rows

    def snapshot(self) -> bytes:
        """A PNG picture of the current rows (what the kernel-less fallback shows)."""
        tracks = self.tracks()
        return snapshot_png([t.name for t in tracks], waves=self._rows.waves, specs=self._rows.displays,
                            colormap=self.view.colormap, silent=[t.silent for t in tracks])

    # -- output -----------------------------------------------------------------------------
    def _ipython_display_(self) -> None:
        from IPython.display import HTML, display

        # a still picture for when the widget cannot run (reopened without a kernel); the live
        # widget hides it
        display(HTML(snapshot_html(self.snapshot(), title=self._title())))
        display(self.view)

    def _title(self) -> str:
        if self.title or self.stemset is None:
            return self.title or "stemlab explorer"
        origin = self.stemset.provider or "files"
        return f"{len(self.stemset)} stems from {origin}" + (f" job {self.stemset.job_id}" if self.stemset.job_id else "")

    def to_html(self) -> str:
        """A self-contained HTML page of the current view with its audio (MP3), for sharing."""
        return self.view.to_html()

    def save_html(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_html` to ``path`` and return it."""
        from ..files import atomic_write_bytes

        return atomic_write_bytes(path, self.to_html().encode("utf-8"))


def explore(stemset, *, embed: bool = False, **kwargs) -> "Explorer":
    """Explore a stem set in the notebook (see :class:`Explorer` for the options).

    With ``embed=True`` the explorer is shown as a self-contained page (audio included, no kernel
    needed to play, but much larger notebooks); use ``Explorer.save_html`` to share a file.
    """
    explorer = Explorer(stemset, **kwargs)
    if embed:
        return _Embedded(explorer)
    return explorer


def _transcribe(stem):
    """:func:`stemlab.transcribe`, imported when first needed."""
    from ..analysis.notes import transcribe

    return transcribe(stem)


class _Control:
    """``.value`` of a StemView trait, where the explorer had an ipywidgets control (kept for
    scripts: ``explorer.scale_select.value = "mel"`` is ``explorer.view.scale = "mel"``)."""

    def __init__(self, view: StemView, name: str, *, to_trait=lambda v: v, from_trait=lambda v: v):
        self._view, self._name, self._to, self._from = view, name, to_trait, from_trait

    @property
    def value(self):
        return self._from(getattr(self._view, self._name))

    @value.setter
    def value(self, value) -> None:
        setattr(self._view, self._name, self._to(value))


class _Range:
    """``.value == (t0, t1)``, where the explorer had a range slider."""

    def __init__(self, explorer: "Explorer"):
        self._explorer = explorer

    @property
    def value(self) -> tuple[float, float]:
        return self._explorer.view.t0, self._explorer.view.t1

    @value.setter
    def value(self, window) -> None:
        self._explorer.zoom(*window)


class _Embedded:
    """Displays an explorer's standalone page in an iframe, so the output needs no kernel."""

    def __init__(self, explorer: Explorer):
        self.explorer = explorer

    def _repr_html_(self) -> str:
        page = html.escape(self.explorer.to_html(), quote=True)
        rows = len(self.explorer.view.tracks)
        return (f'<iframe srcdoc="{page}" style="width:100%;height:{80 + 58 * rows}px;border:0" '
                f'sandbox="allow-scripts"></iframe>')
