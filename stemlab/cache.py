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

__all__ = ["Cache", "SetEntry", "Usage", "Damage", "safe_component", "id_component", "read_record",
           "REPAIR_ADVICE", "RUNNING_STATES", "PROTECTED_STATES"]

MANIFEST = "manifest.json"
JOB = "job.json"
DERIVED_ROOTS = ("folders", "sandbox-library")  # rebuildable data outside the sets

#: job states whose record must not be dropped: the job may be running, or may exist and be paid
RUNNING_STATES = ("submitting", "submitted", "uncertain")
#: what ``clean`` refuses to remove without ``force``: running jobs, and damaged sets (their job
#: record is what repairs them for free)
PROTECTED_STATES = (*RUNNING_STATES, "damaged")


@dataclass(frozen=True)
class SetEntry:
    """One set in the cache, as ``stemlab cache ls`` lists it."""

    key: str
    provider: str | None
    job_id: str | None
    state: str            # "complete", "damaged", or the job record's state: submitting, submitted, uncertain, failed
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


#: what to do about a set whose manifest or files are damaged; deleting the folder would lose
#: the job record, and the next fetch would pay again
REPAIR_ADVICE = ("fetch the set again: stemlab repairs it from its job record at no charge (keep job.json: it is "
                 "what makes the repair free)")
#: what to do about a record that will not read: never advice that ends in a second charge
_UNREADABLE_ADVICE = {
    MANIFEST: REPAIR_ADVICE,
    JOB: ("stemlab cannot tell whether a job was submitted for this set, so it will not submit one on its own; "
          "check your provider's console, then restore the file, or use force=True (--force) to pay for a new job"),
}


