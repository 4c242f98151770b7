"""Separation metrics you can trust: SI-SDR, BSSEval v4 (SDR, ISR, SIR, SAR), SDR improvement.

The module follows mir_eval's shape: :func:`validate` checks the inputs once, small functions
compute one metric each, and :func:`evaluate` returns every named score of every stem.

>>> import numpy as np
>>> from stemlab.analysis.metrics import evaluate
>>> rng = np.random.default_rng(0)
>>> refs = {"bass": 0.1 * rng.standard_normal((2, 44100)), "drums": 0.1 * rng.standard_normal((2, 44100))}
>>> ests = {name: ref + 0.01 * rng.standard_normal((2, 44100)) for name, ref in refs.items()}
>>> scores = evaluate(refs, ests)
>>> round(scores["bass"].sdr)                              # noise 20 dB below the stem
20

Conventions
-----------
* Audio is float in [-1, 1]. A stem is ``(n_channels, n_samples)`` (stemlab's ``Stem.audio``) or
  ``(n_samples,)``; reference and estimate have the same shape. A 2-D array with more than 8 rows
  and at most 8 columns looks like ``(samples, channels)`` and is refused with a message that says
  so; NaN or inf anywhere is refused too. :func:`bss_eval` takes stacked arrays in museval's
  layout ``(n_sources, n_samples, n_channels)`` by default, or ``layout="stemlab"`` for
  ``(n_sources, n_channels, n_samples)``.
* Channels are scored jointly: every energy is summed over the channels of a stem, as museval
  does, and SI-SDR treats a stereo stem as one long signal (one scale factor for both channels).
* Ratios are in dB. Above 60 dB, where energies expanded as ``|s|² - 2<s, e> + |e|²`` would lose
  digits to cancellation, the error signal of SI-SDR and SDR is built in float64, chunk by chunk:
  a true 120 dB reads within 0.01 dB from float32 or float64 input.
* **Identical**: an estimate equal to its reference (for SI-SDR: up to scale), to within float64
  rounding (an error more than 250 dB below the target, :data:`IDENTICAL_DB`), scores ``+inf``
  and is flagged ``identical``; tables show "identical" and plots leave it out of their axes.
  Otherwise a ratio with a zero numerator is NaN, and one with a vanishing denominator is capped
  at :data:`MAX_DB`.

Metrics
-------
* :func:`si_sdr`: scale-invariant SDR (Le Roux et al. 2019).
* :func:`bss_eval`: BSSEval v4, as ``museval.metrics.bss_eval`` with ``framewise_filters=False``
  and ``bsseval_sources_version=False`` (the images version SiSEC reports), framewise and for
  the whole signal; :meth:`BssEvalResult.median` is SiSEC's median over frames.
* :func:`sdr`, :func:`sdr_improvement`: v4 SDR of one stem, and its gain over using the mixture
  as the estimate. (In the images version SDR needs no projection: it is ``‖s‖² / ‖ŝ - s‖²``.)

Precision
---------
Against museval's stored scores for MUSDB18's "80s Rock" and mir_eval's MATLAB fixtures, SDR
matches to the fixtures' rounding. SIR, SAR and ISR agree with museval to about 1e-6 dB, not
better: they come from a least-squares solve whose matrix museval itself conditions no better
than that (the two implementations' solvers round differently). See the tests in
``tests/analysis/test_fixtures.py`` for the exact tolerances.

Silence
-------
museval and mir_eval stop with ``ValueError: All the reference sources should be non-silent``
(museval #94), yet a 12-stem split of a song usually has silent stems. stemlab never raises for
silence. Silence is relative (:func:`stemlab.dsp.silence_threshold`): a signal is silent when its
RMS level, over all its samples and channels, is more than 60 dB below the mix's (the
``mixture``, else the sum of the references), and always below -100 dBFS, the backstop. Scaling a
whole set up or down changes no score and no flag. The pair functions (:func:`si_sdr`,
:func:`sdr`) have no mix: there the reference stands for it.

* **Silent reference**: every metric of that stem is NaN, ``reference_silent=True``. There is no
  target to measure against. The reference is also left out of the projection basis of the other
  stems, so their interference is measured against the non-silent references only: their
  numbers equal museval's run on the non-silent stems alone.
* **Silent estimate**: every metric of that stem is NaN too, ``sdr_improvement`` included, with
  ``estimate_silent=True``: an estimate of nothing is not an improvement of any size.
* **Both silent**: every metric is NaN and both flags are set. This is a correct silence, and it
  is reported as one.
* **Frames**: a frame where the stem's reference or estimate is silent (the same threshold on the
  frame's RMS) is NaN for that stem, and medians over frames skip NaN. museval instead blanks the
  frame for *every* stem as soon as any reference or any estimate is exactly zero there; the
  projection filters are global, so stemlab keeps the other stems' numbers.
* With fewer than two non-silent references there is no interference to measure: SIR is NaN.

A signal shorter than one window is one frame covering the whole signal (museval 0.4.1 does the
same; museval 0.2 raised a TypeError, #16).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Iterator, Mapping

import numpy as np

from ..dsp import SILENCE_FLOOR_DB, is_silent, products, quiet, rms_db, silence_threshold
from ..errors import UsageError
from .bsseval import Energies, bss_eval_energies, frame_starts

__all__ = [
    "MAX_DB",
    "IDENTICAL_DB",
    "ratio_db",
    "si_sdr",
    "sdr",
    "sdr_improvement",
    "bss_eval",
    "BssScores",
    "BssEvalResult",
    "median_over_frames",
    "validate",
    "evaluate",
    "StemScores",
    "FrameScores",
    "Evaluation",
    "is_silent",
    "rms_db",
    "silence_threshold",
]

#: Largest finite ratio reported, in dB: an error below float64 resolution cannot be measured.
MAX_DB = float(10 * np.log10(1 / np.finfo(np.float64).eps))

#: An error this many dB (or more) below the target is float64 rounding: the signals are identical.
IDENTICAL_DB = 250.0

_CHUNK = 1 << 16  # samples per float64 chunk

#: Below this share of the estimate's energy, an error computed from expanded energies
#: (``|s|² - 2<s, e> + |e|²``) has lost digits to cancellation: it is computed again from the
#: error signal itself (beyond 60 dB).
_EXACT_BELOW = 1e-6


# ---------------------------------------------------------------------------- dB


def ratio_db(numerator, denominator) -> np.ndarray:
    """``10 log10(numerator / denominator)`` for energies.

    NaN where the numerator is 0 (including 0/0); capped at :data:`MAX_DB` where the
    denominator is tiny or 0 (whether that means "identical" is for the caller to say).

    Examples
    --------
    >>> ratio_db(100.0, 1.0), ratio_db(0.0, 1.0), ratio_db(1.0, 0.0) == MAX_DB
    (array(20.), array(nan), np.True_)
    """
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    floor = numerator * np.finfo(np.float64).eps
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = 10 * np.log10(numerator / np.maximum(denominator, floor))
    return np.where(numerator > 0, ratio, np.nan)


def _identical(target: float, error: float) -> bool:
    return target > 0 and error <= target * 10 ** (-IDENTICAL_DB / 10)


def _score(target: float, error: float) -> float:
    """``target / error`` in dB: +inf when identical, NaN when the target is 0."""
    return float("inf") if _identical(target, error) else float(ratio_db(target, error))


# ------------------------------------------------------------------------------- inputs


def _looks_transposed(shape: tuple[int, ...]) -> bool:
    return len(shape) == 2 and shape[0] > 8 and shape[1] <= 8


def _pair(reference, estimate, what: str = "estimate") -> tuple[np.ndarray, np.ndarray]:
    """Two arrays of one shape, ``(channels, samples)`` or ``(samples,)``, float; else a UsageError."""
    reference, estimate = np.asarray(reference), np.asarray(estimate)
    for label, array in (("reference", reference), (what, estimate)):
        if not np.issubdtype(array.dtype, np.floating):
            raise UsageError(f"{label}: dtype {array.dtype}, expected float audio in [-1, 1] "
                             "(for int16, divide by 32768)")
        if _looks_transposed(array.shape):
            raise UsageError(f"{label} has shape {array.shape}, which looks like (samples, channels); "
                             "pass (channels, samples), e.g. audio.T")
        if array.ndim not in (1, 2) or array.size == 0:
            raise UsageError(f"{label} has shape {array.shape}; pass (channels, samples) or (samples,)")
    if reference.shape != estimate.shape:
        raise UsageError(f"reference has shape {reference.shape} but {what} has {estimate.shape}: pass arrays of "
                         "the same shape (channels, samples)")
    return reference, estimate


def _chunks(*arrays: np.ndarray) -> Iterator[list[np.ndarray]]:
    """The flattened ``arrays`` as float64 chunks of :data:`_CHUNK` values, in reused buffers."""
    flat = [np.reshape(a, -1) for a in arrays]
    buffers = [np.empty(min(_CHUNK, flat[0].size)) for _ in flat]
    for start in range(0, flat[0].size, _CHUNK):
        n = min(_CHUNK, flat[0].size - start)
        for buffer, values in zip(buffers, flat):
            buffer[:n] = values[start:start + n]
        yield [buffer[:n] for buffer in buffers]


def _finite(value: float, *labels: str) -> float:
    """``value`` (an energy), or a UsageError: a NaN or inf sample makes every energy NaN or inf."""
    if not np.isfinite(value):
        raise UsageError(f"{' or '.join(labels)} contains NaN or inf; clean the audio first (e.g. np.nan_to_num)")
    return value


def _energies(reference: np.ndarray, estimate: np.ndarray) -> tuple[float, float, float]:
    """``|s|²``, ``<s, e>`` and ``|e|²``, in one float64 pass; NaN or inf in either is refused (it
    makes an energy NaN or inf, so the check costs nothing)."""
    energy, cross, estimate_energy = products(reference, estimate)
    return _finite(energy, "reference"), cross, _finite(estimate_energy, "estimate")


def _silent_pair(energy: float, estimate_energy: float, size: int, silence_db: float | None) -> bool:
    """Whether the reference or the estimate (their energies over ``size`` values) is silent: both
    against ``silence_db``, or with none given, the reference against the backstop and the estimate
    against 60 dB below the reference."""
    if silence_db is None:
        reference_db = 10 * np.log10(energy / size) if energy > 0 and size else float("-inf")
        return quiet(energy, size, SILENCE_FLOOR_DB) or quiet(estimate_energy, size, silence_threshold(reference_db))
    return quiet(energy, size, silence_db) or quiet(estimate_energy, size, silence_db)


# --------------------------------------------------------------------------- single stems


def si_sdr(reference: np.ndarray, estimate: np.ndarray, *, zero_mean: bool = False,
           silence_db: float | None = None) -> float:
    """Scale-invariant SDR (Le Roux, Wisdom, Erdogan and Hershey, ICASSP 2019), in dB.

    ``α = <s, ŝ> / ‖s‖²`` scales the reference to best fit the estimate, and
    ``SI-SDR = 10 log10(‖α s‖² / ‖α s - ŝ‖²)``. All channels are treated as one signal (one
    ``α`` for the whole stem), so a wrong balance between channels counts as distortion. The
    error ``α s - ŝ`` is built in float64, chunk by chunk.

    Parameters
    ----------
    reference, estimate : np.ndarray
        The same shape, ``(n_channels, n_samples)`` or ``(n_samples,)``.
    zero_mean : bool
        Subtract each signal's mean first, as the paper's experiments do (default False: audio
        has no DC worth removing, and torchmetrics and fast_bss_eval do not subtract it).
    silence_db : float, optional
        The silence threshold in dBFS (see the module docstring); default: 60 dB below the
        reference for the estimate, the -100 dBFS backstop for the reference.

    Returns
    -------
    float
        ``+inf`` for an estimate identical to the reference up to scale; NaN for a silent
        reference or estimate, or when ``<s, ŝ> = 0``.

    Examples
    --------
    >>> s = np.sin(np.arange(1000) / 10)
    >>> round(si_sdr(s, 0.5 * s + 0.05 * np.cos(np.arange(1000) / 3)), 1)   # gain is free
    20.0
    >>> si_sdr(s, 0.5 * s), si_sdr(s, np.zeros(1000))
    (inf, nan)
    """
    reference, estimate = _pair(reference, estimate)
    if zero_mean:
        reference = reference - reference.mean(dtype=np.float64)
        estimate = estimate - estimate.mean(dtype=np.float64)
    energy, cross, estimate_energy = _energies(reference, estimate)
    if _silent_pair(energy, estimate_energy, reference.size, silence_db):
        return float("nan")
    alpha = cross / energy
    error = alpha * alpha * energy - 2 * alpha * cross + estimate_energy  # |alpha s - e|^2, expanded
    if error < _EXACT_BELOW * estimate_energy:  # cancellation would show: build the error signal
        error = _error_energy(reference, estimate, alpha)
    return _score(alpha * alpha * energy, max(error, 0.0))


def _error_energy(reference: np.ndarray, estimate: np.ndarray, alpha: float = 1.0) -> float:
    """``|alpha s - e|^2`` from the error signal itself, built in float64 chunk by chunk."""
    error = 0.0
    for s, e in _chunks(reference, estimate):
        s *= alpha
        s -= e
        error += float(s @ s)
    return error


def sdr(reference: np.ndarray, estimate: np.ndarray, *, silence_db: float | None = None) -> float:
    """Whole-signal BSSEval v4 SDR (images version): ``10 log10(‖s‖² / ‖ŝ - s‖²)``, in dB.

    With time-invariant filters and the images version, the distortion, interference and
    artifact terms add up to ``ŝ - s``, so museval's SDR over one frame is exactly this ratio.
    ``+inf`` when identical, NaN when either signal is silent (see :func:`si_sdr`).

    Examples
    --------
    >>> s = np.ones(100)
    >>> round(sdr(s, 1.1 * s), 6)
    20.0
    """
    reference, estimate = _pair(reference, estimate)
    energy, cross, estimate_energy = _energies(reference, estimate)
    if _silent_pair(energy, estimate_energy, reference.size, silence_db):
        return float("nan")
    error = energy - 2 * cross + estimate_energy  # |e - s|^2, expanded
    if error < _EXACT_BELOW * estimate_energy:
        error = _error_energy(reference, estimate)
    return _score(energy, max(error, 0.0))


def sdr_improvement(reference: np.ndarray, estimate: np.ndarray, mixture: np.ndarray, *,
                    silence_db: float | None = None) -> float:
    """SDR of the estimate minus SDR of the mixture used as the estimate (whole signal), in dB.

    How much the separation gained over doing nothing. NaN for a silent reference or estimate;
    the threshold is relative to ``mixture`` (see the module docstring).

    Examples
    --------
    >>> s, other = np.sin(np.arange(1000) / 10), np.cos(np.arange(1000) / 3)
    >>> round(sdr_improvement(s, s + 0.1 * other, s + other), 6)   # the leak went down 20 dB
    20.0
    >>> sdr_improvement(s, np.zeros(1000), s + other)
    nan
    """
    _pair(reference, mixture, "mixture")
    threshold = silence_threshold(mixture) if silence_db is None else silence_db
    return sdr(reference, estimate, silence_db=threshold) - sdr(reference, mixture, silence_db=threshold)


# ----------------------------------------------------------------------------- BSSEval v4


@dataclass(frozen=True)
class BssScores:
    """SDR, ISR, SIR and SAR in dB, NaN where undefined; one row per source."""

    sdr: np.ndarray
    isr: np.ndarray
    sir: np.ndarray
    sar: np.ndarray


@dataclass(frozen=True)
class BssEvalResult:
    """What :func:`bss_eval` returns.

    Attributes
    ----------
    whole : BssScores
        The whole signal as one frame, arrays ``(n_sources,)``.
    frames : BssScores or None
        Per frame, arrays ``(n_sources, n_frames)``; None when ``framewise=False``.
    frame_starts : np.ndarray
        First sample of each frame (empty without frames).
    window, hop : int
        Frame length and hop in samples.
    reference_silent, estimate_silent, identical : np.ndarray of bool, ``(n_sources,)``
        The silence and identity flags (see the module docstring).
    silence_db : float
        The silence threshold used, dBFS.
    """

    whole: BssScores
    frames: BssScores | None
    frame_starts: np.ndarray
    window: int
    hop: int
    reference_silent: np.ndarray
    estimate_silent: np.ndarray
    identical: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    silence_db: float = SILENCE_FLOOR_DB

    def median(self) -> BssScores:
        """Median over frames ignoring NaN, as museval and SiSEC report; the whole-signal
        scores when there are no frames."""
        return self.whole if self.frames is None else median_over_frames(self.frames)


def median_over_frames(scores: BssScores) -> BssScores:
    """Per source, the median over frames of each metric, ignoring NaN frames (NaN if all are).

    Examples
    --------
    >>> framewise = BssScores(*(np.array([[1.0, np.nan, 3.0]]),) * 4)
    >>> median_over_frames(framewise).sdr
    array([2.])
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "All-NaN slice": the answer is NaN
        return BssScores(*(np.nanmedian(getattr(scores, name), axis=-1) for name in ("sdr", "isr", "sir", "sar")))


