"""Downloads: concurrent, bounded, resumable, size-capped, atomic.

Files are fetched as byte ranges (``Range`` requests of :data:`SEGMENT` bytes) by one bounded
pool of threads, so a file larger than a segment downloads over several connections at once:
CDNs that cap each connection's speed then cost no more than their total bandwidth. A server
that ignores ``Range`` simply sends the whole file in the first answer.

Each file is written into ``<name>.part`` beside its final path, checked against the size the
server announced, and only then renamed: a file with its final name is always complete. A
dropped connection resumes where it stopped; anything else that fails removes the part file.

>>> import httpx
>>> def serve(request):
...     return httpx.Response(200, content=b"ID3 fake mp3 bytes")
>>> client = httpx.Client(transport=httpx.MockTransport(serve))
>>> import tempfile, pathlib
>>> dest = pathlib.Path(tempfile.mkdtemp()) / "vocals.mp3"
>>> download(client, "https://cdn.example/v.mp3", dest).size
18
"""

from __future__ import annotations

import os
import queue
import re
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import httpx

from .errors import DownloadError, ProviderServerError, RateLimitError, StemlabError, UsageError
from .files import sha256_of
from .http import REDIRECTS, RetryPolicy, check_url, redirect_target, retry_after, retrying

__all__ = ["FileRecord", "download", "download_all", "MAX_FILE_BYTES", "MIN_RATE", "SEGMENT"]

#: The slowest a download may be, overall (bytes per second). A CDN that trickles bytes never
#: trips a read timeout; each file gets ``grace + size / MIN_RATE`` seconds in all.
MIN_RATE = 16 * 1024
MAX_FILE_BYTES = 200 * 1024 * 1024  # a 10-minute 48 kHz stereo 24-bit WAV is ~170 MB; MP3 stems are ~5 MB
SEGMENT = 1024 * 1024  # bytes per ranged request


@dataclass(frozen=True)
class FileRecord:
    """A downloaded file: where it is, how big it is, and its SHA-256."""

    path: Path
    url: str
    size: int
    sha256: str


class _Cancelled(Exception):
    pass


class _File:
    """One file in flight: its part file, its announced size, and which bytes have arrived."""

    def __init__(self, url: str, dest: Path, *, max_bytes: int, cancel: threading.Event,
                 on_bytes: Callable[[int], None] | None, on_total: Callable[[int | None], None] | None,
                 grace: float = 30.0):
        self.url = url
        self.location = self.url  # where the bytes come from, once redirects are followed
        self.dest = Path(dest)
        self.part = self.dest.with_name(self.dest.name + ".part")
        self.max_bytes, self.cancel = max_bytes, cancel
        self.on_bytes, self.on_total = on_bytes, on_total
        self.total: int | None = None
        self.announced = False  # on_total was told the size (once, from the first answer)
        self.received = 0
        self.started, self.grace = time.monotonic(), grace
        self.lock = threading.Lock()
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        self.part.unlink(missing_ok=True)
        self.fd = os.open(self.part, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)

    def announce(self, total: int | None) -> None:
        if total is not None and total > self.max_bytes:
            raise DownloadError(f"{self.dest.name} is {total:,} bytes, over the {self.max_bytes:,}-byte cap per file")
        self.total = total
        self.tell_size(total)

    def tell_size(self, total: int | None) -> None:
        """Tell ``on_total`` this file's size, once (0 for a file that failed before it was known)."""
        if not self.announced:
            self.announced = True
            if self.on_total:
                self.on_total(total)

    def write(self, offset: int, chunk: bytes) -> None:
        if self.cancel.is_set():
            raise _Cancelled()
        elapsed = time.monotonic() - self.started
        if elapsed > self.grace + (self.total or SEGMENT) / MIN_RATE:
            raise DownloadError(f"{self.dest.name}: the CDN sent {self.received:,} of "
                                f"{self.total if self.total is not None else '?'} bytes in {elapsed:.0f} s, slower than "
                                f"{MIN_RATE // 1024} KB/s; fetch again later (the job is kept: no new charge)")
        if offset + len(chunk) > self.max_bytes:
            raise DownloadError(f"{self.dest.name} exceeded the {self.max_bytes:,}-byte cap per file")
        with self.lock:  # never into a closed (or reused) descriptor: abandon() may run meanwhile
            if self.fd < 0:
                raise _Cancelled()
            os.pwrite(self.fd, chunk, offset)
            self.received += len(chunk)
        if self.on_bytes:
            self.on_bytes(len(chunk))

    def discard(self, nbytes: int) -> None:
        """Forget ``nbytes`` already counted (the server restarted a stream from byte 0)."""
        with self.lock:
            self.received -= nbytes
        if self.on_bytes:
            self.on_bytes(-nbytes)

    def finish(self) -> FileRecord:
        with self.lock:
            os.close(self.fd)
            self.fd = -1
        size = self.part.stat().st_size
        if self.total is not None and size != self.total:
            raise DownloadError(f"{self.dest.name}: got {size:,} of {self.total:,} bytes")
        digest = sha256_of(self.part)
        os.replace(self.part, self.dest)
        return FileRecord(path=self.dest, url=self.url, size=size, sha256=digest)

    def abandon(self) -> None:
        with self.lock:
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1
            self.part.unlink(missing_ok=True)


