"""The built-in demo song, "Paper Lanterns": 41 s, true stems in the 12-stem taxonomy, no key needed.

Rendered from MIDI with real instrument samples (FluidR3_GM) by ``tools/render_demo_song.py``;
nine stems are audible and three (synth, fx, woodwinds) are silent, as real 12-stem splits often
are. The source is defined as the exact sum of the true stems. The score it was rendered from
ships too (``data/song.mid``): :func:`song_notes` gives its true notes, to score transcriptions.

>>> s = demo_song()                                                   # doctest: +SKIP
>>> s.provider, len(s), round(s.duration, 1)                          # doctest: +SKIP
('demo', 12, 41.0)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf

from ..cache import Cache
from ..files import atomic_write_json, sha256_of
from ..config import Settings
from ..stemset import StemSet
from ..taxonomy import TWELVE_STEMS

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["demo_song", "song_info", "song_notes", "song_midi_path", "DEMO_CLIP_ID", "DEMO_KEY"]

DEMO_CLIP_ID = "paper-lanterns"
DEMO_KEY = "demo-paper-lanterns"


def _data() -> Path:
    return Path(str(resources.files("stemlab.demo") / "data"))


@lru_cache(maxsize=1)
def song_info() -> dict:
    """The song's metadata (``data/song.json``): title, tempo, chords, stems with gain and pan."""
    return json.loads((_data() / "song.json").read_text(encoding="utf-8"))


def song_midi_path() -> Path:
    """The MIDI file the demo song was rendered from: one track per audible stem, named after it."""
    return _data() / "song.mid"


def song_notes() -> "pd.DataFrame":
    """The demo song's true notes (a notes table with a ``stem`` column), read from its MIDI file.

    >>> int(song_notes().groupby("stem").size()["vocals"])
    58
    """
    from ..transcription.midi import notes_from_midi

    return notes_from_midi(song_midi_path())


def _version() -> str:
    """Changes whenever the packaged audio does, so a stale materialised copy is rebuilt."""
    digest = hashlib.sha256((_data() / "song.json").read_bytes())
    for path in sorted(_data().glob("*.mp3")):
        digest.update(path.name.encode() + str(path.stat().st_size).encode())
    return digest.hexdigest()[:12]


def _materialise(folder: Path) -> None:
    """Write the demo set: the audible MP3s as shipped, silent stems as FLAC zeros, and the source
    as the exact sum of the decoded stems (24-bit FLAC), then the manifest (last)."""
    from ..audio import decode

    info = song_info()
    stems_dir = folder / "stems"
    stems_dir.mkdir(parents=True, exist_ok=True)
    total = np.zeros((info["channels"], info["samples"]), dtype=np.float64)
    entries = []
    for name in TWELVE_STEMS:
        shipped = _data() / f"{name}.mp3"
        if shipped.exists():
            shutil.copyfile(shipped, stems_dir / shipped.name)
            audio, _ = decode(shipped)
            total[:, : audio.shape[1]] += audio[:, : total.shape[1]]
            path = f"stems/{shipped.name}"
        else:
            path = f"stems/{name}.flac"
            sf.write(folder / path, np.zeros((info["samples"], info["channels"]), np.float32), info["sr"],
                     subtype="PCM_16")
        entries.append({"name": name, "label": name, "path": path, "silent": not shipped.exists(), **_facts(folder / path)})
    sf.write(folder / "source.flac", total.T.astype(np.float32), info["sr"], subtype="PCM_24")
    atomic_write_json(folder / "manifest.json", {
        "format": 1, "key": DEMO_KEY, "provider": "demo", "job_id": None, "version": _version(),
        "request": {"song": DEMO_CLIP_ID}, "title": info["title"], "truth": True,
        "source": {"path": "source.flac", "definition": "exact sum of the true stems", **_facts(folder / "source.flac")},
        "stems": entries,
    })


def _facts(path: Path) -> dict:
    """What the manifest records of a file, so ``stemlab cache verify`` can check it."""
    return {"size": path.stat().st_size, "sha256": sha256_of(path)}


def demo_song(*, sr: int | None = None, mono: bool = False, cache_dir: str | os.PathLike | None = None,
              settings: Settings | None = None) -> StemSet:
    """The demo song as a :class:`StemSet` of its 12 true stems, with ``.source`` = their sum.

    The first call writes the set into the cache (a second or two); later calls only open it.

    Parameters
    ----------
    sr, mono :
        How the set decodes (see :class:`StemSet`).
    cache_dir, settings : optional
        Where the set is written. Default: ``STEMLAB_CACHE_DIR`` or the user cache folder.
    """
    cache = Cache(Settings.of(settings, cache_dir=cache_dir).cache_dir)
    folder = cache.set_dir(DEMO_KEY)
    with cache.lock(DEMO_KEY):
        manifest = cache.read_manifest(DEMO_KEY)
        if manifest is None or manifest.get("version") != _version():
            cache.clear(DEMO_KEY)
            _materialise(folder)
    return StemSet.open(folder, sr=sr, mono=mono)