def bss_eval(references: np.ndarray, estimates: np.ndarray, *, window: int = 44100, hop: int = 44100,
             filters_len: int = 512, framewise: bool = True, layout: str = "museval",
             silence_db: float | None = None) -> BssEvalResult:
    """BSSEval v4 SDR, ISR, SIR and SAR, framewise and for the whole signal, museval-compatible.

    The same numbers as ``museval.metrics.bss_eval(references, estimates, window=window,
    hop=hop, compute_permutation=False, filters_len=filters_len, framewise_filters=False,
    bsseval_sources_version=False)``, computed much faster, plus the whole-signal values and
    the silence policy of the module docstring (museval raises on a silent stem).

    Parameters
    ----------
    references, estimates : np.ndarray
        ``(n_sources, n_samples, n_channels)`` with ``layout="museval"``, or
        ``(n_sources, n_channels, n_samples)`` with ``layout="stemlab"``; ``(n_sources,
        n_samples)`` for mono. Estimate ``j`` is scored against reference ``j`` (no
        permutation search).
    window, hop : int
        Frame length and hop in samples. museval.evaluate and SiSEC use 1 s / 1 s (44100 at
        44.1 kHz, the default here); ``museval.metrics.bss_eval`` defaults to 2 s / 1.5 s.
    filters_len : int
        Length of the distortion filters, in samples (512 in BSSEval).
    framewise : bool
        Compute per-frame scores (the whole-signal ones are always computed).
    layout : {"museval", "stemlab"}
        Axis order of the arrays, see above.
    silence_db : float, optional
        Silence threshold in dBFS; default 60 dB below the sum of the references (see the module
        docstring).

    Returns
    -------
    BssEvalResult

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> refs = 0.1 * rng.standard_normal((2, 88200, 2))
    >>> ests = refs + 0.01 * rng.standard_normal((2, 88200, 2))
    >>> result = bss_eval(refs, ests)
    >>> result.frames.sdr.shape, np.round(result.median().sdr)
    ((2, 2), array([20., 20.]))
    """
    references = _as_sources(references, layout=layout, what="references")
    estimates = _as_sources(estimates, layout=layout, what="estimates")
    if references.shape != estimates.shape:
        raise UsageError(f"references have shape {_shape_text(references, layout)} but estimates have "
                         f"{_shape_text(estimates, layout)}: pass one estimate per reference, same length")
    window, hop, filters_len = (_positive_int(value, name) for value, name in
                                ((window, "window"), (hop, "hop"), (filters_len, "filters_len")))
    if silence_db is None:
        silence_db = silence_threshold(np.sum(references, axis=0, dtype=np.float32))
    reference_silent = np.array([is_silent(ref, threshold_db=silence_db) for ref in references], dtype=bool)
    estimate_silent = np.array([is_silent(est, threshold_db=silence_db) for est in estimates], dtype=bool)
    active = np.flatnonzero(~reference_silent)
    n_sources, n_channels, n_samples = references.shape
    starts = frame_starts(n_samples, window=window, hop=hop) if framewise else np.zeros(0, np.int64)

    whole = _nan_scores((n_sources,))
    frames = _nan_scores((n_sources, len(starts))) if framewise else None
    identical = np.zeros(n_sources, dtype=bool)
    if len(active):
        whole_energy, frame_energy, _ = bss_eval_energies(
            references, estimates, sources=active, filters_len=filters_len,
            window=window if framewise else None, hop=hop)
        scores = _scores(whole_energy, single_reference=len(active) < 2)
        identical[active] = _identical_rows(whole_energy)
        _fill(whole, active, scores)
        if framewise:
            length = min(window, n_samples)
            quiet_frames = _quiet_frames(frame_energy.target, length * n_channels, silence_db)
            quiet_frames |= np.stack([_quiet_frames(_frame_energy(estimates[row], starts, length),
                                                    length * n_channels, silence_db) for row in active])
            scores = _scores(frame_energy, single_reference=len(active) < 2)
            for array in vars(scores).values():
                array[quiet_frames] = np.nan
            _fill(frames, active, scores)
    for scores in (whole, frames):  # a silent estimate is scored nowhere
        if scores is not None:
            for name in ("sdr", "isr", "sir", "sar"):
                getattr(scores, name)[estimate_silent] = np.nan
    identical &= ~estimate_silent
    return BssEvalResult(whole=whole, frames=frames, frame_starts=starts, window=window, hop=hop,
                         reference_silent=reference_silent, estimate_silent=estimate_silent, identical=identical,
                         silence_db=silence_db)


