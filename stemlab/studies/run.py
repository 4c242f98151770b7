"""``stemlab.study``: many songs through several providers, with paired statistics.

>>> result = stemlab.study("songs.csv", out="study", providers=["cqtai", "apiframe"])   # doctest: +SKIP
>>> result.summary.head()                                                              # doctest: +SKIP
>>> stemlab.study("ten-songs.csv", out="study", dry_run=True).credits    # 10 x (150 + 11)  # doctest: +SKIP
1610.0

A study can be stopped at any point (Ctrl-C, a crash, ``kill -9``) and run again with the same
arguments: songs already scored are kept, jobs already submitted are resumed from the cache's
job records, and no song is ever submitted twice to the same provider.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..cache import Cache
from ..config import Settings
from ..errors import UsageError
from ..fetching import cached_clip_id
from .engine import cluster_client, run_on_dask
from .songs import (UNDOCUMENTED_COST, Job, SongSpec, parse_max_jobs, parse_providers, plan_jobs,
                    songs_of)
from .store import StudyFolder, plan_row, tables
from .work import Fetched, Scored, WorkerSettings

__all__ = ["study", "StudyResult", "plan_study", "PlannedJob"]


@dataclass(frozen=True)
class PlannedJob:
    """A job and what running it would do: ``"cached"`` (no request), ``"resume"`` (polls a job
    already submitted), ``"submit"`` (costs ``cost`` credits), ``"over budget"`` (not started)."""

    job: Job
    action: str
    key: str | None
    cost: float  # credits this run would spend on it (an undocumented price counts as UNDOCUMENTED_COST)


@dataclass
class StudyResult:
    """What a study wrote and found. ``to_dict()`` is ``stemlab study --json``."""

    out: Path
    results: object  # pandas DataFrame (results.parquet)
    songs: object  # pandas DataFrame (songs.parquet)
    summary: object  # pandas DataFrame (summary.csv)
    plan: list[PlannedJob] = field(default_factory=list)
    submits: int = 0
    credits: float = 0.0
    seconds: float = 0.0
    dry_run: bool = False
    report: Path | None = None

    def song_states(self) -> dict[str, str]:
        """Each song's state: ``done``, ``failed``, ``over budget`` or ``planned``."""
        states: dict[str, str] = {}
        for row in self.songs.itertuples():
            now = states.get(row.song)
            states[row.song] = row.state if now in (None, "done") or row.state == "failed" else now
        return states

    def to_dict(self) -> dict:
        states = list(self.song_states().values())
        return {"songs": len(states), "done": states.count("done"), "failed": states.count("failed"),
                "over_budget": states.count("over budget"), "submits": self.submits,
                "credits": _number(self.credits), "results": str(self.out / "results.parquet"),
                "summary": str(self.out / "summary.csv"), "report": str(self.report) if self.report else None,
                "seconds": round(self.seconds, 2), "dry_run": self.dry_run}


def _number(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 2)


def _known_clip_id(job: Job, cache: Cache) -> str | None:
    """CQTAI's clip id of a song given only by an Apiframe parent job, if the cache knows it."""
    if job.clip_known:
        return None
    return cached_clip_id(job.song.apiframe_parent_job_id, index=job.song.apiframe_index, cache=cache)


def plan_study(jobs: Sequence[Job], cache: Cache, *, budget: float | None = None) -> list[PlannedJob]:
    """What each job would do, in order, stopping whole songs that do not fit in ``budget``."""
    planned: list[PlannedJob] = []
    by_song: dict[str, list[PlannedJob]] = {}
    for job in jobs:
        key = job.cache_key(_known_clip_id(job, cache))
        if key and cache.intact(key):
            action = "cached"
        elif key and cache.read_job(key) is not None:
            action = "resume"
        else:
            action = "submit"
        cost = (job.kind.credits if job.kind.credits is not None else UNDOCUMENTED_COST) if action == "submit" else 0.0
        by_song.setdefault(job.song.song, []).append(PlannedJob(job, action, key, cost))
    spent = 0.0
    for song_jobs in by_song.values():
        cost = sum(p.cost for p in song_jobs)
        if budget is not None and spent + cost > budget:  # a song is run whole or not at all (pairs need both)
            song_jobs = [PlannedJob(p.job, "over budget", p.key, p.cost) for p in song_jobs]
        else:
            spent += cost
        planned += song_jobs
    return planned


