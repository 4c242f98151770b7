"""The on-disk library of songs the sandbox serves, and how to write and read it.

Layout (one folder per song; every file but ``source.mp3`` is optional)::

    <library>/<song_id>/song.json                 metadata, see below
    <library>/<song_id>/source.mp3                the song itself (the Suno clip, Apiframe track)
    <library>/<song_id>/stems/<name>.mp3          12-stem split (CQTAI gen_stem_all); names from
                                                  stemlab.taxonomy.TWELVE_STEMS, a subset is fine,
                                                  other names are served with a title-cased label
    <library>/<song_id>/two/vocals.mp3            2-stem split (CQTAI gen_stem_two, Apiframe stems)
    <library>/<song_id>/two/instrumental.mp3

``song.json`` (every key optional)::

    {"title": "Demo song",                       # default: the song id
     "tags": "synthwave, test",                  # Apiframe track tags, default null
     "clip_id": "<song_id>",                     # Suno clip id (CQTAI clipId, cdn1 file name)
     "parent_job_id": "<uuid5>",                 # Apiframe job whose result holds this song
     "tracks": [{"id": "<uuid5>"},               # that job's tracks; track 1 is this song,
                {"id": "<uuid>", "song": "b"}],  # a 2nd track may point at another song
     "labels": {"instrumental": "Accompaniment"},# provider label overrides, by file name ("apiframe/<name>":
                                                 # the Apiframe track id of two/<name>)
     "durations": {"stems/vocals": 6.5}}         # stated durations, by file key (else measured)

File keys are paths without ``.mp3``: ``"source"``, ``"stems/<name>"``, ``"two/<name>"``.
Hidden folders (``.x``, ``_x``) are ignored.

>>> import numpy as np, tempfile
>>> root = tempfile.mkdtemp()
>>> tone = np.zeros((2, 44100), np.float32)
>>> song = write_song(root, "a", stems={"vocals": tone, "bass": tone})
>>> sorted(song.two), song.clip_id
(['instrumental', 'vocals'], 'a')
>>> list(read_library(root))
['a']
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Mapping, Union

import numpy as np

from ..audio import probe
from ..dsp import sum_tracks
from ..encode import mp3_bytes as encode_mp3
from ..errors import ConfigError, DecodeError
from ..taxonomy import GROUPS, TWELVE_STEMS, TWO_STEMS

__all__ = ["Song", "Track", "AudioInput", "write_song", "derive_two", "read_song", "read_library",
           "encode_mp3", "mp3_duration", "default_parent_job_id", "default_track_id", "SONG_FILE"]

SONG_FILE = "song.json"
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://stemlab.invalid/sandbox")

AudioInput = Union[np.ndarray, bytes, str, os.PathLike]
"""Audio to store: a float array ``(channels, samples)``, MP3 bytes, or the path of an MP3."""


def default_parent_job_id(song_id: str) -> str:
    """The Apiframe parent job id a song gets when ``song.json`` names none (a uuid5)."""
    return str(uuid.uuid5(_NAMESPACE, f"parent/{song_id}"))


def default_track_id(song_id: str, number: int = 1) -> str:
    """The id of track ``number`` (1-based) of a song's parent job when none is given (a uuid5)."""
    return str(uuid.uuid5(_NAMESPACE, f"track/{song_id}/{number}"))


@dataclass(frozen=True)
class Track:
    """One track of a song's Apiframe parent job: its id and the library song it plays."""

    id: str
    song_id: str

    @property
    def song(self) -> str:
        """The played song's id, under its ``song.json`` key name."""
        return self.song_id


