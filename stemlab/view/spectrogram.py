"""Spectrograms for display: one STFT per track, cached, pooled to the pixels that show it.

The STFT (mid channel, ``n_fft`` 2048, hop 512, Hann) is computed once per track and cached as
``uint8`` codes of 0.5 dB (:func:`db_codes`); 0 dB is a full-scale sine. A view of
``columns x rows`` pixels over ``[t0, t1]`` on a linear, log or mel frequency axis then
max-pools those codes (:func:`pool`), so minutes of audio never reach the plotting library at
full resolution. A dB range shared across tracks keeps their levels comparable.

>>> sr = 22050
>>> f = 93 * sr / N_FFT   # ~1 kHz, on a bin centre
>>> tone = 0.5 * np.sin(2 * np.pi * f * np.arange(sr) / sr, dtype=np.float32)[None]
>>> codes = db_codes(tone, sr)
>>> codes.shape[0], round(float(code_to_db(codes.max())), 1)
(1025, -6.0)
>>> image = to_display(pool(codes, sr, 0.0, 1.0, columns=50, rows=64, scale="log"), vmax_db=0.0)
>>> image.shape, image.dtype
((64, 50), dtype('uint8'))
"""

from __future__ import annotations

import io
import os

import numpy as np

from ..dsp import fit_channels, stft_chunks, window
from ..files import read_derived, save_npy
from ..errors import UsageError

__all__ = ["N_FFT", "HOP", "SCALES", "db_codes", "code_to_db", "cached_db_codes", "pool", "to_display",
           "shared_vmax_db", "frequency_ticks", "row_frequencies", "colormap_lut", "gray_png", "DB_RANGE"]

N_FFT = 2048
HOP = 1024  # 23 ms at 44.1 kHz: finer than a pixel column until zoomed in below ~25 s
SCALES = ("linear", "log", "mel")
DB_FLOOR = -120.0  # code 0
DB_STEP = 0.5      # dB per code
DB_RANGE = 80.0    # default dB range shown below the loudest point
LOG_FMIN = 30.0    # lowest frequency of the log axis


def code_to_db(code) -> np.ndarray:
    """dBFS of ``uint8`` codes."""
    return np.asarray(code, dtype=np.float32) * DB_STEP + DB_FLOOR


