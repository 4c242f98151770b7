"""Exports: a set's stems in the shapes other tools read, every format in one place.

===============  ==========================================================================
``folder``       ``<stem>.wav`` (or ``.flac``) per stem and ``mixture.wav``, all on one rate,
                 layout and length, every file starting at sample 0 of the song, and
                 ``export.json`` saying what was done: for a DAW, or any tool that reads files
``musdb``        a MUSDB18-style folder, ``mixture, drums, bass, other, vocals`` at 44.1 kHz
                 stereo: for separation tools and their evaluation (musdb, museval)
``stems-mp4``    a Native Instruments STEMS file (``.stem.mp4``): the mix and the four MUSDB18
                 stems as five AAC or ALAC streams, for Traktor, Mixxx and other DJ software
``zip``          the ``folder`` export zipped, with ``manifest.json`` (sha256 of every file)
``midi``         the stems' notes as one Standard MIDI File (:meth:`StemSet.to_midi`)
===============  ==========================================================================

How the tracks are placed (a stem that starts late against the source is moved into place)
and how a set's stems map onto MUSDB18's four is in :mod:`stemlab.exports.tracks`.

>>> import numpy as np, soundfile as sf, tempfile
>>> from stemlab import StemSet
>>> folder = Path(tempfile.mkdtemp())
>>> t = np.arange(8000) / 8000
>>> sf.write(folder / "vocals.wav", 0.3 * np.sin(2 * np.pi * 220 * t), 8000)
>>> sf.write(folder / "bass.wav", 0.3 * np.sin(2 * np.pi * 55 * t), 8000)
>>> out = export(StemSet.open(folder), folder / "export", bit_depth=16)
>>> sorted(p.name for p in out.iterdir())
['bass.wav', 'export.json', 'mixture.wav', 'vocals.wav']
>>> json.loads((out / "export.json").read_text())["mixture"]
'the sum of the stems'
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UsageError
from ..files import atomic_write_json, sha256_of

__all__ = ["FORMATS", "Exported", "export", "write"]

log = logging.getLogger("stemlab")

#: format name -> what it is for
FORMATS = {
    "folder": "one WAV/FLAC file per stem and the mixture, on one rate and length, for a DAW or any tool",
    "musdb": "a MUSDB18-style folder (mixture, drums, bass, other, vocals; 44.1 kHz stereo)",
    "stems-mp4": "a Native Instruments STEMS file (.stem.mp4) for DJ software",
    "zip": "the folder export as one zip, with manifest.json",
    "midi": "the stems' notes as one Standard MIDI File",
}
#: the MUSDB18 stem files, mixture first
MUSDB_FILES = ("mixture", "drums", "bass", "other", "vocals")
RECORD = "export.json"


@dataclass(frozen=True)
class Exported:
    """What an export wrote: ``path`` (the folder or file), ``files`` (every file written, in
    order) and ``record`` (the facts ``export.json`` holds: rate, channels, length, shifts,
    clipping, notes...; for MIDI only the stems)."""

    format: str
    path: Path
    files: tuple[Path, ...]
    record: dict = field(default_factory=dict)
    #: the notes that were also logged as notices (moved stems, clipping)
    noticed: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        """The CLI's ``export --json`` object: ``format``, ``path``, ``files`` (each with its
        ``path``, ``sha256`` and ``bytes``), and ``sr``, ``channels``, ``length``, ``shifts``,
        ``clipped`` and ``notes`` (null where a format has none, as MIDI)."""
        record = self.record
        return {
            "format": self.format,
            "path": str(self.path),
            "files": [{"path": str(p), "sha256": sha256_of(p), "bytes": p.stat().st_size} for p in self.files],
            "sr": record.get("sr"),
            "channels": record.get("channels"),
            "length": record.get("length"),
            "shifts": record.get("shifts"),
            "clipped": record.get("clipped"),
            "notes": list(record.get("notes", [])),
        }


def export(stemset, path: str | os.PathLike, *, format: str = "folder", **options) -> Path:
    """Write ``stemset`` as ``format`` (see the module docstring) at ``path``; returns the path.

    Parameters
    ----------
    stemset : StemSet
    path : folder (``folder``, ``musdb``) or file (``stems-mp4``, ``zip``, ``midi``)
    format : ``"folder"``, ``"musdb"``, ``"stems-mp4"``, ``"zip"`` or ``"midi"``
    bit_depth : 16, 24 (default) or 32 (float): WAV and FLAC files (FLAC: 16 or 24), and ALAC
    file_format : ``"wav"`` (default) or ``"flac"``, for ``folder``, ``musdb`` and ``zip``
    codec : ``"aac"`` (default, ``bitrate`` kbit/s, default 256) or ``"alac"``, for ``stems-mp4``
    force : replace an existing folder or file (never the set's own folder)
    names, method : for ``midi``: which stems, and one transcription method for all

    >>> demo_song().export("lanterns.stem.mp4", format="stems-mp4")          # doctest: +SKIP
    PosixPath('lanterns.stem.mp4')
    """
    return write(stemset, path, format=format, **options).path


def _check_options(format: str, *, bit_depth: int, file_format: str, codec: str, bitrate: int,
                   names, method) -> None:
    if format not in FORMATS:
        raise UsageError(f"no export format {format!r}; choose one of {', '.join(FORMATS)}")
    if bit_depth not in (16, 24, 32):
        raise UsageError(f"bit_depth must be 16, 24 or 32 (float), not {bit_depth!r}")
    if file_format not in ("wav", "flac"):
        raise UsageError(f"file_format must be 'wav' or 'flac', not {file_format!r}")
    if codec not in ("aac", "alac"):
        raise UsageError(f"codec must be 'aac' or 'alac', not {codec!r}")
    files = format in ("folder", "musdb", "zip")
    if file_format != "wav" and not files:
        raise UsageError(f"file_format (--flac) applies to the folder, musdb and zip exports, not {format}")
    if files and file_format == "flac" and bit_depth == 32:
        raise UsageError("FLAC holds 16 or 24-bit samples: use bit_depth 16 or 24, or WAV for 32-bit float")
    if codec != "aac" and format != "stems-mp4":
        raise UsageError(f"codec (--codec) applies to the stems-mp4 export, not {format}")
    if format == "stems-mp4" and codec == "aac" and bit_depth != 24:
        raise UsageError("AAC has no bit depth: bit_depth applies to ALAC (codec 'alac', 16 or 24-bit)")
    if format == "stems-mp4" and codec == "alac" and bit_depth == 32:
        raise UsageError("ALAC is written 16 or 24-bit: use bit_depth 16 or 24")
    if format == "midi" and bit_depth != 24:
        raise UsageError("bit_depth applies to audio exports, not midi")
    if not 32 <= int(bitrate) <= 512:
        raise UsageError(f"bitrate is in kbit/s, 32 to 512, not {bitrate!r}")
    if (names is not None or method is not None) and format != "midi":
        raise UsageError(f"names and method apply to the midi export, not {format}")


def write(stemset, path: str | os.PathLike, *, format: str = "folder", bit_depth: int = 24,
          file_format: str = "wav", codec: str = "aac", bitrate: int = 256, force: bool = False,
          names: list[str] | None = None, method: str | None = None) -> Exported:
    """:func:`export`, returning the :class:`Exported` record of what was written."""
    if not hasattr(stemset, "conform") or not hasattr(stemset, "tracks"):
        raise UsageError(f"export() takes a stem set (stemlab.StemSet.open(folder), stemlab.open_set(id)), not "
                         f"{type(stemset).__name__}")
    file_format = str(file_format).lower().lstrip(".")
    _check_options(format, bit_depth=bit_depth, file_format=file_format, codec=codec, bitrate=bitrate, names=names,
                   method=method)
    path = Path(path).expanduser()
    from .writing import writing_to

    with writing_to(path):  # a file-system refusal (no such folder, a file in the way...) is said as one line
        if format == "midi":
            return _midi(stemset, path, force=force, names=names, method=method)
        if format == "stems-mp4":
            return _stems_mp4(stemset, path, codec=codec, bitrate=bitrate, bit_depth=bit_depth, force=force)
        if format == "zip":
            return _zip(stemset, path, bit_depth=bit_depth, file_format=file_format, force=force)
        return _folder(stemset, path, format=format, bit_depth=bit_depth, file_format=file_format, force=force)


# ------------------------------------------------------------------------------------- helpers


def _folder(stemset, path: Path, *, format: str, bit_depth: int, file_format: str, force: bool) -> Exported:
    from .writing import staged_folder

    groups = _musdb_plan(stemset) if format == "musdb" else None
    with staged_folder(path, force=force, protect=_inputs(stemset), record=RECORD) as staging:
        record = _write_folder(stemset, staging, format=format, bit_depth=bit_depth, file_format=file_format,
                               groups=groups)
    return Exported(format, path, tuple(path / name for name in record["written"]), _public(record),
                    tuple(record["noticed"]))


def _inputs(stemset) -> tuple[Path, ...]:
    return tuple(track.path for track in stemset.tracks())


def _input_facts(stemset) -> list[dict]:
    """Each input file's name and sha256."""
    return [{"track": track.name, "file": track.path.name, "sha256": sha256_of(track.path)}
            for track in stemset.tracks()]


def _musdb_plan(stemset) -> dict[str, list[str]]:
    from .tracks import musdb_groups

    return musdb_groups(stemset.names)


def _for_musdb(stemset):
    """The set at MUSDB18's and STEMS' rate (44.1 kHz), resampled on decode if needed."""
    from .stems_mp4 import SR

    return stemset if stemset.sr == SR else stemset.with_options(sr=SR)


def _set_facts(stemset) -> dict:
    return {"label": stemset.label, "provider": stemset.provider, "job_id": stemset.job_id,
            "stems": list(stemset.names)}


def _clip_notes(clips: dict, *, pcm_bits: int | None, keeper: str = "32-bit float") -> tuple[dict, list[str]]:
    """The clipping record and its notices: PCM (``pcm_bits``) clips at ±1, and the clipped
    samples are counted; ``keeper`` (32-bit float, AAC) keeps the peaks, which players will clip."""
    clipped, notes = {}, []
    for name, clip in clips.items():
        if clip.clipped:
            clipped[name] = {"samples": clip.clipped, "peak": round(clip.peak, 6)}
            notes.append(f"{name}: {clip.clipped:,} samples above full scale (peak {clip.peak:.3f}, "
                         f"{20 * math.log10(clip.peak):+.1f} dBFS) were clipped to ±1 by {pcm_bits}-bit PCM"
                         + ("; export with bit_depth 32 (float) to keep them" if keeper == "32-bit float" else ""))
        elif clip.peak > 1.0:
            notes.append(f"{name}: peaks at {clip.peak:.3f}, above full scale; {keeper} keeps it, but a player will "
                         f"clip it")
    return clipped, notes


def _write_folder(stemset, folder: Path, *, format: str, bit_depth: int, file_format: str,
                  groups: dict | None) -> dict:
    """Write the tracks of a ``folder`` or ``musdb`` export into ``folder`` and return its
    record (also written there as ``export.json``)."""
    from .tracks import Placement
    from .writing import SUBTYPES, check_stem_name, write_audio

    if groups is None:  # the stems' names become file names: refused before anything is decoded
        for name in stemset.names:
            check_stem_name(name)
    source_set = _for_musdb(stemset) if format == "musdb" else stemset
    placement = Placement(source_set, channels=2 if format == "musdb" else None)
    suffix = f".{file_format}"
    clips, written, files = {}, [], {}

    def put(name: str, audio) -> None:
        filename = f"{name}{suffix}"
        clips[filename] = write_audio(folder / filename, audio, placement.sr, bit_depth=bit_depth,
                                      file_format=file_format)
        written.append(filename)
        files[name] = filename

    put("mixture", placement.mixture())
    notes = [str(step) for step in placement.steps] + placement.shift_notes()
    if groups is None:
        for name in placement.names:
            put(name, placement.stem(name))
    else:
        for name in MUSDB_FILES[1:]:
            put(name, placement.group(groups[name]))
        if not groups["other"]:
            notes.append("other: no stem of this set holds anything beyond the drums, bass and vocals, so "
                         "other is silent")
    if not placement.has_source:
        notes.append("this set has no source: the mixture is the sum of the stems, and the stems are written as "
                     "they are (there is nothing to place them against)")
    clipped, clip_notes = _clip_notes(clips, pcm_bits=bit_depth if bit_depth != 32 else None)
    notes += clip_notes
    noticed = _notice(placement.shift_notes() + clip_notes)
    record = {
        "format": format,
        "sr": placement.sr,
        "channels": placement.channels,
        "length": placement.length,
        "duration_s": round(placement.length / placement.sr, 6),
        "bit_depth": bit_depth,
        "subtype": SUBTYPES[bit_depth],
        "file_format": file_format,
        "mixture": "the source" if placement.has_source else "the sum of the stems",
        "files": files,
        **({"groups": groups} if groups is not None else {}),
        "shifts": dict(placement.shifts),
        "clipped": clipped,
        "steps": [step.to_dict() for step in placement.steps],
        "notes": notes,
        "set": _set_facts(stemset),
        "inputs": _input_facts(stemset),
    }
    atomic_write_json(folder / RECORD, record)
    return {**record, "written": [*written, RECORD], "noticed": noticed}


def _notice(notes: list[str]) -> list[str]:
    """Log ``notes`` as notices (``stemlab: export: ...`` on the command line); returns them."""
    for note in notes:
        log.warning("export: %s", note)
    return notes


def _public(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in ("written", "noticed")}


def _zip(stemset, path: Path, *, bit_depth: int, file_format: str, force: bool) -> Exported:
    from .writing import file_facts, refuse_existing_file, zip_folder

    refuse_existing_file(path, force=force)
    path.parent.mkdir(parents=True, exist_ok=True)
    top = path.name[: -len(".zip")] if path.name.lower().endswith(".zip") else path.stem or "stems"
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as scratch:
        folder = Path(scratch) / top
        folder.mkdir()
        record = _write_folder(stemset, folder, format="folder", bit_depth=bit_depth, file_format=file_format,
                               groups=None)
        facts = [file_facts(folder / name, root=folder) for name in record["written"]]
        manifest = {"format": "zip", "folder": top, "files": facts}
        zip_folder(folder, path, top=top, manifest=(json.dumps(manifest, indent=2) + "\n").encode("utf-8"))
    return Exported("zip", path, (path,), {**_public(record), "format": "zip", "manifest": manifest},
                    tuple(record["noticed"]))


def _stems_mp4(stemset, path: Path, *, codec: str, bitrate: int, bit_depth: int, force: bool) -> Exported:
    from .stems_mp4 import require_av, stem_metadata, write_stems_mp4
    from .tracks import MUSDB_STEMS, Placement, musdb_groups
    from .writing import measure, refuse_existing_file

    require_av()  # before any decoding: a missing PyAV is said at once
    groups = musdb_groups(stemset.names)
    refuse_existing_file(path, force=force)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.name.lower().endswith((".stem.mp4", ".stem.m4a")):
        log.warning("export: %s does not end in .stem.mp4, which DJ software looks for", path.name)
    source_set = _for_musdb(stemset)
    placement = Placement(source_set, channels=2)
    tracks = [("Master", placement.mixture())] + [(name.capitalize(), placement.group(groups[name]))
                                                  for name in MUSDB_STEMS]
    clips = {title: measure(audio, pcm=codec == "alac") for title, audio in tracks}  # ALAC is PCM: clips at ±1
    metadata = stem_metadata(MUSDB_STEMS)
    write_stems_mp4(path, tracks, codec=codec, bitrate=bitrate, bit_depth=bit_depth, metadata=metadata)
    clipped, clip_notes = _clip_notes(clips, pcm_bits=bit_depth if codec == "alac" else None,
                                      keeper="ALAC" if codec == "alac" else "AAC")
    notes = [str(step) for step in placement.steps] + placement.shift_notes() + clip_notes
    if not groups["other"]:
        notes.append("other: no stem of this set holds anything beyond the drums, bass and vocals, so other is "
                     "silent")
    if not placement.has_source:
        notes.append("this set has no source: the master is the sum of the stems")
    noticed = _notice(placement.shift_notes() + clip_notes)
    record = {"format": "stems-mp4", "sr": placement.sr, "channels": 2, "length": placement.length,
              "duration_s": round(placement.length / placement.sr, 6), "codec": codec,
              **({"bitrate_kbps": int(bitrate)} if codec == "aac" else {"bit_depth": bit_depth}),
              "streams": ["master", *MUSDB_STEMS], "groups": groups, "stem_metadata": metadata,
              "mixture": "the source" if placement.has_source else "the sum of the stems",
              "shifts": dict(placement.shifts), "clipped": clipped,
              "steps": [step.to_dict() for step in placement.steps], "notes": notes,
              "set": _set_facts(stemset), "inputs": _input_facts(stemset)}
    return Exported("stems-mp4", path, (path,), record, tuple(noticed))


def _midi(stemset, path: Path, *, force: bool, names, method) -> Exported:
    from .writing import refuse_existing_file

    names = list(dict.fromkeys(names or stemset.names))
    unknown = [name for name in names if name not in stemset]
    if unknown:
        raise UsageError(f"no stem {unknown[0]!r} in this set; it has {', '.join(stemset.names)}")
    refuse_existing_file(path, force=force)
    path.parent.mkdir(parents=True, exist_ok=True)
    stemset.to_midi(path, names=names, method=method)
    return Exported("midi", path, (path,), {"format": "midi", "stems": names, "notes": []})
