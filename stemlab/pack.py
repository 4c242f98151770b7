"""Class packs: a teacher pays for stems once, and a class of 30 works offline.

:func:`export` writes sets from the teacher's cache (and, if given, notebooks) into one zip.
:func:`install` (``stemlab pack import``) puts them into a student's cache. Afterwards the same
``stemlab.fetch("cqtai", clip_id=...)`` call returns the set from the cache, with no key and no
network. :func:`ls` says what a pack holds.

>>> export(["cqtai-12-05d72140", "a1b2c3d4"], "class.zip", notebooks=["lesson.ipynb"])  # doctest: +SKIP
PosixPath('class.zip')
>>> install("class.zip", notebooks_to="lesson")                                       # doctest: +SKIP
['cqtai-12-05d72140', 'apiframe-a1b2c3d4-i1']

A pack is a zip::

    stemlab-pack.json            the pack manifest: format version, stemlab version, created_at, and
                                 per set its key, provider, request, job id and each file's path,
                                 size and sha256; per notebook its name, size and sha256
    sets/<key>/manifest.json     the set's own manifest, byte-identical
    sets/<key>/source.mp3        every file that manifest lists, byte-identical as served
    sets/<key>/stems/<name>.mp3
    notebooks/<name>             optional

A pack never holds an API key, a job record (``job.json``: the importer writes a finished one
from the manifest, as a repair would), or derived data (``derived/``). Audio is stored as it is
(``ZIP_STORED``: an MP3 does not compress); JSON and notebooks are deflated. Only a set that is
complete and intact is exported, and each file is checked against its manifest's sha256 as it
is written.

**An import trusts nothing in the zip.** It refuses the pack (:class:`~stemlab.errors.PackError`,
one line) before installing anything when it is not a zip, or is truncated; when its pack manifest
is missing, unreadable or of an unknown format version; when an entry name is absolute, has a
drive letter, a backslash, a control character, ``.``, ``..`` or an empty component
(:func:`entry_problem`); when an entry is a symbolic link, a folder or a device; when an entry
is there twice (also when two names differ only in case); when an entry is not listed in the
manifest, or a listed one is missing; when a stated size passes a cap below; when an entry is
encrypted or uses another compression than stored or deflated; when entries overlap in the file;
and when a file differs from the pack manifest (or from its set's own manifest). A file is never
read past its stated size, so a header that lies about a size is caught too.

Files are unpacked into a staging folder inside the cache root (``staging/pack-*``). Only when
every file of every set has verified is each set folder moved into place, under that set's lock.
The manifest is the last file written into the staged folder, which is moved in one rename. On any
failure the staging folder is removed, and a set already moved is moved back out. A set that is already intact
in the cache with the same files is left alone ("already there"), so importing twice does no harm.
A set that is there but damaged or incomplete is repaired from the pack; one that is complete but
holds other files (a student's own fetch) is kept, and the import refused, unless ``force``
replaces it ("replaced").

The caps (module constants; a test may lower them):

* :data:`MAX_FILE_BYTES` (2 GiB) per file, and :data:`MAX_PACK_BYTES` (20 GiB) for a whole pack, unpacked;
* :data:`MAX_RATIO` (200): an entry over :data:`RATIO_FLOOR` (1 MiB) that unpacks to more than
  200 times its packed size is a zip bomb (an MP3 is stored, ratio 1; JSON deflates about 5 to 10 times);
* :data:`MAX_RECORD_BYTES` (16 MiB) for ``stemlab-pack.json`` and each set's ``manifest.json``,
  which are read into memory; :data:`MAX_ENTRIES` (10,000) entries.

>>> entry_problem("sets/cqtai-12-05d72140/stems/vocals.mp3") is None
True
>>> [entry_problem(name) for name in ("../evil", "/abs", "C:/x", "sets\\\\x", "sets//x")]
["has a '..' component", 'is an absolute path', 'starts with a drive letter', 'holds a backslash', 'has an empty component']
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import stat
import struct
import sys
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable

from filelock import Timeout

from . import __version__
from .cache import REPAIR_ADVICE, Cache, safe_component
from .config import Settings
from .errors import CacheError, PackError, StemlabError, UsageError
from .files import atomic_file, atomic_write_bytes, atomic_write_json

__all__ = ["export", "install", "ls", "entry_problem", "export_pack", "import_pack", "pack_contents",
           "add_cli", "run_cli", "PACK_MANIFEST", "FORMAT_VERSION", "MAX_FILE_BYTES", "MAX_PACK_BYTES",
           "MAX_RATIO", "RATIO_FLOOR", "MAX_RECORD_BYTES", "MAX_ENTRIES"]

PACK_MANIFEST = "stemlab-pack.json"
FORMAT = "stemlab-pack"
#: the pack format this stemlab writes and reads
FORMAT_VERSION = 1
#: the largest file a pack may hold, unpacked (a 12-stem set of a 10-minute song is about 150 MB)
MAX_FILE_BYTES = 2 * 1024 ** 3
#: the most a whole pack may unpack to
MAX_PACK_BYTES = 20 * 1024 ** 3
#: an entry over :data:`RATIO_FLOOR` that unpacks to more than this many times its packed size is a zip bomb
MAX_RATIO = 200
RATIO_FLOOR = 1024 ** 2
#: ``stemlab-pack.json`` and each set's ``manifest.json`` are read into memory: at most this
MAX_RECORD_BYTES = 16 * 1024 ** 2
#: the most entries a pack may hold
MAX_ENTRIES = 10_000
#: free space left on the cache's disk beyond what a pack unpacks to
FREE_MARGIN = 64 * 1024 ** 2
#: staging folders older than this (left by a killed import) are removed by the next import
STALE_STAGING_S = 24 * 3600

STAGING = "staging"
MANIFEST = "manifest.json"
_CHUNK = 1 << 20
_AUDIO = (".mp3", ".wav", ".flac", ".ogg", ".m4a", ".opus", ".aac")  # stored; everything else is deflated
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SET_PART = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,119}")
_NOTEBOOK = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9 ._+-]{0,118}[A-Za-z0-9_+-])?")
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
# what reading a hostile zip can raise (zipfile, zlib and struct do not wrap their errors)
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, NotImplementedError,
               RuntimeError, zlib.error, struct.error, OverflowError, KeyError, IndexError, TypeError)
_AGAIN = "nothing was installed; get the pack again"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def _shown(name: Any) -> str:
    """A name from a zip, safe in a one-line message."""
    text = repr(name)
    return text if len(text) <= 80 else text[:77] + "..."


# -- names ---------------------------------------------------------------------------------------
def entry_problem(name: Any) -> str | None:
    """What makes ``name`` unsafe as the name of a zip entry, or None.

    A safe name is relative, uses ``/`` only, and has no ``.``, ``..`` or empty component and no
    control character. (A name can be safe and still not belong in a pack: see the module.)

    >>> entry_problem("notebooks/lesson 1.ipynb") is None
    True
    >>> entry_problem("sets/x/../../evil"), entry_problem("sets/x/")
    ("has a '..' component", 'has an empty component')
    """
    if not isinstance(name, str) or not name:
        return "is empty"
    if "\\" in name:
        return "holds a backslash"
    if name.startswith("/"):
        return "is an absolute path"
    if re.match(r"[A-Za-z]:", name):
        return "starts with a drive letter"
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in name):
        return "holds a control character"
    parts = name.split("/")
    if ".." in parts:
        return "has a '..' component"
    if "." in parts:
        return "has a '.' component"
    if "" in parts:
        return "has an empty component"
    return None


def _reserved(part: str) -> bool:
    return part.split(".")[0].strip().casefold() in _RESERVED


def _set_path_problem(path: Any) -> str | None:
    """Why ``path`` cannot be a file of a set in a pack, or None. A set's files are
    ``manifest.json``, ``source.<ext>`` and ``stems/<name>.<ext>``, in stemlab's own characters;
    never ``job.json`` and never anything under ``derived/``."""
    problem = entry_problem(path)
    if problem:
        return problem
    parts = path.split("/")
    if len(parts) > 3 or not all(_SET_PART.fullmatch(p) and not _reserved(p) and not p.endswith(".")
                                 for p in parts):
        return "is not a set file's name (letters, digits, '.', '_' and '-', at most 3 levels)"
    folded = [p.casefold() for p in parts]  # a case-insensitive disk makes JOB.json job.json
    if folded == ["job.json"] or folded[0] == "derived":
        return "is a job record or derived data (a pack holds neither)"
    if not (folded == [MANIFEST] or (len(parts) == 1 and folded[0].startswith("source."))
            or (len(parts) == 2 and folded[0] == "stems")):
        return "is not where a set keeps its files (manifest.json, source.<ext>, stems/<name>.<ext>)"
    return None


def _notebook_problem(name: Any) -> str | None:
    if not isinstance(name, str) or not _NOTEBOOK.fullmatch(name) or _reserved(name):
        return ("is not a plain file name (letters, digits, spaces, '.', '_', '+' and '-', at most 120, "
                "not ending in a dot or space)")
    return None


def _key_problem(key: Any) -> str | None:
    if not isinstance(key, str) or not _SET_PART.fullmatch(key) or _reserved(key):
        return "is not a set key"
    try:
        return None if safe_component(key) == key else "is not a set key"
    except UsageError:
        return "is not a set key"


# -- what a pack holds -----------------------------------------------------------------------------
@dataclass
class _File:
    """One entry of a pack: its zip name, its path in its set (or its notebook name), its size and sha256."""

    name: str
    path: str
    size: int
    sha256: str
    info: zipfile.ZipInfo | None = None


@dataclass
class _Set:
    key: str
    provider: str | None
    request: Any
    job_id: Any
    files: list[_File]                       # without manifest.json
    manifest_bytes: bytes = b""
    manifest: dict = field(default_factory=dict)

    @property
    def entries(self) -> set[tuple[str, int, str]]:
        return {(f.path, f.size, f.sha256) for f in self.files}

    @property
    def stems(self) -> int:
        stems = self.manifest.get("stems")
        return len(stems) if isinstance(stems, list) else 0

    @property
    def bytes(self) -> int:
        return len(self.manifest_bytes) + sum(f.size for f in self.files)

    def row(self, **extra) -> dict:
        return {"key": self.key, "provider": self.provider, "stems": self.stems, "bytes": self.bytes, **extra}


def _manifest_entries(manifest: dict) -> list[dict] | None:
    """A set manifest's file entries (the source, then the stems), or None when they are malformed."""
    stems, source = manifest.get("stems"), manifest.get("source")
    if not isinstance(stems, list) or not stems or not (source is None or isinstance(source, dict)):
        return None
    entries = [source, *stems] if source is not None else list(stems)
    for entry in entries:
        if not (isinstance(entry, dict) and isinstance(entry.get("path"), str) and isinstance(entry.get("sha256"), str)
                and isinstance(entry.get("size"), int) and not isinstance(entry.get("size"), bool)):
            return None
    if not all(isinstance(stem.get("name"), str) and stem.get("name") for stem in stems):
        return None
    return entries


