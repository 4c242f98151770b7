"""``fetch``: provider -> cache -> StemSet, without ever paying twice.

1. The request is validated before anything is sent.
2. Under a per-set file lock: a complete set in the cache is returned as is (offline, no key).
3. Otherwise a recorded job is resumed; only when there is none is a job submitted, and its id
   is written to ``job.json`` the moment the provider accepts it, before polling starts.
4. The job is polled (with a progress bar and an overall timeout), then the stems and the
   source are downloaded concurrently, and ``manifest.json`` is written last.

An interrupted kernel, a Ctrl-C or a crash resumes the same job on the next call. A submit that
got no answer is recorded as uncertain and is never repeated without ``force=True``.

>>> s = fetch("cqtai", clip_id="05d72140-38f5-4eb4-bdaa-a6e0d1c1167e")      # doctest: +SKIP
>>> s = fetch("apiframe", parent_job_id="a1b2c3d4-...", index=1)            # doctest: +SKIP
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Sequence
from urllib.parse import urlsplit

import httpx

from .audio import probe
from .cache import Cache
from .config import Settings, redact
from .download import FileRecord, download_all
from .errors import (DecodeError, JobFailedError, JobTimeoutError, StemlabError, SubmitUncertainError,
                     UsageError)
from .http import RetryPolicy, new_client
from .progress import job_bar
from .providers.apiframe import ApiframeClient, ApiframeRequest
from .providers.base import JobStatus
from .providers.cqtai import CqtaiClient, CqtaiRequest
from .stemset import AUDIO_EXTENSIONS, StemSet

__all__ = ["fetch", "open_set", "build_request"]

Request = CqtaiRequest | ApiframeRequest


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def build_request(provider: str, *, clip_id: str | None = None, two: bool = False, parent_job_id: str | None = None,
                  index: int | None = None, track_id: str | None = None, webhook_url: str | None = None,
                  webhook_events: Sequence[str] | None = None) -> Request:
    """A validated request; raises :class:`UsageError` (and sends nothing) when it is wrong."""
    if provider == "cqtai":
        extra = [n for n, v in (("parent_job_id", parent_job_id), ("index", index), ("track_id", track_id),
                                ("webhook_url", webhook_url), ("webhook_events", webhook_events)) if v]
        if extra:
            raise UsageError(f"cqtai does not take {', '.join(extra)}; it takes clip_id= and two=")
        return CqtaiRequest(clip_id, two=bool(two))
    if provider == "apiframe":
        if clip_id or two:
            raise UsageError("apiframe takes parent_job_id= and index= or track_id=, not clip_id=/two=")
        return ApiframeRequest(parent_job_id, index=index, track_id=track_id, webhook_url=webhook_url,
                               webhook_events=tuple(webhook_events or ()))
    raise UsageError(f"unknown provider {provider!r}: use 'cqtai' or 'apiframe' (or stemlab.separate for local)")


def fetch(provider: str, *, clip_id: str | None = None, two: bool = False, parent_job_id: str | None = None,
          index: int | None = None, track_id: str | None = None, webhook_url: str | None = None,
          webhook_events: Sequence[str] | None = None, api_key: str | None = None, force: bool = False,
          progress: bool = True, sr: int | None = None, mono: bool = False, settings: Settings | None = None,
          transport: httpx.BaseTransport | None = None, **setting_overrides: Any) -> StemSet:
    """Fetch a provider's stems of a track (and the track itself), through the cache.

    Parameters
    ----------
    provider : {"cqtai", "apiframe"}
    clip_id : str
        CQTAI: the Suno clip to split. 12 stems (``gen_stem_all``), or 2 with ``two=True``
        (``gen_stem_two``).
    parent_job_id, index, track_id : str, int, str
        Apiframe: the Suno job and which of its tracks to split (exactly one of ``index`` 1|2 and
        ``track_id``). ``webhook_url`` (https) and ``webhook_events`` are passed through.
    api_key : str, optional
        Default: ``CQTAI_API_KEY`` / ``APIFRAME_API_KEY`` from the environment or ``.env``. Not
        needed when the set is already in the cache.
    force : bool
        Submit a new job even if the cache holds this set or a job for it (costs credits).
    progress : bool
        Show progress bars (terminal or notebook).
    sr, mono :
        How the returned set decodes (see :class:`StemSet`).
    settings : Settings, optional
        Base URLs, keys, cache folder, poll interval, job timeout. Keyword overrides such as
        ``cache_dir=``, ``poll_interval=``, ``cqtai_url=`` apply on top.

    Returns
    -------
    StemSet
    """
    request = build_request(provider, clip_id=clip_id, two=two, parent_job_id=parent_job_id, index=index,
                            track_id=track_id, webhook_url=webhook_url, webhook_events=webhook_events)
    key_override = {f"{provider}_api_key": api_key} if api_key else {}
    base = settings or Settings.resolve()
    settings = base._with({k: v for k, v in {**setting_overrides, **key_override}.items() if v is not None})
    cache = Cache(settings.cache_dir)
    with cache.lock(request.cache_key):
        if not force and cache.read_manifest(request.cache_key) is not None:
            return StemSet.open(cache.set_dir(request.cache_key), sr=sr, mono=mono)
        if force:
            cache.clear(request.cache_key)
        _Job(request, settings, cache, progress=progress, transport=transport).run()
    return StemSet.open(cache.set_dir(request.cache_key), sr=sr, mono=mono)


def open_set(ref: str, *, sr: int | None = None, mono: bool = False, cache_dir: str | None = None) -> StemSet:
    """Open a fetched or local set from the cache by job id, clip id, parent job id or folder.

    >>> s = open_set("05d72140-38f5-4eb4-bdaa-a6e0d1c1167e")            # doctest: +SKIP
    """
    settings = Settings.resolve(cache_dir=cache_dir)
    return StemSet.open(Cache(settings.cache_dir).find(ref), sr=sr, mono=mono)


class _Job:
    """One run of the submit/resume -> poll -> download -> manifest sequence for one request."""

    def __init__(self, request: Request, settings: Settings, cache: Cache, *, progress: bool,
                 transport: httpx.BaseTransport | None, sleep: Callable[[float], None] = time.sleep):
        self.request, self.settings, self.cache = request, settings, cache
        self.key = request.cache_key
        self.progress, self.transport, self.sleep = progress, transport, sleep
        self.provider = request.provider

    def _client(self, http: httpx.Client):
        policy = RetryPolicy(base_delay=self.settings.retry_delay)
        if isinstance(self.request, CqtaiRequest):
            return CqtaiClient(http, base_url=self.settings.cqtai_url, cdn_url=self.settings.suno_cdn_url,
                               api_key=self.settings.key_for("cqtai"), policy=policy)
        return ApiframeClient(http, base_url=self.settings.apiframe_url, api_key=self.settings.key_for("apiframe"),
                              policy=policy)

    def run(self) -> None:
        record = self.cache.read_job(self.key)
        self._refuse_to_repeat(record)
        timeout = httpx.Timeout(self.settings.http_timeout, connect=min(10.0, self.settings.http_timeout))
        with new_client(timeout=timeout, transport=self.transport) as http:
            client = self._client(http)
            if record is None:
                record = self._submit(client)
            status = self._wait(client, record)
            if status.state == "failed":
                record.update(state="failed", error=status.error, finished_at=_now())
                self.cache.write_job(self.key, record)
                raise JobFailedError(f"{self.provider} job {record['job_id']} failed: {status.error!r}",
                                     provider=self.provider, job_id=record["job_id"])
            manifest = self._download(client, http, record, status)
        self.cache.write_manifest(self.key, manifest)
        record.update(state="done", finished_at=_now())
        self.cache.write_job(self.key, record)

    def _refuse_to_repeat(self, record: dict | None) -> None:
        if record is None:
            return
        state = record.get("state")
        if state in ("submitting", "uncertain"):
            raise SubmitUncertainError(
                f"the {self.provider} submit of {record.get('submitted_at', 'an earlier run')} got no answer, so "
                f"{self.provider} may have started (and charged) a job stemlab cannot see; check your "
                f"{self.provider} console, then use force=True (--force) to submit again", provider=self.provider)
        if state == "failed":
            raise JobFailedError(
                f"{self.provider} job {record.get('job_id')} failed: {record.get('error')!r}; failed jobs are "
                f"refunded, use force=True (--force) to submit again", provider=self.provider,
                job_id=record.get("job_id"))

    def _submit(self, client) -> dict:
        record = {"provider": self.provider, "key": self.key, "request": self.request.describe(),
                  "base_url": client.base_url, "state": "submitting", "submitted_at": _now(), "job_id": None}
        self.cache.write_job(self.key, record)  # if we die mid-submit, the next run knows not to repeat it
        try:
            job_id = client.submit(self.request)
        except SubmitUncertainError as exc:
            record["state"] = "uncertain"
            self.cache.write_job(self.key, record)
            raise SubmitUncertainError(f"{exc}; the job may exist and may have been charged, so stemlab will not "
                                       f"submit again on its own: check your {self.provider} console, then use "
                                       f"force=True (--force)", provider=self.provider) from None
        except StemlabError:
            self.cache.clear(self.key)  # clearly refused: nothing was charged, nothing to remember
            raise
        record.update(state="submitted", job_id=job_id)
        self.cache.write_job(self.key, record)
        return record

    def _wait(self, client, record: dict) -> JobStatus:
        job_id = record["job_id"]
        deadline = time.monotonic() + self.settings.job_timeout
        with job_bar(desc=f"{self.provider} job {job_id[:12]}", enabled=self.progress) as bar:
            while True:
                status = client.poll(job_id)
                if status.state != "running":
                    bar.set(100, note=status.state)
                    return status
                bar.set(status.progress or 0, note="" if status.progress is not None else "running")
                if time.monotonic() >= deadline:
                    raise JobTimeoutError(
                        f"{self.provider} job {job_id} is still running after {self.settings.job_timeout:.0f} s; "
                        f"fetch again later to resume it (no new charge)", provider=self.provider, job_id=job_id)
                self.sleep(self.settings.poll_interval)

    def _download(self, client, http: httpx.Client, record: dict, status: JobStatus) -> dict:
        set_dir = self.cache.set_dir(self.key)
        source_error = None
        try:
            source = client.source(self.request)
        except StemlabError as exc:  # the stems are paid for: keep them even if the source is unreachable
            source, source_error = None, str(exc)
        paths = [Path("stems") / f"{stem.name}{_extension(stem.url)}" for stem in status.stems]
        items = [(stem.url, set_dir / path) for stem, path in zip(status.stems, paths)]
        if source is not None:
            items.append((source.url, set_dir / f"source{_extension(source.url)}"))
        results = download_all(http, items, progress=self.progress, desc=f"{self.provider} stems",
                               policy=RetryPolicy(base_delay=self.settings.retry_delay),
                               optional=[len(status.stems)] if source is not None else [])
        stems = [self._file_entry(rec, set_dir, name=stem.name, label=stem.label, stated=stem.duration)
                 for stem, rec in zip(status.stems, results)]
        source_entry = None
        if source is not None:
            if isinstance(results[-1], FileRecord):
                source_entry = self._file_entry(results[-1], set_dir, stated=source.duration)
            else:
                source_error = str(results[-1])
        return {
            "format": 1, "key": self.key, "provider": self.provider, "request": self.request.describe(),
            "job_id": record["job_id"], "base_url": record.get("base_url"), "submitted_at": record.get("submitted_at"),
            "completed_at": _now(), "response": redact(dict(status.raw), self.settings.secrets()),
            "source": source_entry, "source_error": source_error, "stems": stems,
        }

    @staticmethod
    def _file_entry(rec: FileRecord, set_dir: Path, *, stated: float | None, **extra) -> dict:
        try:
            duration = round(probe(rec.path).duration, 6)
        except DecodeError as exc:
            rec.path.unlink(missing_ok=True)
            raise DecodeError(f"{rec.path.name} from {rec.url} is not decodable audio ({exc}); fetch again") from None
        return {**extra, "path": rec.path.relative_to(set_dir).as_posix(), "url": rec.url, "size": rec.size,
                "sha256": rec.sha256, "stated_duration": stated, "duration": duration}


def _extension(url: str) -> str:
    suffix = PurePosixPath(urlsplit(url).path).suffix.lower()
    return suffix if suffix in AUDIO_EXTENSIONS else ".mp3"
