"""``fetch``: provider -> cache -> StemSet, without ever paying twice.

1. The request is validated before anything is sent.
2. A complete, intact set in the cache is returned as is: offline, with no key, no lock and no
   write (a read-only cache serves it).
3. Otherwise, under a per-set file lock, a recorded job is resumed; only when there is none is a
   job submitted, and its id is written to ``job.json`` the moment the provider accepts it,
   before polling starts. A damaged set (an unreadable manifest, a missing or resized file) is
   repaired from its job record: files that still verify are kept, the rest downloaded again.
4. The job is polled (with a progress bar and an overall timeout), then the stems and the
   source are downloaded concurrently, and ``manifest.json`` is written last.

An interrupted kernel, a Ctrl-C or a crash resumes the same job on the next call. A submit that
got no answer, or an answer stemlab cannot read, is recorded as uncertain and is never repeated
without ``force=True``.

>>> s = fetch("cqtai", clip_id="05d72140-38f5-4eb4-bdaa-a6e0d1c1167e")      # doctest: +SKIP
>>> s = fetch("apiframe", parent_job_id="a1b2c3d4-...", index=1)            # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any, Callable
from urllib.parse import urlsplit

import httpx
from filelock import Timeout

from .audio import probe
from .cache import Cache
from .config import Settings, redact
from .download import FileRecord, download_all
from .errors import (DecodeError, JobFailedError, JobTimeoutError, ProtocolError, StemlabError,
                     SubmitUncertainError, UsageError)
from .http import RetryPolicy, new_client
from .progress import job_bar
from .providers import REGISTRY, Provider, provider
from .providers.base import JobStatus
from .stemset import AUDIO_EXTENSIONS, StemSet

__all__ = ["fetch", "fetch_both", "suno_clip_id", "cached_clip_id", "open_set", "as_set", "build_request"]

log = logging.getLogger("stemlab")


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
          on_stage: Callable[[str], None] | None = None, **arguments: Any) -> StemSet:
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
    on_stage : callable, optional
        Called with ``"submitted"``, ``"polling"`` and ``"downloading"`` as the job moves on (not
        for a set the cache already holds); a study's progress uses it.

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
    cache, key = Cache(settings.cache_dir), request.cache_key
    if not force and cache.intact(key):  # no lock, no write: a read-only cache serves a complete set
        return _opened(cache, key, sr=sr, mono=mono)
    with _locked(cache, key):
        keep = None
        if force:
            cache.clear(key)
        elif cache.intact(key):  # another process finished it while we waited
            return _opened(cache, key, sr=sr, mono=mono)
        elif cache.damage(key):
            keep = cache.prepare_repair(key)
            log.warning("repairing %s from its job record (no new charge)", key)
        _Job(chosen, request, settings, cache, progress=progress, transport=transport, keep=keep,
             on_stage=on_stage).run()
    return _opened(cache, key, sr=sr, mono=mono, fresh=True)


def cached_clip_id(parent_job_id: str, *, index: int | None = None, track_id: str | None = None,
                   cache: Cache) -> str | None:
    """:func:`suno_clip_id` without a request: the track id given, or the one the cached Apiframe
    set recorded; None when neither is known.

    >>> cached_clip_id("a1b2c3d4", index=1, cache=Cache("/nonexistent")) is None
    True
    """
    request = build_request("apiframe", parent_job_id=parent_job_id, index=index, track_id=track_id)
    if request.track_id:
        return request.track_id
    recorded = ((cache.read_manifest(request.cache_key) or {}).get("source") or {}).get("track_id")
    return recorded if isinstance(recorded, str) and recorded else None


def suno_clip_id(parent_job_id: str, *, index: int | None = None, track_id: str | None = None,
                 api_key: str | None = None, cache_dir: str | os.PathLike | None = None,
                 settings: Settings | None = None, transport: httpx.BaseTransport | None = None) -> str:
    """The Suno clip id of an Apiframe parent job's track, which CQTAI can split too.

    Apiframe's Suno tracks carry Suno clip ids (only a stems job's tracks do not), so a
    ``track_id`` is returned as is. For an ``index``, the id is read from the Apiframe set in
    the cache when it is there, else from the parent job (one free ``GET``; nothing is submitted).

    >>> suno_clip_id("a1b2c3d4", track_id="8b2f64d1-0c5e-4d0a-9f7e-2f1d6a1b2c3d")
    '8b2f64d1-0c5e-4d0a-9f7e-2f1d6a1b2c3d'
    """
    settings = Settings.of(settings, cache_dir=cache_dir, **({"apiframe_api_key": api_key} if api_key else {}))
    known = cached_clip_id(parent_job_id, index=index, track_id=track_id, cache=Cache(settings.cache_dir))
    if known:
        return known
    request = build_request("apiframe", parent_job_id=parent_job_id, index=index)
    kind = provider("apiframe")
    timeout = httpx.Timeout(settings.http_timeout, connect=min(10.0, settings.http_timeout))
    with new_client(timeout=timeout, transport=transport) as http:
        client = kind(http, settings, policy=RetryPolicy(base_delay=settings.retry_delay))
        source = client.source(request)
    if not source.track_id:
        raise ProtocolError(f"Apiframe job {parent_job_id}'s track {index} has no id, so CQTAI cannot be asked to "
                            f"split it; pass its Suno clip id as cqtai clip_id=", provider="apiframe")
    return source.track_id


def fetch_both(parent_job_id: str, *, index: int | None = None, track_id: str | None = None, two: bool = False,
               progress: bool = True, sr: int | None = None, mono: bool = False,
               cache_dir: str | os.PathLike | None = None, settings: Settings | None = None,
               transport: httpx.BaseTransport | None = None) -> tuple[StemSet, StemSet]:
    """Both providers' sets of one song: ``(cqtai, apiframe)``, for an Apiframe parent job's track.

    Apiframe splits the track (vocals and instrumental); CQTAI splits the same song by its Suno
    clip id (:func:`suno_clip_id`), into 12 stems, or 2 with ``two=True``. Each goes through
    :func:`fetch`, so neither is ever paid for twice.

    >>> cqtai, apiframe = fetch_both("a1b2c3d4-...", index=1)              # doctest: +SKIP
    >>> stemlab.compare(cqtai, apiframe)                                   # doctest: +SKIP
    """
    settings = Settings.of(settings, cache_dir=cache_dir)
    common = dict(progress=progress, sr=sr, mono=mono, settings=settings, transport=transport)
    apiframe = fetch("apiframe", parent_job_id=parent_job_id, index=index, track_id=track_id, **common)
    clip_id = suno_clip_id(parent_job_id, index=index, track_id=track_id, settings=settings, transport=transport)
    return fetch("cqtai", clip_id=clip_id, two=two, **common), apiframe


def _opened(cache: Cache, key: str, *, sr: int | None, mono: bool, fresh: bool = False) -> StemSet:
    stemset = StemSet.open(cache.set_dir(key), sr=sr, mono=mono)
    if fresh and stemset.source_error:
        log.warning("the source track of %s was not downloaded (%s); the stems are kept, but check and compare "
                    "against the source need it", key, stemset.source_error)
    return stemset


@contextlib.contextmanager
def _locked(cache: Cache, key: str):
    """The set's lock; saying so when another process holds it."""
    lock = cache.lock(key)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.warning("waiting for another stemlab fetch of this set (%s) to finish", key)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


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
                 transport: httpx.BaseTransport | None, sleep: Callable[[float], None] = time.sleep,
                 keep: dict[str, dict] | None = None, on_stage: Callable[[str], None] | None = None):
        self.kind, self.request, self.settings, self.cache = kind, request, settings, cache
        self.on_stage = on_stage or (lambda stage: None)
        self.key = request.cache_key
        self.progress, self.transport, self.sleep = progress, transport, sleep
        self.provider = kind.name
        self.keep = keep  # a repair: the manifest entries of files that still verify (None: not a repair)

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
                self.on_stage("submitted")
            self.on_stage("polling")
            status = self._wait(client, record)
            if status.state == "failed":
                error = redact(status.error or "", self.settings.secrets())  # a provider may echo the key
                record.update(state="failed", error=error, finished_at=_now())
                self.cache.write_job(self.key, record)
                raise JobFailedError(f"{self.provider} job {record['job_id']} failed: {error!r}",
                                     provider=self.provider, job_id=record["job_id"])
            self.on_stage("downloading")
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
        files = [(stem.url, f"stems/{stem.name}{_extension(stem.url)}") for stem in status.stems]
        if source is not None:
            files.append((source.url, f"source{_extension(source.url)}"))
        kept = self.keep or {}
        todo = [i for i, (_, path) in enumerate(files) if path not in kept]  # a repair downloads only these
        source_index = len(files) - 1 if source is not None else None
        results = download_all(http, [(files[i][0], set_dir / files[i][1]) for i in todo], progress=self.progress,
                               desc=f"{self.provider} stems", grace=self.settings.http_timeout,
                               policy=RetryPolicy(base_delay=self.settings.retry_delay),
                               optional=[todo.index(source_index)] if source_index in todo else [])
        entries: list[dict | Exception] = [kept.get(path) for _, path in files]
        for i, result in zip(todo, results):
            entries[i] = self._file_entry(result, set_dir) if isinstance(result, FileRecord) else result
        stems = [{"name": stem.name, "label": stem.label} | entry
                 | {"name": stem.name, "label": stem.label, "stated_duration": stem.duration}
                 for stem, entry in zip(status.stems, entries)]
        source_entry = None
        if source is not None:
            if isinstance(entries[-1], dict):
                source_entry = {**entries[-1], "stated_duration": source.duration}
                if source.track_id:
                    source_entry["track_id"] = source.track_id
            else:
                source_error = str(entries[-1])
        manifest = {
            "format": 1, "key": self.key, "provider": self.provider, "request": self.request.describe(),
            "job_id": record["job_id"], "base_url": record.get("base_url"), "submitted_at": record.get("submitted_at"),
            "completed_at": _now(), "expected_stems": list(self.request.expected_stems),
            "response": redact(dict(status.raw), self.settings.secrets()),
            "source": source_entry, "source_error": source_error, "stems": stems,
        }
        if self.keep is not None:
            manifest["repaired_at"] = _now()
        return manifest

    @staticmethod
    def _file_entry(rec: FileRecord, set_dir: Path) -> dict:
        try:
            info = probe(rec.path)
        except DecodeError as exc:
            rec.path.unlink(missing_ok=True)
            raise DecodeError(f"{rec.path.name} from {rec.url} is not decodable audio ({exc}); fetch again") from None
        return {"path": rec.path.relative_to(set_dir).as_posix(), "url": rec.url, "size": rec.size,
                "sha256": rec.sha256, "duration": round(info.duration, 6), "decode": info.describe()}


def _extension(url: str) -> str:
    suffix = PurePosixPath(urlsplit(url).path).suffix.lower()
    return suffix if suffix in AUDIO_EXTENSIONS else ".mp3"