KEEP = "KEEP"  # in a staging folder: it holds a set that could not be put back; never removed
_STEM_NAME = re.compile(r"[a-z0-9_]{1,40}")  # what stemlab names stems (taxonomy.safe_name)


def _stems_problem(manifest: dict) -> str | None:
    """Why a set manifest's stems cannot be opened safely (their names become file names), or None."""
    from .stemset import SOURCE_NAMES

    names = [stem.get("name") for stem in manifest["stems"]]
    for name in names:
        if not _STEM_NAME.fullmatch(name) or name in SOURCE_NAMES:
            return f"names a stem {_shown(name)}, which is not a stem name stemlab gives"
    if len(set(names)) != len(names):
        return "names a stem twice"
    for entry in [manifest.get("source") or {}, *manifest["stems"]]:
        decoded = entry.get("decode")
        if decoded is not None and not (isinstance(decoded, dict) and all(
                isinstance(decoded.get(k), int) and not isinstance(decoded.get(k), bool) and decoded[k] > 0
                for k in ("sr", "channels") if k in decoded)):
            return "records a decoding that cannot be (a rate or channel count that is no positive number)"
    return None


def _key_of(provider: str, request: Any) -> str | None:
    """The cache key a provider's recorded request gives (None when it gives none)."""
    from .fetching import build_request

    if not isinstance(request, dict):
        return None
    try:
        if provider == "cqtai":
            return build_request("cqtai", clip_id=request.get("clip_id"),
                                 two=request.get("task") == "gen_stem_two").cache_key
        return build_request("apiframe", parent_job_id=request.get("parent_job_id"), index=request.get("index"),
                             track_id=request.get("track_id")).cache_key
    except (UsageError, TypeError):
        return None