def _quiet_frames(energy: np.ndarray, size: int, threshold_db: float) -> np.ndarray:
    """Which frames' RMS (from their energy over ``size`` values) is below ``threshold_db``."""
    return 10 * np.log10(np.maximum(energy, 1e-300) / size) < threshold_db


def _identical_rows(energy: Energies) -> np.ndarray:
    """Rows (and frames) whose error is float64 rounding: every ratio there is ``+inf``."""
    return energy.error <= energy.target * 10 ** (-IDENTICAL_DB / 10)


def _scores(energy: Energies, *, single_reference: bool) -> BssScores:
    """dB ratios from energies (museval's ``_bss_crit``, images version); ``+inf`` where the
    estimate is identical to the reference."""
    sir = ratio_db(energy.filtered_target, energy.interference)
    if single_reference:
        sir = np.full_like(sir, np.nan)
    scores = BssScores(sdr=ratio_db(energy.target, energy.error), isr=ratio_db(energy.target, energy.spatial),
                       sir=sir, sar=ratio_db(energy.projection, energy.artifacts))
    same = _identical_rows(energy) & (energy.target > 0)
    for name in ("sdr", "isr", "sar") + (() if single_reference else ("sir",)):
        getattr(scores, name)[same] = np.inf
    return scores


def _nan_scores(shape) -> BssScores:
    return BssScores(*(np.full(shape, np.nan) for _ in range(4)))


