"""What a study runs on its workers: one song's fetch through one provider, and one song's scores.

Both are plain functions of picklable values, so any engine runs them (dask.distributed in
:mod:`.engine`, a ``concurrent.futures`` pool in the benchmark). Keys never travel with them: a
worker reads its own from its environment (:class:`WorkerSettings`).

>>> WorkerSettings.of(Settings(poll_interval=2.0)).settings().poll_interval
2.0
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ContextManager

from ..analysis.check import check
from ..analysis.compare import compare, levels
from ..cache import Cache
from ..config import Secret, Settings, redact
from ..errors import CacheError, RateLimitError, StemlabError
from ..fetching import fetch, suno_clip_id
from ..stemset import StemSet
from ..terminal import printable
from .songs import Job, SongSpec

__all__ = ["WorkerSettings", "Fetched", "Scored", "fetch_job", "score_song", "score_task", "TRUTH_METRICS"]

TRUTH_METRICS = ("si_sdr", "sdr", "sir", "sar", "si_sdr_improvement", "sdr_improvement")
Report = Callable[[str], None]


@dataclass(frozen=True)
class WorkerSettings:
    """:class:`Settings` without its keys, to send to workers; :meth:`settings` resolves it there,
    taking the keys from the worker's environment (``CQTAI_API_KEY``, ``APIFRAME_API_KEY``)."""

    general: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)

    @classmethod
    def of(cls, settings: Settings) -> "WorkerSettings":
        general = {f.name: getattr(settings, f.name) for f in dataclasses.fields(Settings) if f.name != "options"}
        options = {k: v for k, v in settings.options.items() if not isinstance(v, Secret)}
        return cls(general, options)

    def settings(self) -> Settings:
        return Settings.resolve(dotenv=None, **self.general, **self.options)


@dataclass
class Fetched:
    """How one job went: one row of ``songs.parquet``."""

    song: str
    provider: str
    set: str = ""
    key: str = ""
    folder: str = ""
    job_id: str = ""
    state: str = "failed"
    error: str = ""
    credits: float = math.nan
    submitted: bool = False
    seconds: float = 0.0
    truth_dir: str = ""
    throttled: int = 0

    def row(self) -> dict:
        return dataclasses.asdict(self)


def _one_line(exc: BaseException, settings: Settings) -> str:
    text = redact(" ".join(printable(str(exc)).split()), settings.secrets())
    return text if isinstance(exc, StemlabError) else f"{type(exc).__name__}: {text}"


def fetch_job(job: Job, worker_settings: WorkerSettings, *, limit: Callable[[], ContextManager] | None = None,
              report: Report | None = None, sleep: Callable[[float], None] = time.sleep) -> Fetched:
    """Fetch one song through one provider, through the cache: never a second submit.

    ``limit`` is the provider's slot (a context manager held while the job is in flight);
    ``report`` hears the stages (``waiting``, ``submitted``, ``polling``, ``downloading``,
    ``throttled``, ``fetched``, ``failed``); ``seconds`` includes the wait for a slot. A 429 answer (CQTAI's task limit) frees the slot,
    backs off and tries again; it is never a failure, unless it lasts longer than the job timeout.
    Nothing here raises: what went wrong is in the returned :class:`Fetched`.
    """
    report = report or (lambda stage: None)
    limit = limit or contextlib.nullcontext
    settings = worker_settings.settings()
    started = time.monotonic()
    outcome = Fetched(job.song.song, job.provider, truth_dir=job.song.truth_dir or "")
    new = False
    try:
        clip_id = None
        if not job.clip_known:  # the Apiframe track's id is its Suno clip id (a free look-up)
            clip_id = suno_clip_id(job.song.apiframe_parent_job_id, index=job.song.apiframe_index,
                                   settings=settings)
        outcome.key = job.cache_key(clip_id)
        new = not _known(settings, outcome.key)
        stemset = _fetch_backing_off(job, clip_id, settings, limit, report, sleep, outcome)
        outcome.set, outcome.folder, outcome.job_id = stemset.label, str(stemset.folder), stemset.job_id or ""
        outcome.state, outcome.credits = "done", _credits(job)
        report("fetched")
    except Exception as exc:  # one song's trouble never stops a study; it is reported
        outcome.error, outcome.credits = _one_line(exc, settings), 0.0  # a failed job is refunded
        report("failed")
    outcome.submitted = new and _known(settings, outcome.key)
    outcome.seconds = round(time.monotonic() - started, 3)
    return outcome


def _fetch_backing_off(job: Job, clip_id: str | None, settings: Settings, limit, report: Report, sleep,
                       outcome: Fetched) -> StemSet:
    """:func:`fetch` in the provider's slot, again after a pause (out of the slot) on each 429."""
    throttled_since, delay = None, max(settings.retry_delay, 0.05)
    while True:
        report("waiting")
        try:
            with limit():
                return fetch(job.kind.fetch_name, **job.arguments(clip_id), progress=False, settings=settings,
                             on_stage=report)
        except RateLimitError as exc:  # nothing was charged: the submit was refused, or polls throttled
            outcome.throttled += 1
            throttled_since = throttled_since or time.monotonic()
            if time.monotonic() - throttled_since > settings.job_timeout:
                raise
            report("throttled")
            sleep(min(60.0, exc.retry_after or delay))
            delay = min(60.0, delay * 2)


