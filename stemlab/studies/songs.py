"""The songs of a study and the jobs it plans: ``SONGS.csv``, the providers, what each job costs.

``SONGS.csv`` has a header and a ``song`` column (a unique name); any of ``cqtai_clip_id``,
``apiframe_parent_job_id`` with ``apiframe_index`` or ``apiframe_track_id``, and ``truth_dir``
(a folder of the song's true stems). A song given only by an Apiframe parent job is split by
CQTAI too: Apiframe's Suno tracks carry Suno clip ids.

>>> spec = SongSpec("a", apiframe_parent_job_id="p-1", apiframe_index=1)
>>> [job.provider for job in plan_jobs([spec], ["cqtai", "apiframe"])]
['cqtai', 'apiframe']
>>> PROVIDERS["cqtai-two"].credits is None          # gen_stem_two's price is not documented
True
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from ..cache import safe_component
from ..errors import UsageError
from ..fetching import build_request
from ..terminal import printable

__all__ = ["StudyProvider", "PROVIDERS", "DEFAULT_PROVIDERS", "DEFAULT_MAX_JOBS", "SONG_COLUMNS", "SongSpec",
           "Job", "read_songs", "songs_of", "plan_jobs", "parse_providers", "parse_max_jobs", "UNDOCUMENTED_COST"]


@dataclass(frozen=True)
class StudyProvider:
    """One way of splitting a song: the ``fetch`` provider, its options, its account and price."""

    name: str
    fetch_name: str
    two: bool
    account: str  # jobs in flight are limited per account: CQTAI's task limit counts both tasks
    credits: float | None  # documented credits per job; None when the price is not documented
    price_note: str


PROVIDERS = {
    "cqtai": StudyProvider("cqtai", "cqtai", False, "cqtai", 150.0, "gen_stem_all, 150 credits"),
    "cqtai-two": StudyProvider("cqtai-two", "cqtai", True, "cqtai", None,
                               "gen_stem_two, price not documented (60-150 credits for stem separation)"),
    "apiframe": StudyProvider("apiframe", "apiframe", False, "apiframe", 11.0, "stems, 11 credits"),
}
DEFAULT_PROVIDERS = ("cqtai", "apiframe")
#: jobs in flight per account, across all workers. CQTAI documents a limit on running tasks
#: (429 "Task limit reached") but not its size; Apiframe documents none.
DEFAULT_MAX_JOBS = {"cqtai": 2, "apiframe": 4}
#: what a budget counts for a job whose price is not documented: the top of CQTAI's stated
#: range for stem separation, so a budget is never exceeded by a guess
UNDOCUMENTED_COST = 150.0
SONG_COLUMNS = ("song", "cqtai_clip_id", "apiframe_parent_job_id", "apiframe_index", "apiframe_track_id", "truth_dir")


@dataclass(frozen=True)
class SongSpec:
    """One row of ``SONGS.csv``."""

    song: str
    cqtai_clip_id: str | None = None
    apiframe_parent_job_id: str | None = None
    apiframe_index: int | None = None
    apiframe_track_id: str | None = None
    truth_dir: str | None = None

    @property
    def slug(self) -> str:
        """The song's name as a file name."""
        return safe_component(self.song)

    def can(self, provider: str) -> bool:
        """Whether this row says enough to split the song with ``provider``."""
        if PROVIDERS[provider].fetch_name == "apiframe":
            return bool(self.apiframe_parent_job_id)
        return bool(self.cqtai_clip_id or self.apiframe_parent_job_id)


@dataclass(frozen=True)
class Job:
    """One song through one provider."""

    song: SongSpec
    provider: str

    @property
    def kind(self) -> StudyProvider:
        return PROVIDERS[self.provider]

    @property
    def clip_known(self) -> bool:
        """Whether the request is known without asking Apiframe (CQTAI's clip id may come from it)."""
        return self.kind.fetch_name == "apiframe" or bool(self.song.cqtai_clip_id or self.song.apiframe_track_id)

    def arguments(self, clip_id: str | None = None) -> dict:
        """The request arguments of :func:`stemlab.fetch` (CQTAI: ``clip_id`` when it had to be looked up)."""
        song = self.song
        if self.kind.fetch_name == "apiframe":
            return {"parent_job_id": song.apiframe_parent_job_id, "index": song.apiframe_index,
                    "track_id": song.apiframe_track_id}
        return {"clip_id": clip_id or song.cqtai_clip_id or song.apiframe_track_id, "two": self.kind.two}

    def cache_key(self, clip_id: str | None = None) -> str | None:
        """The set's cache key, or None while CQTAI's clip id is still to be looked up."""
        if not (clip_id or self.clip_known):
            return None
        return build_request(self.kind.fetch_name, **self.arguments(clip_id)).cache_key