def _fill(scores: BssScores, rows: np.ndarray, values: BssScores) -> None:
    for name in ("sdr", "isr", "sir", "sar"):
        getattr(scores, name)[rows] = getattr(values, name)


def _as_sources(x, *, layout: str, what: str) -> np.ndarray:
    """A ``(n_sources, n_channels, n_samples)`` view of stacked sources in ``layout``."""
    if layout not in ("museval", "stemlab"):
        raise UsageError(f"layout={layout!r}: pass 'museval' (sources, samples, channels) or "
                         "'stemlab' (sources, channels, samples)")
    x = np.asarray(x)
    _check_audio(x, what)
    if x.ndim == 2:
        return x[:, None, :]
    if x.ndim != 3:
        raise UsageError(f"{what} have {x.ndim} dimensions; pass (sources, samples, channels) "
                         "with layout='museval' or (sources, channels, samples) with layout='stemlab'")
    return np.moveaxis(x, 1, 2) if layout == "museval" else x


def _shape_text(sources: np.ndarray, layout: str) -> str:
    n_sources, n_channels, n_samples = sources.shape
    order = (n_sources, n_samples, n_channels) if layout == "museval" else (n_sources, n_channels, n_samples)
    return str(order)


def _positive_int(value, name: str) -> int:
    if not float(value).is_integer() or value < 1:
        raise UsageError(f"{name}={value!r}: pass a positive whole number of samples")
    return int(value)