def _json_object(data: bytes) -> dict | None:
    try:
        value = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _size_ok(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_FILE_BYTES


class _Reader:
    """An open pack whose structure has been checked: every entry's name, type and size, the pack
    manifest, and each set's manifest (read and verified). File contents are verified as they are
    read (:meth:`stream`)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise UsageError(f"no pack {self.path}: pass the .zip file a teacher shared"
                             if not self.path.exists() else f"{self.path} is not a file: pass a pack (.zip)")
        try:
            self._file: BinaryIO = open(self.path, "rb")
        except OSError as exc:
            raise UsageError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        try:
            with self._zip_errors("the zip's directory", prefix=f"is not a zip file, or is truncated"):
                self.zip = zipfile.ZipFile(self._file)
            self.infos = self._check_entries()
            self.header = self._read_header()
            self.sets, self.notebooks = self._check_listing()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.zip.close()
        self._file.close()

    def __enter__(self) -> "_Reader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- errors --
    def fail(self, problem: str) -> PackError:
        return PackError(f"{self.path} {problem}; {_AGAIN}")

    @contextlib.contextmanager
    def _zip_errors(self, what: str, *, prefix: str | None = None):
        try:
            yield
        except StemlabError:
            raise
        except _ZIP_ERRORS as exc:
            words = " ".join(str(exc).split())[:120]
            raise self.fail(f"{prefix or 'is damaged'}: {what} does not unpack ({type(exc).__name__}"
                            f"{': ' + words if words else ''})") from None

    # -- structure --
    def _check_entries(self) -> dict[str, zipfile.ZipInfo]:
        with self._zip_errors("the zip's directory"):
            infos = self.zip.infolist()
            start_dir = getattr(self.zip, "start_dir", None)
        if len(infos) > MAX_ENTRIES:
            raise self.fail(f"holds {len(infos):,} entries, over the cap of {MAX_ENTRIES:,} (MAX_ENTRIES)")
        by_name: dict[str, zipfile.ZipInfo] = {}
        folded: set[str] = set()
        total = 0
        for info in infos:
            name, shown = info.filename, _shown(info.filename)
            problem = entry_problem(name)
            if problem:
                raise self.fail(f"is refused: the entry {shown} {problem}")
            if name.casefold() in folded:
                twice = "is there twice" if name in by_name else "differs from another only in case"
                raise self.fail(f"is refused: the entry {shown} {twice}")
            folded.add(name.casefold())
            by_name[name] = info
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise self.fail(f"is refused: the entry {shown} is a symbolic link")
            if info.is_dir() or stat.S_ISDIR(mode) or info.external_attr & 0x10:
                raise self.fail(f"is refused: the entry {shown} is a folder where a file is expected")
            if stat.S_IFMT(mode) not in (0, stat.S_IFREG):
                raise self.fail(f"is refused: the entry {shown} is a device, pipe or socket, not a file")
            if info.flag_bits & 0x1:
                raise self.fail(f"is refused: the entry {shown} is encrypted")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise self.fail(f"is refused: the entry {shown} uses compression method {info.compress_type}; "
                                f"a stemlab pack uses stored or deflated")
            if info.file_size > MAX_FILE_BYTES:
                raise self.fail(f"is refused: the entry {shown} unpacks to {info.file_size:,} bytes, over the cap "
                                f"of {MAX_FILE_BYTES:,} per file (MAX_FILE_BYTES)")
            if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
                raise self.fail(f"is damaged: the stored entry {shown} states {info.file_size:,} bytes and "
                                f"{info.compress_size:,} packed")
            if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * info.compress_size:
                raise self.fail(f"is refused: the entry {shown} unpacks to {info.file_size:,} bytes from "
                                f"{info.compress_size:,}, over {MAX_RATIO} times (a zip bomb)")
            total += info.file_size
        if total > MAX_PACK_BYTES:
            raise self.fail(f"is refused: it unpacks to {total:,} bytes, over the cap of {MAX_PACK_BYTES:,} "
                            f"per pack (MAX_PACK_BYTES)")
        # entries whose data overlap (one stream counted many times: another kind of zip bomb)
        ordered = sorted(infos, key=lambda i: i.header_offset)
        ends = [(i.header_offset + 30 + i.compress_size, i) for i in ordered]
        for (end, info), after in zip(ends, [*ordered[1:], None]):
            limit = after.header_offset if after is not None else start_dir
            if isinstance(limit, int) and end > limit:
                raise self.fail(f"is refused: the entry {_shown(info.filename)} overlaps the next one in the file")
        return by_name

    def _read_header(self) -> dict:
        info = self.infos.get(PACK_MANIFEST)
        if info is None:
            raise self.fail(f"is not a stemlab pack: it holds no {PACK_MANIFEST}")
        if info.file_size > MAX_RECORD_BYTES:
            raise self.fail(f"is refused: {PACK_MANIFEST} is {info.file_size:,} bytes, over the cap of "
                            f"{MAX_RECORD_BYTES:,} (MAX_RECORD_BYTES)")
        data = self._read_all(_File(PACK_MANIFEST, PACK_MANIFEST, info.file_size, "", info))
        header = _json_object(data)
        if header is None:
            raise self.fail(f"is not a stemlab pack: its {PACK_MANIFEST} is not a JSON object")
        if header.get("format") != FORMAT:
            raise self.fail(f"is not a stemlab pack: its {PACK_MANIFEST} has format {_shown(header.get('format'))}")
        version = header.get("format_version")
        if version != FORMAT_VERSION or isinstance(version, bool):
            if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
                raise self.fail(f"was made by a newer stemlab (pack format {version}; this stemlab {__version__} "
                                f"reads format {FORMAT_VERSION}): upgrade stemlab (pip install -U stemlab)")
            raise self.fail(f"has an unknown pack format version {_shown(version)} (this stemlab reads "
                            f"{FORMAT_VERSION})")
        return header

    def _check_listing(self) -> tuple[list[_Set], list[_File]]:
        sets_field, notebooks_field = self.header.get("sets"), self.header.get("notebooks", [])
        if not isinstance(sets_field, list) or not isinstance(notebooks_field, list):
            raise self.fail(f"is damaged: its {PACK_MANIFEST} has no list of sets and notebooks")
        sets: list[_Set] = []
        manifests: dict[str, _File] = {}
        expected: dict[str, _File] = {}
        keys: set[str] = set()
        for item in sets_field:
            if not isinstance(item, dict):
                raise self.fail(f"is damaged: its {PACK_MANIFEST} lists a set that is not an object")
            key = item.get("key")
            problem = _key_problem(key)
            if problem or key.casefold() in keys:
                raise self.fail(f"is refused: its {PACK_MANIFEST} lists the set {_shown(key)}, which "
                                f"{problem or 'is there twice'}")
            keys.add(key.casefold())
            files, paths = item.get("files"), set()
            if not isinstance(files, list):
                raise self.fail(f"is damaged: the set {key} lists no files")
            listed = []
            for entry in files:
                if not isinstance(entry, dict):
                    raise self.fail(f"is damaged: the set {key} lists a file that is not an object")
                path, size, sha = entry.get("path"), entry.get("size"), entry.get("sha256")
                problem = _set_path_problem(path)
                if problem:
                    raise self.fail(f"is refused: the set {key} lists {_shown(path)}, which {problem}")
                if path.casefold() in paths:
                    raise self.fail(f"is refused: the set {key} lists {_shown(path)} twice")
                paths.add(path.casefold())
                if not _size_ok(size) or not (isinstance(sha, str) and _SHA256.fullmatch(sha)):
                    raise self.fail(f"is damaged: the set {key} gives {_shown(path)} no valid size and sha256")
                listed.append(_File(f"sets/{key}/{path}", path, size, sha))
            manifest = [f for f in listed if f.path == MANIFEST]
            if not manifest:
                raise self.fail(f"is damaged: the set {key} lists no {MANIFEST}")
            provider = item.get("provider")
            if not (provider is None or isinstance(provider, str)):
                raise self.fail(f"is damaged: the set {key} has a provider that is not a name")
            sets.append(_Set(key, provider, item.get("request"), item.get("job_id"),
                             [f for f in listed if f.path != MANIFEST]))
            manifests[key] = manifest[0]
            expected.update({f.name: f for f in listed})
        notebooks: list[_File] = []
        names: set[str] = set()
        for entry in notebooks_field:
            name = entry.get("name") if isinstance(entry, dict) else None
            problem = _notebook_problem(name)
            if problem or name.casefold() in names:
                raise self.fail(f"is refused: the notebook {_shown(name)} {problem or 'is listed twice'}")
            names.add(name.casefold())
            size, sha = entry.get("size"), entry.get("sha256")
            if not _size_ok(size) or not (isinstance(sha, str) and _SHA256.fullmatch(sha)):
                raise self.fail(f"is damaged: the notebook {name} has no valid size and sha256")
            notebooks.append(_File(f"notebooks/{name}", name, size, sha))
        expected.update({f.name: f for f in notebooks})
        unlisted = sorted(set(self.infos) - set(expected) - {PACK_MANIFEST})
        if unlisted:
            raise self.fail(f"is refused: it holds {_shown(unlisted[0])}, which its {PACK_MANIFEST} does not list")
        missing = sorted(set(expected) - set(self.infos))
        if missing:
            raise self.fail(f"is damaged: it lacks {_shown(missing[0])}, which its {PACK_MANIFEST} lists")
        for name, listed_file in expected.items():
            info = listed_file.info = self.infos[name]
            if info.file_size != listed_file.size:
                raise self.fail(f"is damaged: {_shown(name)} is {info.file_size:,} bytes in the zip, and "
                                f"{listed_file.size:,} in its {PACK_MANIFEST}")
        for one in sets:
            self._check_set_manifest(one, manifests[one.key])
        return sets, notebooks

    def _check_set_manifest(self, one: _Set, file: _File) -> None:
        if file.size > MAX_RECORD_BYTES:
            raise self.fail(f"is refused: {file.name} is {file.size:,} bytes, over the cap of {MAX_RECORD_BYTES:,} "
                            f"(MAX_RECORD_BYTES)")
        one.manifest_bytes = self._read_all(file)
        manifest = _json_object(one.manifest_bytes)
        if manifest is None:
            raise self.fail(f"is damaged: {file.name} is not a JSON object")
        one.manifest = manifest
        stated_key = manifest.get("key")
        if stated_key is not None and (not isinstance(stated_key, str) or _key_problem(stated_key[:120])
                                       or safe_component(stated_key) != one.key):
            raise self.fail(f"is damaged: {file.name} is the manifest of {_shown(stated_key)}, not of {one.key}")
        for name in ("provider", "job_id", "request"):
            if manifest.get(name) != getattr(one, name):
                raise self.fail(f"is damaged: the {PACK_MANIFEST} and {file.name} disagree about the {name}")
        entries = _manifest_entries(manifest)
        if entries is None:
            raise self.fail(f"is damaged: {file.name} does not list its files (source and stems with path, size "
                            f"and sha256)")
        problem = _stems_problem(manifest)
        if problem:
            raise self.fail(f"is refused: {file.name} {problem}")
        if one.provider in ("cqtai", "apiframe") and _key_of(one.provider, one.request) != one.key:
            raise self.fail(f"is refused: the set {one.key} is filed under a key its request does not give")
        stated = {(e["path"], e["size"], e["sha256"]) for e in entries}
        if len(stated) != len(entries) or stated != one.entries:
            differ = sorted(stated ^ one.entries)
            raise self.fail(f"is damaged: the {PACK_MANIFEST} and {file.name} disagree about "
                            f"{_shown(differ[0][0]) if differ else 'a file listed twice'}")

    # -- contents --
    def _read_block(self, handle, size: int, name: str) -> bytes:
        with self._zip_errors(_shown(name)):
            return handle.read(size)

    def stream(self, file: _File, sink: Callable[[bytes], Any] | None = None) -> None:
        """Read ``file`` (never past its stated size), pass each block to ``sink``, and check its
        size and sha256 (a :class:`PackError` when either differs)."""
        digest, left = hashlib.sha256(), file.size
        with self._zip_errors(_shown(file.name)):
            handle = self.zip.open(file.info)
        with handle:
            while left > 0:
                block = self._read_block(handle, min(_CHUNK, left), file.name)
                if not block:
                    raise self.fail(f"is damaged: {_shown(file.name)} ends before the size its header states "
                                    f"(a truncated or lying zip)")
                left -= len(block)
                digest.update(block)
                if sink is not None:
                    sink(block)
            if self._read_block(handle, 1, file.name):
                raise self.fail(f"is damaged: {_shown(file.name)} is longer than the size its header states")
        if file.sha256 and digest.hexdigest() != file.sha256:
            raise self.fail(f"is damaged: {_shown(file.name)} differs from its {PACK_MANIFEST} (sha256)")

    def _read_all(self, file: _File) -> bytes:
        blocks: list[bytes] = []
        self.stream(file, blocks.append)
        return b"".join(blocks)

    def verify_all(self) -> None:
        """Read every file of the pack and check it (nothing is written)."""
        for one in self.sets:
            for file in one.files:
                self.stream(file)
        for notebook in self.notebooks:
            self.stream(notebook)


# -- ls --------------------------------------------------------------------------------------------
def _contents(path: str | os.PathLike) -> dict:
    with _Reader(path) as pack:
        pack.verify_all()
        return {"pack": str(pack.path), "format_version": FORMAT_VERSION,
                "stemlab_version": _word(pack.header.get("stemlab_version")),
                "created_at": _word(pack.header.get("created_at")),
                "bytes": sum(s.bytes for s in pack.sets) + sum(n.size for n in pack.notebooks),
                "sets": [s.row(request=s.request, job_id=s.job_id) for s in pack.sets],
                "notebooks": [{"name": n.path, "bytes": n.size, "sha256": n.sha256} for n in pack.notebooks]}


def _word(value: Any) -> str | None:
    """A short text from a pack's manifest (a version, a date), or None: it is only shown."""
    return value[:40] if isinstance(value, str) and value.isprintable() else None


def ls(path: str | os.PathLike) -> list[dict]:
    """What the pack ``path`` holds, checked as :func:`install` checks it (every file is read and
    verified), with nothing written: one dict per set (``kind="set"``, ``key``, ``provider``,
    ``stems``, ``bytes``, ``request``, ``job_id``), then one per notebook (``kind="notebook"``,
    ``name``, ``bytes``, ``sha256``). Raises :class:`~stemlab.errors.PackError` for a bad pack.

    >>> [(row["kind"], row.get("key") or row["name"], row["bytes"]) for row in ls("class.zip")]  # doctest: +SKIP
    [('set', 'cqtai-12-05d72140', 1523334), ('set', 'apiframe-a1b2c3d4-i1', 248530), ('notebook', 'lesson.ipynb', 2381)]
    """
    contents = _contents(path)
    return ([{"kind": "set", **row} for row in contents["sets"]]
            + [{"kind": "notebook", **row} for row in contents["notebooks"]])


# -- install ---------------------------------------------------------------------------------------
def install(path: str | os.PathLike, *, cache_dir: str | os.PathLike | None = None,
            settings: Settings | None = None, notebooks_to: str | os.PathLike | None = None,
            force: bool = False) -> list[str]:
    """Install the sets of the pack ``path`` into the cache (``stemlab pack import``). Returns
    their keys, in the pack's order, whether each was installed now or was already there.

    The pack is checked first, and each file as it is unpacked; a bad pack is refused with a
    one-line :class:`~stemlab.errors.PackError`, and nothing is installed. Afterwards
    ``stemlab.fetch(...)`` with a set's request returns it from the cache: no key, no network.

    ``notebooks_to``: a folder to copy the pack's notebooks into (default: they are not copied);
    a notebook already there, or a complete set in the cache with other files, is refused
    (:class:`~stemlab.errors.UsageError`, before anything is installed) unless ``force``.

    >>> install("class.zip", cache_dir="~/stemlab-cache")                 # doctest: +SKIP
    ['cqtai-12-05d72140', 'apiframe-a1b2c3d4-i1']
    """
    return [row["key"] for row in _install(path, cache_dir=cache_dir, settings=settings, notebooks_to=notebooks_to,
                                           force=force)["sets"]]


def _install(path, *, cache_dir=None, settings=None, notebooks_to=None, force=False) -> dict:
    settings = Settings.of(settings, cache_dir=cache_dir)
    cache = Cache(settings.cache_dir)
    with _Reader(path) as pack:
        target = _notebook_target(pack, notebooks_to, force)
        there = {one.key for one in pack.sets if _same(cache, one)}
        other = [one.key for one in pack.sets if one.key not in there and cache.intact(one.key)]
        if other and not force:  # a complete set of its own (the student's own fetch, paid for) is kept
            raise UsageError(f"the cache already holds a complete set {other[0]} with other files than the pack's; "
                             f"pass --force (force=True) to replace it with the pack's")
        copy = target is not None
        _check_space(cache, sum(s.bytes for s in pack.sets if s.key not in there)
                     + (sum(n.size for n in pack.notebooks) if copy else 0))
        staging = cache.root / STAGING
        try:
            staging.mkdir(parents=True, exist_ok=True)
            _sweep(staging, cache)
            stage = Path(tempfile.mkdtemp(prefix="pack-", dir=staging))
        except OSError as exc:
            raise CacheError(f"cannot write to the cache {cache.root}: {exc.strerror or exc}") from None
        try:
            for one in pack.sets:
                if one.key in there:
                    for file in one.files:
                        pack.stream(file)
                else:
                    _stage_set(pack, one, stage, cache)
            for notebook in pack.notebooks:
                if copy:
                    _stage_file(pack, notebook, stage / "notebooks" / notebook.path, stage, cache)
                else:
                    pack.stream(notebook)
            rows, written = _move_into_place(cache, pack, stage, there, target, force=force)
        finally:
            if not (stage / KEEP).exists():  # a set that could not be put back is kept there, and said
                shutil.rmtree(stage, ignore_errors=True)
            with contextlib.suppress(OSError):
                staging.rmdir()  # only when no other import is staging
    return {"pack": str(pack.path), "cache_dir": str(cache.root), "sets": rows,
            "notebooks": [{"name": n.path, "bytes": n.size, **({"path": str(written[n.path])} if copy else {})}
                          for n in pack.notebooks]}


def _notebook_target(pack: _Reader, notebooks_to, force: bool) -> Path | None:
    if notebooks_to is None:
        return None
    target = Path(notebooks_to).expanduser()
    if target.exists() and not target.is_dir():
        raise UsageError(f"{target} is a file, not a folder: pass a folder for the notebooks")
    there = [target / n.path for n in pack.notebooks if (target / n.path).exists()]
    if there and not force:
        more = f" (and {len(there) - 1} more)" if len(there) > 1 else ""
        raise UsageError(f"{there[0]} is already there{more}; pass --force (force=True) to overwrite, or choose "
                         f"another folder")
    return target


def _same(cache: Cache, one: _Set) -> bool:
    """The cache holds ``one`` intact, with the same files (every one hashed)."""
    try:
        manifest = cache.read_manifest(one.key)
    except CacheError:
        return False
    entries = _manifest_entries(manifest) if manifest is not None else None
    if entries is None or {(e["path"], e["size"], e["sha256"]) for e in entries} != one.entries:
        return False
    return not cache.damage(one.key, hashes=True)


def _check_space(cache: Cache, needed: int) -> None:
    probe = cache.root
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        return
    if needed + FREE_MARGIN > free:
        raise CacheError(f"the pack unpacks to {_mb(needed)}, and {probe} has {_mb(free)} free; free some space "
                         f"(stemlab cache clean --derived) or import into another --cache-dir")


def _put_back(aside: Path, folder: Path, stage: Path) -> None:
    """Move a set that was moved aside back into the cache; if that fails, keep the staging
    folder (a set is never deleted: its job record is what stops a second charge) and say where."""
    try:
        os.replace(aside, folder)
    except OSError:
        (stage / KEEP).touch()
        raise CacheError(f"the import failed and the set {folder.name} could not be put back: it is kept at "
                         f"{aside}; move it to {folder}") from None


def _sweep(staging: Path, cache: Cache) -> None:
    """Remove staging folders a killed import left behind (older than :data:`STALE_STAGING_S`),
    first putting back any set it had moved aside whose place in the cache is empty, and keeping
    any folder that holds a set which could not be put back."""
    for old in staging.glob("pack-*"):
        with contextlib.suppress(OSError):
            if time.time() - old.stat().st_mtime <= STALE_STAGING_S or (old / KEEP).exists():
                continue
            for aside in (old / "old").glob("*"):
                if not cache.set_dir(aside.name).exists():
                    os.replace(aside, cache.set_dir(aside.name))
            shutil.rmtree(old, ignore_errors=True)


def _stage_file(pack: _Reader, file: _File, dest: Path, stage: Path, cache: Cache) -> None:
    if not dest.resolve().is_relative_to(stage.resolve()):  # names are checked; this is the last word
        raise pack.fail(f"is refused: {_shown(file.name)} would be written outside the staging folder")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(dest, "xb") as out:
            pack.stream(file, out.write)
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:
        raise CacheError(f"cannot write to the cache {cache.root}: {exc.strerror or exc}") from None


def _job_record(one: _Set, pack: _Reader) -> dict:
    """A finished job record, as a repair writes one from a manifest (plus where it came from)."""
    manifest = one.manifest
    record = {name: manifest.get(name) for name in ("provider", "key", "request", "base_url", "submitted_at",
                                                     "job_id")}
    return {**record, "state": "done", "finished_at": manifest.get("completed_at"),
            "imported_from": pack.path.name, "imported_at": _now()}


def _stage_set(pack: _Reader, one: _Set, stage: Path, cache: Cache) -> None:
    folder = stage / "sets" / one.key
    for file in one.files:
        _stage_file(pack, file, folder / file.path, stage, cache)
    try:
        if one.manifest.get("job_id"):
            atomic_write_json(folder / "job.json", _job_record(one, pack))
        atomic_write_bytes(folder / MANIFEST, one.manifest_bytes)  # last
    except OSError as exc:
        raise CacheError(f"cannot write to the cache {cache.root}: {exc.strerror or exc}") from None


def _move_into_place(cache: Cache, pack: _Reader, stage: Path, there: set[str], target: Path | None, *,
                     force: bool = False) -> tuple[list[dict], dict[str, Path]]:
    """Move every staged set into the cache under the sets' locks, then copy the notebooks; on any
    failure, move the sets back out (and the folders they replaced back in)."""
    rows: list[dict] = []
    moved: list[tuple[str, Path | None]] = []
    written: dict[str, Path] = {}
    new_notebooks: list[Path] = []
    with contextlib.ExitStack() as locks:
        for key in sorted({one.key for one in pack.sets}):
            try:
                locks.enter_context(cache.lock(key, timeout=0))
            except Timeout:
                raise UsageError(f"refusing to touch {key}: a fetch of it is running now; import the pack again "
                                 f"when it is done") from None
        try:
            for one in pack.sets:
                if one.key in there:
                    if not _same(cache, one):
                        raise CacheError(f"{cache.set_dir(one.key)} changed while the pack was being imported; "
                                         f"import it again")
                    rows.append(one.row(status="already there"))
                    continue
                folder, aside, status = cache.set_dir(one.key), None, "installed"
                if not force and cache.intact(one.key):  # completed by a fetch while the pack was staged
                    raise UsageError(f"the cache now holds a complete set {one.key} with other files than the "
                                     f"pack's; pass --force (force=True) to replace it with the pack's")
                if folder.exists() or folder.is_symlink():
                    status = "replaced" if cache.intact(one.key) else "repaired"
                    aside = stage / "old" / one.key
                    aside.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(folder, aside)
                try:
                    folder.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(stage / "sets" / one.key, folder)
                except BaseException:
                    if aside is not None:
                        _put_back(aside, folder, stage)
                    raise
                moved.append((one.key, aside))
                rows.append(one.row(status=status))
            for notebook in pack.notebooks if target is not None else []:
                dest = target / notebook.path
                new = not dest.exists()
                target.mkdir(parents=True, exist_ok=True)
                with atomic_file(dest) as out, open(stage / "notebooks" / notebook.path, "rb") as staged:
                    shutil.copyfileobj(staged, out, _CHUNK)
                if new:
                    new_notebooks.append(dest)
                written[notebook.path] = dest
        except BaseException as exc:
            for key, aside in reversed(moved):  # put the cache back as it was
                with contextlib.suppress(OSError):
                    (stage / "undone").mkdir(parents=True, exist_ok=True)
                    os.replace(cache.set_dir(key), stage / "undone" / key)
                if aside is not None:
                    _put_back(aside, cache.set_dir(key), stage)
            for path in new_notebooks:
                with contextlib.suppress(OSError):
                    path.unlink()
            if isinstance(exc, OSError):
                raise CacheError(f"cannot install into {cache.root}: {exc.strerror or exc}; nothing was "
                                 f"installed") from None
            raise
    return rows, written


# -- export ----------------------------------------------------------------------------------------
@dataclass
class _Planned:
    key: str
    folder: Path
    manifest_bytes: bytes
    manifest: dict
    files: list[_File]

    @property
    def bytes(self) -> int:
        return len(self.manifest_bytes) + sum(f.size for f in self.files)


def _holds_secret(data: bytes, secrets: list[str]) -> bool:
    return any(secret and secret.encode("utf-8") in data for secret in secrets)


def _chosen(sets, cache: Cache) -> list[tuple[Cache, str]]:
    """The (cache, key) of every set ``sets`` names, in order, each once."""
    from .stemset import StemSet

    if isinstance(sets, (str, os.PathLike, StemSet)):
        sets = [sets]
    chosen: list[tuple[Cache, str]] = []
    seen: set[Path] = set()
    for ref in sets:
        if isinstance(ref, StemSet):
            if ref.folder is None or not (ref.folder / MANIFEST).is_file():
                raise UsageError(f"only a set from a stemlab cache can go into a pack; {ref.label} is a folder or "
                                 f"files of your own")
            pairs = [_folder_pair(ref.folder)]
        elif isinstance(ref, (str, os.PathLike)):
            folder = Path(ref).expanduser()
            pairs = ([_folder_pair(folder)] if folder.is_dir()
                     else [(cache, key) for key in cache.resolve_keys([str(ref)])])
            if len(pairs) > 1:  # a clip id of a 12- and a 2-stem set, a parent job id of both tracks
                unfinished = [key for owner, key in pairs if owner.state(key) != "complete"]
                if unfinished:
                    raise UsageError(f"{str(ref)!r} names {len(pairs)} sets, and {unfinished[0]} is not complete; "
                                     f"fetch it to finish it, or name the sets to pack by key (see `stemlab cache "
                                     f"ls`)")
        else:
            raise UsageError(f"a pack takes set keys, ids, set folders or stem sets, not {type(ref).__name__}")
        for owner, key in pairs:
            where = owner.set_dir(key).resolve()
            if where not in seen:
                seen.add(where)
                chosen.append((owner, key))
    if not chosen:
        raise UsageError("name at least one set to pack (see `stemlab cache ls`)")
    return chosen


def _folder_pair(folder: Path) -> tuple[Cache, str]:
    folder = folder.resolve()
    if folder.parent.name != "sets" or not ((folder / MANIFEST).exists() or (folder / "job.json").exists()):
        raise UsageError(f"{folder} is not a set of a stemlab cache (<cache>/sets/<key>/manifest.json); only sets "
                         f"from a cache go into a pack")
    return Cache(folder.parent.parent), folder.name


def _plan(cache: Cache, key: str, secrets: list[str]) -> _Planned:
    folder = cache.set_dir(key)
    state = cache.state(key)
    damage = cache.damage(key) if state != "damaged" else []
    if state == "damaged" or damage:
        what = f" ({damage[0].path}: {damage[0].problem})" if damage else " (its manifest does not read)"
        raise CacheError(f"{folder} is damaged{what}, so it cannot go into a pack; {REPAIR_ADVICE}")
    if state != "complete":
        raise UsageError(f"the set {key} is not complete (its job is {state}); fetch it again to finish it, then "
                         f"pack it")
    try:
        data = (folder / MANIFEST).read_bytes()
    except OSError as exc:
        raise CacheError(f"cannot read {folder / MANIFEST}: {exc.strerror or exc}") from None
    manifest = _json_object(data)
    entries = _manifest_entries(manifest) if manifest is not None else None
    if entries is None:
        raise CacheError(f"{folder / MANIFEST} does not list its files with a size and sha256 each, so they "
                         f"cannot be verified into a pack; {REPAIR_ADVICE}")
    if len(data) > MAX_RECORD_BYTES:
        raise CacheError(f"{folder / MANIFEST} is {len(data):,} bytes, over the {MAX_RECORD_BYTES:,} a pack takes")
    if _key_problem(key) or (isinstance(manifest.get("key"), str) and safe_component(manifest["key"]) != key):
        raise CacheError(f"{folder / MANIFEST} is the manifest of {manifest.get('key')!r}, not of {key}")
    if _holds_secret(data, secrets):
        raise CacheError(f"{folder / MANIFEST} holds one of your API keys; refusing to put it in a pack")
    files, paths = [], set()
    for entry in entries:
        path = entry["path"]
        problem = _set_path_problem(path) or (f"is listed twice" if path.casefold() in paths else None)
        if problem or not _SHA256.fullmatch(entry["sha256"]):
            raise CacheError(f"{folder / MANIFEST} lists {path!r}, which {problem or 'has no valid sha256'}, so "
                             f"the set cannot go into a pack")
        if entry["size"] > MAX_FILE_BYTES:
            raise UsageError(f"{folder / path} is {_mb(entry['size'])}, over the {_mb(MAX_FILE_BYTES)} per file a "
                             f"pack takes")
        paths.add(path.casefold())
        files.append(_File(f"sets/{key}/{path}", path, entry["size"], entry["sha256"]))
    return _Planned(key, folder, data, manifest, files)


def _scan(path: Path, secrets: list[str]) -> tuple[int, str, bool]:
    """Size, sha256, and whether one of ``secrets`` occurs in the file (read in blocks)."""
    digest, size, tail, found = hashlib.sha256(), 0, b"", False
    keep = max((len(s.encode("utf-8")) for s in secrets if s), default=1) - 1
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
            size += len(block)
            found = found or _holds_secret(tail + block, secrets)
            tail = (tail + block)[-keep:] if keep else b""
    return size, digest.hexdigest(), found


def _plan_notebook(path: str | os.PathLike, secrets: list[str]) -> tuple[_File, Path]:
    source = Path(path).expanduser()
    if not source.is_file():
        raise UsageError(f"no notebook {source}" if not source.exists() else f"{source} is not a file")
    problem = _notebook_problem(source.name)
    if problem:
        raise UsageError(f"the notebook name {source.name!r} {problem}; rename it")
    try:
        size, sha, secret = _scan(source, secrets)
    except OSError as exc:
        raise UsageError(f"cannot read {source}: {exc.strerror or exc}") from None
    if secret:
        raise UsageError(f"{source} holds one of your API keys; remove it (read keys from the environment, as the "
                         f"shipped notebooks do) before sharing the notebook")
    if size > MAX_FILE_BYTES:
        raise UsageError(f"{source} is {_mb(size)}, over the {_mb(MAX_FILE_BYTES)} per file a pack takes")
    return _File(f"notebooks/{source.name}", source.name, size, sha), source


def _zip_info(name: str, size: int, when: tuple) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, when)
    info.compress_type = zipfile.ZIP_STORED if name.lower().endswith(_AUDIO) else zipfile.ZIP_DEFLATED
    info.create_system = 3  # unix: the mode below is what it says
    info.external_attr = (stat.S_IFREG | 0o644) << 16
    info.file_size = size  # tells zipfile beforehand whether the entry needs ZIP64
    return info