@dataclass
class Song:
    """One library song: its files and metadata, as read from its folder.

    ``stems`` and ``two`` map names (``"vocals"``, ``"bass"`` ...) to MP3 paths, in
    taxonomy order.
    """

    song_id: str
    folder: Path
    title: str
    clip_id: str
    parent_job_id: str
    tracks: tuple[Track, ...]
    stems: dict[str, Path] = field(default_factory=dict)
    two: dict[str, Path] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    durations: dict[str, float] = field(default_factory=dict)
    tags: str | None = None

    @property
    def source(self) -> Path:
        """Path of ``source.mp3``."""
        return self.folder / "source.mp3"

    def split(self, kind: str) -> dict[str, Path]:
        """The files of one split: ``kind`` is ``"stems"`` (12-stem) or ``"two"`` (2-stem)."""
        return {"stems": self.stems, "two": self.two}[kind]

    def duration(self, key: str) -> float | None:
        """Duration in seconds of file ``key`` (``"source"``, ``"stems/bass"``, ``"two/vocals"``).

        A duration stated in ``song.json`` wins; otherwise the MP3 is measured. ``None`` when
        the file cannot be decoded.
        """
        if key in self.durations:
            return float(self.durations[key])
        kind, _, name = key.partition("/")
        path = self.source if key == "source" else self.split(kind)[name]
        return mp3_duration(path)


# ----------------------------------------------------------------------------- measuring


def mp3_duration(path: str | os.PathLike) -> float | None:
    """True duration of an MP3 in seconds (:func:`stemlab.audio.probe`: every frame is counted),
    or ``None`` if unreadable. Cached per path, size and modification time.
    """
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return _measure(os.fspath(path), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=4096)
def _measure(path: str, size: int, mtime_ns: int) -> float | None:
    try:
        return probe(path).duration
    except DecodeError:
        return None


# ----------------------------------------------------------------------------- writing


def _store(dest: Path, value: AudioInput, sr: int) -> None:
    """Write one audio input to ``dest`` as MP3 (encode an array, write bytes, copy a file)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(value, np.ndarray):
        dest.write_bytes(encode_mp3(value, sr))
    elif isinstance(value, (bytes, bytearray, memoryview)):
        dest.write_bytes(bytes(value))
    else:
        shutil.copyfile(value, dest)


def derive_two(stems: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The 2-stem split implied by a 12-stem split: vocals (+ backing) and everything else.

    >>> one = np.ones((2, 3), np.float32)
    >>> two = derive_two({"vocals": one, "backing_vocals": one, "bass": one})
    >>> {name: float(audio.sum()) for name, audio in two.items()}
    {'vocals': 12.0, 'instrumental': 6.0}
    """
    vocal_names = GROUPS["vocals"]
    channels = max(np.atleast_2d(a).shape[0] for a in stems.values())
    length = max(np.atleast_2d(a).shape[-1] for a in stems.values())
    return {"vocals": sum_tracks([a for n, a in stems.items() if n in vocal_names], channels=channels, length=length),
            "instrumental": sum_tracks([a for n, a in stems.items() if n not in vocal_names], channels=channels,
                                       length=length)}


