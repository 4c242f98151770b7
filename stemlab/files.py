"""Files that are whole or absent: atomic writes, content hashes, and the rule for derived data.

A file is written to a temporary name beside its final path and renamed into place once complete,
so a crash never leaves a half-written file under a final name. Records (a job id, a manifest)
are also fsynced first; derived data (decoded arrays, envelopes, spectrograms), which can always
be rebuilt, is not.

**Derived data** is read with :func:`read_derived`: a missing file is rebuilt, and so is a damaged
one (it is deleted first), never trusted and never an error. :func:`derived_file` says where it
lives: beside its set, or, when that folder cannot be written (a read-only cache), in a scratch
folder of the user's own.

>>> import tempfile, numpy as np
>>> path = Path(tempfile.mkdtemp()) / "x.npy"
>>> read_derived(path, np.load) is None
True
>>> _ = save_npy(path, np.arange(3))
>>> read_derived(path, np.load)
array([0, 1, 2])
>>> _ = path.write_bytes(b"garbage")
>>> read_derived(path, np.load) is None, path.exists()
(True, False)
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, TypeVar

from .errors import CacheError

__all__ = ["atomic_file", "atomic_write_bytes", "atomic_write_json", "save_npy", "save_npz", "sha256_of",
           "read_derived", "derived_file"]

T = TypeVar("T")


def _umask() -> int:
    """The process's umask, read without changing it where Linux says it (/proc), else by the
    classic set-and-restore."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, *, durable: bool = True) -> Iterator[BinaryIO]:
    """A binary file that appears at ``path`` only when the ``with`` block completes, with the
    mode a plain ``open()`` gives (0644 under the usual umask).

    ``durable`` also fsyncs before the rename: wanted for records (a job id must survive a
    crash), not for derived data.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # what open() would give: mkstemp's 0600 is for secrets
        with os.fdopen(fd, "wb") as f:
            yield f
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, durable: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_file`)."""
    with atomic_file(path, durable=durable) as f:
        f.write(data)
    return Path(path)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """:func:`atomic_write_bytes` of ``obj`` as indented UTF-8 JSON (a record: fsynced)."""
    return atomic_write_bytes(path, (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def save_npy(path: str | os.PathLike, array) -> Path:
    """Save ``array`` as ``.npy`` atomically (derived data: no fsync)."""
    import numpy as np

    with atomic_file(path, durable=False) as f:
        np.save(f, array)
    return Path(path)


def save_npz(path: str | os.PathLike, **arrays) -> Path:
    """Save several arrays as ``.npz`` atomically (derived data: no fsync)."""
    import numpy as np

    with atomic_file(path, durable=False) as f:
        np.savez(f, **arrays)
    return Path(path)


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_derived(path: str | os.PathLike | None, load: Callable[[Path], T]) -> T | None:
    """``load(path)``, or None when the derived file is missing or damaged (a damaged one is
    deleted, so the caller rebuilds it). ``path`` None (nowhere to cache) is missing too."""
    if path is None:
        return None
    path = Path(path)
    try:
        return load(path)
    except FileNotFoundError:
        return None
    except (ValueError, OSError, KeyError, EOFError, zipfile.BadZipFile):
        with contextlib.suppress(OSError):  # a read-only folder: rebuilt elsewhere (see derived_file)
            path.unlink(missing_ok=True)
        return None


def derived_file(folder: str | os.PathLike, name: str) -> Path:
    """Where the derived file ``name`` of ``folder`` is: in ``folder`` if it is there or can be
    written there, else in a scratch folder under the system's temp folder (so a read-only cache
    still serves its sets, rebuilding their derived data once per machine boot).

    >>> derived_file(tempfile.mkdtemp(), "vocals.abc.native.npy").name
    'vocals.abc.native.npy'
    >>> derived_file(tempfile.mkdtemp(), "../x.npy")
    Traceback (most recent call last):
    ...
    stemlab.errors.CacheError: '../x.npy' cannot name a derived file (a stem name from a damaged or hostile manifest?)
    """
    if not name or name.startswith(".") or any(c in name for c in ("/", "\\", "\0")):  # never outside ``folder``
        raise CacheError(f"{name!r} cannot name a derived file (a stem name from a damaged or hostile manifest?)")
    folder = Path(folder)
    path = folder / name
    if path.exists() or _writable(folder):
        return path
    return _scratch_for(folder) / name


@functools.lru_cache(maxsize=256)
def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK)


@functools.lru_cache(maxsize=256)
def _scratch_for(folder: Path) -> Path:
    uid = os.getuid() if hasattr(os, "getuid") else None
    own = Path(tempfile.gettempdir()) / f"stemlab-{uid if uid is not None else 'user'}"
    own.mkdir(mode=0o700, exist_ok=True)
    if uid is not None and (own.is_symlink() or own.stat().st_uid != uid):  # someone else's: not ours to use
        own = Path(tempfile.mkdtemp(prefix="stemlab-"))
    scratch = own / hashlib.sha256(str(folder.resolve()).encode("utf-8")).hexdigest()[:16]
    scratch.mkdir(exist_ok=True)
    return scratch
