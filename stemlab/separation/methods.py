"""Classic source-separation methods, each a function ``(mix, sr, **params) -> {stem: audio}``.

Every method estimates a time-frequency mask per stem from the mixture's STFT, multiplies the
mixture's (stereo) STFT by it and inverts; the masks of a method sum to one, so its stems always
add back up to the mixture. What each assumes about the music is what the teaching notebook is
about:

=============  ==========================================  =====================================
method         assumes                                     stems
=============  ==========================================  =====================================
``hpss``       drums are short in time and broad in        drums, other
               frequency; pitched parts are the opposite
``repet-sim``  the accompaniment repeats (similar frames   vocals, instrumental
               recur), the voice does not
``center``     the lead voice is panned to the centre and  vocals, instrumental
               is the only centre-panned part
``nmf``        each part is a few fixed spectra whose      drums, bass, other
               loudness changes over time
``oracle``     (nothing: it reads the true stems) the      the true stems
               best a mask can do, the upper bound
=============  ==========================================  =====================================

>>> sr = 8000
>>> t = np.arange(sr) / sr
>>> mix = np.stack([np.sin(2 * np.pi * 220 * t)] * 2).astype(np.float32)
>>> stems = hpss(mix, sr)
>>> sorted(stems), float(np.abs(stems["drums"] + stems["other"] - mix).max()) < 1e-4
(['drums', 'other'], True)
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..errors import UsageError
from ..dsp import is_silent, istft, stft

__all__ = ["hpss", "repet_sim", "center", "nmf", "factorise", "oracle"]


def _apply(spec: np.ndarray, masks: Mapping[str, np.ndarray], *, rest: str, hop: int,
           mix: np.ndarray) -> dict[str, np.ndarray]:
    """Invert ``spec * mask`` for every mask; the ``rest`` stem is the mixture minus those (so the
    stems add up to the mixture exactly, with one inverse STFT fewer)."""
    stems = {name: istft(spec * (mask if mask.ndim == 3 else mask[None]), hop=hop, length=mix.shape[1])
             for name, mask in masks.items()}
    stems[rest] = (mix - sum(stems.values())).astype(np.float32)
    return stems


def _softmask(x: np.ndarray, y: np.ndarray, power: float) -> np.ndarray:
    """``x^p / (x^p + y^p)``, 0.5 where both are zero."""
    xp, yp = np.power(x, power), np.power(y, power)
    total = xp + yp
    return np.where(total > 0, xp / np.where(total > 0, total, 1), 0.5).astype(np.float32)


def hpss(mix: np.ndarray, sr: int, *, kernel: int = 17, margin: float = 1.0, power: float = 2.0,
         n_fft: int = 2048, hop: int = 1024) -> dict[str, np.ndarray]:
    """Harmonic/percussive separation (Fitzgerald 2010) with ``librosa.decompose.hpss`` masks.

    Median filtering the magnitude across time keeps steady (harmonic) energy, across frequency
    keeps broadband clicks (percussive). The percussive part is the ``drums`` estimate, the
    rest is ``other``. Masks are computed on the mid channel and applied to both channels.
    """
    import librosa

    spec = stft(mix, n_fft=n_fft, hop=hop)
    magnitude = np.abs(spec).mean(axis=0)
    _, percussive = librosa.decompose.hpss(magnitude, kernel_size=kernel, power=power, mask=True, margin=margin)
    return _apply(spec, {"drums": percussive.astype(np.float32)}, rest="other", hop=hop, mix=mix)


def _similar_frame_median(magnitude: np.ndarray, features: np.ndarray, *, neighbours: int, gap: int,
                          block: int = 512) -> np.ndarray:
    """For every frame, the median of the ``neighbours`` frames whose ``features`` are most similar
    (cosine), ignoring frames closer than ``gap``: the nearest-neighbour filter of REPET-SIM."""
    unit = features / np.maximum(np.linalg.norm(features, axis=0, keepdims=True), 1e-12)
    frames = magnitude.shape[1]
    k = int(min(neighbours, max(1, frames - 2 * gap - 1)))
    out = np.empty_like(magnitude)
    for start in range(0, frames, block):
        rows = np.arange(start, min(frames, start + block))
        similarity = unit[:, rows].T @ unit  # rows x frames
        similarity[np.abs(rows[:, None] - np.arange(frames)[None]) < gap] = -np.inf
        nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]  # rows x k
        out[:, rows] = np.median(magnitude[:, nearest], axis=2)
    return out


def repet_sim(mix: np.ndarray, sr: int, *, neighbours: int = 20, min_gap_s: float = 2.0, margin: float = 10.0,
              power: float = 2.0, n_fft: int = 2048, hop: int = 1024, n_mels: int = 128) -> dict[str, np.ndarray]:
    """REPET-SIM (Rafii & Pardo 2012), as in librosa's vocal separation example.

    Each frame of the accompaniment is estimated as the median of its ``neighbours`` most similar
    frames (cosine similarity of log-mel spectra, at least ``min_gap_s`` apart): what repeats is
    accompaniment, what does not is voice. A soft mask with ``margin`` favours the accompaniment.
    """
    import librosa

    spec = stft(mix, n_fft=n_fft, hop=hop)
    magnitude = np.abs(spec).mean(axis=0)
    features = np.log1p(librosa.feature.melspectrogram(S=magnitude ** 2, sr=sr, n_mels=n_mels)).astype(np.float32)
    background = _similar_frame_median(magnitude, features, neighbours=neighbours,
                                       gap=max(1, int(round(min_gap_s * sr / hop))))
    background = np.minimum(magnitude, background)
    vocals = _softmask(magnitude - background, margin * background, power)
    return _apply(spec, {"vocals": vocals}, rest="instrumental", hop=hop, mix=mix)


def center(mix: np.ndarray, sr: int, *, sharpness: float = 4.0, n_fft: int = 2048,
           hop: int = 512) -> dict[str, np.ndarray]:
    """Centre extraction (after Avendano & Jot 2002): what is identical in left and right.

    The similarity ``2 Re(L R*) / (|L|^2 + |R|^2)`` is 1 for a centre-panned, coherent component
    and falls for panned or decorrelated ones; raised to ``sharpness`` it is the mask of the
    centre, which is returned as ``vocals`` (in both channels); the rest is ``instrumental``.
    """
    if mix.shape[0] != 2:
        raise UsageError(f"center extraction needs a stereo mix; this one has {mix.shape[0]} channel(s)")
    spec = stft(mix, n_fft=n_fft, hop=hop)
    left, right = spec
    similarity = 2 * np.real(left * np.conj(right)) / np.maximum(np.abs(left) ** 2 + np.abs(right) ** 2, 1e-12)
    mask = np.clip(similarity, 0.0, 1.0) ** sharpness
    middle = (mask * 0.5 * (left + right)).astype(np.complex64)
    vocals = istft(np.stack([middle, middle]), hop=hop, length=mix.shape[1])
    return {"vocals": vocals, "instrumental": (mix - vocals).astype(np.float32)}


def _label_components(basis: np.ndarray, activations: np.ndarray, sr: int, n_fft: int) -> list[str]:
    """Name NMF components: ``drums`` when their loudness jumps (activation flux > 0.6),
    ``bass`` when over 80% of their spectrum's energy lies below 300 Hz, else ``other``."""
    freqs = np.arange(basis.shape[0]) * sr / n_fft
    energy = basis ** 2
    low = energy[freqs < 300].sum(axis=0) / np.maximum(energy.sum(axis=0), 1e-20)
    flux = np.abs(np.diff(activations, axis=1)).mean(axis=1) / np.maximum(activations.mean(axis=1), 1e-12)
    return ["drums" if f > 0.6 else "bass" if lo > 0.8 else "other" for f, lo in zip(flux, low)]