def _check_audio(x: np.ndarray, what: str) -> None:
    """Raise a UsageError unless ``x`` is non-empty, finite float audio."""
    if not np.issubdtype(x.dtype, np.floating):
        raise UsageError(f"{what}: dtype {x.dtype}, expected float audio in [-1, 1] (for int16, divide by 32768)")
    if x.size == 0:
        raise UsageError(f"{what}: no samples; pass at least one")
    parts = x if x.ndim > 1 else (x,)  # one part at a time: no temporary the size of the input
    if not all(np.isfinite(part).all() for part in parts):
        raise UsageError(f"{what}: contains NaN or inf; clean the audio first (e.g. np.nan_to_num)")


# ------------------------------------------------------------------------------- evaluate


@dataclass(frozen=True)
class FrameScores:
    """One stem's framewise scores: frame start times in seconds, SDR, ISR, SIR, SAR in dB."""

    start: np.ndarray
    sdr: np.ndarray
    isr: np.ndarray
    sir: np.ndarray
    sar: np.ndarray


@dataclass(frozen=True)
class StemScores:
    """One stem's row of an :class:`Evaluation`.

    ``sdr``, ``isr``, ``sir`` and ``sar`` are medians over frames (SiSEC) when the evaluation is
    framewise, whole-signal values otherwise; ``sdr_improvement`` is ``sdr`` minus the same
    statistic for the mixture used as the estimate (None without a mixture). ``si_sdr`` is always
    over the whole signal.
    """

    name: str
    si_sdr: float
    sdr: float
    isr: float
    sir: float
    sar: float
    sdr_improvement: float | None
    reference_silent: bool
    estimate_silent: bool
    identical: bool = False
    frames: FrameScores | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Evaluation:
    """Scores of every stem, in the order of the references.

    Attributes
    ----------
    stems : tuple of StemScores
    sr : int
    window, hop : int
        Frame length and hop in samples.
    summary : str
        ``"median over frames"`` or ``"whole signal"``: what ``sdr`` etc. are.
    silence_db : float
    bss : BssEvalResult
        Raw BSSEval output (whole-signal and framewise arrays, rows in stem order).
    """

    stems: tuple[StemScores, ...]
    sr: int
    window: int
    hop: int
    summary: str
    silence_db: float
    bss: BssEvalResult = field(repr=False)

    def __getitem__(self, name: str) -> StemScores:
        for stem in self.stems:
            if stem.name == name:
                return stem
        raise KeyError(f"no stem {name!r}; stems are {', '.join(self.names)}")

    @property
    def names(self) -> list[str]:
        return [stem.name for stem in self.stems]

    def rows(self) -> list[dict]:
        """One plain dict of scalars per stem (everything but the framewise arrays)."""
        return [{key: value for key, value in vars(stem).items() if key != "frames"} for stem in self.stems]


