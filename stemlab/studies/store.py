"""A study's output folder: one record per finished song, and the tables built from them.

::

    DIR/songs/<song>.json   one song's jobs and numbers, written (atomically) as soon as it is scored
    DIR/results.parquet     every number: song, set, provider, stem, metric, value, silent, flags
    DIR/songs.parquet       per song and provider: set, job id, credits, state
    DIR/summary.csv         paired differences between providers, with bootstrap intervals
    DIR/report.html         the summary, a forest plot, strip plots, the songs to listen to

Only the process that runs the study writes here (workers return their numbers), so ``DIR``
need not be shared with the workers. A song whose record says ``done`` for the same request is
never fetched or scored again.

>>> import tempfile
>>> folder = StudyFolder(tempfile.mkdtemp())
>>> folder.finished(SongSpec("a", cqtai_clip_id="c-1"), ["cqtai"]) is None
True
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Iterable, Sequence

from ..cache import read_record
from ..errors import CacheError
from ..files import atomic_file, atomic_write_json
from .songs import Job, SongSpec
from .work import Fetched, Scored

__all__ = ["StudyFolder", "RESULT_COLUMNS", "SONG_TABLE_COLUMNS", "fingerprint", "tables", "plan_row"]

RESULT_COLUMNS = ["song", "set", "provider", "stem", "metric", "value", "silent", "flags"]
SONG_TABLE_COLUMNS = ["song", "provider", "set", "key", "folder", "job_id", "state", "error", "credits", "submitted",
                      "seconds", "truth_dir"]
FORMAT = 1


def fingerprint(song: SongSpec, providers: Sequence[str]) -> dict:
    """What a song's numbers depend on: its row and the providers it went through."""
    return {"format": FORMAT, "song": dict(song.__dict__), "providers": sorted(providers)}


class StudyFolder:
    """The output folder ``DIR`` of one study."""

    def __init__(self, out: str | os.PathLike):
        self.root = Path(out).expanduser()
        self.records = self.root / "songs"

    def record_path(self, song: SongSpec) -> Path:
        return self.records / f"{song.slug}.json"

    def record(self, song: SongSpec) -> dict | None:
        """The song's record, or None (none yet, or a damaged one: the song is then run again,
        its sets coming from the cache, so nothing is paid twice)."""
        try:
            record = read_record(self.record_path(song))
        except CacheError:
            return None
        return record if isinstance(record, dict) else None

    def finished(self, song: SongSpec, providers: Sequence[str]) -> dict | None:
        """The song's record if it is done for these providers (then it is not run again)."""
        record = self.record(song)
        if record and record.get("state") == "done" and record.get("fingerprint") == fingerprint(song, providers):
            return record
        return None

    def write(self, song: SongSpec, providers: Sequence[str], fetched: Iterable[Fetched], scored: Scored | None,
              *, error: str = "") -> dict:
        """Keep one song's outcome (atomically, durably: a kill never leaves half a record)."""
        fetched = list(fetched)
        failed = error or next((f.error for f in fetched if f.state != "done"), "")
        record = {"fingerprint": fingerprint(song, providers), "song": song.song,
                  "state": "failed" if failed or not fetched else "done", "error": failed,
                  "jobs": [f.row() for f in fetched], "rows": scored.rows if scored else [],
                  "timings": scored.timings() if scored else {}}
        self.records.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.record_path(song), _jsonable(record))
        return record

    def write_table(self, name: str, table) -> Path:
        """``DIR/<name>`` from a DataFrame: ``.parquet`` or ``.csv``, written atomically."""
        path = self.root / name
        self.root.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as f:
            if path.suffix == ".parquet":
                table.to_parquet(f, index=False)
            else:
                f.write(table.to_csv(index=False).encode("utf-8"))
        return path


def _jsonable(obj):
    """``obj`` with non-finite floats as strings JSON can hold ("nan", "inf", "-inf")."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_jsonable(v) for v in obj]
    return obj


def unjson(value):
    """A float written by :func:`_jsonable` back as a float."""
    return float(value) if value in ("nan", "inf", "-inf") else value


def tables(records: Iterable[dict], extra_jobs: Iterable[dict] = ()):
    """``(results, songs)`` DataFrames from song records (and rows for jobs that never ran)."""
    import pandas as pd

    results, songs = [], list(extra_jobs)
    for record in records:
        results += [{k: unjson(v) for k, v in row.items()} for row in record.get("rows", [])]
        for job in record.get("jobs", []):
            row = {k: unjson(v) for k, v in job.items() if k in SONG_TABLE_COLUMNS}
            if record.get("state") == "failed" and row.get("state") == "done" and record.get("error"):
                row.update(state="failed", error=record["error"])  # fetched, but the song could not be scored
            songs.append(row)
    results = pd.DataFrame(results, columns=RESULT_COLUMNS).astype(
        {"value": float, "silent": bool, "song": str, "set": str, "provider": str, "stem": str, "metric": str,
         "flags": str})
    songs = pd.DataFrame(songs, columns=SONG_TABLE_COLUMNS).astype(
        {"credits": float, "seconds": float, "submitted": bool})
    return results, songs


def plan_row(job: Job, state: str, key: str | None, error: str = "") -> dict:
    return {"song": job.song.song, "provider": job.provider, "set": "", "key": key or "", "folder": "", "job_id": "",
            "state": state, "error": error, "credits": job.kind.credits if job.kind.credits is not None else float("nan"),
            "submitted": False, "seconds": 0.0, "truth_dir": job.song.truth_dir or ""}

