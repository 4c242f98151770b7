"""Plot stems with matplotlib, fast: envelopes and pooled spectrograms, never every sample.

Every function takes ``ax=`` (a new figure when omitted) and returns what it drew, so figures
compose. ``x`` is a :class:`~stemlab.stemset.Stem` (display data cached with the set) or an
array ``(channels, samples)`` / ``(samples,)`` with ``sr=``.

>>> s = stemlab.demo_song()                                         # doctest: +SKIP
>>> plot_waveform(s["drums"], t0=10, t1=12)                         # doctest: +SKIP
>>> plot_spectrogram(s["vocals"], scale="mel")                      # doctest: +SKIP
>>> fig = plot_stems(s, view="both")                                # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np

from ..analysis.check import recombination
from ..errors import UsageError
from .spectrogram import (DB_RANGE, SCALES, frequency_ticks, pool, shared_vmax_db, to_display)
from .tracks import Track, tracks_of

__all__ = ["plot_waveform", "plot_spectrogram", "plot_stems"]

VIEWS = ("waveform", "spectrogram", "both")


def _track(x, sr: int | None) -> Track:
    if isinstance(x, Track):
        return x
    if hasattr(x, "derived_path") and hasattr(x, "audio"):  # a Stem
        return Track(x.name, "stem", x.audio, x.sr, label=x.label, cache=x.derived_path)
    audio = np.asarray(x, dtype=np.float32)
    audio = audio[None] if audio.ndim == 1 else audio
    if audio.ndim != 2 or sr is None:
        raise UsageError("pass a Stem, or an array (channels, samples) or (samples,) with sr=")
    return Track("signal", "stem", audio, int(sr))


def _window(track: Track, t0: float | None, t1: float | None) -> tuple[float, float]:
    duration = track.audio.shape[1] / track.sr
    t0 = 0.0 if t0 is None else float(t0)
    t1 = duration if t1 is None else float(t1)
    if not t1 > t0:
        raise UsageError(f"the time window must have t1 > t0 (got {t0} .. {t1})")
    return t0, t1


def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(10, 2.2))
    return ax


def plot_waveform(x, *, sr: int | None = None, ax=None, t0: float | None = None, t1: float | None = None,
                  channels: str = "mid", columns: int = 1600, color: str = "C0", **kwargs):
    """Draw a min/max envelope (or, zoomed in far, the samples themselves) over ``[t0, t1]``.

    ``channels="stereo"`` draws left above and right below. Returns the list of artists.
    """
    if channels not in ("mid", "stereo"):
        raise UsageError("channels must be 'mid' or 'stereo'")
    track = _track(x, sr)
    t0, t1 = _window(track, t0, t1)
    ax = _axes(ax)
    env = track.envelopes
    count = len(env._channels(channels))
    offsets = [0.0] if count == 1 else [0.5, -0.5]
    height = 1.0 if count == 1 else 0.5
    artists = []
    if (t1 - t0) * track.sr <= columns:  # sample level: every sample is visible
        points = env.points(t0, t1, channels=channels)
        times = (max(0, int(np.floor(t0 * track.sr))) + np.arange(points.shape[1])) / track.sr
        for row, offset in zip(points, offsets):
            artists += ax.plot(times, offset + height * row, color=color, lw=1,
                               marker="." if len(times) < 300 else None, **kwargs)
    else:
        lo_hi = env.envelope(t0, t1, columns=columns, channels=channels)
        times = np.linspace(t0, t1, columns + 1)
        times = (times[:-1] + times[1:]) / 2
        for (lo, hi), offset in zip(lo_hi, offsets):
            artists.append(ax.fill_between(times, offset + height * lo, offset + height * hi, color=color,
                                           lw=0, step="mid", **kwargs))
    ax.set_xlim(t0, t1)
    ax.set_ylim(-1.05, 1.05)
    if count == 2:
        ax.set_yticks([0.5, -0.5], ["L", "R"])
    return artists


def plot_spectrogram(x, *, sr: int | None = None, ax=None, t0: float | None = None, t1: float | None = None,
                     scale: str = "log", vmax_db: float | None = None, db_range: float = DB_RANGE,
                     columns: int = 1200, rows: int = 256, cmap: str = "magma", **kwargs):
    """Draw the spectrogram over ``[t0, t1]``, pooled to ``columns x rows`` pixels.

    ``scale`` is ``"linear"``, ``"log"`` or ``"mel"``; colours span ``[vmax_db - db_range,
    vmax_db]`` dBFS (``vmax_db`` defaults to this track's loudest point, rounded up to 5 dB;
    pass one value to several plots to compare their levels). Returns the ``AxesImage``.
    """
    if scale not in SCALES:
        raise UsageError(f"unknown frequency scale {scale!r}: use one of {', '.join(SCALES)}")
    track = _track(x, sr)
    t0, t1 = _window(track, t0, t1)
    ax = _axes(ax)
    pooled = pool(track.codes, track.sr, t0, t1, columns=columns, rows=rows, scale=scale)
    vmax_db = shared_vmax_db([pooled]) if vmax_db is None else vmax_db
    image = ax.imshow(to_display(pooled, vmax_db=vmax_db, db_range=db_range), cmap=cmap, vmin=0, vmax=255,
                      aspect="auto", interpolation="nearest", extent=(t0, t1, 0.0, 1.0), **kwargs)
    ticks = frequency_ticks(scale, track.sr)
    ax.set_yticks([f for f, _ in ticks], [label for _, label in ticks])
    ax.set_ylabel("Hz")
    image.db_range_ = (vmax_db - db_range, vmax_db)
    return image


def plot_stems(stemset, *, view: str = "both", t0: float | None = None, t1: float | None = None,
               scale: str = "log", residual: bool = False, channels: str = "mid", db_range: float = DB_RANGE,
               width: float = 11.0, row_height: float = 0.9):
    """One row per track (source on top), shared time axis and one dB scale. Returns the Figure."""
    import matplotlib.pyplot as plt

    if view not in VIEWS:
        raise UsageError(f"view must be one of {', '.join(VIEWS)}")
    tracks = tracks_of(stemset, recombination=recombination(stemset) if residual else None)
    t0, t1 = _window(tracks[0], t0, t1)
    kinds = ["waveform", "spectrogram"] if view == "both" else [view]
    fig, axes = plt.subplots(len(tracks) * len(kinds), 1, sharex=True, squeeze=False,
                             figsize=(width, row_height * len(tracks) * len(kinds) + 0.6))
    axes = axes[:, 0]
    vmax = None
    if "spectrogram" in kinds:
        vmax = shared_vmax_db([pool(t.codes, t.sr, t0, t1, columns=400, rows=64, scale=scale) for t in tracks])
    for i, track in enumerate(tracks):
        alpha = 0.35 if track.silent else 1.0
        for j, kind in enumerate(kinds):
            ax = axes[i * len(kinds) + j]
            if kind == "waveform":
                plot_waveform(track, ax=ax, t0=t0, t1=t1, channels=channels,
                              color="0.3" if track.kind == "source" else "C0", alpha=alpha)
            else:
                plot_spectrogram(track, ax=ax, t0=t0, t1=t1, scale=scale, vmax_db=vmax, db_range=db_range,
                                 alpha=alpha)
            ax.tick_params(labelsize=7)
            if j == 0:
                ax.set_ylabel(track.name + (" (silent)" if track.silent else ""), rotation=0, ha="right",
                              va="center", fontsize=8)
            elif kind == "spectrogram":
                ax.set_ylabel("")
    axes[-1].set_xlabel("time (s)")
    fig.subplots_adjust(hspace=0.08, left=0.12, right=0.99, top=0.98, bottom=0.06)
    return fig