def write_song(root: str | os.PathLike, song_id: str, *, stems: Mapping[str, AudioInput],
               source: AudioInput | None = None, two: Mapping[str, AudioInput] | None = None,
               sr: int = 44100, title: str | None = None, clip_id: str | None = None,
               parent_job_id: str | None = None, tracks: list[dict] | None = None,
               labels: Mapping[str, str] | None = None, durations: Mapping[str, float] | None = None,
               tags: str | None = None) -> Song:
    """Write one song folder (see the module docstring for the layout) and read it back.

    Parameters
    ----------
    root, song_id : the library folder and the song's folder name.
    stems : 12-stem split, canonical name -> array ``(channels, samples)``, MP3 bytes or path.
    source : the mix; default the sum of ``stems`` (they must then all be arrays).
    two : 2-stem split ``{"vocals": ..., "instrumental": ...}``; default derived from array
        stems with :func:`derive_two`, none if the stems are not arrays.
    sr : sample rate used to encode arrays.
    title, clip_id, parent_job_id, tracks, labels, durations, tags : ``song.json`` fields.

    Returns
    -------
    Song
    """
    folder = Path(root) / song_id
    arrays = {n: a for n, a in stems.items() if isinstance(a, np.ndarray)}
    all_arrays = len(arrays) == len(stems) and bool(stems)
    if source is None:
        if not all_arrays:
            raise ConfigError("write_song needs source= unless every stem is an array")
        source = sum_tracks(arrays.values())
    if two is None and all_arrays:
        two = derive_two(arrays)
    jobs = {folder / "source.mp3": source}
    jobs.update({folder / "stems" / f"{n}.mp3": a for n, a in stems.items()})
    jobs.update({folder / "two" / f"{n}.mp3": a for n, a in (two or {}).items()})
    folder.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:  # LAME releases the GIL
        list(pool.map(lambda item: _store(item[0], item[1], sr), jobs.items()))
    meta = {"title": title or song_id, "tags": tags, "clip_id": clip_id or song_id,
            "parent_job_id": parent_job_id or default_parent_job_id(song_id),
            "tracks": tracks or [{"id": default_track_id(song_id)}],
            "labels": dict(labels or {}), "durations": dict(durations or {})}
    (folder / SONG_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return read_song(folder)


# ----------------------------------------------------------------------------- reading


def _ordered_mp3s(folder: Path, order: tuple[str, ...]) -> dict[str, Path]:
    """``name -> path`` of ``folder/*.mp3``: names in ``order`` first, the others sorted."""
    found = {p.stem: p for p in sorted(folder.glob("*.mp3"))} if folder.is_dir() else {}
    known = [n for n in order if n in found]
    return {n: found[n] for n in known + sorted(set(found) - set(known))}


def read_song(folder: str | os.PathLike) -> Song:
    """Read one song folder. Raises :class:`~stemlab.errors.ConfigError` if it is unusable."""
    folder = Path(folder)
    song_id = folder.name
    meta_path = folder / SONG_FILE
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"sandbox library: cannot read {meta_path}: {exc}") from exc
    if not isinstance(meta, dict):
        raise ConfigError(f"sandbox library: {meta_path} must hold a JSON object")
    if not (folder / "source.mp3").is_file():
        raise ConfigError(f"sandbox library: {folder} has no source.mp3")
    tracks = tuple(Track(id=str(t.get("id") or default_track_id(song_id, i + 1)),
                         song_id=str(t.get("song") or song_id))
                   for i, t in enumerate(meta.get("tracks") or [{}]))
    if tracks[0].song_id != song_id or len(tracks) > 2:
        raise ConfigError(f"sandbox library: {meta_path}: track 1 must be the song itself, "
                          "and there are at most 2 tracks")
    return Song(song_id=song_id, folder=folder, title=str(meta.get("title") or song_id),
                clip_id=str(meta.get("clip_id") or song_id),
                parent_job_id=str(meta.get("parent_job_id") or default_parent_job_id(song_id)),
                tracks=tracks, stems=_ordered_mp3s(folder / "stems", TWELVE_STEMS),
                two=_ordered_mp3s(folder / "two", TWO_STEMS), labels=dict(meta.get("labels") or {}),
                durations={k: float(v) for k, v in (meta.get("durations") or {}).items()},
                tags=meta.get("tags"))


def read_library(root: str | os.PathLike) -> dict[str, Song]:
    """Read every song folder under ``root``: ``song_id -> Song``, sorted by id.

    Checks that clip ids, parent job ids and track ids are unique and that 2nd tracks point
    at songs that exist; raises :class:`~stemlab.errors.ConfigError` otherwise.
    """
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"sandbox library folder not found: {root}")
    songs = {p.name: read_song(p) for p in sorted(root.iterdir())
             if p.is_dir() and not p.name.startswith((".", "_"))}
    ids: dict[str, str] = {}
    for song in songs.values():
        for kind, value in [("clip id", song.clip_id), ("parent job id", song.parent_job_id),
                            *[("track id", t.id) for t in song.tracks]]:
            if value in ids:
                raise ConfigError(f"sandbox library: {kind} {value!r} of {song.song_id!r} "
                                  f"is already used by {ids[value]!r}")
            ids[value] = song.song_id
        missing = [t.song_id for t in song.tracks if t.song_id not in songs]
        if missing:
            raise ConfigError(f"sandbox library: {song.song_id!r} has a track playing unknown "
                              f"song {missing[0]!r}")
    return songs