def _content_range(response: httpx.Response) -> tuple[int, int | None]:
    """``(start, total)`` from ``Content-Range: bytes start-end/total`` (total None when ``*``)."""
    match = re.match(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", response.headers.get("Content-Range", ""))
    if not match:
        raise httpx.RemoteProtocolError("206 without a readable Content-Range")
    return int(match.group(1)), (None if match.group(3) == "*" else int(match.group(3)))


def _fetch_range(client: httpx.Client, f: _File, start: int, end: int | None, *, first: bool,
                 policy: RetryPolicy) -> list[tuple[int, int]]:
    """Fetch bytes ``[start, end]`` of ``f`` (``end`` None: to the end), resuming after drops.

    For the ``first`` range, learn the file's size and return the ranges still to fetch; a
    server that ignores ``Range`` sends the whole file here and nothing is left.
    """
    position = start
    whole_file = False

    def attempt() -> None:
        nonlocal position, whole_file
        stop = "" if end is None else str(end)
        headers = {"Accept-Encoding": "identity", "Range": f"bytes={position}-{stop}"}
        url, hops = f.location, 0
        while True:  # follow redirects hop by hop, each checked; the last URL serves every range after
            r = client.send(client.build_request("GET", url, headers=headers), stream=True)
            if r.status_code not in REDIRECTS:
                break
            r.close()
            url, hops = redirect_target(r, hops=hops, what=f"the download of {f.dest.name}"), hops + 1
        f.location = url
        try:
            if r.status_code == 429:
                raise RateLimitError(f"the CDN throttled the download of {f.dest.name} (429)",
                                     retry_after=retry_after(r))
            if r.status_code >= 500:
                raise ProviderServerError(f"the CDN failed to serve {f.dest.name} (HTTP {r.status_code})",
                                          status=r.status_code)
            if r.status_code == 416 and first and position == 0:  # an empty file
                f.announce(0)
                whole_file = True
                return
            if r.status_code == 206:
                served_from, total = _content_range(r)
                if served_from != position:
                    raise httpx.RemoteProtocolError("the server answered a different range than asked")
                if first and f.total is None:
                    f.announce(total)
            elif r.status_code == 200:
                if not first:
                    raise DownloadError(f"{f.dest.name}: the server stopped honouring Range requests")
                if position:  # it ignored our resume: start over
                    f.discard(position)
                    position = 0
                length = r.headers.get("Content-Length")
                f.announce(int(length) if length and length.isdigit() else None)
                whole_file = True
            else:
                raise DownloadError(f"could not download {f.dest.name}: HTTP {r.status_code} from {url}")
            for chunk in r.iter_bytes():  # no re-chunking: bytes received before a drop are kept
                f.write(position, chunk)
                position += len(chunk)
        finally:
            r.close()
        if whole_file or end is None:
            expected = f.total
        else:
            expected = end + 1 if f.total is None else min(end + 1, f.total)
        if expected is not None and position < expected:
            raise httpx.RemoteProtocolError(f"connection closed at byte {position} of {expected}")

    retrying(attempt, policy=policy, sent_is_safe=True, what=f"the download of {f.dest.name}",
             hint="check your internet connection, then fetch again to resume (the job is kept: "
                  "no new charge)")
    if not first or whole_file or f.total is None:
        return []
    return [(s, min(s + SEGMENT, f.total) - 1) for s in range(position, f.total, SEGMENT)]


def download_all(client: httpx.Client, items: Sequence[tuple[str, Path]], *, max_workers: int = 16,
                 max_bytes: int = MAX_FILE_BYTES, policy: RetryPolicy = RetryPolicy(),
                 progress: bool = True, desc: str = "download", grace: float = 30.0,
                 optional: Sequence[int] = ()) -> list[FileRecord | Exception]:
    """Download ``(url, dest)`` pairs concurrently, at most ``max_workers`` requests at once.

    Each file must arrive within ``grace`` seconds plus its size at :data:`MIN_RATE`.
    Returns the records in the order of ``items``. If one download fails for good, the others
    stop, their part files are removed, and the first error is raised; except for the indices in
    ``optional``, whose failure (a :class:`~stemlab.errors.StemlabError`) is returned in place
    of their record.
    """
    from .progress import byte_bar

    for url, dest in items:  # every URL checked before any part file exists
        try:
            check_url(url, what="download URL")
        except UsageError as exc:  # the job is done (and paid): this is the provider's fault, exit code 3
            raise DownloadError(f"{Path(dest).name}: the provider gave a URL stemlab refuses ({exc})") from None
    cancel = threading.Event()
    results: dict[int, FileRecord | Exception] = {}
    # the bar moves once every file's first answer has told its size: its percentage never goes back
    with byte_bar(desc=desc, enabled=progress, files=len(items)) as bar, _DaemonPool(max(1, max_workers)) as pool:
        files = [_File(url, dest, max_bytes=max_bytes, cancel=cancel, on_bytes=bar.advance, on_total=bar.sized,
                       grace=grace) for url, dest in items]
        outstanding = [0] * len(files)
        pending: dict[Future, int] = {}

        def start(i: int, begin: int, end: int | None, first: bool) -> None:
            outstanding[i] += 1
            pending[pool.submit(_fetch_range, client, files[i], begin, end, first=first, policy=policy)] = i

        for i in range(len(files)):
            start(i, 0, SEGMENT - 1, True)
        first_error: BaseException | None = None
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    i = pending.pop(future)
                    outstanding[i] -= 1
                    files[i].tell_size(0)  # a first range that failed before the size was known: none to wait for
                    if i in results:  # this file already failed
                        continue
                    try:
                        for begin, end in future.result():
                            start(i, begin, end, False)
                        if outstanding[i] == 0:
                            results[i] = files[i].finish()
                    except _Cancelled:
                        results[i] = DownloadError("cancelled")
                    except StemlabError as exc:
                        results[i] = exc
                        files[i].abandon()
                        if i not in optional:
                            first_error = first_error or exc
                            cancel.set()
        except BaseException as exc:  # Ctrl-C included: stop the others, leave nothing partial
            cancel.set()
            first_error = exc
            raise
        finally:
            for f in files:
                if f.fd >= 0:
                    f.abandon()
    if first_error is not None:
        raise first_error
    return [results[i] for i in range(len(items))]


class _DaemonPool:
    """A bounded thread pool that never holds up its caller, nor the process's exit.

    ``ThreadPoolExecutor`` joins its threads on leaving its ``with`` block and again at exit, so a
    Ctrl-C during a download that a CDN has stalled waits out the read timeout (30 s). These
    threads are daemons, and leaving the block only tells them to stop: a stalled one ends with
    its timeout, its file already abandoned (:meth:`_File.write` refuses closed files).
    """

    def __init__(self, workers: int):
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        self._workers = workers
        self._started = 0

    def submit(self, fn: Callable, *args, **kwargs) -> Future:
        future: Future = Future()
        self._tasks.put((future, fn, args, kwargs))
        if self._started < self._workers:
            self._started += 1
            threading.Thread(target=self._work, name="stemlab-download", daemon=True).start()
        return future

    def _work(self) -> None:
        while (task := self._tasks.get()) is not None:
            future, fn, args, kwargs = task
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as exc:  # noqa: BLE001 - handed to the caller through the future
                    future.set_exception(exc)

    def __enter__(self) -> "_DaemonPool":
        return self

    def __exit__(self, *exc) -> None:
        while True:  # what has not started never will
            try:
                task = self._tasks.get_nowait()
            except queue.Empty:
                break
            if task is not None:
                task[0].cancel()
        for _ in range(self._started):
            self._tasks.put(None)


def download(client: httpx.Client, url: str, dest: Path, *, max_bytes: int = MAX_FILE_BYTES,
             policy: RetryPolicy = RetryPolicy()) -> FileRecord:
    """Download one ``url`` to ``dest`` atomically (see :func:`download_all`)."""
    (record,) = download_all(client, [(url, dest)], max_bytes=max_bytes, policy=policy, progress=False)
    return record
