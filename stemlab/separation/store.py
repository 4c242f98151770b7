"""Write a local separation result into the cache as a stem set (FLAC or WAV files, a manifest)."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Mapping

import numpy as np
import soundfile as sf

from ..cache import Cache
from ..files import atomic_write_bytes, sha256_of

__all__ = ["store"]


def _encoded(audio: np.ndarray, sr: int) -> tuple[str, bytes]:
    """``(suffix, bytes)``: 24-bit FLAC (lossless to -144 dBFS) when the audio fits in [-1, 1],
    else 32-bit float WAV, so that nothing is clipped."""
    buffer = io.BytesIO()
    if np.abs(audio).max(initial=0.0) < 1.0:
        sf.write(buffer, audio.T, sr, format="FLAC", subtype="PCM_24")
        return ".flac", buffer.getvalue()
    sf.write(buffer, audio.T, sr, format="WAV", subtype="FLOAT")
    return ".wav", buffer.getvalue()


def store(cache: Cache, key: str, *, mix: np.ndarray, sr: int, stems: Mapping[str, np.ndarray],
          request: dict) -> dict:
    """Write the source, ``stems/<name>.flac`` (or ``.wav``) and, last, ``manifest.json``."""
    folder = cache.set_dir(key)
    tracks = {"source": mix, **{f"stems/{name}": audio for name, audio in stems.items()}}

    def write(item) -> tuple[str, str]:
        name, audio = item
        suffix, data = _encoded(audio, sr)
        atomic_write_bytes(folder / f"{name}{suffix}", data)
        return name, f"{name}{suffix}"

    with ThreadPoolExecutor() as pool:  # libsndfile's encoder releases the GIL
        paths = dict(pool.map(write, tracks.items()))

    def entry(track: str, **extra) -> dict:
        path = paths[track]
        return {**extra, "path": path, "size": (folder / path).stat().st_size, "sha256": sha256_of(folder / path),
                "duration": round(tracks[track].shape[1] / sr, 6)}

    manifest = {
        "format": 1, "key": key, "provider": "local", "job_id": None, "request": request,
        "method": request["method"], "params": request["params"],
        "completed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source": entry("source"),
        "stems": [entry(f"stems/{name}", name=name, label=name) for name in stems],
    }
    cache.write_manifest(key, manifest)
    return manifest
