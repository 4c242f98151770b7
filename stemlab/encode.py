"""Encode float arrays to MP3 (libsndfile's LAME, bundled with soundfile), atomically.

>>> import numpy as np, tempfile, os
>>> path = write_mp3(os.path.join(tempfile.mkdtemp(), "a.mp3"), np.zeros((2, 44100), np.float32), 44100)
>>> path.stat().st_size > 0
True
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import soundfile as sf

from .files import atomic_write_bytes

__all__ = ["mp3_bytes", "write_mp3", "encode_arrays", "encode_files"]


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


def _encode_file(job: tuple[str, str, float]) -> str:
    from .audio import decode

    source, target, quality = job
    audio, sr = decode(source)
    write_mp3(target, audio, sr, quality=quality)
    return target


def encode_files(jobs, *, quality: float = 0.3, workers: int | None = None) -> None:
    """Encode ``(source path, target .mp3 path)`` pairs to MP3 in parallel processes.

    libsndfile's MP3 encoder holds the GIL, so threads do not help; each worker process decodes
    its source and writes its target atomically.
    """
    jobs = [(str(src), str(dst), quality) for src, dst in jobs]
    if len(jobs) <= 1 or (workers or os.cpu_count() or 1) <= 1:
        for job in jobs:
            _encode_file(job)
        return
    with _pool(len(jobs), workers) as pool:
        list(pool.map(_encode_file, jobs))
