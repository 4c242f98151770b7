"""Running a study on dask.distributed: a LocalCluster by default, or any scheduler.

One task per song and provider fetches (seceded from the worker's thread pool while it waits
on the provider, and holding its account's slot of a distributed :class:`~distributed.Semaphore`,
so the jobs in flight stay under ``--max-jobs`` across every worker); one task per song scores,
once its fetches are done. Workers report stages as Dask events (topic ``stemlab-study``),
which the progress bar counts. Scores come back to the client, which alone writes ``DIR``.

What "never paying twice" needs on a cluster: every worker sees the same cache folder (a shared
filesystem, with working file locks), since the job records in it are what stops a second
submit; without one, keep the fetches on one worker (``--workers 1``, or a cluster of one).

>>> with cluster_client(workers=2) as client:                      # doctest: +SKIP
...     run_on_dask(client, songs, jobs, WorkerSettings.of(settings), limits={"cqtai": 2}, on_song=keep)
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import threading
from typing import Callable, Iterator, Sequence

from ..config import Settings, env_name
from ..errors import UsageError
from ..progress import progress_bar
from .songs import Job, SongSpec
from .work import Fetched, Scored, WorkerSettings, fetch_job, score_task

__all__ = ["TOPIC", "cluster_client", "run_on_dask", "Stages", "STAGES"]

TOPIC = "stemlab-study"
STAGES = ("submitted", "polling", "downloading", "scoring", "done", "failed")


def _distributed():
    try:
        import distributed
    except ImportError:
        raise UsageError("stemlab study runs on dask.distributed: pip install 'stemlab[study]'") from None
    return distributed


@contextlib.contextmanager
def cluster_client(*, client=None, scheduler: str | None = None, workers: int = 2,
                   settings: Settings | None = None) -> Iterator:
    """The Dask client to run on: ``client`` as given, the scheduler at ``scheduler``, or a new
    ``LocalCluster`` of ``workers`` processes (closed afterwards). A LocalCluster's workers get
    the API keys in their environment; a scheduler's workers must have them set already."""
    if client is not None:
        yield client
        return
    distributed = _distributed()
    if scheduler:
        with distributed.Client(scheduler) as remote:
            yield remote
        return
    if workers < 1:
        raise UsageError(f"--workers must be 1 or more, not {workers}")
    keys = {env_name(name): value.reveal() for name, value in (settings.options if settings else {}).items()
            if name.endswith("_api_key") and value}
    # host: loopback, so that nothing probes the network for an address to listen on
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  host="127.0.0.1", silence_logs=logging.ERROR, env=keys) as cluster, \
            distributed.Client(cluster) as local:
        yield local


class Stages:
    """Counts of the study's stages, from the workers' events, shown on one bar."""

    def __init__(self, songs: int, *, enabled: bool, dashboard: str | None = None):
        self._lock = threading.Lock()
        self._last: dict[tuple[str, str], str] = {}
        self._scoring: set[str] = set()
        self.counts = dict.fromkeys(STAGES, 0)
        self.dashboard = dashboard
        self._bar = progress_bar(desc="study", total=songs, unit="song") if enabled else None
        self._show()

    def event(self, song: str, provider: str, stage: str) -> None:
        """A job's new stage (``submitted`` counts up; the others count the jobs in that stage now)."""
        with self._lock:
            if stage == "submitted":
                self.counts["submitted"] += 1
            elif stage == "scoring":
                self._scoring.add(song)
                self.counts["scoring"] = len(self._scoring)
            else:
                before = self._last.get((song, provider))
                if before in ("polling", "downloading"):
                    self.counts[before] -= 1
                if stage in ("polling", "downloading"):
                    self.counts[stage] += 1
                self._last[(song, provider)] = stage
            self._show()

    def song(self, song: str, state: str) -> None:
        """A song is finished (``done`` or ``failed``)."""
        with self._lock:
            self._scoring.discard(song)
            self.counts["scoring"] = len(self._scoring)
            if state in ("done", "failed"):
                self.counts[state] += 1
                if self._bar is not None:
                    self._bar.update(1)
            self._show()

    def _show(self) -> None:
        if self._bar is None:
            return
        text = " · ".join(f"{stage} {self.counts[stage]}" for stage in STAGES)
        self._bar.set_postfix_str(text + (f" · dashboard {self.dashboard}" if self.dashboard else ""), refresh=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _fetch_task(job: Job, worker_settings: WorkerSettings, semaphore) -> Fetched:
    """Runs on a worker: one fetch, out of the worker's thread pool while it waits."""
    from distributed import get_worker, rejoin, secede

    worker = get_worker()

    def report(stage: str) -> None:
        worker.log_event(TOPIC, {"song": job.song.song, "provider": job.provider, "stage": stage})

    secede()
    try:
        return fetch_job(job, worker_settings, limit=lambda: semaphore, report=report)
    finally:
        rejoin()


def _score_task(song: SongSpec, fetched: list[Fetched], worker_settings: WorkerSettings, corpus: bool,
                bss: bool) -> tuple[list[Fetched], Scored | None, str]:
    """Runs on a Dask worker: :func:`score_task`, its start reported as an event."""
    from distributed import get_worker

    worker = get_worker()
    report = lambda stage: worker.log_event(TOPIC, {"song": song.song, "provider": "", "stage": stage})  # noqa: E731
    return score_task(song, fetched, worker_settings, corpus=corpus, bss=bss, report=report)


def run_on_dask(client, songs: Sequence[SongSpec], jobs: Sequence[Job], worker_settings: WorkerSettings, *,
                limits: dict[str, int], on_song: Callable[[SongSpec, list[Fetched], Scored | None, str], str],
                corpus: bool = True, bss: bool = True, progress: bool = True) -> None:
    """Fetch and score ``songs`` on ``client``'s cluster; ``on_song`` keeps each song as it is
    scored and returns its state ("done" or "failed")."""
    distributed = _distributed()
    # named by account and limit: studies on one scheduler with the same limit share the slots
    semaphores = {account: distributed.Semaphore(max_leases=n, name=f"stemlab-jobs-{account}-{n}")
                  for account, n in limits.items()}
    stages = Stages(len(songs), enabled=progress, dashboard=_dashboard(client))
    client.subscribe_topic(TOPIC, lambda event: stages.event(event[1]["song"], event[1]["provider"], event[1]["stage"]))
    try:
        by_song: dict[str, list] = {song.song: [] for song in songs}
        for job in jobs:
            by_song[job.song.song].append(client.submit(_fetch_task, job, worker_settings,
                                                        semaphores[job.kind.account], pure=False))
        scores = {client.submit(_score_task, song, by_song[song.song], worker_settings, corpus, bss,
                                pure=False): song for song in songs}
        for future in distributed.as_completed(scores):
            song = scores[future]
            stages.song(song.song, on_song(song, *future.result()))
    finally:
        client.unsubscribe_topic(TOPIC)
        stages.close()


def _dashboard(client) -> str | None:
    """The Dask dashboard's address, when there is one (it needs bokeh)."""
    if importlib.util.find_spec("bokeh") is None:
        return None
    try:
        return client.dashboard_link
    except Exception:  # a scheduler without a dashboard
        return None