def _text(value) -> str | None:
    text = "" if value is None else str(value).strip()
    return None if text in ("", "nan", "None") else text


def _whole(text: str, what: str) -> int:
    """``"2"`` or ``"2.0"`` as 2; anything else (1.5, inf, "two") is a UsageError naming ``what``."""
    try:
        number = float(text)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number != int(number):
        raise UsageError(f"{what} must be a whole number, not {text!r}")
    return int(number)


def _folder(text: str, base: Path | None, where: str) -> str:
    """A ``truth_dir`` as an absolute path (relative ones are relative to the songs file)."""
    try:
        path = Path(text).expanduser()
    except RuntimeError:  # ~someone, who has no home here
        raise UsageError(f"{where}: truth_dir {text!r} names an unknown home folder") from None
    path = base / path if base is not None else path
    if not path.is_dir():
        raise UsageError(f"{where}: truth_dir {path} is not a folder")
    return str(path)


def _spec(row: Mapping, where: str, base: Path | None = None) -> SongSpec:
    values = {name: _text(row.get(name)) for name in SONG_COLUMNS}
    if not values["song"]:
        raise UsageError(f"{where} has no song name; every row needs one in the 'song' column")
    where = f"{where} ({printable(values['song'])[:60]})"
    try:
        safe_component(values["song"])
    except UsageError:
        raise UsageError(f"{where}: the song name has no letter or digit to name its file with") from None
    index = values["apiframe_index"]
    if index is not None:
        index = _whole(index, f"{where}: apiframe_index")
        if not values["apiframe_parent_job_id"]:
            raise UsageError(f"{where}: apiframe_index needs apiframe_parent_job_id")
    if values["truth_dir"]:
        values["truth_dir"] = _folder(values["truth_dir"], base, where)
    spec = SongSpec(**{**values, "apiframe_index": index})
    if not (spec.cqtai_clip_id or spec.apiframe_parent_job_id):
        raise UsageError(f"{where} names no track: give cqtai_clip_id or apiframe_parent_job_id")
    try:  # the requests are checked before anything is planned, so nothing is half-sent
        if spec.apiframe_parent_job_id:
            build_request("apiframe", parent_job_id=spec.apiframe_parent_job_id, index=index,
                          track_id=spec.apiframe_track_id)
        for clip_id in (spec.cqtai_clip_id, spec.apiframe_track_id):  # a track id is a clip id to CQTAI
            if clip_id:
                build_request("cqtai", clip_id=clip_id)
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from None
    return spec


def _checked(specs: list[SongSpec]) -> list[SongSpec]:
    seen: dict[str, str] = {}  # every name is a file name (checked in _spec)
    for spec in specs:
        if spec.slug in seen:
            raise UsageError(f"the song name {spec.song!r} is used twice (or looks the same as {seen[spec.slug]!r} "
                             f"as a file name); give every song its own name")
        seen[spec.slug] = spec.song
    if not specs:
        raise UsageError("the study has no songs")
    return specs


