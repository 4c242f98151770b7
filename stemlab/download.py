"""Downloads: concurrent, bounded, resumable, size-capped, atomic.

Each file streams to ``<name>.part`` beside its final path, is checked against the served
length, and only then renamed: a file with its final name is always complete. A dropped
connection resumes with a ``Range`` request; anything else that fails removes the part file.

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

import hashlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import httpx

from .errors import DownloadError, ProviderServerError, RateLimitError, StemlabError
from .http import RetryPolicy, check_url, retrying

__all__ = ["FileRecord", "download", "download_all", "MAX_FILE_BYTES", "sha256_of"]

MAX_FILE_BYTES = 200 * 1024 * 1024  # a 10-minute 48 kHz stereo 24-bit WAV is ~170 MB; MP3 stems are ~5 MB


@dataclass(frozen=True)
class FileRecord:
    """A downloaded file: where it is, how big it is, and its SHA-256."""

    path: Path
    url: str
    size: int
    sha256: str


class _Cancelled(Exception):
    pass


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None


def download(client: httpx.Client, url: str, dest: Path, *, max_bytes: int = MAX_FILE_BYTES,
             policy: RetryPolicy = RetryPolicy(), on_bytes: Callable[[int], None] | None = None,
             on_total: Callable[[int], None] | None = None, cancel: threading.Event | None = None) -> FileRecord:
    """Download ``url`` to ``dest`` atomically and return its :class:`FileRecord`.

    Parameters
    ----------
    max_bytes : int
        Refuse files larger than this (announced or actual), with :class:`DownloadError`.
    on_bytes, on_total : callable, optional
        Progress callbacks: bytes received, and the total size once known.
    cancel : threading.Event, optional
        Set by a sibling download that failed; this one then stops and cleans up.
    """
    check_url(url)
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    state = {"have": 0, "total": None, "hash": hashlib.sha256()}

    def restart(f):
        f.seek(0)
        f.truncate()
        if on_bytes and state["have"]:
            on_bytes(-state["have"])
        state.update(have=0, hash=hashlib.sha256())

    def attempt():
        # identity encoding: byte offsets for Range must be offsets into the file itself
        headers = {"Accept-Encoding": "identity"}
        if state["have"]:
            headers["Range"] = f"bytes={state['have']}-"
        with client.stream("GET", url, headers=headers) as r, open(part, "r+b" if part.exists() else "wb") as f:
            f.seek(state["have"])
            if r.status_code == 429:
                raise RateLimitError(f"the CDN throttled the download of {dest.name} (429)",
                                     retry_after=_retry_after(r))
            if r.status_code >= 500:
                raise ProviderServerError(f"the CDN failed to serve {dest.name} (HTTP {r.status_code})",
                                          status=r.status_code)
            if r.status_code == 206 and state["have"]:
                total = r.headers.get("Content-Range", "").rpartition("/")[2]
                start = r.headers.get("Content-Range", "bytes -").split()[-1].split("-")[0]
                if start != str(state["have"]):
                    restart(f)
                    raise httpx.RemoteProtocolError("the server resumed at the wrong offset")
                state["total"] = int(total) if total.isdigit() else state["total"]
            elif r.status_code == 200:
                if state["have"]:
                    restart(f)  # the server ignored Range: start over
                length = r.headers.get("Content-Length")
                state["total"] = int(length) if length and length.isdigit() else None
            else:
                raise DownloadError(f"could not download {dest.name}: HTTP {r.status_code} from {url}")
            if state["total"] is not None:
                if state["total"] > max_bytes:
                    raise DownloadError(f"{dest.name} is {state['total']:,} bytes, over the "
                                        f"{max_bytes:,}-byte cap per file")
                if on_total and "Range" not in headers:
                    on_total(state["total"])
            for chunk in r.iter_bytes():  # no re-chunking: bytes received before a drop are kept
                if cancel is not None and cancel.is_set():
                    raise _Cancelled()
                f.write(chunk)
                state["hash"].update(chunk)
                state["have"] += len(chunk)
                if state["have"] > max_bytes:
                    raise DownloadError(f"{dest.name} exceeded the {max_bytes:,}-byte cap per file")
                if on_bytes:
                    on_bytes(len(chunk))
        if state["total"] is not None and state["have"] != state["total"]:
            raise httpx.RemoteProtocolError(f"got {state['have']} of {state['total']} bytes")

    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        part.unlink(missing_ok=True)
        retrying(attempt, policy=policy, sent_is_safe=True, what=f"download of {dest.name}")
        os.replace(part, dest)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return FileRecord(path=dest, url=url, size=state["have"], sha256=state["hash"].hexdigest())


def download_all(client: httpx.Client, items: Sequence[tuple[str, Path]], *, max_workers: int = 16,
                 max_bytes: int = MAX_FILE_BYTES, policy: RetryPolicy = RetryPolicy(),
                 progress: bool = True, desc: str = "download",
                 optional: Sequence[int] = ()) -> list[FileRecord | Exception]:
    """Download ``(url, dest)`` pairs concurrently (at most ``max_workers`` at once).

    Returns the records in the order of ``items``. If one download fails for good, the others
    stop, their part files are removed, and the first error is raised; except for the indices in
    ``optional``, whose failure (a :class:`~stemlab.errors.StemlabError`) is returned in place
    of their record.
    """
    from .progress import byte_bar

    cancel = threading.Event()
    results: dict[int, FileRecord] = {}
    with byte_bar(desc=desc, enabled=progress) as bar, \
            ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(items)))) as pool:
        futures = {pool.submit(download, client, url, Path(dest), max_bytes=max_bytes, policy=policy,
                               on_bytes=bar.advance, on_total=bar.grow, cancel=cancel): i
                   for i, (url, dest) in enumerate(items)}
        first_error: BaseException | None = None
        for future in as_completed(futures):
            try:
                results[futures[future]] = future.result()
            except _Cancelled:
                pass
            except StemlabError as exc:
                if futures[future] not in optional:
                    cancel.set()
                    first_error = first_error or exc
                results[futures[future]] = exc
            except BaseException as exc:  # noqa: BLE001 - re-raised below, after siblings stop
                cancel.set()
                first_error = first_error or exc
    if first_error is not None:
        raise first_error
    return [results[i] for i in range(len(items))]
