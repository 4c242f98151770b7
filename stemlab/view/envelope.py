"""Min/max waveform envelopes at display resolution, from a cached block pyramid.

Plotting every sample of a 3-minute stem takes seconds; an envelope of one min and one max per
pixel column looks the same and takes milliseconds. A track's min/max over blocks of
:data:`BLOCK` samples is computed once (tracks cache it beside their decoded audio); any view of
``columns`` columns over ``[t0, t1]`` then reduces blocks, or raw samples when zoomed in.

>>> audio = np.sin(np.linspace(0, 200 * np.pi, 44100, dtype=np.float32))[None]
>>> env = Envelopes(audio, 44100)
>>> lo_hi = env.envelope(0.0, 1.0, columns=100)
>>> lo_hi.shape, float(lo_hi[0, 0].min()) < -0.99, float(lo_hi[0, 1].max()) > 0.99
((1, 2, 100), True, True)
"""

from __future__ import annotations

import numpy as np

__all__ = ["BLOCK", "Envelopes", "block_minmax", "mid_of", "scan"]

BLOCK = 256  # samples per pyramid block: 5.8 ms at 44.1 kHz


def block_minmax(audio: np.ndarray, block: int = BLOCK) -> np.ndarray:
    """``(channels, 2, ceil(samples / block))``: the min and max of each block of each channel."""
    audio = np.ascontiguousarray(audio, dtype=np.float32)  # de-interleaves a Fortran-ordered stem
    channels, n = audio.shape
    full = n // block
    out = np.empty((channels, 2, full + (n % block > 0)), dtype=np.float32)
    body = audio[:, : full * block].reshape(channels, full, block)
    out[:, 0, :full] = body.min(axis=2)
    out[:, 1, :full] = body.max(axis=2)
    if n % block:
        out[:, 0, full] = audio[:, full * block:].min(axis=1)
        out[:, 1, full] = audio[:, full * block:].max(axis=1)
    return out