def validate(references: Mapping[str, np.ndarray], estimates: Mapping[str, np.ndarray], *,
             mixture: np.ndarray | None = None) -> None:
    """Check stems before scoring them; raise :class:`~stemlab.errors.UsageError` with one line
    saying what to fix.

    Every estimate has a reference of the same name and the reverse; every array (and the
    mixture) is float, finite, ``(n_channels, n_samples)`` or ``(n_samples,)``, and all have the
    same shape.

    Examples
    --------
    >>> validate({"bass": np.zeros((2, 10))}, {"Bass": np.zeros((2, 10))})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    stemlab.errors.UsageError: estimates lack 'bass' and have no reference for 'Bass': pass one ...
    """
    if not references:
        raise UsageError("no references: pass a dict of stem name -> array")
    missing = [name for name in references if name not in estimates]
    extra = [name for name in estimates if name not in references]
    if missing or extra:
        parts = ([f"estimates lack {_names(missing)}"] if missing else []) + (
            [f"have no reference for {_names(extra)}"] if extra else [])
        raise UsageError(" and ".join(parts) + ": pass one estimate per reference, with the same names")
    shape = None
    arrays = [(f"reference {name!r}", references[name]) for name in references]
    arrays += [(f"estimate {name!r}", estimates[name]) for name in references]
    arrays += [("mixture", mixture)] if mixture is not None else []
    for label, array in arrays:
        array = np.asarray(array)
        _check_audio(array, label)
        if _looks_transposed(array.shape):
            raise UsageError(f"{label} has shape {array.shape}, which looks like (samples, channels); "
                             "pass (channels, samples), e.g. audio.T")
        if array.ndim not in (1, 2):
            raise UsageError(f"{label} has {array.ndim} dimensions; pass (channels, samples) or (samples,)")
        if shape is None:
            shape, first = array.shape, label
        elif array.shape != shape:
            raise UsageError(f"{label} has shape {array.shape} but {first} has {shape}: "
                             "trim or pad every stem to the same channels and length")


