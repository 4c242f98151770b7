"""``stemlab.explore(s)``: look at and listen to a stem set in a notebook.

One row per track (the source on top), waveform and/or spectrogram, a shared time axis, and a
mixer (mute, solo, gain in dB) that plays every audible stem in sync in the browser, with a
playhead across the plots and a level-matched A/B switch between the source and the stem mix.
Controls choose the view, the time range (zoom and scroll), the frequency scale, stereo or mid
waveforms, and stems or the recombination residual.

>>> ex = stemlab.explore(s)                      # doctest: +SKIP
>>> ex                                           # doctest: +SKIP
>>> ex.zoom(20.0, 22.5); ex.view.muted           # doctest: +SKIP
>>> ex.save_html("stems.html")                   # doctest: +SKIP

The last line writes a self-contained page, for sharing.

The kernel computes what is drawn (envelopes and pooled spectrograms at the plot's resolution,
from data cached per stem) and the browser draws it; audio goes to the browser as the cached MP3
bytes over the widget's comm channel, never into the saved notebook.
"""

from __future__ import annotations

import html
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..analysis.check import recombination
from ..config import Settings
from ..errors import UsageError
from ..fetching import as_set
from ..stemset import StemSet
from .rows import compute_rows
from .snapshot import snapshot_html, snapshot_png
from .spectrogram import DB_RANGE, SCALES, colormap_lut, frequency_ticks, gray_png
from .tracks import Track, energy_matrix, mp3_all, prepare_tracks, tracks_of
from .widget import StemView, pack_waves

__all__ = ["Explorer", "explore"]

VIEWS = ("waveform", "spectrogram", "both")


def _pngs(displays) -> list[bytes]:
    """Gray PNGs of the spectrogram images (b"" for silent tracks), encoded in threads (zlib
    releases the GIL)."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as workers:
        return list(workers.map(lambda d: b"" if d is None else gray_png(d), displays))


class Explorer:
    """The explorer: ipywidgets controls above a :class:`~stemlab.view.widget.StemView`.

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
    """

    def __init__(self, stemset=None, *, tracks: list[Track] | None = None, title: str | None = None,
                 view: str = "both", scale: str = "log", channels: str = "mid", t0: float | None = None,
                 t1: float | None = None, residual: bool = False, columns: int = 1000, rows: int = 72,
                 db_range: float = DB_RANGE, cache_dir: str | os.PathLike | None = None, settings=None):
        import ipywidgets as w

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
        duration = stemset.duration if stemset is not None else tracks[0].audio.shape[1] / tracks[0].sr
        start, stop = max(0.0, t0 or 0.0), min(duration, t1 or duration)
        if not stop > start:
            raise UsageError(f"the time window must have t1 > t0 within 0 .. {duration:.2f} s")

        self.view_select = w.ToggleButtons(options=list(VIEWS), value=view, description="view",
                                           style={"button_width": "92px"})
        self.scale_select = w.Dropdown(options=list(SCALES), value=scale, description="frequency",
                                       layout=w.Layout(width="170px"))
        self.channel_select = w.ToggleButtons(options=[("mid", "mid"), ("L/R", "stereo")], value=channels,
                                              description="waveform", style={"button_width": "52px"})
        self.track_select = w.ToggleButtons(options=[("stems", False), ("residual", True)], value=residual,
                                            description="show", style={"button_width": "72px"},
                                            layout=w.Layout(display="none" if stemset is None else None))
        self.range_select = w.FloatRangeSlider(value=(start, stop), min=0.0, max=duration, step=0.01,
                                               description="time (s)", continuous_update=False,
                                               readout_format=".2f", layout=w.Layout(width="640px"))
        self.full_button = w.Button(description="full view", layout=w.Layout(width="90px"))
        self.full_button.on_click(lambda _: self.zoom(0.0, duration))
        self.view = StemView(duration=duration, colormap=colormap_lut("magma"), columns=self.columns,
                             view=view, t0=start, t1=stop)
        self._show_tracks(residual)
        for control in (self.view_select, self.scale_select, self.channel_select, self.range_select):
            control.observe(lambda _: self.refresh(), names="value")
        self.track_select.observe(lambda change: self._show_tracks(change["new"]), names="value")
        self.widget = w.VBox([w.HBox([self.view_select, self.scale_select]),
                              w.HBox([self.channel_select, self.track_select]),
                              w.HBox([self.range_select, self.full_button]), self.view])

    # -- what is shown --------------------------------------------------------------------
    def tracks(self, residual: bool | None = None) -> list[Track]:
        """The tracks shown (``residual`` picks the stems or the residual layout)."""
        residual = self.track_select.value if residual is None else residual
        if self.stemset is None:
            return self._tracks[False]
        if residual not in self._tracks:
            self._tracks[residual] = tracks_of(self.stemset, recombination=recombination(self.stemset)
                                               if residual else None)
        return self._tracks[residual]

    def _show_tracks(self, residual: bool) -> None:
        tracks = self.tracks(residual)
        prepare_tracks(tracks)
        with self.view.hold_sync():
            self.view.playing = False
            self.view.tracks = [t.describe() for t in tracks]
            self.view.energy = energy_matrix(tracks)
            self.refresh()
        self.view.set_audio(mp3_all(tracks))

    def replace_tracks(self, tracks: list[Track]) -> None:
        """Show other rows (same duration), keeping the view, window and scale."""
        if self.stemset is not None:
            raise UsageError("replace_tracks is for explorers built from tracks=")
        self._tracks = {False: list(tracks)}
        self._show_tracks(False)

    def zoom(self, t0: float, t1: float) -> None:
        """Show ``[t0, t1]`` seconds (the time slider follows)."""
        duration = self.range_select.max
        t0, t1 = max(0.0, float(t0)), min(duration, float(t1))
        if not t1 > t0:
            raise UsageError(f"zoom needs t1 > t0 within 0 .. {duration:.2f} s")
        self.range_select.value = (t0, t1)

    def refresh(self) -> None:
        """Recompute every row for the current window, view and scale, at the window's resolution."""
        tracks = self.tracks()
        t0, t1 = self.range_select.value
        view, scale, channels = self.view_select.value, self.scale_select.value, self.channel_select.value
        rows = compute_rows(tracks, t0, t1, view=view, scale=scale, channels=channels, columns=self.columns,
                            rows=self.rows, db_range=self.db_range)
        updates: dict = dict(view=view, t0=t0, t1=t1, wave_channels=1 if channels == "mid" else 2)
        if view != "spectrogram":
            updates.update(waves=b"" if rows.waves is None else pack_waves(rows.waves),
                           wave_points=b"" if rows.points is None else rows.points.tobytes())
        if view != "waveform":
            updates.update(specs=_pngs(rows.displays),
                           freq_ticks=frequency_ticks(scale, tracks[0].sr),
                           db_label=f"{rows.vmax_db - self.db_range:.0f} .. {rows.vmax_db:.0f} dBFS, one scale "
                                    f"for every track")
        self._rows = rows
        with self.view.hold_sync():
            for name, value in updates.items():
                setattr(self.view, name, value)

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
        display(self.widget)

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


class _Embedded:
    """Displays an explorer's standalone page in an iframe, so the output needs no kernel."""

    def __init__(self, explorer: Explorer):
        self.explorer = explorer

    def _repr_html_(self) -> str:
        page = html.escape(self.explorer.to_html(), quote=True)
        rows = len(self.explorer.view.tracks)
        return (f'<iframe srcdoc="{page}" style="width:100%;height:{80 + 58 * rows}px;border:0" '
                f'sandbox="allow-scripts"></iframe>')