def db_codes(audio: np.ndarray, sr: int, *, n_fft: int = N_FFT, hop: int = HOP, chunk: int = 1024) -> np.ndarray:
    """``uint8`` dB codes ``(n_fft // 2 + 1, frames)`` of the mid channel's magnitude STFT.

    Frames are centred (the signal is padded by ``n_fft // 2``); frame ``k`` is at ``k * hop``
    samples. Computed ``chunk`` frames at a time in preallocated buffers, so memory stays small.
    """
    mono = np.asarray(audio, dtype=np.float32)
    mono = fit_channels(mono, 1)[0] if mono.ndim == 2 else mono
    count = len(mono) // hop + 1  # the frames that start inside the signal
    power_scale = (2.0 / float(window(n_fft).sum())) ** 2  # a full-scale sine peaks at power 1 (0 dB)
    offset = np.float32((10 * np.log10(power_scale) - DB_FLOOR) / DB_STEP + 0.5)  # + 0.5: round
    out = np.empty((n_fft // 2 + 1, count), dtype=np.uint8)
    power = np.empty((chunk, n_fft // 2 + 1), dtype=np.float32)
    imag = np.empty_like(power)
    for start, spectrum in stft_chunks(mono, n_fft=n_fft, hop=hop, count=count, chunk=chunk):
        n = len(spectrum)
        p = power[:n]
        np.square(spectrum.real, out=p)
        p += np.square(spectrum.imag, out=imag[:n])
        np.maximum(p, np.float32(1e-14 / power_scale), out=p)
        np.log10(p, out=p)
        p *= np.float32(10.0 / DB_STEP)
        p += offset
        np.clip(p, 0, 255, out=p)
        out[:, start:start + n] = p.T
    return out


def cached_db_codes(audio: np.ndarray, sr: int, cache_file: str | os.PathLike | None) -> np.ndarray:
    """:func:`db_codes`, kept in ``cache_file`` (``.npy``) and reopened memory-mapped."""
    cached = read_derived(cache_file, lambda path: np.load(path, mmap_mode="r"))
    if cached is not None:
        return cached
    codes = db_codes(audio, sr)
    if cache_file is not None:
        save_npy(cache_file, codes)
    return codes


def row_frequencies(scale: str, rows: int, sr: int) -> np.ndarray:
    """The ``rows + 1`` band edges (Hz, ascending) of a frequency axis with ``rows`` pixels."""
    nyquist = sr / 2
    if scale == "linear":
        return np.linspace(0.0, nyquist, rows + 1)
    if scale == "log":
        return np.geomspace(LOG_FMIN, nyquist, rows + 1)
    if scale == "mel":
        import librosa

        return librosa.mel_to_hz(np.linspace(0.0, librosa.hz_to_mel(nyquist, htk=True), rows + 1), htk=True)
    raise UsageError(f"unknown frequency scale {scale!r}: use one of {', '.join(SCALES)}")


def frequency_ticks(scale: str, sr: int) -> list[tuple[float, str]]:
    """``(fraction from the bottom, label)`` pairs for a frequency axis."""
    edges = row_frequencies(scale, 1000, sr)
    candidates = {"linear": [0, 5000, 10000, 15000, 20000], "log": [50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000],
                  "mel": [0, 500, 1000, 2000, 4000, 8000, 16000]}[scale]
    ticks = []
    for hz in candidates:
        if edges[0] <= hz <= edges[-1]:
            fraction = float(np.interp(hz, edges, np.linspace(0, 1, len(edges))))
            ticks.append((round(fraction, 4), f"{hz // 1000}k" if hz >= 1000 else str(hz)))
    return ticks


def _bin_starts(scale: str, rows: int, sr: int, bins: int) -> np.ndarray:
    """The first STFT bin of each display row (non-decreasing; rows narrower than a bin repeat it)."""
    edges = row_frequencies(scale, rows, sr)
    hz_per_bin = (sr / 2) / (bins - 1)
    return np.clip(np.round(edges[:-1] / hz_per_bin).astype(np.int64), 0, bins - 1)


def pool(codes: np.ndarray, sr: int, t0: float, t1: float, *, columns: int, rows: int, scale: str = "log",
         hop: int = HOP) -> np.ndarray:
    """``(rows, columns)`` ``uint8`` codes over ``[t0, t1]``, row 0 at the top (highest frequency).

    Each pixel is the maximum of the STFT cells it covers; when zoomed in past one frame per
    column, frames are repeated instead. Columns outside the track are 0 (silence).
    """
    bins, frames = codes.shape
    edges = np.linspace(t0, t1, columns + 1) * sr / hop
    image = np.zeros((rows, columns), dtype=np.uint8)
    cols = np.flatnonzero((edges[:-1] + 0.5 >= 0) & (edges[:-1] < frames))
    if frames == 0 or cols.size == 0:
        return image
    starts = np.clip(np.floor(edges[:-1] + 0.5).astype(np.int64), 0, frames - 1)[cols]
    lo, hi = int(starts[0]), int(min(frames, np.ceil(edges[cols[-1] + 1]) + 1))
    window = np.asarray(codes[:, lo:max(hi, lo + 1)])
    pooled = np.maximum.reduceat(window, starts - lo, axis=1)                          # bins x cols
    image[:, cols] = np.maximum.reduceat(pooled, _bin_starts(scale, rows, sr, bins), axis=0)[::-1]
    return image


def to_display(pooled: np.ndarray, *, vmax_db: float = 0.0, db_range: float = DB_RANGE) -> np.ndarray:
    """Map codes onto 0..255 for ``[vmax_db - db_range, vmax_db]`` (one range for every track
    keeps their levels comparable)."""
    low = (vmax_db - db_range - DB_FLOOR) / DB_STEP
    scaled = (pooled.astype(np.float32) - np.float32(low)) * np.float32(255.0 * DB_STEP / db_range)
    return np.clip(scaled, 0, 255).astype(np.uint8)


def shared_vmax_db(pooled_images) -> float:
    """The loudest level (dBFS, rounded up to 5 dB) over several pooled images: one scale for all."""
    top = max((int(p.max()) for p in pooled_images if p.size), default=0)
    return float(min(10.0, np.ceil(code_to_db(top) / 5.0) * 5.0)) if top else 0.0


def colormap_lut(name: str = "magma") -> bytes:
    """A 256-entry RGB lookup table (768 bytes) of a matplotlib colormap."""
    import matplotlib

    rgba = matplotlib.colormaps[name](np.linspace(0.0, 1.0, 256))
    return (np.round(rgba[:, :3] * 255)).astype(np.uint8).tobytes()


def gray_png(image: np.ndarray) -> bytes:
    """An 8-bit grayscale PNG of a ``(rows, columns)`` array (uint8, or floats in [0, 1]).

    Row 0 is drawn at the top (the highest frequency). Pillow, which matplotlib depends on.

    >>> gray_png(np.zeros((4, 5), np.uint8))[:8]
    b'\\x89PNG\\r\\n\\x1a\\n'
    """
    from PIL import Image

    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"image must be 2-D (rows, columns), got {image.shape}")
    if image.dtype != np.uint8:
        image = np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image), mode="L").save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()