def factorise(magnitude: np.ndarray, components: int, *, iterations: int = 100,
              seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``magnitude ~ basis @ activations`` with multiplicative updates (Lee & Seung, Euclidean).

    >>> V = np.abs(np.random.default_rng(0).standard_normal((20, 30))).astype(np.float32)
    >>> W, H = factorise(V, 4, iterations=200)
    >>> W.shape, H.shape, bool(np.linalg.norm(V - W @ H) < np.linalg.norm(V))
    ((20, 4), (4, 30), True)
    """
    rng = np.random.default_rng(seed)
    scale = np.sqrt(magnitude.mean() / components)
    basis = (rng.random((magnitude.shape[0], components)) * scale + 1e-4).astype(np.float32)
    activations = (rng.random((components, magnitude.shape[1])) * scale + 1e-4).astype(np.float32)
    tiny = np.float32(1e-12)
    for _ in range(iterations):
        activations *= (basis.T @ magnitude) / ((basis.T @ basis) @ activations + tiny)
        basis *= (magnitude @ activations.T) / (basis @ (activations @ activations.T) + tiny)
    return basis, activations


def nmf(mix: np.ndarray, sr: int, *, components: int = 16, iterations: int = 100, seed: int = 0,
        n_fft: int = 2048, hop: int = 1024) -> dict[str, np.ndarray]:
    """Non-negative matrix factorisation of the magnitude spectrogram (:func:`factorise`).

    The spectrogram is approximated by ``components`` fixed spectra times their loudness over
    time. Each component's share (a Wiener-style mask) is grouped by a heuristic: components with
    spiky activations are ``drums``, steady low ones ``bass``, the rest ``other``.
    """
    if components < 2:
        raise UsageError("nmf needs at least 2 components")
    spec = stft(mix, n_fft=n_fft, hop=hop)
    magnitude = np.abs(spec).mean(axis=0)
    basis, activations = factorise(magnitude, components, iterations=iterations, seed=seed)
    labels = _label_components(basis, activations, sr, n_fft)
    parts = {name: sum(np.outer(basis[:, i], activations[i]) for i, label in enumerate(labels) if label == name)
             for name in ("drums", "bass", "other") if name in labels}
    total = np.maximum(sum(parts.values()), 1e-12)
    *masked, rest = parts
    return _apply(spec, {name: (parts[name] / total).astype(np.float32) for name in masked}, rest=rest, hop=hop,
                  mix=mix)


def oracle(mix: np.ndarray, sr: int, *, references: Mapping[str, np.ndarray] | None = None, mask: str = "ratio",
           power: float = 2.0, n_fft: int = 2048, hop: int = 512) -> dict[str, np.ndarray]:
    """Ideal masks from the true stems: the best any masking method could do on this mixture.

    ``mask="ratio"``: each bin is shared in proportion to the stems' magnitudes to the ``power``
    (2: the Wiener-like ideal ratio mask); ``mask="binary"``: each bin goes wholly to the loudest
    stem. Masks are computed per channel. Silent true stems stay silent.
    """
    if not references:
        raise UsageError("oracle needs the true stems: pass a StemSet that has them (e.g. stemlab.demo_song()) "
                         "or references={name: audio}")
    if mask not in ("ratio", "binary"):
        raise UsageError(f"oracle mask must be 'ratio' or 'binary', not {mask!r}")
    spec = stft(mix, n_fft=n_fft, hop=hop)
    names = list(references)
    weights = []
    for name in names:
        ref = np.asarray(references[name], dtype=np.float32)
        ref = np.broadcast_to(ref, mix.shape) if ref.shape[0] == 1 else ref
        weights.append(np.abs(stft(ref[:, : mix.shape[1]], n_fft=n_fft, hop=hop)) ** power)
    weights = np.stack(weights)  # stems x channels x bins x frames
    if mask == "binary":
        winner = np.argmax(weights, axis=0)
        masks = [(winner == i).astype(np.float32) for i in range(len(names))]
    else:
        total = np.maximum(weights.sum(axis=0), 1e-20)
        masks = [(w / total).astype(np.float32) for w in weights]
    silent = [is_silent(references[name]) for name in names]
    stems = {}
    for name, m, quiet in zip(names, masks, silent):
        stems[name] = np.zeros_like(mix, dtype=np.float32) if quiet else istft(spec * m, hop=hop, length=mix.shape[1])
    return stems
