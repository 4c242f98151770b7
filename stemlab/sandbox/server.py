"""A loopback HTTP server that speaks CQTAI's and Apiframe's stem APIs and serves their CDNs.

One server, one port, a path prefix per real host::

    <url>/cqtai/...          https://api.cqtai.com/...      POST /api/cqt/generator/suno,
                                                            GET  /api/cqt/info/suno?id= (alias
                                                            GET  /api/cqt/v2/sunoinfo?id=)
    <url>/suno-cdn/<id>.mp3  https://cdn1.suno.ai/<id>.mp3  source clips and stem clips
    <url>/apiframe/...       https://api.apiframe.ai/...    POST /v2/music/suno/action,
                                                            GET  /v2/jobs/<id>
    <url>/apiframe-cdn/audio/<jobId>-<i>.mp3                parent tracks and stems results

HTTP/1.1 with keep-alive; every answer has a ``Content-Length``; downloads honour
``Range: bytes=...`` (206, ``Content-Range``; 416 when unsatisfiable) and may be throttled.
No API key is ever logged or stored (keys are compared as SHA-256 digests).

>>> from stemlab.sandbox.synth import make_song
>>> import tempfile, httpx
>>> root = tempfile.mkdtemp(); _ = make_song(root, "song", duration=1.0, names=("vocals", "bass"))
>>> with Sandbox(root) as sb:
...     r = httpx.post(f"{sb.cqtai_url}/api/cqt/generator/suno", headers={"Authorization": "Bearer sk-test"},
...                    json={"task": "gen_stem_two", "clipId": "song"})
>>> r.json()["code"], len(r.json()["data"])
(200, 32)
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import socketserver
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import SplitResult, parse_qs, urlsplit

from ..config import Secret, Settings
from ..providers import REGISTRY
from .faults import Fault, Faults
from .jobs import OUTCOMES, ApiframeApi, Book, CqtaiApi, KeyRing, Options, Reply
from .library import Song, read_library

__all__ = ["Sandbox", "serve", "MOUNTS", "SANDBOX_KEYS"]

log = logging.getLogger("stemlab.sandbox")

_CHUNK = 64 * 1024

#: the keys ``stemlab sandbox`` and the demo accept (not secrets: printed for users to copy)
SANDBOX_KEYS = {"cqtai": "sk-sandbox", "apiframe": "afk_sandbox"}

#: provider URL setting -> the path prefix that stands for that host here
MOUNTS = {"cqtai_url": "cqtai", "suno_cdn_url": "suno-cdn", "apiframe_url": "apiframe"}


@dataclass
class Response:
    """One answer to write: status, headers and a body from bytes or from a file slice.

    ``drop_after`` closes the connection after that many body bytes (the headers still
    announce the full length).
    """

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    file: Path | None = None
    start: int = 0
    length: int = 0
    drop_after: int | None = None
    trickle: float | None = None  # bytes per second, for a slow-loris body

    @property
    def size(self) -> int:
        return self.length if self.file else len(self.body)

    def chunks(self, limit: int, chunk: int) -> Iterator[bytes]:
        """The first ``limit`` body bytes, in pieces of at most ``chunk`` bytes."""
        if self.file is None:
            for i in range(0, limit, chunk):
                yield self.body[i:min(i + chunk, limit)]
            return
        with open(self.file, "rb") as handle:
            handle.seek(self.start)
            while limit > 0:
                piece = handle.read(min(chunk, limit))
                if not piece:
                    return
                limit -= len(piece)
                yield piece


def json_response(reply: Reply) -> Response:
    body = json.dumps(reply.payload).encode("utf-8")
    return Response(reply.status, {"Content-Type": "application/json", **reply.headers}, body)


def parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """The byte range ``(first, last)`` a ``Range`` header asks for.

    ``None`` means "send everything" (no header, several ranges or bad syntax, which may be
    ignored); ``"unsatisfiable"`` means 416.

    >>> parse_range("bytes=100-", 1000), parse_range("bytes=0-99", 1000), parse_range("bytes=-10", 1000)
    ((100, 999), (0, 99), (990, 999))
    >>> parse_range("bytes=1000-", 1000), parse_range("bytes=5-1", 1000), parse_range("items=1-2", 10)
    ('unsatisfiable', None, None)
    """
    match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header or "")
    if not match or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":
        suffix = int(last)
        return (max(0, size - suffix), size - 1) if suffix and size else "unsatisfiable"
    first, last = int(first), (int(last) if last else None)
    if last is not None and last < first:
        return None
    if first >= size:
        return "unsatisfiable"
    return first, size - 1 if last is None else min(last, size - 1)


def file_response(path: Path, range_header: str | None) -> Response:
    """200 with the whole file, 206 with the requested range, or 416."""
    size = path.stat().st_size
    headers = {"Content-Type": "audio/mpeg", "Accept-Ranges": "bytes"}
    wanted = parse_range(range_header, size)
    if wanted == "unsatisfiable":
        return Response(416, {**headers, "Content-Range": f"bytes */{size}"})
    if wanted is None:
        return Response(200, headers, file=path, length=size)
    first, last = wanted
    return Response(206, {**headers, "Content-Range": f"bytes {first}-{last}/{size}"},
                    file=path, start=first, length=last - first + 1)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], sandbox: "Sandbox"):
        self.sandbox = sandbox
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:  # HTTPServer's would look the host name up (slow, useless)
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request, client_address) -> None:
        """A client that went away (killed, interrupted, timed out) is no error of the sandbox's."""
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "stemlab-sandbox/1"
    sys_version = ""
    timeout = 60  # idle keep-alive connections close after this many seconds
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    recorded = False  # this request is in the sandbox's log (set per request by Sandbox._handle)
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:  # request lines hold no keys
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self.server.sandbox._handle(self)

    do_POST = do_HEAD = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def read_body(self) -> bytes:
        """The request body (``Content-Length`` or chunked), read fully so keep-alive stays in step."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():  # trailers
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def abort(self) -> None:
        """Close the connection now, whatever was (not) sent."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class _Option:
    """A ``Sandbox`` attribute that reads and writes (validated) ``sandbox.options``."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, sandbox: Any, owner: type | None = None) -> Any:
        return self if sandbox is None else getattr(sandbox.options, self.name)

    def __set__(self, sandbox: Any, value: Any) -> None:
        setattr(sandbox.options, self.name, value)


# (methods, path pattern, fault route or None when it depends on the argument, handler name)
_ROUTES = [
    (("POST",), re.compile(r"/cqtai/api/cqt/generator/suno"), "cqtai.submit", "_cqtai_submit"),
    (("GET",), re.compile(r"/cqtai/api/cqt/(?:info/suno|v2/sunoinfo)"), "cqtai.poll", "_cqtai_info"),
    (("POST",), re.compile(r"/apiframe/v2/music/suno/action"), "apiframe.submit", "_apiframe_submit"),
    (("GET",), re.compile(r"/apiframe/v2/jobs/(?P<arg>[^/]+)"), None, "_apiframe_job"),
    (("GET", "HEAD"), re.compile(r"/suno-cdn/(?P<arg>[^/]+)"), "download", "_suno_file"),
    (("GET", "HEAD"), re.compile(r"/apiframe-cdn/audio/(?P<arg>[^/]+)"), "download", "_apiframe_file"),
]


class Sandbox:
    """Both providers' APIs and CDNs on one loopback port, serving a library folder.

    Parameters
    ----------
    library_dir : folder in the format of :mod:`stemlab.sandbox.library`.
    cqtai_key, apiframe_key : the keys accepted (``None``: any non-empty key).
    apiframe_inactive_keys : keys answered with 403 "API key is inactive".
    polls_to_complete : polls a job shows as running before it finishes (0: done at once).
    throttle_bytes_per_s : per-response download speed cap, ``None`` for none.
    cqtai_error_style : ``"body"`` (HTTP 200, code in the JSON) or ``"http"`` (code as status).
    cqtai_success_status : the CQTAI status word of a finished task (``"succeeded"``/``"success"``).
    cqtai_label_style : ``"metadata"`` or ``"title"`` (no ``stem_type_group_name``).
    task_limit : running jobs per provider (``None``: no limit); a submit beyond it is answered
        429 (CQTAI's "Task limit reached"). ``sb.peak_running`` counts the most that ran at once.
    host, port : where to listen; port 0 picks a free one.

    ``polls_to_complete``, ``throttle_bytes_per_s`` and the ``cqtai_*`` options can be changed
    while running (``sb.polls_to_complete = 5``). ``sb.faults`` scripts failures
    (:mod:`.faults`); ``sb.set_outcome`` scripts how jobs end.

    Examples
    --------
    >>> import tempfile
    >>> from stemlab.sandbox.synth import make_song
    >>> root = tempfile.mkdtemp(); _ = make_song(root, "s", duration=0.5, names=("vocals",))
    >>> with Sandbox(root, polls_to_complete=0) as sb:
    ...     sb.cqtai_url.endswith("/cqtai"), sb.requests
    (True, [])
    """

    polls_to_complete = _Option()
    throttle_bytes_per_s = _Option()
    cqtai_error_style = _Option()
    cqtai_success_status = _Option()
    cqtai_label_style = _Option()
    task_limit = _Option()

    def __init__(self, library_dir: str | os.PathLike, *, cqtai_key: str | None = "sk-test",
                 apiframe_key: str | None = "afk_test", apiframe_inactive_keys: Iterable[str] = (),
                 polls_to_complete: int = 2, throttle_bytes_per_s: float | None = None,
                 cqtai_error_style: str = "body", cqtai_success_status: str = "succeeded",
                 cqtai_label_style: str = "metadata", task_limit: int | None = None, host: str = "127.0.0.1",
                 port: int = 0):
        self.library_dir = Path(library_dir)
        self.options = Options(polls_to_complete, throttle_bytes_per_s, cqtai_error_style,
                               cqtai_success_status, cqtai_label_style, task_limit)
        self.faults = Faults()
        self._book = Book(read_library(self.library_dir), self.options)
        self.cqtai = CqtaiApi(self._book, KeyRing(cqtai_key))
        self.apiframe = ApiframeApi(self._book, KeyRing(apiframe_key, apiframe_inactive_keys))
        self._client_keys = {"cqtai": Secret(cqtai_key or "sk-sandbox"),  # for settings(); never printed
                             "apiframe": Secret(apiframe_key or "afk_sandbox")}
        self._address = (host, port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def settings(self, **overrides: Any):
        """:class:`stemlab.config.Settings` that point every provider URL and key at this sandbox.

        ``stemlab.fetch("cqtai", clip_id=..., settings=sb.settings())`` uses the sandbox; drop
        ``settings=`` to use the real provider. ``overrides`` (``cache_dir=``, ``poll_interval=``...)
        apply on top; the default poll interval is 0.05 s. Every URL and key setting of every
        registered provider is pointed here (:data:`MOUNTS`, :data:`stemlab.providers.REGISTRY`).
        """
        values: dict[str, Any] = {"poll_interval": 0.05}
        for kind in REGISTRY.values():
            values.update({setting: f"{self.url}/{MOUNTS[setting]}" for setting in kind.urls})
            values[kind.key_setting] = self._client_keys[kind.name]
        return Settings.resolve(**{**values, **overrides})

    # ------------------------------------------------------------------ life cycle

    def start(self) -> "Sandbox":
        """Bind and serve in a daemon thread; returns ``self``."""
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server(self._address, self)
        self._book.base_url = f"http://{self._server.server_address[0]}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="stemlab-sandbox", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection (hanging faults end at once)."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        with server.connections_lock:
            for conn in list(server.connections):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ------------------------------------------------------------------ addresses

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (only once started)."""
        if self._server is None:
            raise RuntimeError("the sandbox is not running; call start() or use it as a context manager")
        return self._book.base_url

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    cqtai_url = property(lambda self: f"{self.url}/{MOUNTS['cqtai_url']}", doc="Stands for https://api.cqtai.com.")
    suno_cdn_url = property(lambda self: f"{self.url}/{MOUNTS['suno_cdn_url']}", doc="Stands for https://cdn1.suno.ai.")
    apiframe_url = property(lambda self: f"{self.url}/{MOUNTS['apiframe_url']}",
                            doc="Stands for https://api.apiframe.ai.")
    apiframe_cdn_url = property(lambda self: f"{self.url}/apiframe-cdn",
                                doc="Stands for https://cdn2.apiframe.ai.")

    # ------------------------------------------------------------------ library, jobs, ledger

    @property
    def library(self) -> dict[str, Song]:
        return self._book.library

    def song(self, song_id: str) -> Song:
        """One library song by folder name (its clip id, parent job id, tracks, files)."""
        try:
            return self._book.library[song_id]
        except KeyError:
            raise KeyError(f"no song {song_id!r} in the sandbox library {self.library_dir}") from None

    def reload(self) -> None:
        """Read the library folder again (new songs become servable; jobs are kept)."""
        self._book.set_library(read_library(self.library_dir))

    def set_outcome(self, key: str, outcome: str, *, message: str | None = None) -> None:
        """How jobs end: ``"ok"`` (default), ``"fail"`` (with the provider's ``message``) or
        ``"stuck"`` (running forever). ``key`` is a job id, a CQTAI clip id, an Apiframe parent
        job id, a song id, or ``"*"`` for all; the most specific key wins. The outcome is read
        when a job is due to finish, so it may be set after submitting.
        """
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, not {outcome!r}")
        with self._book.lock:
            self._book.outcomes[key] = (outcome, message)

    @property
    def submits(self) -> list[dict[str, Any]]:
        """Every submit, in order: ``provider``, ``body`` (parsed JSON or None), ``job_id``
        (None if rejected), ``accepted``, ``fault`` (the fault kind that hit it, or None)."""
        with self._book.lock:
            return [dict(s) for s in self._book.submits]

    @property
    def peak_running(self) -> dict[str, int]:
        """The most jobs each provider ran at once (submitted and not yet seen finished)."""
        with self._book.lock:
            return dict(self._book.peak_running)

    @property
    def requests(self) -> list[tuple[str, str, int | None]]:
        """Every request: ``(method, path with query, status)``; status None when no answer was sent."""
        with self._book.lock:
            return list(self._book.requests)

    def reset_ledger(self) -> None:
        """Forget recorded submits and requests (jobs, faults and outcomes stay)."""
        with self._book.lock:
            self._book.submits.clear()
            self._book.requests.clear()

    def webhooks(self, job_id: str) -> list[tuple[dict[str, str], bytes]]:
        """Apiframe webhook POSTs the sandbox would have sent for a job: ``(headers, raw body)``.

        Signature: :func:`stemlab.sandbox.jobs.webhook_signature` (hex HMAC-SHA256 of the body
        keyed with the SHA-256 digest of the API key; the encoding is [NF] in the docs).
        """
        return self.apiframe.webhooks(job_id)

    # ------------------------------------------------------------------ request handling

    def _handle(self, handler: _Handler) -> None:
        method, raw_path = handler.command, handler.path
        handler.recorded = False
        status: int | None = None
        try:
            body = handler.read_body()
            response = self._respond(handler, method, raw_path, body)
            if response is not None:
                status = response.status
                self._record(handler, status)  # before the client can see the answer
                self._send(handler, response, head_only=method == "HEAD")
        except (ConnectionError, OSError):
            handler.close_connection = True
        except Exception:  # a sandbox bug: answer 500, log without any header
            log.exception("sandbox error on %s %s", method, urlsplit(raw_path).path)
            status = 500
            try:
                self._send(handler, json_response(Reply(500, {"error": "internal sandbox error"})))
            except OSError:
                handler.close_connection = True
        finally:
            self._record(handler, status)

    def _record(self, handler: _Handler, status: int | None) -> None:
        """Log the request once, before the client can see its answer (or its connection cut)."""
        if handler.recorded:
            return
        handler.recorded = True
        with self._book.lock:
            self._book.requests.append((handler.command, handler.path, status))

    def _abort(self, handler: _Handler) -> None:
        self._record(handler, None)
        handler.abort()

    def _respond(self, handler: _Handler, method: str, raw_path: str, body: bytes) -> Response | None:
        """The response to send (``None``: the connection was closed without one)."""
        url = urlsplit(raw_path)
        matches = [(methods, m, route, name) for methods, pattern, route, name in _ROUTES
                   if (m := pattern.fullmatch(url.path))]
        allowed = [methods for methods, *_ in matches if method in methods]
        if not matches:
            return json_response(Reply(404, {"error": "Not found"}))
        if not allowed:
            return json_response(Reply(405, {"error": "Method not allowed"},
                                       {"Allow": ", ".join(matches[0][0])}))
        _, match, route, name = next(m for m in matches if method in m[0])
        arg = match.groupdict().get("arg")
        if route is None:
            route = "apiframe.parent" if self.apiframe.is_parent(arg) else "apiframe.poll"
        request = _Request(handler, url, body, arg)

        def produce(fault_kind: str | None) -> Response:
            return getattr(self, name)(request, fault_kind)

        fault = self.faults.take(route, raw_path)
        if fault is None:
            return produce(None)
        return self._with_fault(fault, route, handler, produce, body)

    def _with_fault(self, fault: Fault, route: str, handler: _Handler,
                    produce: Callable[[str | None], Response], body: bytes) -> Response | None:
        """Apply one scripted fault to a request (see :mod:`.faults`)."""
        provider = route.split(".")[0]
        html = fault.kind == "malformed" and fault.variant == "html"
        if route.endswith(".submit") and (fault.kind in ("status", "drop") or html):
            self._book.record_submit(provider, body, None, fault.kind)
        if fault.kind == "delay":
            if self._stopping.wait(fault.seconds):
                self._abort(handler)
                return None
            return produce(fault.kind)
        if fault.kind == "redirect":
            target = fault.to or f"https://elsewhere.invalid{urlsplit(handler.path).path}"
            if route.endswith(".submit"):
                self._book.record_submit(provider, body, None, fault.kind)
            return Response(fault.status, {"Location": target, "Content-Type": "text/plain"}, b"moved")
        if fault.kind == "echo_key":
            presented = handler.headers.get("X-API-Key") or (handler.headers.get("Authorization") or "")[7:]
            return self._fault_status(Fault(route, "status", {"status": fault.status, "retry_after": None,
                                                               "style": None,
                                                               "message": f"invalid key {presented}"}), provider)
        if fault.kind == "accepted":  # processed (a job exists, and is charged), answered unreadably
            produce(None)
            status = fault.status or (202 if provider == "apiframe" else 200)
            return Response(status, {"Content-Type": "application/json"}, str(fault.body).encode("utf-8"))
        if fault.kind == "trickle":
            response = produce(fault.kind)
            response.trickle = float(fault.bytes_per_second)
            return response
        if fault.kind == "status":
            return self._fault_status(fault, provider)
        if html:
            return Response(200, {"Content-Type": "text/html; charset=utf-8"}, b"<html>oops</html>")
        if fault.kind == "drop" and route != "download":
            self._abort(handler)
            return None
        response = produce(fault.kind)
        if fault.kind == "hang_after_accept":
            self._stopping.wait(fault.seconds)
            self._abort(handler)
            return None
        if fault.kind == "malformed":  # truncated: processed, body cut, framing correct
            whole = b"".join(response.chunks(response.size, _CHUNK))
            return Response(response.status, response.headers, whole[: len(whole) // 2])
        response.drop_after = fault.after_bytes if fault.after_bytes is not None else response.size // 2
        return response

    def _fault_status(self, fault: Fault, provider: str) -> Response:
        status, message, retry = fault.status, fault.message, fault.retry_after
        if provider == "cqtai":
            return json_response(self.cqtai.error(status, message, style=fault.style, retry_after=retry))
        if provider == "apiframe":
            return json_response(self.apiframe.error(status, message, retry_after=retry))
        text = (message or f"{status} error").encode("utf-8")
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if retry is not None:
            headers["Retry-After"] = f"{retry:g}"
        return Response(status, headers, text)

    def _send(self, handler: _Handler, response: Response, head_only: bool = False) -> None:
        handler.send_response(response.status)
        for name, value in response.headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(response.size))
        handler.end_headers()
        if head_only:
            return
        limit = response.size if response.drop_after is None else min(response.drop_after, response.size)
        rate = response.trickle or (self.options.throttle_bytes_per_s if response.file else None)
        chunk = _CHUNK if not rate else int(min(_CHUNK, max(1 if response.trickle else 1024, rate / 20)))
        started, sent = time.monotonic(), 0
        for piece in response.chunks(limit, chunk):
            handler.wfile.write(piece)
            sent += len(piece)
            if rate and self._stopping.wait(max(0.0, started + sent / rate - time.monotonic())):
                break
        if response.drop_after is not None or self._stopping.is_set():
            handler.wfile.flush()
            handler.abort()

    # ------------------------------------------------------------------ routes

    def _cqtai_submit(self, req: "_Request", fault: str | None) -> Response:
        return json_response(self.cqtai.submit(req.header("Authorization"), req.body, fault))

    def _cqtai_info(self, req: "_Request", fault: str | None) -> Response:
        task_id = (parse_qs(req.url.query).get("id") or [None])[0]
        return json_response(self.cqtai.info(req.header("Authorization"), task_id))

    def _apiframe_submit(self, req: "_Request", fault: str | None) -> Response:
        return json_response(self.apiframe.submit(req.header("X-API-Key"), req.body, fault))

    def _apiframe_job(self, req: "_Request", fault: str | None) -> Response:
        return json_response(self.apiframe.job(req.header("X-API-Key"), req.arg))

    def _suno_file(self, req: "_Request", fault: str | None) -> Response:
        return self._file(self.cqtai.file(req.arg), req)

    def _apiframe_file(self, req: "_Request", fault: str | None) -> Response:
        return self._file(self.apiframe.file(req.arg), req)

    @staticmethod
    def _file(path: Path | None, req: "_Request") -> Response:
        if path is None or not path.is_file():
            return Response(404, {"Content-Type": "text/plain; charset=utf-8"}, b"Not Found")
        return file_response(path, req.header("Range"))


@dataclass
class _Request:
    handler: _Handler
    url: SplitResult
    body: bytes
    arg: str | None  # the path argument: job id or file name

    def header(self, name: str) -> str | None:
        return self.handler.headers.get(name)


def serve(library_dir: str | os.PathLike, *, host: str = "127.0.0.1", port: int = 8765,
          on_ready: Callable[[Sandbox], None] | None = None, stop: threading.Event | None = None,
          **options: Any) -> None:
    """Run a sandbox in the foreground until Ctrl-C (or until ``stop`` is set). Prints nothing.

    ``on_ready(sandbox)`` is called once it listens (e.g. to print ``sandbox.url``);
    ``options`` are :class:`Sandbox` keyword arguments.
    """
    with Sandbox(library_dir, host=host, port=port, **options) as sandbox:
        if on_ready is not None:
            on_ready(sandbox)
        try:
            (stop or threading.Event()).wait()
        except KeyboardInterrupt:
            pass
