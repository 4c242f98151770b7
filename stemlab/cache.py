"""The cache: one folder per stem set, atomic writes, a lock per set.

Layout under the cache root (``STEMLAB_CACHE_DIR``, default the platform's user cache dir)::

    sets/<key>/job.json        the submitted job, written before polling starts
    sets/<key>/manifest.json   written last: the set is complete iff it exists
    sets/<key>/source.mp3      the source track, byte-identical to what was served
    sets/<key>/stems/<name>.mp3
    sets/<key>/derived/        decoded arrays and other data that can always be rebuilt
    locks/<key>.lock

>>> import tempfile
>>> cache = Cache(tempfile.mkdtemp())
>>> cache.set_dir("cqtai-12-abc").name
'cqtai-12-abc'
>>> cache.read_manifest("cqtai-12-abc") is None
True
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from filelock import FileLock

from .errors import CacheError, UsageError

__all__ = ["Cache", "atomic_write_bytes", "atomic_write_json", "save_npy", "save_npz", "safe_component"]

MANIFEST = "manifest.json"
JOB = "job.json"


def safe_component(text: str) -> str:
    """A path component made only of ``[A-Za-z0-9._-]`` (other runs become ``_``), never ``.``/``..``.

    >>> safe_component("05d72140-38f5 ../x")
    '05d72140-38f5_.._x'
    """
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("_")[:120]
    if cleaned in ("", ".", ".."):
        raise UsageError(f"{text!r} cannot be used as an id")
    return cleaned


def _atomic(path: str | os.PathLike, write, *, durable: bool) -> Path:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it into place.

    ``durable`` also fsyncs before the rename: wanted for records (a job id must survive a
    crash), not for derived data that can always be rebuilt.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, durable: bool = True) -> Path:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then rename it into place."""
    return _atomic(path, lambda f: f.write(data), durable=durable)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """:func:`atomic_write_bytes` of ``obj`` as indented UTF-8 JSON."""
    return atomic_write_bytes(path, (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def save_npy(path: str | os.PathLike, array) -> Path:
    """Save ``array`` as ``.npy`` atomically (derived data: no fsync)."""
    import numpy as np

    return _atomic(path, lambda f: np.save(f, array), durable=False)


def save_npz(path: str | os.PathLike, **arrays) -> Path:
    """Save several arrays as ``.npz`` atomically (derived data: no fsync)."""
    import numpy as np

    return _atomic(path, lambda f: np.savez(f, **arrays), durable=False)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise CacheError(f"{path} is unreadable ({exc}); delete that folder to fetch the set again") from None


class Cache:
    """A cache root folder. Cheap to create; creates folders only when writing."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser()

    def __repr__(self) -> str:
        return f"Cache({str(self.root)!r})"

    def set_dir(self, key: str) -> Path:
        return self.root / "sets" / safe_component(key)

    def lock(self, key: str, *, timeout: float = -1) -> FileLock:
        """An inter-process lock for one set (blocks by default; ``timeout`` in seconds)."""
        path = self.root / "locks" / f"{safe_component(key)}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(str(path), timeout=timeout)

    def read_job(self, key: str) -> dict | None:
        return _read_json(self.set_dir(key) / JOB)

    def write_job(self, key: str, record: dict) -> None:
        atomic_write_json(self.set_dir(key) / JOB, record)

    def read_manifest(self, key: str) -> dict | None:
        return _read_json(self.set_dir(key) / MANIFEST)

    def write_manifest(self, key: str, manifest: dict) -> None:
        atomic_write_json(self.set_dir(key) / MANIFEST, manifest)

    def clear(self, key: str) -> None:
        """Remove a set's folder entirely (used before ``force=True`` submits anew)."""
        shutil.rmtree(self.set_dir(key), ignore_errors=True)

    def keys(self) -> Iterator[str]:
        sets = self.root / "sets"
        if sets.is_dir():
            yield from sorted(p.name for p in sets.iterdir() if p.is_dir())

    def manifests(self) -> Iterator[dict]:
        """Every complete set's manifest, sorted by key."""
        for key in self.keys():
            manifest = self.read_manifest(key)
            if manifest is not None:
                yield manifest

    def find(self, ref: str) -> Path:
        """The folder of the set ``ref`` names: a set folder, a cache key, a provider job id, or
        the clip id / parent job id it was fetched with. Raises :class:`UsageError` if none matches.
        """
        candidate = Path(ref).expanduser()
        if candidate.is_dir():
            return candidate
        matches = []
        for key in self.keys():
            record = self.read_manifest(key) or self.read_job(key) or {}
            request = record.get("request", {})
            ids = {key, record.get("job_id"), *(str(v) for v in request.values() if isinstance(v, str))}
            if ref in ids:
                matches.append(self.set_dir(key))
        complete = [m for m in matches if (m / MANIFEST).exists()]
        if len(complete) == 1:
            return complete[0]
        if len(complete) > 1:
            names = ", ".join(m.name for m in complete)
            raise UsageError(f"{ref!r} matches several sets ({names}); pass one of those names")
        if matches:
            raise UsageError(f"the set for {ref!r} is not complete yet; fetch it again to finish it")
        raise UsageError(f"no set {ref!r} in {self.root}: pass a job id, clip id, parent job id or a set "
                         f"folder (see `stemlab ls`)")