def read_record(path: Path) -> dict | None:
    """A JSON record (manifest, job record): the object, None if the file is absent, or a
    :class:`CacheError` saying what to do that costs nothing."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, RecursionError) as exc:
        problem = f"is unreadable ({type(exc).__name__}: {' '.join(str(exc).split())[:120]})"
    else:
        if isinstance(record, dict):
            return record
        problem = f"holds a JSON {type(record).__name__}, not an object"
    raise CacheError(f"{path} {problem}; {_UNREADABLE_ADVICE.get(path.name, 'delete it to rebuild it')}")


def _file_entries(manifest: dict) -> list[dict]:
    """The manifest's file entries (source, then stems) that name a path; malformed ones skipped."""
    stems = manifest.get("stems")
    entries = [manifest.get("source"), *(stems if isinstance(stems, list) else [])]
    return [e for e in entries if isinstance(e, dict) and isinstance(e.get("path"), str)]


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
        return read_record(self.set_dir(key) / JOB)

    def write_job(self, key: str, record: dict) -> None:
        atomic_write_json(self.set_dir(key) / JOB, record)

    def read_manifest(self, key: str) -> dict | None:
        return read_record(self.set_dir(key) / MANIFEST)

    def write_manifest(self, key: str, manifest: dict) -> None:
        atomic_write_json(self.set_dir(key) / MANIFEST, manifest)

    def clear(self, key: str) -> None:
        """Remove a set's folder entirely (used before ``force=True`` submits anew)."""
        shutil.rmtree(self.set_dir(key), ignore_errors=True)

    def state(self, key: str) -> str:
        """``"complete"`` when the manifest exists, ``"damaged"`` when it (or, with no manifest, the
        job record) does not read, else the job record's state (``"incomplete"`` when there is
        neither)."""
        try:
            if self.read_manifest(key) is not None:
                return "complete"
            record = self.read_job(key) or {}
        except CacheError:
            return "damaged"
        return str(record.get("state") or "incomplete")

    def record(self, key: str) -> dict:
        """The set's manifest, else its job record, else ``{}``: what is known of it. A record that
        does not read counts as absent here (:meth:`state` says ``"damaged"``), so one damaged set
        never hides the others."""
        for read in (self.read_manifest, self.read_job):
            try:
                found = read(key)
            except CacheError:
                continue
            if found is not None:
                return found
        return {}

    def damage(self, key: str, *, hashes: bool = False) -> list[Damage]:
        """What keeps the complete set ``key`` from being served as it was fetched: a manifest that
        does not read, or files missing or of the wrong size (and, with ``hashes``, content that
        differs from the manifest's sha256). Empty for an intact set, and for one with no manifest.
        """
        try:
            manifest = self.read_manifest(key)
        except CacheError:
            return [Damage(key, MANIFEST, "unreadable")]
        if manifest is None:
            return []
        folder, damage = self.set_dir(key), []
        for entry in _file_entries(manifest):
            path = folder / entry["path"]
            size = entry.get("size")
            if not path.is_file():
                damage.append(Damage(key, entry["path"], "missing"))
            elif isinstance(size, int) and path.stat().st_size != size:
                damage.append(Damage(key, entry["path"], f"{path.stat().st_size:,} bytes, the manifest says {size:,}"))
            elif hashes and not entry.get("sha256"):
                damage.append(Damage(key, entry["path"], "no sha256 in the manifest: cannot verify"))
            elif hashes and sha256_of(path) != entry["sha256"]:
                damage.append(Damage(key, entry["path"], "sha256 differs from the manifest"))
        return damage

    def intact(self, key: str) -> bool:
        """The set is complete, and every file is there at its size (cheap: nothing is hashed)."""
        return self.state(key) == "complete" and not self.damage(key)

    def prepare_repair(self, key: str) -> dict[str, dict]:
        """Make a damaged set fetchable again at no charge; returns the manifest entries of the
        files that still verify (by path), which need no new download.

        The job record stays (or is rebuilt from the manifest's job id), so the next run polls the
        finished job and downloads only what is missing, never submitting. With neither record
        readable, stemlab cannot tell which job to download again: :class:`CacheError`.
        """
        damage = self.damage(key)
        try:
            manifest = self.read_manifest(key)
        except CacheError:
            manifest = None
        record = self._job_or_none(key)
        if not (record and record.get("job_id")):
            if not (manifest and manifest.get("job_id")):
                what = f" ({damage[0].path}: {damage[0].problem})" if damage else ""
                raise CacheError(
                    f"{self.set_dir(key)} is damaged{what} and has no readable job "
                    f"record, so stemlab cannot tell which job to download again, and will not submit a new one on "
                    f"its own; restore job.json, or use force=True (--force) to pay for a new job")
            record = {name: manifest.get(name) for name in ("provider", "key", "request", "base_url", "submitted_at",
                                                             "job_id")}
            self.write_job(key, {**record, "state": "done"})
        bad = {d.path for d in self.damage(key, hashes=True)}
        return {e["path"]: e for e in _file_entries(manifest or {}) if e.get("sha256") and e["path"] not in bad}

    def _job_or_none(self, key: str) -> dict | None:
        try:
            return self.read_job(key)
        except CacheError:
            return None

    def keys(self) -> Iterator[str]:
        sets = self.root / "sets"
        if sets.is_dir():
            yield from sorted(p.name for p in sets.iterdir() if p.is_dir())

    def manifests(self) -> Iterator[dict]:
        """Every complete set's manifest, sorted by key (damaged ones are skipped)."""
        for key in self.keys():
            try:
                manifest = self.read_manifest(key)
            except CacheError:
                continue
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
            if ref == key or ref in self._ids(key):
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
        record = self.record(key)
        request = record.get("request") if isinstance(record.get("request"), dict) else {}
        return {str(record.get("job_id")), *(str(v) for v in request.values() if isinstance(v, str))}

    def ls(self) -> list[SetEntry]:
        """Every set in the cache, complete or not, sorted by key."""
        entries = []
        for key in self.keys():
            record, state = self.record(key), self.state(key)
            stems = record.get("stems") if state == "complete" else None
            entries.append(SetEntry(key=key, provider=record.get("provider"), job_id=record.get("job_id"),
                                    state=state, stems=len(stems) if isinstance(stems, list) else 0,
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
        or may have been charged, or that is damaged (:data:`PROTECTED_STATES`), is refused unless
        ``force``, because forgetting its job id can mean paying for it again.
        """
        refs = list(refs)
        keys = self.resolve_keys(refs) if refs else list(self.keys())
        if not derived and not refs:
            raise UsageError("name the sets to remove (see `stemlab cache ls`), or pass --derived to drop "
                             "rebuildable data only")
        for key in [] if derived or force else keys:  # refuse before removing anything
            if self.state(key) in PROTECTED_STATES:
                self._refuse(key)
        removed = []
        for key in keys:
            target = self.set_dir(key) / "derived" if derived else self.set_dir(key)
            try:
                with self.lock(key, timeout=0):
                    state = self.state(key)
                    if not derived and state in PROTECTED_STATES and not force:
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
        state = self.state(key)
        what = "it is damaged" if state == "damaged" else f"its job is {state}"
        raise UsageError(f"refusing to remove {key}: {what}, and forgetting its job id can mean paying for it again; "
                         f"fetch it to {'repair' if state == 'damaged' else 'finish'} it, or pass --force")

    def verify(self, refs: Iterable[str] = ()) -> list[Damage]:
        """Check every file of the complete sets ``refs`` name (default: all) against the size and
        sha256 in its manifest. Returns what does not match (nothing when all is well)."""
        refs = list(refs)
        damage = []
        for key in (self.resolve_keys(refs) if refs else list(self.keys())):
            if refs and self.state(key) not in ("complete", "damaged"):
                damage.append(Damage(key, "", f"not complete ({self.state(key)}): nothing to verify"))
            damage += self.damage(key, hashes=True)
        return damage