def study(songs, *, out: str | os.PathLike, providers: Sequence[str] | str | None = None, client=None,
          scheduler: str | None = None, workers: int = 2, max_jobs=None, budget: float | None = None,
          dry_run: bool = False, corpus: bool = True, bss: bool = True, progress: bool = True,
          cache_dir: str | os.PathLike | None = None, settings: Settings | None = None) -> StudyResult:
    """Run every song through every provider it can use, score, and write ``out``.

    Parameters
    ----------
    songs : path of ``SONGS.csv``, a DataFrame, or a list of dicts / :class:`~.songs.SongSpec`
    out : the output folder (see :mod:`stemlab.studies.store`)
    providers : ``"cqtai"`` (12 stems), ``"cqtai-two"``, ``"apiframe"``; default cqtai and apiframe
    client, scheduler, workers : a Dask client, a scheduler address, or a new LocalCluster's size
    max_jobs : jobs in flight per account, ``{"cqtai": 2}`` or ``["cqtai=2"]`` (defaults:
        :data:`~.songs.DEFAULT_MAX_JOBS`), counted across all workers
    budget : credits; songs whose new jobs would go past it are not started
    dry_run : plan only: say what would be submitted and what it costs, and send nothing
    corpus : decode into memory and keep only the MP3s in the cache (no ``.npy``)
    bss : also BSSEval v4 SDR/SIR/SAR against true stems (slower)

    Returns
    -------
    StudyResult
    """
    started = time.monotonic()
    specs = songs_of(songs)
    names = parse_providers(providers)
    limits = parse_max_jobs(max_jobs)
    if budget is not None and (not isinstance(budget, (int, float)) or not math.isfinite(budget) or budget < 0):
        raise UsageError(f"budget must be a number of credits, 0 or more, not {budget!r}")
    settings = Settings.of(settings, cache_dir=cache_dir)
    folder = StudyFolder(out)
    cache = Cache(settings.cache_dir)
    used = {spec.song: [n for n in names if spec.can(n)] for spec in specs}
    idle = [spec.song for spec in specs if not used[spec.song]]
    if idle:
        raise UsageError(f"no chosen provider ({', '.join(names)}) can split {idle[0]!r}"
                         + (f" and {len(idle) - 1} more" if len(idle) > 1 else "")
                         + ": Apiframe needs apiframe_parent_job_id, CQTAI cqtai_clip_id or an Apiframe parent job")
    finished = {spec.song: folder.finished(spec, used[spec.song]) for spec in specs}
    todo = [spec for spec in specs if finished[spec.song] is None]
    plan = plan_study(plan_jobs(todo, names), cache, budget=budget)
    stopped = [plan_row(p.job, "over budget", p.key, "over the budget: not started") for p in plan
               if p.action == "over budget"]
    if dry_run:
        rows = [plan_row(p.job, "planned" if p.action != "over budget" else "over budget", p.key,
                         "" if p.action != "over budget" else "over the budget: not started") for p in plan]
        results, song_table = tables([r for r in finished.values() if r], rows)
        return StudyResult(folder.root, results, song_table, _empty_summary(), plan=plan, dry_run=True,
                           credits=sum(p.cost for p in plan if p.action == "submit"),
                           seconds=time.monotonic() - started)
    runnable = {p.job.song.song for p in plan if p.action != "over budget"}
    run_specs = [spec for spec in todo if spec.song in runnable]
    run_jobs = [p.job for p in plan if p.action != "over budget"]
    kept: dict[str, dict] = {}

    def on_song(spec: SongSpec, fetched: list[Fetched], scored: Scored | None, error: str) -> str:
        kept[spec.song] = folder.write(spec, used[spec.song], fetched, scored, error=error)
        return kept[spec.song]["state"]

    folder.root.mkdir(parents=True, exist_ok=True)
    if run_specs:  # a finished study starts no cluster and sends nothing
        with cluster_client(client=client, scheduler=scheduler, workers=workers, settings=settings) as dask:
            run_on_dask(dask, run_specs, run_jobs, WorkerSettings.of(settings), limits=limits, on_song=on_song,
                        corpus=corpus, bss=bss, progress=progress)
    over = {p.job.song.song for p in plan if p.action == "over budget"}  # their rows are the plan's, not old records
    records = [kept.get(spec.song) or finished[spec.song] or folder.record(spec) for spec in specs
               if spec.song not in over]
    results, song_table = tables([r for r in records if r], stopped)
    new = song_table[song_table.submitted & song_table.song.isin(list(kept))]
    return _written(folder, results, song_table, plan=plan, submits=len(new),
                    credits=float(new.credits.fillna(UNDOCUMENTED_COST).sum()), started=started)


def _empty_summary():
    from ..analysis.paired import paired_summary

    return paired_summary(tables([])[0])


def _written(folder: StudyFolder, results, song_table, *, plan, submits: int, credits: float,
             started: float) -> StudyResult:
    from ..analysis.paired import paired_summary
    from ..view.study_report import write_study_report

    summary = paired_summary(results)
    folder.write_table("results.parquet", results)
    folder.write_table("songs.parquet", song_table)
    folder.write_table("summary.csv", summary)
    report = write_study_report(folder.root, results=results, songs=song_table, summary=summary)
    return StudyResult(folder.root, results, song_table, summary, plan=plan, submits=submits, credits=credits,
                       seconds=time.monotonic() - started, report=report)
