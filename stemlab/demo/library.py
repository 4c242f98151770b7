"""The sandbox library built from the demo song, so the real provider clients can fetch it offline.

The 12-stem split is the true stems; the 2-stem split is their grouping (vocals + backing
vocals, and the rest); the source is their sum, encoded to MP3 like a Suno clip.

>>> root = demo_library()                                             # doctest: +SKIP
>>> sorted(p.name for p in (root / "paper-lanterns").iterdir())       # doctest: +SKIP
['song.json', 'source.mp3', 'stems', 'two']
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..cache import Cache
from ..config import Settings
from . import DEMO_CLIP_ID, _version, demo_song

__all__ = ["demo_library"]


def demo_library(*, cache_dir: str | os.PathLike | None = None, settings: Settings | None = None) -> Path:
    """A sandbox library folder holding the demo song (built once into the cache, then reused)."""
    from ..sandbox.library import derive_two, write_song

    settings = Settings.of(settings, cache_dir=cache_dir)
    cache = Cache(settings.cache_dir)
    root = cache.root / "sandbox-library" / _version()
    with cache.lock("sandbox-library"):
        if (root / DEMO_CLIP_ID / "song.json").exists():
            return root
        song = demo_song(settings=settings)
        building = root.with_name(f".{root.name}.{os.getpid()}.tmp")
        shutil.rmtree(building, ignore_errors=True)
        stems = {stem.name: (stem.path if stem.path.suffix == ".mp3" else stem.audio) for stem in song}
        write_song(building, DEMO_CLIP_ID, stems=stems, source=song.source.audio, sr=song.sr,
                   two=derive_two({stem.name: stem.audio for stem in song}), title="Paper Lanterns (stemlab demo)")
        shutil.rmtree(root, ignore_errors=True)
        os.replace(building, root)  # the library appears complete, or not at all
    return root
