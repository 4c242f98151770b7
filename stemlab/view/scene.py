"""What a :class:`~stemlab.view.widget.StemView` shows of some tracks over a time window: its traits.

One computation feeds the explorer (the kernel sets these traits on its live widget) and the
report's player (which embeds one such state per set and switches between them in the page).

>>> traits, rows = window_traits(tracks_of(s), 0.0, s.duration)       # doctest: +SKIP
>>> sorted(traits)[:3]                                                 # doctest: +SKIP
['db_label', 'freq_ticks', 'specs']
>>> state = player_state(tracks_of(s))                                 # doctest: +SKIP
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from .rows import Rows, compute_rows
from .spectrogram import DB_RANGE, colormap_lut, frequency_ticks, gray_png
from .tracks import Track, energy_matrix
from .widget import StemView, pack_waves

__all__ = ["window_traits", "player_state", "timeline"]


def _pngs(displays) -> list[bytes]:
    """Gray PNGs of the spectrogram images (b"" for silent tracks), encoded in threads (zlib
    releases the GIL)."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as workers:
        return list(workers.map(lambda d: b"" if d is None else gray_png(d), displays))


def window_traits(tracks: list[Track], t0: float, t1: float, *, view: str = "both", scale: str = "log",
                  channels: str = "mid", columns: int = 1000, rows: int = 72,
                  db_range: float = DB_RANGE) -> tuple[dict, Rows]:
    """The data traits that draw ``tracks`` over ``[t0, t1]`` s in ``view`` (waves or samples,
    spectrogram PNGs and their axis; what the view does not show is emptied, so nothing stale is
    drawn), and the :class:`~.rows.Rows` they were made from."""
    data = compute_rows(tracks, t0, t1, view=view, scale=scale, channels=channels, columns=columns, rows=rows,
                        db_range=db_range)
    traits: dict = dict(wave_channels=1 if channels == "mid" else 2, waves=b"", wave_points=b"", specs=[],
                        db_label="")
    if view != "spectrogram":
        traits.update(waves=b"" if data.waves is None else pack_waves(data.waves),
                      wave_points=b"" if data.points is None else data.points.tobytes())
    if view != "waveform":
        traits.update(specs=_pngs(data.displays), freq_ticks=frequency_ticks(scale, tracks[0].sr),
                      db_label=f"{data.vmax_db - db_range:.0f} .. {data.vmax_db:.0f} dBFS, one scale for every track")
    return traits, data


def timeline(tracks: list[Track]) -> float:
    """Seconds every row shares: the source's length, or the longest track's without a source (as
    :attr:`~stemlab.stemset.StemSet.duration`)."""
    source = next((t for t in tracks if t.kind == "source"), None)
    return max(t.audio.shape[1] / t.sr for t in ([source] if source is not None else tracks))


def player_state(tracks: list[Track], *, view: str = "both", columns: int = 1000, rows: int = 72,
                 **window) -> dict:
    """Every synced trait of a StemView showing all of ``tracks`` (prepared: see
    :func:`~.tracks.prepare_tracks`), paused at 0 s, without audio, as a page without a kernel
    gets them (:meth:`~.widget.StemView.page_state`): what a standalone page embeds."""
    if not tracks:
        raise ValueError("a player needs at least one track")
    duration = timeline(tracks)
    traits, _ = window_traits(tracks, 0.0, duration, view=view, columns=columns, rows=rows, **window)
    widget = StemView(tracks=[t.describe() for t in tracks], duration=duration, columns=columns, view=view,
                      colormap=colormap_lut("magma"), energy=energy_matrix(tracks), **traits)
    state = widget.page_state()
    widget.close()
    return state
