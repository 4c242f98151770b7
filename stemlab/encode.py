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

from .cache import atomic_write_bytes

__all__ = ["mp3_bytes", "write_mp3", "encode_files"]


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
    return atomic_write_bytes(path, mp3_bytes(audio, sr, quality=quality))


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
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    jobs = [(str(src), str(dst), quality) for src, dst in jobs]
    if len(jobs) <= 1 or (workers or os.cpu_count() or 1) <= 1:
        for job in jobs:
            _encode_file(job)
        return
    context = multiprocessing.get_context("spawn")  # no fork of a process that may hold threads
    with ProcessPoolExecutor(max_workers=min(len(jobs), workers or os.cpu_count() or 2), mp_context=context) as pool:
        list(pool.map(_encode_file, jobs))