def read_songs(path: str | os.PathLike) -> list[SongSpec]:
    """The songs of a ``SONGS.csv`` file, checked (a clear error names the row that is wrong).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "songs.csv"
    >>> _ = p.write_text("song,cqtai_clip_id\\nfirst,05d72140-38f5\\n")
    >>> read_songs(p)[0].cqtai_clip_id
    '05d72140-38f5'
    """
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (FileNotFoundError, IsADirectoryError):
        raise UsageError(f"no songs file at {path}; give a CSV with a header and a 'song' column") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text; save it as a UTF-8 CSV") from None
    reader = csv.DictReader(io.StringIO(text))
    try:
        header = [name.strip() for name in reader.fieldnames or []]
        rows = [{(k or "").strip(): v for k, v in row.items()} for row in reader]
    except csv.Error as exc:
        raise UsageError(f"{path} is not a CSV file stemlab can read (line {reader.line_num}: {exc})") from None
    if "song" not in header:
        raise UsageError(f"{path} has no 'song' column in its header (it has: {', '.join(header) or 'nothing'}); "
                         f"columns: {', '.join(SONG_COLUMNS)}")
    unknown = [name for name in header if name and name not in SONG_COLUMNS]
    if unknown:
        raise UsageError(f"{path} has unknown column(s) {', '.join(unknown)}; columns: {', '.join(SONG_COLUMNS)}")
    return _checked([_spec(row, f"{path.name} row {number}", path.parent.resolve())
                     for number, row in enumerate(rows, start=2)])


def songs_of(songs) -> list[SongSpec]:
    """Songs from a CSV path, a DataFrame, or a list of :class:`SongSpec` or of dicts."""
    if isinstance(songs, (str, os.PathLike)):
        return read_songs(songs)
    if hasattr(songs, "to_dict") and hasattr(songs, "columns"):
        songs = songs.to_dict("records")
    if isinstance(songs, (Mapping, bytes)) or not isinstance(songs, Iterable):
        raise UsageError(f"the songs are a {type(songs).__name__}; give a CSV path, a DataFrame or a list of dicts")
    specs = []
    for number, item in enumerate(songs, start=1):
        if isinstance(item, SongSpec):
            specs.append(item)
        elif isinstance(item, Mapping):
            unknown = set(item) - set(SONG_COLUMNS)
            if unknown:
                raise UsageError(f"song {number} has unknown field(s) {', '.join(sorted(unknown))}; "
                                 f"fields: {', '.join(SONG_COLUMNS)}")
            specs.append(_spec(item, f"song {number}"))
        else:
            raise UsageError(f"song {number} is a {type(item).__name__}; give dicts with a 'song' key, or a CSV path")
    return _checked(specs)


def parse_providers(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"cqtai,apiframe"`` (or a list) as provider names, checked.

    >>> parse_providers("apiframe, cqtai-two")
    ('apiframe', 'cqtai-two')
    """
    names = DEFAULT_PROVIDERS if text is None else [n.strip() for n in
                                                   (text.split(",") if isinstance(text, str) else text)]
    names = tuple(dict.fromkeys(n for n in names if n))
    unknown = [n for n in names if n not in PROVIDERS]
    if unknown or not names:
        raise UsageError(f"unknown provider(s) {', '.join(unknown) or '(none given)'}; "
                         f"choose from {', '.join(PROVIDERS)}")
    return names


def parse_max_jobs(items: Iterable[str] | Mapping[str, int] | None) -> dict[str, int]:
    """Jobs in flight per account, from ``["cqtai=3"]`` or ``{"cqtai": 3}``, over the defaults.

    >>> parse_max_jobs(["cqtai=3"])
    {'cqtai': 3, 'apiframe': 4}
    """
    given = dict(items or {}) if isinstance(items, Mapping) else {}
    if not isinstance(items, Mapping):
        for item in items or ():
            name, _, number = str(item).partition("=")
            given[name.strip()] = number.strip()
    limits = dict(DEFAULT_MAX_JOBS)
    for name, number in given.items():
        account = PROVIDERS[name].account if name in PROVIDERS else name
        if account not in DEFAULT_MAX_JOBS:
            raise UsageError(f"--max-jobs takes PROVIDER=N with PROVIDER one of {', '.join(DEFAULT_MAX_JOBS)}, "
                             f"not {name!r}")
        limits[account] = _whole(str(number), f"--max-jobs {name}")
        if limits[account] < 1:
            raise UsageError(f"--max-jobs {name}={number}: give a whole number of jobs, 1 or more")
    return limits


def plan_jobs(songs: Sequence[SongSpec], providers: Sequence[str]) -> list[Job]:
    """Every job of the study, song by song, for the providers each song can use."""
    return [Job(song, name) for song in songs for name in providers if song.can(name)]

