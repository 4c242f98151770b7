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

import dataclasses
import os
import time
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any, Callable
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
from .providers import REGISTRY, Provider, provider
from .providers.base import JobStatus
from .stemset import AUDIO_EXTENSIONS, StemSet

__all__ = ["fetch", "open_set", "as_set", "build_request"]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def build_request(provider_name: str, **arguments: Any):
    """A validated request; raises :class:`UsageError` (and sends nothing) when it is wrong.

    >>> build_request("cqtai", clip_id="05d72140", two=True).cache_key
    'cqtai-2-05d72140'
    """
    return provider(provider_name).request(**arguments)


def _is_setting(name: str) -> bool:
    """Whether a keyword of :func:`fetch` is a setting (a general one, or one a provider declares)."""
    return (name in {f.name for f in dataclasses.fields(Settings)} - {"options"}
            or any(name in kind.settings_names() for kind in REGISTRY.values()))


def fetch(provider_name: str, /, *, force: bool = False, progress: bool = True, sr: int | None = None,
          mono: bool = False, api_key: str | None = None, cache_dir: str | os.PathLike | None = None,
          settings: Settings | None = None, transport: httpx.BaseTransport | None = None,
          **arguments: Any) -> StemSet:
    """Fetch a provider's stems of a track (and the track itself), through the cache.

    Parameters
    ----------
    provider_name : {"cqtai", "apiframe"}
        A name in :data:`stemlab.providers.REGISTRY`.
    **arguments
        The request. CQTAI: ``clip_id=`` (the Suno clip to split), 12 stems (``gen_stem_all``) or 2
        with ``two=True`` (``gen_stem_two``). Apiframe: ``parent_job_id=`` (the Suno job) and
        exactly one of ``index=`` (1 or 2) and ``track_id=``; ``webhook_url=`` (https) and
        ``webhook_events=`` are passed through. Setting names (``poll_interval=``,
        ``cqtai_url=``...) among them apply on top of ``settings``.
    api_key : str, optional
        Default: ``CQTAI_API_KEY`` / ``APIFRAME_API_KEY`` from the environment or ``.env``. Not
        needed when the set is already in the cache.
    force : bool
        Submit a new job even if the cache holds this set or a job for it (costs credits).
    progress : bool
        Show progress bars (terminal or notebook).
    sr, mono :
        How the returned set decodes (see :class:`StemSet`).
    cache_dir, settings :
        The cache folder, and the settings to start from (default: the environment's).

    Returns
    -------
    StemSet
    """
    chosen = provider(provider_name)
    overrides = {name: value for name, value in arguments.items() if _is_setting(name)}
    request = chosen.request(**{name: value for name, value in arguments.items() if name not in overrides})
    if api_key:
        overrides[chosen.key_setting] = api_key
    settings = Settings.of(settings, cache_dir=cache_dir, **overrides)
    cache = Cache(settings.cache_dir)
    with cache.lock(request.cache_key):
        if not force and cache.read_manifest(request.cache_key) is not None:
            return StemSet.open(cache.set_dir(request.cache_key), sr=sr, mono=mono)
        if force:
            cache.clear(request.cache_key)
        _Job(chosen, request, settings, cache, progress=progress, transport=transport).run()
    return StemSet.open(cache.set_dir(request.cache_key), sr=sr, mono=mono)


def open_set(ref: str | os.PathLike, *, sr: int | None = None, mono: bool = False,
             cache_dir: str | os.PathLike | None = None, settings: Settings | None = None) -> StemSet:
    """Open a fetched or local set from the cache by job id, clip id, parent job id or folder.

    >>> s = open_set("05d72140-38f5-4eb4-bdaa-a6e0d1c1167e")            # doctest: +SKIP
    """
    settings = Settings.of(settings, cache_dir=cache_dir)
    return StemSet.open(Cache(settings.cache_dir).find(str(ref)), sr=sr, mono=mono, settings=settings)


def as_set(x, *, cache_dir: str | os.PathLike | None = None, settings: Settings | None = None,
           what: str = "this") -> StemSet:
    """``x`` itself if it is a :class:`StemSet`, else the set it names (see :func:`open_set`).

    >>> as_set(42)
    Traceback (most recent call last):
    ...
    stemlab.errors.UsageError: this takes a stem set, a set folder or a set id, not int
    """
    if isinstance(x, StemSet):
        return x
    if isinstance(x, (str, os.PathLike)):
        return open_set(x, cache_dir=cache_dir, settings=settings)
    raise UsageError(f"{what} takes a stem set, a set folder or a set id, not {type(x).__name__}")


class _Job:
    """One run of the submit/resume -> poll -> download -> manifest sequence for one request."""

    def __init__(self, kind: type[Provider], request, settings: Settings, cache: Cache, *, progress: bool,
                 transport: httpx.BaseTransport | None, sleep: Callable[[float], None] = time.sleep):
        self.kind, self.request, self.settings, self.cache = kind, request, settings, cache
        self.key = request.cache_key
        self.progress, self.transport, self.sleep = progress, transport, sleep
        self.provider = kind.name

    def _client(self, http: httpx.Client) -> Provider:
        self.settings.key(self.kind.key_setting)  # a clear error before anything is sent
        return self.kind(http, self.settings, policy=RetryPolicy(base_delay=self.settings.retry_delay))

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
                error = redact(status.error or "", self.settings.secrets())  # a provider may echo the key
                record.update(state="failed", error=error, finished_at=_now())
                self.cache.write_job(self.key, record)
                raise JobFailedError(f"{self.provider} job {record['job_id']} failed: {error!r}",
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
            client.on_wait = lambda seconds, why: bar.note(why)
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
                               grace=self.settings.http_timeout,
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
            "completed_at": _now(), "expected_stems": list(self.request.expected_stems),
            "response": redact(dict(status.raw), self.settings.secrets()),
            "source": source_entry, "source_error": source_error, "stems": stems,
        }

    @staticmethod
    def _file_entry(rec: FileRecord, set_dir: Path, *, stated: float | None, **extra) -> dict:
        try:
            info = probe(rec.path)
        except DecodeError as exc:
            rec.path.unlink(missing_ok=True)
            raise DecodeError(f"{rec.path.name} from {rec.url} is not decodable audio ({exc}); fetch again") from None
        return {**extra, "path": rec.path.relative_to(set_dir).as_posix(), "url": rec.url, "size": rec.size,
                "sha256": rec.sha256, "stated_duration": stated, "duration": round(info.duration, 6),
                "decode": info.describe()}


def _extension(url: str) -> str:
    suffix = PurePosixPath(urlsplit(url).path).suffix.lower()
    return suffix if suffix in AUDIO_EXTENSIONS else ".mp3"
