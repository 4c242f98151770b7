"""Encode float arrays to MP3 (libsndfile's LAME) or Ogg Opus (libopus), both bundled with
soundfile, atomically.

>>> import numpy as np, tempfile, os
>>> path = write_mp3(os.path.join(tempfile.mkdtemp(), "a.mp3"), np.zeros((2, 44100), np.float32), 44100)
>>> path.stat().st_size > 0
True
>>> opus_bytes(np.zeros((2, 44100), np.float32), 44100, kbps=48)[:4]
b'OggS'
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf

from .files import atomic_write_bytes

__all__ = ["mp3_bytes", "write_mp3", "opus_bytes", "encode_arrays", "encode_files", "OPUS_RATE"]

OPUS_RATE = 48000  # libopus codes 8, 12, 16, 24 or 48 kHz; music goes at 48


def mp3_bytes(audio: np.ndarray, sr: int = 44100, *, quality: float = 0.3) -> bytes:
    """MP3 bytes of a ``(channels, samples)`` array (VBR; ``quality`` 0 best .. 1 smallest).

    The encoder writes a Xing/Info frame, so the file decodes back to exactly ``samples`` frames.
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[None]
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(audio.T, -1.0, 1.0), int(sr), format="MP3", subtype="MPEG_LAYER_III",
             compression_level=quality)
    return buffer.getvalue()


def opus_bytes(audio: np.ndarray, sr: int = 44100, *, kbps: float = 64) -> bytes:
    """Ogg Opus bytes of a ``(channels, samples)`` array at about ``kbps`` kbit/s (VBR), resampled
    to 48 kHz. Opus keeps music clean at a third of MP3's rate; browsers decode it with Web Audio.

    libsndfile maps its compression level linearly onto libopus' bitrate, from 256 kbit/s per
    channel at level 0 down to 6 kbit/s per channel at level 1.
    """
    import soxr

    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[None]
    frames = audio.T if int(sr) == OPUS_RATE else soxr.resample(audio.T, int(sr), OPUS_RATE)
    per_channel = kbps * 1000 / audio.shape[0]
    level = float(np.clip((256_000 - per_channel) / 250_000, 0.0, 1.0))
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(frames, -1.0, 1.0), OPUS_RATE, format="OGG", subtype="OPUS", compression_level=level)
    return buffer.getvalue()


def write_mp3(path: str | os.PathLike, audio: np.ndarray, sr: int, *, quality: float = 0.3) -> Path:
    """Encode ``audio`` to an MP3 file at ``path``; the file appears only once complete."""
    return atomic_write_bytes(path, mp3_bytes(audio, sr, quality=quality), durable=False)  # derived data


def _encode_array(job: tuple[np.ndarray, int, float]) -> bytes:
    audio, sr, quality = job
    return mp3_bytes(audio, sr, quality=quality)


def _pool(count: int, workers: int | None):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")  # no fork of a process that may hold threads
    return ProcessPoolExecutor(max_workers=min(count, workers or os.cpu_count() or 2), mp_context=context)


def encode_arrays(items, *, quality: float = 0.3, workers: int | None = None) -> list[bytes]:
    """MP3 bytes of several ``(audio, sr)`` pairs, encoded in parallel processes."""
    jobs = [(np.asarray(audio, dtype=np.float32), int(sr), quality) for audio, sr in items]
    if len(jobs) <= 1 or (workers or os.cpu_count() or 1) <= 1:
        return [_encode_array(job) for job in jobs]
    with _pool(len(jobs), workers) as pool:
        return list(pool.map(_encode_array, jobs))


def _encode_file(job: tuple[str, str, str, float]) -> str:
    from .audio import decode

    source, target, codec, setting = job
    audio, sr = decode(source)
    data = mp3_bytes(audio, sr, quality=setting) if codec == "mp3" else opus_bytes(audio, sr, kbps=setting)
    atomic_write_bytes(target, data, durable=False)  # derived data
    return target


def encode_files(jobs, *, codec: str = "mp3", quality: float = 0.3, kbps: float = 64,
                 workers: int | None = None, on_done: Callable[[str], None] | None = None) -> None:
    """Encode ``(source path, target path)`` pairs to ``codec`` (``"mp3"`` at ``quality``, or
    ``"opus"`` at ``kbps``) in parallel processes.

    The encoders hold the GIL, so threads do not help; each worker process decodes its source and
    writes its target atomically. ``on_done(target)`` is called as each file is finished.
    """
    if codec not in ("mp3", "opus"):
        raise ValueError(f"codec must be 'mp3' or 'opus', got {codec!r}")
    jobs = [(str(src), str(dst), codec, quality if codec == "mp3" else kbps) for src, dst in jobs]
    done = on_done or (lambda target: None)
    if len(jobs) <= 1 or (workers or os.cpu_count() or 1) <= 1:
        for job in jobs:
            done(_encode_file(job))
        return
    with _pool(len(jobs), workers) as pool:
        for target in pool.map(_encode_file, jobs):
            done(target)
