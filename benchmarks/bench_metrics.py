"""Separation metrics benchmark: stemlab's BSSEval v4 against museval, 12 stems x 3 min.

Synthetic stems, 180 s stereo at 44.1 kHz, deterministic: tones, low-passed noise, noise bursts
and sweeps, each channel with its own faint noise; 4 of the 12 are silent, as in a real 12-stem
split. Estimates are the references through a short filter, plus leakage from another stem, plus
noise.

* global: stemlab whole-signal SDR/ISR/SIR/SAR of all 12 stems, median of 3 runs (target < 1 s).
* framewise: 1 s windows and hops (museval.evaluate's setting). museval raises on silent stems
  and needs minutes per 4 stems, so both run on the same 4 non-silent stems, full length;
  stemlab median of 3 runs, museval one run. Target: stemlab >= 10x faster, every framewise and
  median value within 0.05 dB of museval.

Run: ``python benchmarks/bench_metrics.py`` (museval needs ffmpeg on PATH).
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.signal import lfilter

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import median_time  # noqa: E402

from stemlab.analysis.metrics import bss_eval, sdr, si_sdr  # noqa: E402

SR = 44100
SECONDS = 180.0
N_STEMS = 12
SILENT = (8, 9, 10, 11)  # e.g. fx, brass, woodwinds, strings: absent from the song
MUSEVAL_STEMS = (0, 1, 2, 3)
METRICS = ("sdr", "isr", "sir", "sar")


def synthetic_stems(*, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """References and estimates, float32 ``(N_STEMS, 2, samples)`` (stemlab's layout)."""
    rng = np.random.default_rng(seed)
    n = int(SECONDS * SR)
    t = np.arange(n, dtype=np.float64) / SR
    refs = np.zeros((N_STEMS, 2, n), dtype=np.float32)
    for stem in range(N_STEMS):
        if stem in SILENT:
            continue
        kind = stem % 4
        if kind == 0:    # harmonic tone with a slow tremolo
            f0 = 110.0 * (1 + stem)
            mono = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6)) * (0.6 + 0.4 * np.sin(0.7 * t))
        elif kind == 1:  # low-passed noise (bass-like)
            mono = lfilter([1.0], [1.0, -0.98], rng.standard_normal(n))
        elif kind == 2:  # noise bursts on a 0.5 s grid (drum-like)
            mono = rng.standard_normal(n) * np.exp(-((t + 0.1 * stem) % 0.5) / 0.08)
        else:            # slow sweep
            mono = np.sin(2 * np.pi * (80 * t + 600 * t**2 / SECONDS))
        mono *= 0.08 / np.abs(mono).max()
        pan = 0.2 + 0.6 * rng.random()
        stereo = np.stack([(1 - pan) * mono, pan * mono]) + 1e-3 * 0.08 * rng.standard_normal((2, n))
        refs[stem] = stereo
    leakage = (0.05 + 0.25 * rng.random(N_STEMS)).astype(np.float32)[:, None, None]
    ests = lfilter([1.0, 0.2, -0.1], [1.0], refs, axis=-1).astype(np.float32)
    ests += leakage * np.roll(refs, -1, axis=0)
    ests += np.float32(0.002) * rng.standard_normal(refs.shape, dtype=np.float32)
    ests[list(SILENT)] = 0.0
    return refs, ests


def museval_framewise(refs: np.ndarray, ests: np.ndarray):
    import museval  # imported here: it needs ffmpeg, and only the baseline uses it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return museval.metrics.bss_eval(np.moveaxis(refs, 1, 2).astype(np.float64),
                                        np.moveaxis(ests, 1, 2).astype(np.float64), window=SR, hop=SR,
                                        compute_permutation=False, filters_len=512, framewise_filters=False,
                                        bsseval_sources_version=False)[:4]


def main() -> int:
    print(f"synthesising {N_STEMS} stems x {SECONDS:.0f} s stereo at {SR} Hz ({len(SILENT)} silent) ...", flush=True)
    refs, ests = synthetic_stems()

    def projection_free():
        for ref, est in zip(refs, ests):
            si_sdr(ref, est)
            sdr(ref, est)

    quick = median_time(projection_free)
    print(f"global: {N_STEMS} stems, whole-signal SI-SDR and SDR (v4 images SDR needs no projection), "
          f"median of 3 runs: {quick:.2f} s")
    whole = median_time(lambda: bss_eval(refs, ests, layout="stemlab", framewise=False))
    print(f"global: {N_STEMS} stems ({N_STEMS - len(SILENT)} non-silent), whole-signal SDR/ISR/SIR/SAR, "
          f"median of 3 runs: {whole:.2f} s")

    subset = list(MUSEVAL_STEMS)
    sub_refs, sub_ests = refs[subset], ests[subset]
    print(f"framewise: {len(subset)} non-silent stems x {SECONDS:.0f} s, 1 s window / 1 s hop, "
          "the same arrays for both", flush=True)
    ours = bss_eval(sub_refs, sub_ests, layout="stemlab")
    ours_time = median_time(lambda: bss_eval(sub_refs, sub_ests, layout="stemlab"))
    print(f"  stemlab median of 3 runs: {ours_time:.2f} s", flush=True)
    started = time.perf_counter()
    theirs = museval_framewise(sub_refs, sub_ests)
    museval_time = time.perf_counter() - started
    print(f"  museval.metrics.bss_eval, one run: {museval_time:.1f} s")

    max_frame_diff = max_median_diff = 0.0
    print("  median over frames (stem: stemlab / museval)")
    for index, name in enumerate(METRICS):
        ours_frames, their_frames = getattr(ours.frames, name), theirs[index]
        both = np.isfinite(ours_frames) & np.isfinite(their_frames)
        max_frame_diff = max(max_frame_diff, float(np.abs(ours_frames[both] - their_frames[both]).max()))
        ours_median = np.nanmedian(np.where(both, ours_frames, np.nan), axis=1)
        their_median = np.nanmedian(np.where(both, their_frames, np.nan), axis=1)
        max_median_diff = max(max_median_diff, float(np.abs(ours_median - their_median).max()))
        pairs = "  ".join(f"{a:6.2f}/{b:6.2f}" for a, b in zip(ours_median, their_median))
        print(f"    {name.upper():<4} {pairs}")

    ratio = museval_time / ours_time
    framewise_ok = ratio >= 10 and max_frame_diff < 0.05 and max_median_diff < 0.05
    print()
    print(f"global     stemlab {quick:6.2f} s  SI-SDR + SDR, {N_STEMS} stems x {SECONDS:.0f} s  (target < 1 s)  "
          f"{'PASS' if quick < 1 else 'MISS'}")
    print(f"global     stemlab {whole:6.2f} s  SDR/ISR/SIR/SAR, {N_STEMS - len(SILENT)} non-silent stems "
          f"(one {2 * 512 * (N_STEMS - len(SILENT))}-unknown solve, as museval)  (target < 1 s)  "
          f"{'PASS' if whole < 1 else 'MISS'}")
    print(f"framewise  stemlab {ours_time:6.2f} s  museval {museval_time:6.1f} s  ratio {ratio:5.1f}x "
          f"(target >= 10x)  max|diff| {max_frame_diff:.2g} dB per frame, {max_median_diff:.2g} dB medians "
          f"(target < 0.05)  {'PASS' if framewise_ok else 'MISS'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