def _put(zf: zipfile.ZipFile, file: _File, source: Path | bytes, when: tuple, changed: str) -> None:
    """Write ``source`` (bytes, or a file read in blocks) as ``file``, checking its size and sha256."""
    digest, size = hashlib.sha256(), 0
    with zf.open(_zip_info(file.name, file.size, when), "w") as out:
        if isinstance(source, bytes):
            digest.update(source)
            out.write(source)
            size = len(source)
        else:
            try:
                with open(source, "rb") as f:
                    while size <= file.size:
                        block = f.read(min(_CHUNK, file.size + 1 - size))
                        if not block:
                            break
                        digest.update(block)
                        out.write(block)
                        size += len(block)
            except OSError as exc:
                raise CacheError(f"cannot read {source}: {exc.strerror or exc}") from None
    if size != file.size or digest.hexdigest() != file.sha256:
        raise CacheError(f"{source} {changed}; nothing was written")


def _export(sets, path, *, notebooks=(), cache_dir=None, settings=None, force=False) -> dict:
    settings = Settings.of(settings, cache_dir=cache_dir)
    secrets = settings.secrets()
    target = Path(path).expanduser()
    if target.is_dir():
        raise UsageError(f"{target} is a folder: pass a file name, such as {target / 'class.zip'}")
    if target.exists() and not force:  # -o lesson.ipynb would replace the lesson with the pack
        raise UsageError(f"{target} already exists; pass --force (force=True) to overwrite it, or choose another name")
    if not target.parent.is_dir():
        raise UsageError(f"the folder {target.parent} does not exist: create it, or write the pack elsewhere")
    plans = [_plan(owner, key, secrets) for owner, key in _chosen(sets, Cache(settings.cache_dir))]
    keys = [p.key.casefold() for p in plans]
    if len(set(keys)) != len(keys):
        raise UsageError("two of these sets have the same key (from different caches); pack them separately")
    if isinstance(notebooks, (str, os.PathLike)):
        notebooks = [notebooks]
    books = [_plan_notebook(nb, secrets) for nb in notebooks]
    names = [book.path.casefold() for book, _ in books]
    if len(set(names)) != len(names):
        raise UsageError("two notebooks have the same name; a pack holds each name once")
    total = sum(p.bytes for p in plans) + sum(book.size for book, _ in books)
    if total > MAX_PACK_BYTES:
        raise UsageError(f"these sets and notebooks come to {_mb(total)}, over the {_mb(MAX_PACK_BYTES)} a pack "
                         f"takes; make two packs")
    header = {"format": FORMAT, "format_version": FORMAT_VERSION, "stemlab_version": __version__,
              "created_at": _now(),
              "sets": [{"key": p.key, "provider": p.manifest.get("provider"), "request": p.manifest.get("request"),
                        "job_id": p.manifest.get("job_id"),
                        "stems": len(p.manifest["stems"]),
                        "files": [{"path": MANIFEST, "size": len(p.manifest_bytes),
                                   "sha256": hashlib.sha256(p.manifest_bytes).hexdigest()},
                                  *({"path": f.path, "size": f.size, "sha256": f.sha256} for f in p.files)]}
                       for p in plans],
              "notebooks": [{"name": book.path, "size": book.size, "sha256": book.sha256} for book, _ in books]}
    header_bytes = (json.dumps(header, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    if _holds_secret(header_bytes, secrets):
        raise CacheError("the pack manifest would hold one of your API keys (in a set's request); refusing to "
                         "write it")
    when = time.localtime()[:6]
    with atomic_file(target) as out, zipfile.ZipFile(out, "w", allowZip64=True) as zf:
        _put(zf, _File(PACK_MANIFEST, PACK_MANIFEST, len(header_bytes), hashlib.sha256(header_bytes).hexdigest()),
             header_bytes, when, "")
        for p in plans:
            _put(zf, _File(f"sets/{p.key}/{MANIFEST}", MANIFEST, len(p.manifest_bytes),
                           hashlib.sha256(p.manifest_bytes).hexdigest()), p.manifest_bytes, when, "")
            for file in p.files:
                _put(zf, file, p.folder / file.path, when,
                     f"changed on disk: its size or sha256 differs from {p.folder / MANIFEST}; {REPAIR_ADVICE}")
        for book, source in books:
            _put(zf, book, source, when, "changed while it was being packed; pack it again")
    return {"pack": str(target), "bytes": target.stat().st_size,
            "sets": [{"key": p.key, "provider": p.manifest.get("provider"), "stems": len(p.manifest["stems"]),
                      "bytes": p.bytes} for p in plans],
            "notebooks": [{"name": book.path, "bytes": book.size} for book, _ in books]}


def export(sets: Iterable | str | os.PathLike, path: str | os.PathLike, *,
           notebooks: Iterable[str | os.PathLike] = (), cache_dir: str | os.PathLike | None = None,
           settings: Settings | None = None, force: bool = False) -> Path:
    """Write the sets ``sets`` names (cache keys, job ids, clip ids, parent job ids, set folders or
    :class:`~stemlab.StemSet` objects) and the files ``notebooks`` into the pack ``path`` (a zip,
    written to a temporary name and renamed into place). Returns ``path``.

    A set that is not complete (:class:`~stemlab.errors.UsageError`) or not intact
    (:class:`~stemlab.errors.CacheError`: fetch it again, which repairs it at no charge) is
    refused, and so is a file whose sha256 no longer matches its manifest; nothing is written.
    The pack holds no key, no job record and no derived data; a notebook that holds one of your
    API keys is refused. An existing ``path`` is refused unless ``force``.

    >>> s = stemlab.fetch("cqtai", clip_id="05d72140-38f5-4eb4-bdaa-a6e0d1c1167e")   # doctest: +SKIP
    >>> export([s, "a1b2c3d4-..."], "class.zip", notebooks=["lesson.ipynb"])         # doctest: +SKIP
    PosixPath('class.zip')
    """
    return Path(_export(sets, path, notebooks=notebooks, cache_dir=cache_dir, settings=settings,
                        force=force)["pack"])


#: the names ``stemlab`` exports these under (``import`` is a keyword; ``export`` and ``ls`` say too little)
export_pack = export
import_pack = install
pack_contents = ls


# -- command line ------------------------------------------------------------------------------------
def add_cli(subparsers, common) -> None:
    """Add ``stemlab pack export|import|ls`` to the CLI's subcommands (``subparsers`` is the CLI's
    ``add_subparsers()`` object, whose parser class takes ``examples=``; ``common`` the parent
    parser that accepts ``--cache-dir`` after the command)."""
    pack = subparsers.add_parser("pack", help="share fetched sets with a class: export, import, ls", examples=(
        "stemlab pack export CLIP_ID PARENT_JOB_ID -o class.zip --notebook lesson.ipynb   # the teacher",
        "stemlab pack import class.zip --notebooks lesson                                 # each student"))
    actions = pack.add_subparsers(dest="pack_action", required=True, parser_class=type(pack), metavar="ACTION")
    export_ = actions.add_parser("export", parents=[common], help="write cached sets (and notebooks) into one zip",
                                 examples=("stemlab pack export cqtai-12-05d72140 -o class.zip",
                                           "stemlab pack export CLIP_ID PARENT_JOB_ID -o class.zip --notebook a.ipynb"))
    export_.add_argument("sets", nargs="+", metavar="SET", help="set names, job ids, clip ids, parent job ids or set "
                                                                 "folders (see `stemlab cache ls`)")
    export_.add_argument("-o", "--output", required=True, metavar="FILE.zip", help="the pack to write")
    export_.add_argument("--notebook", action="append", default=[], dest="notebooks", metavar="PATH",
                         help="a notebook (or any file) to put in the pack (repeat for more)")
    export_.add_argument("--force", action="store_true", help="overwrite FILE.zip if it exists")
    import_ = actions.add_parser("import", parents=[common], help="install a pack's sets into the cache (offline)",
                                 examples=("stemlab pack import class.zip",
                                           "stemlab pack import class.zip --notebooks ~/class   # and its notebooks"))
    import_.add_argument("pack", metavar="FILE.zip", help="the pack a teacher shared")
    import_.add_argument("--notebooks", metavar="DIR", help="copy the pack's notebooks into DIR (made if missing)")
    import_.add_argument("--force", action="store_true", help="overwrite notebooks already in DIR, and replace complete sets that hold other files")
    listing = actions.add_parser("ls", parents=[common], help="what a pack holds (every file verified)",
                                 examples=("stemlab pack ls class.zip", "stemlab pack ls class.zip --json"))
    listing.add_argument("pack", metavar="FILE.zip", help="a pack")
    for sub in (export_, import_, listing):
        sub.add_argument("--json", action="store_true", help="print one JSON object")


def _print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")


def _table(rows: list[dict], status: bool = False) -> None:
    for row in rows:
        print(f"  {row['key']:<52} {row['provider'] or '':<9} {row['stems']:>3} stems {_mb(row['bytes']):>10}"
              + (f"  {row['status']}" if status else ""))


def run_cli(args, settings: Settings) -> int:
    """Run ``stemlab pack ...`` with the run's resolved ``settings``; returns the exit code."""
    if args.pack_action == "export":
        done = _export(args.sets, args.output, notebooks=args.notebooks, settings=settings, force=args.force)
        if args.json:
            _print_json(done)
            return 0
        _table(done["sets"])
        for notebook in done["notebooks"]:
            print(f"  {'notebook ' + notebook['name']:<72} {_mb(notebook['bytes']):>10}")
        print(f"wrote {done['pack']}: {len(done['sets'])} set(s), {len(done['notebooks'])} notebook(s), "
              f"{_mb(done['bytes'])}; students run: stemlab pack import {Path(done['pack']).name}")
        return 0
    if args.pack_action == "import":
        done = _install(args.pack, notebooks_to=args.notebooks, force=args.force, settings=settings)
        if args.json:
            _print_json(done)
            return 0
        _table(done["sets"], status=True)
        counts: dict[str, int] = {}
        for row in done["sets"]:
            counts[row["status"]] = counts.get(row["status"], 0) + 1
        print(f"{len(done['sets'])} set(s) in {done['cache_dir']} ("
              + ", ".join(f"{n} {status}" for status, n in counts.items()) + "); they open with no key and no network")
        for notebook in done["notebooks"]:
            print(f"  notebook {notebook['path']}" if "path" in notebook else
                  f"  notebook {notebook['name']} (not copied: pass --notebooks DIR)")
        if args.notebooks and done["notebooks"]:
            print(f"open them with: jupyter lab {args.notebooks}")
        return 0
    contents = _contents(args.pack)
    if args.json:
        _print_json(contents)
        return 0
    print(f"{contents['pack']}: made by stemlab {contents['stemlab_version']} at {contents['created_at']}, "
          f"{_mb(contents['bytes'])} unpacked, every file verified")
    _table(contents["sets"])
    for notebook in contents["notebooks"]:
        print(f"  {'notebook ' + notebook['name']:<72} {_mb(notebook['bytes']):>10}")
    return 0