def _names(names: list[str]) -> str:
    return ", ".join(repr(name) for name in names)


def evaluate(references: Mapping[str, np.ndarray], estimates: Mapping[str, np.ndarray], *,
             mixture: np.ndarray | None = None, sr: int = 44100, window_s: float = 1.0,
             hop_s: float = 1.0, framewise: bool = True, filters_len: int = 512,
             silence_db: float | None = None) -> Evaluation:
    """Score estimated stems against reference stems: SI-SDR, SDR, ISR, SIR, SAR, SDR improvement.

    Parameters
    ----------
    references, estimates : mapping of name -> np.ndarray
        Stems ``(n_channels, n_samples)`` or ``(n_samples,)``, all the same shape, float in
        [-1, 1]. Every reference needs an estimate of the same name.
    mixture : np.ndarray, optional
        The mix the estimates were separated from; gives ``sdr_improvement``.
    sr : int
        Sample rate, to turn ``window_s`` and ``hop_s`` into samples.
    window_s, hop_s : float
        Frames for BSSEval; SiSEC and museval.evaluate use 1 s and 1 s.
    framewise : bool
        If True (default), report medians over frames like SiSEC; if False, whole-signal values
        (faster: no frame pass).
    filters_len : int
        BSSEval distortion filter length in samples (512).
    silence_db : float, optional
        Silence threshold in dBFS; default 60 dB below the mixture (else the sum of the
        references). See the module docstring for what silence does to the scores.

    Returns
    -------
    Evaluation

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> refs = {"vocals": 0.1 * rng.standard_normal(44100), "fx": np.zeros(44100)}
    >>> ests = {"vocals": refs["vocals"] + 0.001 * rng.standard_normal(44100), "fx": np.zeros(44100)}
    >>> row = evaluate(refs, ests).rows()[1]
    >>> row["name"], row["sdr"], row["reference_silent"], row["estimate_silent"]
    ('fx', nan, True, True)
    """
    validate(references, estimates, mixture=mixture)
    if sr <= 0 or window_s <= 0 or hop_s <= 0:
        raise UsageError(f"sr={sr}, window_s={window_s}, hop_s={hop_s}: pass positive values")
    names = list(references)
    window, hop = max(1, round(window_s * sr)), max(1, round(hop_s * sr))
    stacked_refs = np.stack([_channels_first(references[name]) for name in names])
    stacked_ests = np.stack([_channels_first(estimates[name]) for name in names])
    if silence_db is None:
        silence_db = silence_threshold(_channels_first(mixture) if mixture is not None
                                       else np.sum(stacked_refs, axis=0, dtype=np.float32))
    result = bss_eval(stacked_refs, stacked_ests, window=window, hop=hop, filters_len=filters_len,
                      framewise=framewise, layout="stemlab", silence_db=silence_db)
    summary = result.median()
    mixture_sdr = (None if mixture is None else
                   _mixture_sdr(stacked_refs, _channels_first(mixture), result, silence_db=silence_db))
    stems = []
    for row, name in enumerate(names):
        frames = None if result.frames is None else FrameScores(
            result.frame_starts / sr, *(getattr(result.frames, m)[row] for m in ("sdr", "isr", "sir", "sar")))
        silent = bool(result.reference_silent[row] or result.estimate_silent[row])
        stems.append(StemScores(
            name=name,
            si_sdr=float("nan") if silent else si_sdr(stacked_refs[row], stacked_ests[row], silence_db=silence_db),
            sdr=float(summary.sdr[row]), isr=float(summary.isr[row]),
            sir=float(summary.sir[row]), sar=float(summary.sar[row]),
            sdr_improvement=None if mixture_sdr is None else float(summary.sdr[row] - mixture_sdr[row]),
            reference_silent=bool(result.reference_silent[row]),
            estimate_silent=bool(result.estimate_silent[row]),
            identical=bool(result.identical[row]),
            frames=frames))
    return Evaluation(stems=tuple(stems), sr=sr, window=window, hop=hop,
                      summary="median over frames" if framewise else "whole signal",
                      silence_db=silence_db, bss=result)


