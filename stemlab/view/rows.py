"""What every row of a view shows over one time window: envelopes or samples, and spectrograms.

One computation feeds the explorer widget, its still picture and the demo report.

>>> rows = compute_rows(tracks_of(s), 0.0, 10.0, view="both")        # doctest: +SKIP
>>> rows.waves.shape, len(rows.displays)                              # doctest: +SKIP
((13, 1, 2, 1000), 13)
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .spectrogram import DB_RANGE, pool, shared_vmax_db, to_display
from .tracks import Track

__all__ = ["Rows", "compute_rows"]


@dataclass(frozen=True)
class Rows:
    """``waves`` ``(tracks, channels, 2, columns)`` min/max, or ``points`` ``(tracks, channels, n)``
    samples when zoomed in past one sample per column; ``displays`` one ``uint8`` spectrogram
    image per track (``None`` for silent tracks, or when the view has no spectrograms)."""

    waves: np.ndarray | None
    points: np.ndarray | None
    displays: list[np.ndarray | None]
    vmax_db: float | None


def compute_rows(tracks: list[Track], t0: float, t1: float, *, view: str = "both", scale: str = "log",
                 channels: str = "mid", columns: int = 1000, rows: int = 72, db_range: float = DB_RANGE) -> Rows:
    """Every track's display data for ``[t0, t1]`` seconds (see :class:`Rows`)."""
    waves = points = None
    displays: list[np.ndarray | None] = [None] * len(tracks)
    vmax = None
    if view != "spectrogram":
        if (t1 - t0) * tracks[0].sr <= columns:  # fewer samples than columns: the samples themselves
            parts = [t.envelopes.points(t0, t1, channels=channels) for t in tracks]
            points = np.zeros((len(parts), parts[0].shape[0], max(p.shape[1] for p in parts)), dtype="<f4")
            for i, p in enumerate(parts):
                points[i, : p.shape[0], : p.shape[1]] = p
        else:
            waves = np.stack([t.envelopes.envelope(t0, t1, columns=columns, channels=channels) for t in tracks])
    if view != "waveform":
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as workers:  # reductions release the GIL
            pooled = list(workers.map(lambda t: pool(t.codes, t.sr, t0, t1, columns=columns, rows=rows, scale=scale),
                                      tracks))
        vmax = shared_vmax_db(pooled)
        displays = [None if t.silent else to_display(p, vmax_db=vmax, db_range=db_range)
                    for t, p in zip(tracks, pooled)]
    return Rows(waves, points, displays, vmax)