def _known(settings: Settings, key: str) -> bool:
    """Whether the cache holds this set or a job record for it (no submit is due, or one was made)."""
    cache = Cache(settings.cache_dir)
    try:
        return cache.intact(key) or cache.read_job(key) is not None
    except CacheError:  # a record that does not read still says a job may exist
        return True


def _credits(job: Job) -> float:
    price = job.kind.credits
    return math.nan if price is None else float(price)


def _open(folder: str, corpus: bool) -> StemSet:
    return StemSet.open(folder, keep_decoded=not corpus)


@dataclass
class Scored:
    """One song's numbers (rows of ``results.parquet``) and what computing them took: wall and
    CPU seconds (this thread's) to decode and to score, seconds of audio decoded, and the
    worker's peak resident memory so far."""

    rows: list[dict]
    decode_s: float = 0.0
    decode_cpu_s: float = 0.0
    score_s: float = 0.0
    score_cpu_s: float = 0.0
    audio_s: float = 0.0
    peak_rss_mb: float = 0.0
    worker: str = ""

    def timings(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "rows"}


def _clocks() -> tuple[float, float]:
    return time.perf_counter(), time.thread_time()


def _decode_all(stemsets) -> float:
    """Decode every track of ``stemsets`` (once: a set keeps its arrays); seconds of audio decoded."""
    seconds = 0.0
    for stemset in stemsets:
        for track in [*stemset, *([stemset.source] if stemset.source is not None else [])]:
            seconds += track.audio.shape[-1] / stemset.sr
    return seconds


def _peak_rss_mb() -> float:
    """This process's peak resident memory in MB (NaN where the OS does not say: Windows)."""
    try:
        import resource
    except ImportError:
        return math.nan
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


def score_song(song: SongSpec, fetched: list[Fetched], worker_settings: WorkerSettings, *, corpus: bool = True,
               bss: bool = True, report: Report | None = None) -> Scored:
    """Every number of one song: each set's recombination check and stem levels, agreement
    between every pair of sets (both ways), and, with ``truth_dir``, each set against the truth.

    Rows follow ``results.parquet``: ``song, set, provider, stem, metric, value, silent, flags``.
    In corpus mode (``corpus=True``) audio is decoded into memory and nothing is written.
    """
    (report or (lambda stage: None))("scoring")
    settings = worker_settings.settings()
    done = [f for f in fetched if f.state == "done"]
    sets = {f.provider: _open(f.folder, corpus) for f in done}
    labels = {f.provider: f.set for f in done}
    truth = (StemSet.open(Path(song.truth_dir).expanduser(), settings=settings, keep_decoded=not corpus)
             if song.truth_dir and sets else None)
    wall, cpu = _clocks()
    scored = Scored([], audio_s=_decode_all([*sets.values(), *([truth] if truth else [])]))
    (wall_1, cpu_1) = _clocks()
    scored.decode_s, scored.decode_cpu_s = wall_1 - wall, cpu_1 - cpu
    rows = scored.rows

    def add(provider: str, set_label: str, stem: str, metric: str, value: float, silent: bool,
            identical: bool = False) -> None:
        value = float(value)
        rows.append({"song": song.song, "set": set_label, "provider": provider, "stem": stem, "metric": metric,
                     "value": math.nan if silent and metric != "loudness_db" and metric != "leakage" else value,
                     "silent": bool(silent), "flags": "identical" if identical or value == math.inf else ""})

    for provider, stemset in sets.items():
        if stemset.source is not None:
            report_ = check(stemset, settings=settings)
            add(provider, labels[provider], "mix", "residual_db", report_.residual_db, False)
            add(provider, labels[provider], "mix", "recombines", 1.0 if report_.ok else 0.0, False)
        for row in levels(stemset):
            add(provider, labels[provider], row["stem"], row["metric"], row["value"], row["silent"])
    names = list(sets)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            table = compare(sets[a], sets[b], bss=False, settings=settings).table
            pair = {f"{labels[a]} vs {labels[b]}": f"{a} vs {b}", f"{labels[b]} vs {labels[a]}": f"{b} vs {a}"}
            for r in table[table.metric == "agreement_si_sdr"].itertuples():
                add(pair[r.set], r.set, r.stem, r.metric, r.value, r.silent, r.identical)
    if truth is not None:
        for provider, stemset in sets.items():
            table = compare(stemset, reference=truth, bss=bss, settings=settings).table
            for r in table[table.metric.isin(TRUTH_METRICS)].itertuples():
                add(provider, labels[provider], r.stem, r.metric, r.value, r.silent, r.identical)
    wall_2, cpu_2 = _clocks()
    scored.score_s, scored.score_cpu_s = wall_2 - wall_1, cpu_2 - cpu_1
    scored.peak_rss_mb = _peak_rss_mb()
    scored.worker = f"{socket.gethostname()}:{os.getpid()}"
    return scored


def score_task(song: SongSpec, fetched: list[Fetched], worker_settings: WorkerSettings, *, corpus: bool,
               bss: bool, report=None) -> tuple[list[Fetched], Scored | None, str]:
    """One song's numbers, or the one-line reason there are none (any engine runs this)."""
    if not any(f.state == "done" for f in fetched):
        return fetched, None, ""
    try:
        return fetched, score_song(song, fetched, worker_settings, corpus=corpus, bss=bss, report=report), ""
    except Exception as exc:  # a song that cannot be scored is reported, and the study goes on
        return fetched, None, f"scoring failed: {_one_line(exc, worker_settings.settings())}"
