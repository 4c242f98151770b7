"""The cache: one folder per stem set, atomic writes, a lock per set, and housekeeping.

Layout under the cache root (``STEMLAB_CACHE_DIR``, default the platform's user cache dir)::

    sets/<key>/job.json        the submitted job, written before polling starts
    sets/<key>/manifest.json   written last: the set is complete iff it exists
    sets/<key>/source.mp3      the source track, byte-identical to what was served
    sets/<key>/stems/<name>.mp3
    sets/<key>/derived/        decoded arrays and other data that can always be rebuilt
    folders/<digest>/          derived data of stem folders outside the cache (MUSDB18, Demucs...)
    sandbox-library/           the demo song as the sandbox serves it (rebuilt on demand)
    reports/                   reports written by ``stemlab demo``
    locks/<key>.lock

Housekeeping, also as ``stemlab cache ls|du|clean|verify``: :meth:`Cache.ls`, :meth:`Cache.du`,
:meth:`Cache.clean` and :meth:`Cache.verify`.

>>> import tempfile
>>> cache = Cache(tempfile.mkdtemp())
>>> cache.set_dir("cqtai-12-abc").name
'cqtai-12-abc'
>>> cache.read_manifest("cqtai-12-abc") is None, cache.ls()
(True, [])
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator

from filelock import FileLock, Timeout

from .config import Settings
from .errors import CacheError, UsageError
from .files import atomic_write_json, sha256_of

__all__ = ["Cache", "SetEntry", "Usage", "Damage", "safe_component", "id_component", "RUNNING_STATES"]

MANIFEST = "manifest.json"
JOB = "job.json"
DERIVED_ROOTS = ("folders", "sandbox-library")  # rebuildable data outside the sets

#: job states whose record must not be dropped: the job may be running, or may exist and be paid
RUNNING_STATES = ("submitting", "submitted", "uncertain")


@dataclass(frozen=True)
class SetEntry:
    """One set in the cache, as ``stemlab cache ls`` lists it."""

    key: str
    provider: str | None
    job_id: str | None
    state: str            # "complete", or the job record's state: submitting, submitted, uncertain, failed
    stems: int
    set_dir: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Usage:
    """Disk use of one set (or of rebuildable data outside the sets), in bytes."""

    key: str
    audio: int      # the files as served (or, for local sets, as stored): what a re-fetch would cost
    derived: int    # rebuildable: decoded arrays, envelopes, spectrograms, encoded players
    other: int      # records: manifest, job record

    @property
    def total(self) -> int:
        return self.audio + self.derived + self.other

    def to_dict(self) -> dict:
        return {**asdict(self), "total": self.total}


@dataclass(frozen=True)
class Damage:
    """A file that does not match its manifest."""

    key: str
    path: str
    problem: str

    def to_dict(self) -> dict:
        return asdict(self)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0



def id_component(text: str) -> str:
    """An id as a cache-key part, injective: the id itself when it is already safe (so existing
    cache folders keep their names), else its readable part plus a hash of the exact id, so that
    ``clip+one`` and ``clip:one`` never share a folder.

    >>> id_component("05d72140-38f5"), id_component("clip+one"), id_component("clip:one")
    ('05d72140-38f5', 'clip_one-1fc79fe52cd5', 'clip_one-06e4e5cbf2b3')
    """
    safe = safe_component(text)
    if safe == str(text):
        return safe
    return f"{safe[:100]}-{hashlib.sha256(str(text).encode('utf-8')).hexdigest()[:12]}"


def safe_component(text: str) -> str:
    """A path component made only of ``[A-Za-z0-9._-]`` (other runs become ``_``), never ``.``/``..``.

    >>> safe_component("05d72140-38f5 ../x")
    '05d72140-38f5_.._x'
    """
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("_")[:120]
    if cleaned in ("", ".", ".."):
        raise UsageError(f"{text!r} cannot be used as an id")
    return cleaned


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise CacheError(f"{path} is unreadable ({exc}); delete that folder to fetch the set again") from None


class Cache:
    """A cache root folder. Cheap to create; creates folders only when writing.

    ``Cache(path)`` is that folder; :meth:`Cache.open` is the one from the settings.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser()

    @classmethod
    def open(cls, *, cache_dir: str | os.PathLike | None = None, settings: Settings | None = None) -> "Cache":
        """The cache an entry point uses: ``cache_dir``, else ``settings``, else ``STEMLAB_CACHE_DIR``
        (or ``.env``), else the platform's user cache folder."""
        return cls(Settings.of(settings, cache_dir=cache_dir).cache_dir)

    def __repr__(self) -> str:
        return f"Cache({str(self.root)!r})"

    def set_dir(self, key: str) -> Path:
        return self.root / "sets" / safe_component(key)

    def derived_dir_for(self, paths) -> Path:
        """Where the derived data of files outside the cache goes (a folder of stems, explicit
        files): ``folders/<digest of their resolved paths>``. Never beside the files themselves."""
        digest = hashlib.sha256("|".join(str(Path(p).resolve()) for p in paths).encode()).hexdigest()[:16]
        return self.root / "folders" / digest

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

    def state(self, key: str) -> str:
        """``"complete"`` when the manifest exists, else the job record's state (``"incomplete"``
        when there is neither)."""
        if (self.set_dir(key) / MANIFEST).exists():
            return "complete"
        record = self.read_job(key) or {}
        return str(record.get("state") or "incomplete")

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

    # -- housekeeping ----------------------------------------------------------------------------
    def resolve_keys(self, refs: Iterable[str]) -> list[str]:
        """The keys of the sets ``refs`` name (a key, a job id, a clip id or parent job id), complete
        or not. A name that matches nothing is a :class:`UsageError`."""
        keys = []
        for ref in refs:
            found = [key for key in self.keys() if ref == key or ref in self._ids(key)]
            if not found:
                raise UsageError(f"no set {ref!r} in {self.root} (see `stemlab cache ls`)")
            keys += [key for key in found if key not in keys]
        return keys

    def _ids(self, key: str) -> set[str]:
        record = self.read_manifest(key) or self.read_job(key) or {}
        request = record.get("request") or {}
        return {str(record.get("job_id")), *(str(v) for v in request.values() if isinstance(v, str))}

    def ls(self) -> list[SetEntry]:
        """Every set in the cache, complete or not, sorted by key."""
        entries = []
        for key in self.keys():
            manifest = self.read_manifest(key)
            record = manifest or self.read_job(key) or {}
            entries.append(SetEntry(key=key, provider=record.get("provider"), job_id=record.get("job_id"),
                                    state=self.state(key), stems=len((manifest or {}).get("stems", [])),
                                    set_dir=str(self.set_dir(key))))
        return entries

    def du(self) -> list[Usage]:
        """Disk use per set (audio as served, derived data, records), then rebuildable data outside
        the sets (``folders``, ``sandbox-library``) and ``reports``."""
        rows = []
        for key in self.keys():
            folder = self.set_dir(key)
            derived = _size(folder / "derived")
            records = sum(_size(folder / name) for name in (MANIFEST, JOB))
            rows.append(Usage(key, audio=_size(folder) - derived - records, derived=derived, other=records))
        for name in DERIVED_ROOTS:
            if (self.root / name).exists():
                rows.append(Usage(f"({name})", audio=0, derived=_size(self.root / name), other=0))
        if (self.root / "reports").exists():
            rows.append(Usage("(reports)", audio=0, derived=0, other=_size(self.root / "reports")))
        return rows

    def clean(self, refs: Iterable[str] = (), *, derived: bool = False, force: bool = False) -> list[Path]:
        """Free space. Returns the folders removed.

        ``derived=True`` drops rebuildable data only: the ``derived/`` folder of the sets ``refs``
        name, or, with no ``refs``, of every set plus ``folders`` and ``sandbox-library``.
        Otherwise the sets ``refs`` name are removed whole; a set whose job may still be running
        or may have been charged (:data:`RUNNING_STATES`) is refused unless ``force``, because
        forgetting its job id can mean paying for it again.
        """
        refs = list(refs)
        keys = self.resolve_keys(refs) if refs else list(self.keys())
        if not derived and not refs:
            raise UsageError("name the sets to remove (see `stemlab cache ls`), or pass --derived to drop "
                             "rebuildable data only")
        for key in [] if derived or force else keys:  # refuse before removing anything
            if self.state(key) in RUNNING_STATES:
                self._refuse(key)
        removed = []
        for key in keys:
            target = self.set_dir(key) / "derived" if derived else self.set_dir(key)
            try:
                with self.lock(key, timeout=0):
                    state = self.state(key)
                    if not derived and state in RUNNING_STATES and not force:
                        self._refuse(key)
                    if target.exists():
                        shutil.rmtree(target, ignore_errors=True)
                        removed.append(target)
            except Timeout:
                raise UsageError(f"refusing to touch {key}: a fetch of it is running now; try again when it is done"
                                 ) from None
        if derived and not refs:
            for name in DERIVED_ROOTS:
                if (self.root / name).exists():
                    shutil.rmtree(self.root / name, ignore_errors=True)
                    removed.append(self.root / name)
        return removed

    def _refuse(self, key: str) -> None:
        raise UsageError(f"refusing to remove {key}: its job is {self.state(key)}, and forgetting its id can mean "
                         f"paying for it again; fetch it to finish it, or pass --force")

    def verify(self, refs: Iterable[str] = ()) -> list[Damage]:
        """Check every file of the complete sets ``refs`` name (default: all) against the size and
        sha256 in its manifest. Returns what does not match (nothing when all is well)."""
        refs = list(refs)
        damage = []
        for key in (self.resolve_keys(refs) if refs else list(self.keys())):
            manifest = self.read_manifest(key)
            if manifest is None:
                if refs:
                    damage.append(Damage(key, "", f"not complete ({self.state(key)}): nothing to verify"))
                continue
            folder = self.set_dir(key)
            for entry in [manifest.get("source") or {}, *manifest.get("stems", [])]:
                if not entry.get("path"):
                    continue
                path = folder / entry["path"]
                if not path.is_file():
                    damage.append(Damage(key, entry["path"], "missing"))
                elif entry.get("size") is not None and path.stat().st_size != entry["size"]:
                    damage.append(Damage(key, entry["path"], f"{path.stat().st_size:,} bytes, the manifest says "
                                                             f"{entry['size']:,}"))
                elif not entry.get("sha256"):
                    damage.append(Damage(key, entry["path"], "no sha256 in the manifest: cannot verify"))
                elif sha256_of(path) != entry["sha256"]:
                    damage.append(Damage(key, entry["path"], "sha256 differs from the manifest"))
        return damage
