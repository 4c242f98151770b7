"""Writing exports to disk: audio files, a folder that appears whole or not at all, zips.

A folder export is written file by file (each atomically, :func:`stemlab.files.atomic_file`)
into a hidden temporary folder beside the target, which is renamed into place once complete.
An existing target that holds anything is refused unless it holds an earlier export (its
``export.json``) and ``force``; then the old folder is moved aside, the new one renamed into
place, and only then is the old one deleted. A folder holding other files is never replaced.

>>> SUBTYPES[24], SUBTYPES[32]
('PCM_24', 'FLOAT')
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import UsageError
from ..files import atomic_file, sha256_of

__all__ = ["SUBTYPES", "Clip", "measure", "write_audio", "staged_folder", "refuse_existing_file", "zip_folder",
           "file_facts", "check_stem_name", "writing_to"]

log = logging.getLogger("stemlab")

#: soundfile subtype of each bit depth
SUBTYPES = {16: "PCM_16", 24: "PCM_24", 32: "FLOAT"}
BLOCK = 1 << 16  # frames written per call
#: the file names a set folder's source goes by (stemlab.stemset.SOURCE_NAMES): no stem may take them
MIXTURE_NAMES = ("mixture", "source", "mix")


@dataclass(frozen=True)
class Clip:
    """What writing one file did to its peaks: ``peak`` (largest absolute value before writing),
    ``clipped`` samples above full scale that were clipped to it (PCM only; 32-bit float keeps
    them)."""

    peak: float
    clipped: int


def measure(audio: np.ndarray, *, pcm: bool) -> Clip:
    """The :class:`Clip` that writing ``audio`` would give (``pcm``: clipped at ±1)."""
    peak, over = 0.0, 0
    for start in range(0, np.shape(audio)[-1], BLOCK):
        block = np.abs(np.asarray(audio[:, start:start + BLOCK], dtype=np.float32))
        top = float(block.max()) if block.size else 0.0
        peak = max(peak, top)
        if pcm and top > 1.0:
            over += int(np.count_nonzero(block > 1.0))
    return Clip(peak, over)


def write_audio(path: Path, audio: np.ndarray, sr: int, *, bit_depth: int, file_format: str) -> Clip:
    """Write ``(channels, samples)`` float audio as WAV or FLAC at ``bit_depth`` (16, 24: PCM;
    32: float), atomically. PCM clips at ±1: samples beyond it are clipped, and counted."""
    import soundfile as sf

    audio = np.atleast_2d(audio)
    channels, frames = audio.shape
    pcm = bit_depth != 32
    peak, clipped = 0.0, 0
    with atomic_file(path) as f, sf.SoundFile(f, "w", samplerate=int(sr), channels=channels,
                                              subtype=SUBTYPES[bit_depth], format=file_format.upper()) as out:
        for start in range(0, frames, BLOCK):
            block = np.asarray(audio[:, start:start + BLOCK], dtype=np.float32)
            top = float(np.max(np.abs(block))) if block.size else 0.0
            peak = max(peak, top)
            if pcm and top > 1.0:
                clipped += int(np.count_nonzero(np.abs(block) > 1.0))
                block = np.clip(block, -1.0, 1.0)
            out.write(np.ascontiguousarray(block.T))
    return Clip(peak, clipped)


def _is_empty_folder(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def check_stem_name(name: str) -> str:
    """``name`` if it can be a file name in an export folder (a plain name, not the mixture's),
    else a :class:`UsageError`.

    >>> check_stem_name("vocals")
    'vocals'
    >>> check_stem_name("../x")
    Traceback (most recent call last):
    ...
    stemlab.errors.UsageError: a stem named '../x' cannot be written as a file: a stem name must be a plain file name \
(no slashes, no '..', no leading '.') and not mixture, source or mix
    """
    plain = (isinstance(name, str) and name != "" and not name.startswith(".") and ".." not in name
             and not any(c in name for c in ("/", "\\", "\0")))
    if not plain or name.lower() in MIXTURE_NAMES:
        raise UsageError(f"a stem named {name!r} cannot be written as a file: a stem name must be a plain file "
                         f"name (no slashes, no '..', no leading '.') and not mixture, source or mix")
    return name


@contextlib.contextmanager
def writing_to(path: Path) -> Iterator[None]:
    """An :class:`OSError` while writing the export at ``path`` as a :class:`UsageError`."""
    try:
        yield
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror or error}; choose another folder") from error


def refuse_existing_file(path: Path, *, force: bool) -> None:
    """A :class:`UsageError` when ``path`` is a folder, or a file and not ``force``."""
    if path.is_dir():
        raise UsageError(f"{path} is a folder: pass a file name for this export, such as {path / 'song'}")
    if path.exists() and not force:
        raise UsageError(f"{path} already exists; pass force=True (--force) to replace it, or choose another name")


@contextlib.contextmanager
def staged_folder(target: Path, *, force: bool, protect: tuple[Path, ...] = (),
                  record: str = "export.json") -> Iterator[Path]:
    """A fresh hidden folder beside ``target`` to write into; renamed to ``target`` when the
    ``with`` block completes, deleted if it fails. ``protect``: files (the set's own) that
    replacing ``target`` must never delete; ``record``: the file an earlier export left, without
    which a folder that holds anything is never replaced."""
    target = Path(target).resolve()  # "." has no name to stage beside, and cannot be renamed
    if target.exists() and not target.is_dir():
        raise UsageError(f"{target} is a file, not a folder: pass a folder for this export")
    if target.is_dir():
        for path in protect:
            resolved = Path(path).resolve()
            if resolved == target or target in resolved.parents:
                raise UsageError(f"{target} holds this set's own files ({Path(path).name}); export it to another "
                                 f"folder")
    here = Path.cwd()
    if target.is_dir() and not _is_empty_folder(target):
        if target == here or target in here.parents:  # replacing it would leave a shell in a deleted folder
            raise UsageError(f"{target} is the folder you are in; export to another folder, or cd out of it first")
        if not (target / record).is_file():
            raise UsageError(f"{target} holds other files (it is not an earlier export); choose an empty folder or a "
                             f"new one")
        if not force:
            raise UsageError(f"{target} is not empty; pass force=True (--force) to replace it, or choose another "
                             f"folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(4)
    staging = target.parent / f".{target.name}.{token}.tmp"
    staging.mkdir()
    try:
        yield staging
        if target.is_dir() and not _is_empty_folder(target):
            old = target.parent / f".{target.name}.{token}.old"
            os.rename(target, old)
            os.rename(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        elif target == here:  # empty, and a shell is in it: filled in place, not replaced
            for path in sorted(staging.iterdir()):
                os.rename(path, target / path.name)
            staging.rmdir()
        else:
            os.rename(staging, target)  # onto a missing or empty folder: atomic
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def file_facts(path: Path, *, root: Path | None = None) -> dict:
    """``{"path", "sha256", "bytes"}`` of one file (``path`` relative to ``root`` when given)."""
    return {"path": str(path.relative_to(root)) if root else str(path), "sha256": sha256_of(path),
            "bytes": path.stat().st_size}


def zip_folder(folder: Path, target: Path, *, top: str, manifest: bytes) -> None:
    """Zip every file of ``folder`` under ``top/`` into ``target`` (atomically), with
    ``manifest`` as ``top/manifest.json``. Audio is stored as it is (deflate gains little on
    PCM and nothing on FLAC); text is deflated."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    with atomic_file(target) as f, zipfile.ZipFile(f, "w") as archive:
        for path in files:
            kind = zipfile.ZIP_DEFLATED if path.suffix in (".json", ".txt") else zipfile.ZIP_STORED
            archive.write(path, f"{top}/{path.relative_to(folder).as_posix()}", compress_type=kind)
        archive.writestr(f"{top}/manifest.json", manifest, compress_type=zipfile.ZIP_DEFLATED)