def _channels_first(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio)
    return audio[None, :] if audio.ndim == 1 else audio


def _mixture_sdr(references: np.ndarray, mixture: np.ndarray, result: BssEvalResult, *,
                 silence_db: float) -> np.ndarray:
    """SDR of the mixture as the estimate of each stem, summarised like ``result.median()``."""
    if result.frames is None:
        return np.array([np.nan if quiet_ref or quiet_est else sdr(ref, mixture, silence_db=silence_db)
                         for ref, quiet_ref, quiet_est in zip(references, result.reference_silent,
                                                              result.estimate_silent)])
    length = min(result.window, references.shape[-1])
    frame_sdr = np.full(result.frames.sdr.shape, np.nan)
    for row, ref in enumerate(references):
        target = _frame_energy(ref, result.frame_starts, length)
        error = _frame_energy(mixture - ref, result.frame_starts, length)
        scored = ~np.isnan(result.frames.sdr[row])  # the frames the estimate was scored on
        frame_sdr[row] = np.where(scored, ratio_db(target, error), np.nan)
    return median_over_frames(BssScores(frame_sdr, frame_sdr, frame_sdr, frame_sdr)).sdr


def _frame_energy(x: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """Energy of ``x`` ``(n_channels, n_samples)`` over ``[start, start + length)`` for each start."""
    power = np.sum(np.square(x, dtype=np.float64), axis=0)
    cumulative = np.concatenate([[0.0], np.cumsum(power)])
    return np.maximum(cumulative[starts + length] - cumulative[starts], 0.0)
