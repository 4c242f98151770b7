"""A small, fast STFT and its inverse for masking (scipy.fft, vectorised overlap-add).

Frames are centred (the signal is padded by ``n_fft // 2`` on both sides), windowed with a
periodic Hann window, and the inverse divides by the summed squared window, so
``istft(stft(x)) == x`` to float precision for any hop that divides ``n_fft``.

>>> x = np.random.default_rng(0).standard_normal((2, 10000)).astype(np.float32)
>>> X = stft(x, n_fft=1024, hop=256)
>>> X.shape
(2, 513, 41)
>>> float(np.abs(istft(X, hop=256, length=10000) - x).max()) < 1e-5
True
"""

from __future__ import annotations

import numpy as np

__all__ = ["stft", "istft", "hann"]


def hann(n_fft: int) -> np.ndarray:
    """The periodic Hann window (what overlap-add wants), float32."""
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)


def stft(audio: np.ndarray, *, n_fft: int = 2048, hop: int = 512, chunk: int = 1024) -> np.ndarray:
    """Complex64 STFT ``(channels, n_fft // 2 + 1, frames)`` of ``(channels, samples)`` audio.

    Frame ``k`` is centred on sample ``k * hop``; there are ``1 + ceil(samples / hop)`` frames.
    """
    from numpy.lib.stride_tricks import sliding_window_view
    import scipy.fft

    audio = np.atleast_2d(np.asarray(audio, dtype=np.float32))
    count = 1 + (audio.shape[1] + hop - 1) // hop
    padded = np.pad(audio, ((0, 0), (n_fft // 2, n_fft // 2 + hop)))
    window = hann(n_fft)
    out = np.empty((audio.shape[0], n_fft // 2 + 1, count), dtype=np.complex64)
    windowed = np.empty((chunk, n_fft), dtype=np.float32)
    for c, channel in enumerate(padded):
        frames = sliding_window_view(channel, n_fft)[::hop][:count]
        for start in range(0, count, chunk):
            n = min(chunk, count - start)
            np.multiply(frames[start:start + n], window, out=windowed[:n])
            out[c, :, start:start + n] = scipy.fft.rfft(windowed[:n], axis=1, overwrite_x=True).T
    return out


def _overlap_add(frames: np.ndarray, hop: int) -> np.ndarray:
    """Sum ``(frames, n_fft)`` rows placed ``hop`` apart (n_fft a multiple of hop)."""
    count, n_fft = frames.shape
    out = np.zeros(hop * (count + n_fft // hop - 1), dtype=np.float32)
    for k in range(n_fft // hop):  # each frame's k-th hop-long slice lands on a strided grid
        out[k * hop: k * hop + count * hop].reshape(count, hop)[:] += frames[:, k * hop:(k + 1) * hop]
    return out


def istft(spec: np.ndarray, *, hop: int = 512, length: int, chunk: int = 1024) -> np.ndarray:
    """Float32 ``(channels, length)`` audio of a ``(channels, bins, frames)`` STFT from :func:`stft`."""
    import scipy.fft

    spec = np.asarray(spec)
    n_fft = 2 * (spec.shape[1] - 1)
    count = spec.shape[2]
    window = hann(n_fft)
    norm = np.maximum(_overlap_add(np.broadcast_to(window * window, (count, n_fft)), hop), 1e-8)
    out = np.empty((spec.shape[0], length), dtype=np.float32)
    frames = np.empty((count, n_fft), dtype=np.float32)
    for c, channel in enumerate(spec):
        for start in range(0, count, chunk):
            block = scipy.fft.irfft(channel[:, start:start + chunk].T, n=n_fft, axis=1)
            np.multiply(block, window, out=frames[start:start + block.shape[0]])
        signal = _overlap_add(frames, hop)
        signal /= norm
        piece = signal[n_fft // 2: n_fft // 2 + length]
        out[c, : len(piece)] = piece
        out[c, len(piece):] = 0.0
    return out
