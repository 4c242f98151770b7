"""``StemSet``: the one object everything else takes. It loads lazily and holds no widget state.

>>> s = StemSet.open("~/.cache/stemlab/sets/cqtai-12-05d72140")      # doctest: +SKIP
>>> s.names                                                          # doctest: +SKIP
['vocals', 'backing_vocals', 'drums', ...]
>>> s["drums"].audio.shape, s.sr                                     # doctest: +SKIP
((2, 7938000), 44100)

A set folder is either a cache set (with ``manifest.json``) or any folder of audio files named
``<stem>.<ext>`` (wav, flac, ogg, mp3), where ``source.*`` or ``mixture.*`` is the source.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from pathlib import Path
from typing import Iterator, Mapping

import numpy as np

from .audio import AudioInfo, Scratch, decode, decode_cached, probe
from .cache import REPAIR_ADVICE, Cache, read_record
from .config import Settings
from .conform import Conformed, conform
from .errors import CacheError, UsageError
from .files import derived_file
from .rendering import Rendered
from .taxonomy import TWELVE_STEMS, TWO_STEMS, canonical_name, safe_name

__all__ = ["Stem", "StemSet", "AUDIO_EXTENSIONS"]

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
SOURCE_NAMES = ("source", "mixture", "mix")


class Stem(Rendered):
    """One audio track of a :class:`StemSet` (a stem, or the source).

    ``audio`` is a read-only float32 ``(channels, samples)`` array at the set's ``sr``, decoded
    once and then memory-mapped from the set's ``derived/`` folder.
    """

    _view = "stemlab.view.set_view"

    def __init__(self, owner: "StemSet", name: str, path: Path, *, label: str | None = None,
                 stated_duration: float | None = None, sha256: str | None = None, decoded: Mapping | None = None):
        self._owner = owner
        self.name = name
        self.path = Path(path)
        self.label = label or name
        self.stated_duration = stated_duration
        self._sha256 = sha256
        self._decoded = dict(decoded or {})
        self._audio: np.ndarray | None = None

    def __repr__(self) -> str:
        return f"<Stem {self.name!r} {self.duration:.2f} s from {self.path.name}>"

    def _ipython_display_(self) -> None:
        """A player that plays through the kernel (no audio in the notebook; see ``view.set_view``)."""
        self._renderer().display(self)

    @cached_property
    def info(self) -> AudioInfo:
        """Header facts (rate, channels, true frame count) without decoding: as the manifest
        recorded them when the file was fetched (its bytes are checked against its sha256 by
        ``stemlab cache verify``), else read from the file."""
        try:
            return AudioInfo(**{**self._decoded, "format": self._decoded.get("format")
                                or self.path.suffix.lstrip(".").upper()})
        except TypeError:  # no record (a folder, a local set), or an older one
            return probe(self.path)

    @property
    def sr(self) -> int:
        return self._owner.sr

    @property
    def duration(self) -> float:
        """The file's true length in seconds (from a header read and frame scan; no decode)."""
        return self.info.duration

    @property
    def native_sr(self) -> int:
        """The file's own sample rate (``audio`` is at the set's rate, :attr:`sr`)."""
        return self.info.sr

    @cached_property
    def token(self) -> str:
        """Identifies this file's content for derived-data file names."""
        if self._sha256:
            return self._sha256[:16]
        stat = self.path.stat()
        return hashlib.sha256(f"{self.path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]

    def derived_path(self, kind: str, suffix: str) -> Path:
        """A file in the set's derived folder that belongs to this stem's current content."""
        return derived_file(self._owner.derived_dir, f"{self.name}.{self.token}.{kind}{suffix}")

    @property
    def audio(self) -> np.ndarray:
        """The decoded track at the set's rate (resampled if the file's own rate differs)."""
        return self.load()

    def load(self, *, scratch: Scratch | None = None) -> np.ndarray:
        """``audio``, decoding it into the set's ``derived/`` folder first if needed."""
        if self._audio is None:
            sr, mono = self.sr, self._owner.mono
            kind = f"{'native' if sr == self.native_sr else sr}{'.mono' if mono else ''}"
            if self._owner.keep_decoded:
                self._audio = decode_cached(self.path, self.derived_path(kind, ".npy"), sr=sr, mono=mono,
                                            scratch=scratch)
            else:  # decoded straight into memory: nothing is written
                self._audio = decode(self.path, sr=sr, mono=mono)[0]
                self._audio.flags.writeable = False
        return self._audio

    @property
    def mp3_path(self) -> Path:
        """Where this stem's MP3 is (or will be, once :meth:`mp3_bytes` encodes it)."""
        return self.path if self.path.suffix.lower() == ".mp3" else self.derived_path("player", ".mp3")

    def mp3_bytes(self) -> bytes:
        """The stem as MP3 bytes: the cached file itself, or an MP3 encoded once into ``derived/``."""
        target = self.mp3_path
        if not target.exists():
            from .encode import write_mp3

            write_mp3(target, np.asarray(self.audio), self.sr)
        return target.read_bytes()

    # -- notes --------------------------------------------------------------------------------
    def notes(self, *, method: str | None = None):
        """This stem's notes as a table (onset, offset, pitch, velocity, confidence), transcribed
        once by its kind's method (or ``method``: "monophonic", "polyphonic", "drums") and cached.
        A stem that is silent in its set has none. See :mod:`stemlab.transcription`.

        >>> demo_song()["bass"].notes().pitch.iloc[0]                   # doctest: +SKIP
        29
        """
        from .transcription.stems import stem_notes

        return stem_notes(self, method=method, silence_db=lambda: self._owner.silence_db)

    def midi(self, *, method: str | None = None):
        """This stem's notes as a :class:`pretty_midi.PrettyMIDI` with one instrument, named after
        the stem, with its kind's General MIDI program (drums on the percussion channel)."""
        from .transcription.midi import to_pretty_midi

        return to_pretty_midi(self.notes(method=method).assign(stem=self.name), stems=[self.name])


class StemSet(Rendered):
    """A set of stems, the source track they were split from, and where they came from.

    Build one with :func:`stemlab.fetch`, :func:`stemlab.separate`, :meth:`StemSet.open` or
    :meth:`StemSet.from_files`. Indexing by canonical name gives a :class:`Stem`.

    Parameters
    ----------
    sr : int, optional
        Rate of every ``.audio`` array. Default: the source's native rate.
    mono : bool
        Mix every stem down to one channel.
    keep_decoded : bool
        Keep decoded arrays in the ``derived/`` folder (memory-mapped, decoded once); False
        decodes into memory each time and writes nothing (a study over many songs).
    """

    _view = "stemlab.view.set_view"

    def __init__(self, stems: Mapping[str, Path] | None = None, *, source: Path | None = None,
                 folder: Path | None = None, manifest: Mapping | None = None, derived_dir: Path | None = None,
                 sr: int | None = None, mono: bool = False, keep_decoded: bool = True):
        self.folder = Path(folder) if folder else None
        self.manifest = dict(manifest or {})
        self.mono = bool(mono)
        self.keep_decoded = bool(keep_decoded)
        self._target_sr = sr
        self._derived_dir = Path(derived_dir) if derived_dir else None
        self._conformed: Conformed | None = None
        records = {s["name"]: s for s in self.manifest.get("stems", [])}
        self._stems: dict[str, Stem] = {}
        for name, path in _in_canonical_order(stems or {}).items():
            record = records.get(name, {})
            self._stems[name] = Stem(self, name, path, label=record.get("label"),
                                     stated_duration=record.get("stated_duration"), sha256=record.get("sha256"),
                                     decoded=record.get("decode"))
        src = self.manifest.get("source") or {}
        self.source: Stem | None = (Stem(self, "source", source, label="source", sha256=src.get("sha256"),
                                         stated_duration=src.get("stated_duration"), decoded=src.get("decode"))
                                    if source else None)
        if not self._stems:
            raise UsageError("a stem set needs at least one stem")

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def open(cls, folder: str | os.PathLike, *, sr: int | None = None, mono: bool = False,
             cache_dir: str | os.PathLike | None = None, settings: Settings | None = None,
             keep_decoded: bool = True) -> "StemSet":
        """Open a cache set folder (with ``manifest.json``) or a folder of ``<stem>.<ext>`` files.

        A cache set keeps its derived data in its own ``derived/`` folder; any other folder's goes
        to the cache (``cache_dir``, else ``settings``, else the environment's), never beside it.
        """
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            raise UsageError(f"{folder} is not a folder")
        manifest_path = folder / "manifest.json"
        if not manifest_path.exists():
            return cls.from_folder(folder, sr=sr, mono=mono, cache_dir=cache_dir, settings=settings,
                                   keep_decoded=keep_decoded)
        manifest = read_record(manifest_path) or {}
        try:
            stems = {s["name"]: folder / s["path"] for s in manifest.get("stems", [])}
        except (TypeError, KeyError, AttributeError):
            raise CacheError(f"{manifest_path} lists its stems wrongly; {REPAIR_ADVICE}") from None
        missing = [p.name for p in stems.values() if not p.exists()]
        if missing:
            raise CacheError(f"{folder} lacks {', '.join(missing)}; {REPAIR_ADVICE}")
        source = manifest.get("source")
        source_path = folder / source["path"] if source else None
        return cls(stems, source=source_path, folder=folder, manifest=manifest, derived_dir=folder / "derived",
                   sr=sr, mono=mono, keep_decoded=keep_decoded)

    @classmethod
    def from_folder(cls, folder: str | os.PathLike, *, sr: int | None = None, mono: bool = False,
                    cache_dir: str | os.PathLike | None = None, settings: Settings | None = None,
                    keep_decoded: bool = True) -> "StemSet":
        """A folder of ``<stem>.<ext>`` files (e.g. Demucs output, a DAW export, a MUSDB18 track)."""
        folder = Path(folder).expanduser()
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
        source = next((p for p in files if p.stem.lower() in SOURCE_NAMES), None)
        stems: dict[str, Path] = {}
        for path in files:
            if path is source:
                continue
            stems[safe_name(path.stem, taken=stems)] = path
        if not stems:
            raise UsageError(f"{folder} holds no audio files named <stem>.wav/.flac/.ogg/.mp3")
        derived = Cache(Settings.of(settings, cache_dir=cache_dir).cache_dir).derived_dir_for([folder])
        manifest = {"provider": "folder", "job_id": None, "request": {"folder": str(folder.resolve())},
                    "stems": [{"name": n, "label": p.stem, "path": p.name} for n, p in stems.items()]}
        return cls(_in_canonical_order(stems), source=source, folder=folder, manifest=manifest,
                   derived_dir=derived, sr=sr, mono=mono, keep_decoded=keep_decoded)

    @classmethod
    def from_files(cls, stems: Mapping[str, str | os.PathLike], *, source: str | os.PathLike | None = None,
                   sr: int | None = None, mono: bool = False, cache_dir: str | os.PathLike | None = None,
                   settings: Settings | None = None) -> "StemSet":
        """A set from explicit paths: ``StemSet.from_files({"vocals": "v.wav", ...}, source="mix.wav")``."""
        paths = {canonical_name(n) or safe_name(n): Path(p) for n, p in stems.items()}
        for path in [*paths.values(), *([Path(source)] if source else [])]:
            if not path.is_file():
                raise UsageError(f"no audio file at {path}")
        derived = Cache(Settings.of(settings, cache_dir=cache_dir).cache_dir).derived_dir_for(paths.values())
        manifest = {"provider": "files", "job_id": None, "request": {},
                    "stems": [{"name": n, "label": n, "path": str(p)} for n, p in paths.items()]}
        return cls(_in_canonical_order(paths), source=Path(source) if source else None, manifest=manifest,
                   derived_dir=derived, sr=sr, mono=mono)

    def with_options(self, *, sr: int | None = None, mono: bool | None = None) -> "StemSet":
        """The same set with other ``sr``/``mono`` (decoded arrays are cached per option)."""
        stems = {n: s.path for n, s in self._stems.items()}
        return StemSet(stems, source=self.source.path if self.source else None, folder=self.folder,
                       manifest=self.manifest, derived_dir=self._derived_dir, sr=sr if sr else self._target_sr,
                       mono=self.mono if mono is None else mono, keep_decoded=self.keep_decoded)

    # -- facts --------------------------------------------------------------------------------
    @property
    def provider(self) -> str | None:
        return self.manifest.get("provider")

    @property
    def job_id(self) -> str | None:
        return self.manifest.get("job_id")

    @property
    def request(self) -> dict:
        return dict(self.manifest.get("request") or {})

    @property
    def label(self) -> str:
        """A short name for tables: ``cqtai-12``, ``cqtai-2``, ``apiframe``, ``local-hpss``, a folder's name..."""
        request = self.request
        if self.provider == "cqtai":
            return "cqtai-2" if request.get("task") == "gen_stem_two" else "cqtai-12"
        if self.provider == "local":
            return f"local-{self.manifest.get('method', 'unknown')}"
        if self.provider in ("folder", "files"):
            return self.folder.name if self.folder else "files"
        return self.provider or "set"

    @property
    def source_error(self) -> str | None:
        """Why a fetched set has no source track (its download failed after the stems were paid
        for), else None."""
        return self.manifest.get("source_error") if self.source is None else None

    @property
    def key(self) -> str | None:
        return self.manifest.get("key") or (self.folder.name if self.folder else None)

    @property
    def derived_dir(self) -> Path:
        if self._derived_dir is None:
            raise CacheError("this stem set has no folder for derived data")
        return self._derived_dir

    @cached_property
    def sr(self) -> int:
        """The rate of every ``.audio``: as asked, else the source's native rate, else the highest
        native rate among the stems (so nothing is downsampled unasked)."""
        if self._target_sr:
            return int(self._target_sr)
        if self.source is not None:
            return self.source.native_sr
        return max(stem.native_sr for stem in self)

    def conform(self) -> Conformed:
        """The set on one rate, channel layout and length, with the steps taken (computed once;
        see :mod:`stemlab.conform`). Every analysis works on this."""
        if self._conformed is None:
            self._conformed = conform(self.arrays(), source=self.source.audio if self.source else None,
                                      sr=self.sr, native={t.name: t.info for t in self.tracks()})
        return self._conformed

    def tracks(self) -> list[Stem]:
        """The source (if any), then every stem."""
        return [*([self.source] if self.source else []), *self]

    @property
    def duration(self) -> float:
        """The source's duration, or the longest stem's when there is no source."""
        if self.source is not None:
            return self.source.duration
        return max(s.duration for s in self)

    @property
    def names(self) -> list[str]:
        return list(self._stems)

    @property
    def taxonomy(self) -> tuple[str, ...]:
        names = set(self._stems)
        if names <= set(TWO_STEMS):
            return TWO_STEMS
        return TWELVE_STEMS if names <= set(TWELVE_STEMS) else tuple(self._stems)

    def __getitem__(self, name: str) -> Stem:
        try:
            return self._stems[name]
        except KeyError:
            if name == "source" and self.source is not None:
                return self.source
            raise KeyError(f"no stem {name!r} in this set; it has {', '.join(self._stems)}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._stems

    def __iter__(self) -> Iterator[Stem]:
        return iter(self._stems.values())

    def __len__(self) -> int:
        return len(self._stems)

    def __repr__(self) -> str:
        origin = f"{self.provider} job {self.job_id}" if self.job_id else (self.provider or "files")
        return f"<StemSet {len(self)} stems ({', '.join(self.names)}) from {origin}>"

    def _ipython_display_(self) -> None:
        """A table of the tracks whose players play through the kernel (see ``view.set_view``)."""
        self._renderer().display(self)

    # -- bulk access --------------------------------------------------------------------------
    def decode_all(self, *, max_workers: int | None = None) -> "StemSet":
        """Decode (or map) the source and every stem now, in parallel threads. Returns ``self``."""
        tracks = self.tracks()
        scratch = Scratch()  # one decode buffer per worker thread, freed with them
        with ThreadPoolExecutor(max_workers=max_workers or min(len(tracks), os.cpu_count() or 2)) as pool:
            list(pool.map(lambda t: t.load(scratch=scratch), tracks))
        return self

    @cached_property
    def silence_db(self) -> float:
        """The level (dBFS) below which a stem of this set is silent: 60 dB below the source, or
        the backstop of :mod:`stemlab.dsp` when there is no source."""
        from .dsp import silence_threshold

        return silence_threshold(self.source.audio if self.source is not None else None)

    def notes(self, names: list[str] | None = None, *, method: str | None = None, progress: bool = False):
        """The notes of every stem (or of ``names``) in one table, with a ``stem`` column in front;
        see :meth:`Stem.notes`. Stems are transcribed in parallel threads (one per core), with a
        progress bar when ``progress``."""
        import pandas as pd

        from .progress import progress_bar
        from .transcription.notes import NOTE_COLUMNS

        stems = [self[name] for name in (names or self.names)]
        with ThreadPoolExecutor(max_workers=min(len(stems), os.cpu_count() or 2)) as pool, \
                progress_bar(desc="transcribing", total=len(stems), unit="stem", disable=not progress) as bar:
            futures = [pool.submit(stem.notes, method=method) for stem in stems]
            for future in futures:
                future.add_done_callback(lambda _: bar.update(1))
            tables = [future.result().assign(stem=stem.name) for future, stem in zip(futures, stems)]
        return pd.concat(tables, ignore_index=True)[["stem", *NOTE_COLUMNS]]

    def to_midi(self, path: str | os.PathLike, *, names: list[str] | None = None,
                method: str | None = None) -> Path:
        """Write the notes of every stem (or of ``names``) as one Standard MIDI File: one track per
        stem, named after it, with its kind's General MIDI program; drums on the percussion
        channel; a silent stem's track is empty. Returns the path.

        >>> demo_song().to_midi("paper-lanterns.mid")                     # doctest: +SKIP
        PosixPath('paper-lanterns.mid')
        """
        from .transcription.midi import write_midi

        names = list(names or self.names)
        return write_midi(self.notes(names, method=method), path, stems=names)

    def export(self, path: str | os.PathLike, *, format: str = "folder", **options) -> Path:
        """Write the set for other tools: ``"folder"`` (a WAV per stem and the mixture, aligned),
        ``"musdb"``, ``"stems-mp4"`` (Native Instruments STEMS), ``"zip"`` or ``"midi"``; options
        as :func:`stemlab.exports.export` takes them. Returns the path.

        >>> demo_song().export("paper-lanterns", format="musdb")          # doctest: +SKIP
        PosixPath('paper-lanterns')
        """
        from .exports import export

        return export(self, path, format=format, **options)

    def arrays(self) -> dict[str, np.ndarray]:
        """``{name: audio}`` for every stem (memory-mapped, so cheap)."""
        return {stem.name: stem.audio for stem in self}

    def to_dict(self) -> dict:
        """The facts the CLI's ``fetch --json`` prints."""
        return {
            "provider": self.provider,
            "job_id": self.job_id,
            "set_dir": str(self.folder) if self.folder else None,
            "source": ({"path": str(self.source.path), "duration": round(self.source.duration, 6)}
                       if self.source else None),
            "source_error": self.source_error,
            "stems": [{"name": s.name, "label": s.label, "path": str(s.path), "duration": round(s.duration, 6)}
                      for s in self],
        }


def _in_canonical_order(stems: Mapping[str, Path]) -> dict[str, Path]:
    order: dict[str, int] = {}
    for name in (*TWELVE_STEMS, *TWO_STEMS):
        order.setdefault(name, len(order))
    return dict(sorted(stems.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))
