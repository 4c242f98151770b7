"""The HTTP layer: one httpx client, a URL policy, and retries that never pay twice.

Two retry rules, because a submit costs credits and a poll does not:

* :func:`retrying` with ``sent_is_safe=True`` (polls, downloads): retry on network errors,
  timeouts, 5xx and 429, with exponential backoff (``Retry-After`` honoured).
* ``sent_is_safe=False`` (submits): retry only when the provider clearly did not accept the
  request: a 429 or 5xx *answer*, or a connection that was never established. A request that
  was sent but got no answer, or an answer that cannot be read (not JSON, no job id, a
  redirect), raises :class:`SubmitUncertainError` at once and is never repeated: the job may
  exist, and may have been charged.

A host that cannot be reached at all (no network, a wrong URL setting) is tried for at most
``RetryPolicy.unreachable_for`` seconds, so "no network" is said within about 10 s, naming the
host. Every retry is announced as it happens, as a ``stemlab`` log notice ("stemlab: cannot
reach api.cqtai.com (connection refused); retrying the CQTAI submit in 0.5 s (try 2 of 5)").

>>> policy = RetryPolicy(attempts=3, base_delay=0.0)
>>> calls = []
>>> def flaky():
...     calls.append(1)
...     if len(calls) < 3:
...         raise ProviderServerError("try later")
...     return "ok"
>>> retrying(flaky, policy=policy, sent_is_safe=False)
'ok'
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import math
import random
import socket
import threading
import time
from dataclasses import dataclass
from typing import Callable, TypeVar
from urllib.parse import urlsplit

import httpx

from .errors import (NetworkError, ProtocolError, ProviderServerError, RateLimitError, RedirectError,
                     SubmitUncertainError, UsageError)

__all__ = ["RetryPolicy", "MAX_WAIT", "retry_after", "check_url", "is_loopback", "new_client", "retrying", "json_of",
           "network_reason"]

log = logging.getLogger("stemlab")

T = TypeVar("T")

USER_AGENT = "stemlab/0.1 (+https://github.com/stemlab)"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry. Delays double from ``base_delay`` up to ``max_delay``;
    a provider's ``Retry-After`` is honoured up to :data:`MAX_WAIT` seconds (a longer ask is cut
    to that, so five attempts never wait more than five minutes). A host that cannot be reached
    is not tried again once ``unreachable_for`` seconds have gone by since the first attempt."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    jitter: float = 0.1
    unreachable_for: float = 10.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), MAX_WAIT)
        delay = min(self.base_delay * (2 ** attempt), self.max_delay)
        return delay * (1 + self.jitter * random.random())


#: The longest stemlab waits before one retry, whatever ``Retry-After`` asks (seconds).
MAX_WAIT = 60.0


def is_loopback(host: str | None) -> bool:
    """True for ``localhost``, ``127.0.0.0/8`` and ``::1``."""
    if not host:
        return False
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url: str, *, what: str = "URL") -> str:
    """Return ``url`` if it is https, or http on a loopback host; else raise :class:`UsageError`.

    >>> check_url("http://127.0.0.1:8765/x.mp3")
    'http://127.0.0.1:8765/x.mp3'
    >>> check_url("http://cdn.example.com/x.mp3")
    Traceback (most recent call last):
    ...
    stemlab.errors.UsageError: refusing plain-http URL http://cdn.example.com/x.mp3 (only https, or http on 127.0.0.1/localhost)
    """
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and is_loopback(parts.hostname):
        return url
    if parts.scheme == "http":
        raise UsageError(f"refusing plain-http URL {url} (only https, or http on 127.0.0.1/localhost)")
    raise UsageError(f"refusing {what} {url!r}: only https URLs are accepted")


#: HTTP statuses that redirect
REDIRECTS = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 10


def new_client(*, timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
               transport: httpx.BaseTransport | None = None) -> httpx.Client:
    """One client for a whole fetch: connection reuse, timeouts always set, and redirects never
    followed by httpx. An API call refuses any redirect (a key must not follow one: httpx drops
    ``Authorization`` across origins but not ``X-API-Key``); a download follows them itself, each
    hop checked by :func:`check_url` (:func:`redirect_target`)."""
    return httpx.Client(timeout=timeout, transport=transport, follow_redirects=False,
                        headers={"User-Agent": USER_AGENT},
                        limits=httpx.Limits(max_connections=32, max_keepalive_connections=32))


def redirect_target(response: httpx.Response, *, hops: int, what: str) -> str:
    """Where a redirect answer points, resolved and checked (https, or http on loopback); a
    :class:`DownloadError` for a missing ``Location``, a refused URL, or more than
    :data:`MAX_REDIRECTS` hops (a loop)."""
    from .errors import DownloadError

    if hops >= MAX_REDIRECTS:
        raise DownloadError(f"{what}: more than {MAX_REDIRECTS} redirects (a redirect loop?); fetch again later")
    location = response.headers.get("Location")
    if not location:
        raise DownloadError(f"{what}: a redirect ({response.status_code}) without a Location")
    target = str(response.url.join(location))
    try:
        return check_url(target, what="redirect")
    except UsageError as exc:
        raise DownloadError(f"{what}: the CDN redirected to a URL stemlab refuses ({exc})") from None


def _never_connected(exc: Exception) -> bool:
    return isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))


def _host_of(exc: httpx.TransportError) -> str | None:
    """The host (and port, when one is given) that a transport error was about, if it says."""
    try:
        url = exc.request.url
    except (AttributeError, RuntimeError):  # raised by stemlab itself, outside any request
        return None
    return f"{url.host}:{url.port}" if url.port else url.host


_ERRNO_WORDS = {errno.ECONNREFUSED: "connection refused", errno.ENETUNREACH: "network unreachable",
                errno.EHOSTUNREACH: "host unreachable", errno.ECONNRESET: "connection reset",
                errno.ETIMEDOUT: "timed out"}


def network_reason(exc: BaseException) -> str:
    """A network failure in a few words, from the operating system's error under it.

    >>> network_reason(ConnectionRefusedError(111, "Connection refused"))
    'connection refused'
    >>> network_reason(httpx.ConnectError("[Errno -2] Name or service not known"))
    'the name does not resolve'
    """
    seen: BaseException | None = exc
    for _ in range(8):  # httpx -> httpcore -> OSError
        if seen is None:
            break
        if isinstance(seen, socket.gaierror):
            return "the name does not resolve"
        if isinstance(seen, OSError) and seen.errno in _ERRNO_WORDS:
            return _ERRNO_WORDS[seen.errno]
        if isinstance(seen, (httpx.ConnectTimeout, TimeoutError)):
            return "no connection within the timeout"
        if isinstance(seen, httpx.TimeoutException):
            return "no answer within the timeout"
        seen = seen.__cause__ or seen.__context__
    text = " ".join(str(exc).split())
    if any(words in text for words in ("Name or service not known", "nodename nor servname", "getaddrinfo failed",
                                       "Temporary failure in name resolution", "No address associated")):
        return "the name does not resolve"
    if "Connection refused" in text:
        return "connection refused"
    if "without sending a response" in text:
        return "the connection closed without an answer"
    return f"{type(exc).__name__}: {text.rstrip('.') or 'no detail'}"


def _problem(exc: Exception) -> str:
    """What went wrong with one attempt, for a retry notice."""
    if isinstance(exc, NetworkError):
        return str(exc)
    if isinstance(exc, RateLimitError):
        return "throttled (HTTP 429)"
    if isinstance(exc, ProviderServerError):
        return f"the server failed (HTTP {exc.status})" if exc.status else "the server failed"
    return "an answer stemlab cannot read"


_said: dict[str, float] = {}  # notice -> when it was last logged
_said_lock = threading.Lock()


def _notice(problem: str, what: str, seconds: float, n: int, attempts: int) -> None:
    """Log one retry notice; the same problem at the same try from concurrent downloads (13 files
    from one unreachable CDN) is said once."""
    now, key = time.monotonic(), f"{problem} {n}"
    with _said_lock:
        if now - _said.get(key, -math.inf) < 2.0:
            return
        _said[key] = now
        if len(_said) > 256:
            _said.clear()
    log.warning("%s; retrying %s in %.1f s (try %d of %d)", problem, what, seconds, n, attempts)


def retrying(attempt: Callable[[], T], *, policy: RetryPolicy = RetryPolicy(), sent_is_safe: bool,
             sleep: Callable[[float], None] = time.sleep, what: str = "request",
             on_wait: Callable[[float, str], None] | None = None, hint: str = "") -> T:
    """Call ``attempt()`` until it succeeds, following the two retry rules above.

    Retries :class:`RateLimitError` and :class:`ProviderServerError` (provider answers), and
    network failures when ``sent_is_safe``; when not, a sent request with no answer raises
    :class:`SubmitUncertainError`. Malformed answers (:class:`ProtocolError`) are retried only when
    ``sent_is_safe``. After the last attempt the last error is raised (network errors as
    :class:`NetworkError`, naming the host, followed by ``hint``: what to try). ``on_wait(seconds,
    why)`` is told of every wait before it starts (progress bars show it: "cqtai asked to wait 60 s"),
    and every retry is logged as a notice on the ``stemlab`` logger.
    """
    last: Exception | None = None
    started = time.monotonic()
    for n in range(policy.attempts):
        asked_wait, unreachable = None, False
        try:
            return attempt()
        except RateLimitError as exc:
            last, asked_wait = exc, exc.retry_after
        except ProviderServerError as exc:
            last = exc
        except RedirectError:
            if not sent_is_safe:
                raise SubmitUncertainError(f"{what} was answered with a redirect, which stemlab does not follow; "
                                           "the job may exist") from None
            raise
        except ProtocolError as exc:
            if not sent_is_safe:  # an answer came, but not one stemlab can read: the job may exist
                raise SubmitUncertainError(f"{what} was answered, but not readably ({exc})") from None
            last = exc
        except httpx.TransportError as exc:
            if not sent_is_safe and not _never_connected(exc):
                raise SubmitUncertainError(f"{what} was sent but no answer came back ({type(exc).__name__})") from None
            host, reason, unreachable = _host_of(exc), network_reason(exc), _never_connected(exc)
            last = NetworkError((f"cannot reach {host} ({reason})" if unreachable else f"{host}: {reason}")
                                if host else reason, host=host)
        seconds = policy.delay(n, asked_wait)
        if n + 1 < policy.attempts and not (unreachable and time.monotonic() - started + seconds >
                                            policy.unreachable_for):
            _notice(_problem(last), what, seconds, n + 2, policy.attempts)
            if on_wait is not None:
                on_wait(seconds, f"asked to wait {seconds:.0f} s" if asked_wait is not None else
                        f"retrying {what} in {seconds:.1f} s")
            sleep(seconds)
            continue
        if isinstance(last, NetworkError):
            tries = f"{n + 1} tries in {time.monotonic() - started:.0f} s" if n else "1 try"
            raise NetworkError(f"{what} failed: {last} after {tries}" + (f"; {hint}" if hint else ""),
                               host=last.host)
        break
    assert last is not None
    raise last


def retry_after(response: httpx.Response) -> float | None:
    """The ``Retry-After`` header in seconds (a finite number of seconds, 0 or more; HTTP dates,
    NaN and the like are ignored), or None."""
    try:
        seconds = float(response.headers.get("Retry-After", ""))
    except (ValueError, OverflowError):
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def json_of(response: httpx.Response, *, provider: str) -> dict:
    """The response body as a JSON object, or :class:`ProtocolError` quoting its start (for a body
    that is not JSON, not an object, or nested too deep to parse)."""
    try:
        body = response.json()
    except (ValueError, RecursionError):
        snippet = response.text[:80].replace("\n", " ")
        raise ProtocolError(f"{provider} answered HTTP {response.status_code} with something that is not JSON: "
                            f"{snippet!r}", provider=provider, status=response.status_code) from None
    if not isinstance(body, dict):
        raise ProtocolError(f"{provider} answered with JSON that is not an object", provider=provider,
                            status=response.status_code)
    return body