def mid_of(audio: np.ndarray) -> np.ndarray:
    """``(samples,)`` float32: (left + right) / 2 of a stereo track, the channel of a mono one."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.shape[0] == 1:
        return audio[0]
    mid = np.add(audio[0], audio[1])
    mid *= np.float32(0.5)
    return mid


def scan(audio: np.ndarray, *, block: int = BLOCK, thin: int = 64,
         chunk: int = 1 << 16) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """One pass over a track, in cache-sized chunks, for everything views need from it:

    its block pyramid (as :class:`Envelopes` stores it), its mid channel (float32), its energy
    (sum of squares, float64) and every ``thin``-th frame (float32). Reading a decoded stem once
    instead of once per product matters: these computations are bound by memory, not arithmetic.

    >>> x = np.random.default_rng(0).standard_normal((2, 1000)).astype(np.float32)
    >>> blocks, mid, energy, thinned = scan(x, chunk=512, thin=4)
    >>> np.array_equal(blocks[:2], block_minmax(x)), np.allclose(mid, x.mean(axis=0))
    (True, True)
    >>> bool(np.isclose(energy, np.sum(x.astype(float) ** 2))), np.array_equal(thinned, x[:, ::4])
    (True, True)
    """
    channels, n = audio.shape
    step = block * thin // np.gcd(block, thin)
    chunk = max(step, chunk - chunk % step)  # chunks start on block and thinning boundaries
    rows = 3 if channels == 2 else channels
    blocks = np.empty((rows, 2, -(-n // block)), dtype=np.float32)
    mid = np.empty(n, dtype=np.float32)
    thinned = np.empty((channels, -(-n // thin)), dtype=np.float32)
    energy = 0.0
    for start in range(0, n, chunk):
        piece = np.ascontiguousarray(audio[:, start:start + chunk], dtype=np.float32)
        middle = mid_of(piece)
        mid[start:start + piece.shape[1]] = middle
        energy += float(np.einsum("ij,ij->", piece, piece, dtype=np.float64))
        first = start // block
        span = slice(first, first + -(-piece.shape[1] // block))
        blocks[:channels, :, span] = block_minmax(piece, block)
        if channels == 2:
            blocks[2:, :, span] = block_minmax(middle[None], block)
        thinned[:, start // thin: start // thin + -(-piece.shape[1] // thin)] = piece[:, ::thin]
    return blocks, mid, energy, thinned


class Envelopes:
    """Envelopes of one track at any zoom.

    Parameters
    ----------
    audio : array ``(channels, samples)``
        Usually a memory-mapped decoded stem.
    sr : int
    blocks : array, optional
        Its block pyramid, as :func:`scan` returns it (computed when not given).
    """

    def __init__(self, audio: np.ndarray, sr: int, *, blocks: np.ndarray | None = None):
        self.audio, self.sr = audio, int(sr)
        self.stereo = audio.shape[0] == 2
        self.samples = audio.shape[1]
        self.blocks = scan(audio)[0] if blocks is None else blocks

    def _channels(self, channels: str) -> list[int]:
        if not self.stereo:
            return [0]
        return [2] if channels == "mid" else [0, 1]

    def _samples(self, start: int, stop: int, channels: str) -> np.ndarray:
        data = np.asarray(self.audio[:, start:stop], dtype=np.float32)
        if not self.stereo:
            return data[:1]
        return mid_of(data)[None] if channels == "mid" else data

    def envelope(self, t0: float, t1: float, *, columns: int, channels: str = "mid") -> np.ndarray:
        """``(n_channels, 2, columns)`` min and max per column over ``[t0, t1]`` seconds.

        ``channels`` is ``"mid"`` (one: (L+R)/2) or ``"stereo"`` (left and right). Columns
        past the end of the track are zero. Wide columns reduce pyramid blocks; narrow ones
        (zoomed in) reduce raw samples.
        """
        if (t1 - t0) * self.sr / columns >= 2 * BLOCK:
            picks = self._channels(channels)
            lo, hi, offset, unit = self.blocks[picks, 0], self.blocks[picks, 1], 0, BLOCK
        else:
            offset = max(0, int(np.floor(t0 * self.sr)))
            lo = hi = self._samples(offset, min(self.samples, int(np.ceil(t1 * self.sr)) + 1), channels)
            unit = 1
        edges = (np.linspace(t0, t1, columns + 1) * self.sr - offset) / unit
        return _reduce(lo, hi, edges)

    def points(self, t0: float, t1: float, *, channels: str = "mid") -> np.ndarray:
        """``(n_channels, n)`` the raw samples over ``[t0, t1]``, for sample-level views."""
        start = max(0, int(np.floor(t0 * self.sr)))
        return self._samples(start, min(self.samples, int(np.ceil(t1 * self.sr)) + 1), channels)


def _reduce(lo: np.ndarray, hi: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Min of ``lo`` and max of ``hi`` over the index intervals between consecutive ``edges``."""
    columns = len(edges) - 1
    out = np.zeros((lo.shape[0], 2, columns), dtype=np.float32)
    starts = np.floor(edges[:-1] + 1e-6).astype(np.int64)  # + 1e-6: 3.9999999 is sample 4
    stops = np.maximum(np.ceil(edges[1:] - 1e-6).astype(np.int64), starts + 1)
    available = lo.shape[-1]
    cols = np.flatnonzero((starts >= 0) & (starts < available))
    if cols.size == 0:
        return out
    bounds = starts[cols]
    # reduceat covers [bound_k, bound_k+1); the last covered column ends at its own stop
    out[:, 0, cols] = np.minimum.reduceat(lo, bounds, axis=-1)
    out[:, 1, cols] = np.maximum.reduceat(hi, bounds, axis=-1)
    tail = slice(bounds[-1], min(stops[cols[-1]], available))
    out[:, 0, cols[-1]] = lo[..., tail].min(axis=-1)
    out[:, 1, cols[-1]] = hi[..., tail].max(axis=-1)
    return out
