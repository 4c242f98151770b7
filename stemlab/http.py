"""The HTTP layer: one httpx client, a URL policy, and retries that never pay twice.

Two retry rules, because a submit costs credits and a poll does not:

* :func:`retrying` with ``sent_is_safe=True`` (polls, downloads): retry on network errors,
  timeouts, 5xx and 429, with exponential backoff (``Retry-After`` honoured).
* ``sent_is_safe=False`` (submits): retry only when the provider clearly did not accept the
  request: a 429 or 5xx *answer*, or a connection that was never established. A request that
  was sent but got no answer, or an answer that cannot be read (not JSON, no job id, a
  redirect), raises :class:`SubmitUncertainError` at once and is never repeated: the job may
  exist, and may have been charged.

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

import ipaddress
import math
import random
import time
from dataclasses import dataclass
from typing import Callable, TypeVar
from urllib.parse import urlsplit

import httpx

from .errors import (NetworkError, ProtocolError, ProviderServerError, RateLimitError, RedirectError,
                     SubmitUncertainError, UsageError)

__all__ = ["RetryPolicy", "MAX_WAIT", "retry_after", "check_url", "is_loopback", "new_client", "retrying", "json_of"]

T = TypeVar("T")

USER_AGENT = "stemlab/0.1 (+https://github.com/stemlab)"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry. Delays double from ``base_delay`` up to ``max_delay``;
    a provider's ``Retry-After`` is honoured up to :data:`MAX_WAIT` seconds (a longer ask is cut
    to that, so five attempts never wait more than five minutes)."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    jitter: float = 0.1

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


def retrying(attempt: Callable[[], T], *, policy: RetryPolicy = RetryPolicy(), sent_is_safe: bool,
             sleep: Callable[[float], None] = time.sleep, what: str = "request",
             on_wait: Callable[[float, str], None] | None = None) -> T:
    """Call ``attempt()`` until it succeeds, following the two retry rules above.

    Retries :class:`RateLimitError` and :class:`ProviderServerError` (provider answers), and
    network failures when ``sent_is_safe``; when not, a sent request with no answer raises
    :class:`SubmitUncertainError`. Malformed answers (:class:`ProtocolError`) are retried only when
    ``sent_is_safe``. After the last attempt the last error is raised (network errors as
    :class:`NetworkError`). ``on_wait(seconds, why)`` is told of every wait before it starts
    (progress bars show it: "cqtai asked to wait 60 s").
    """
    last: Exception | None = None
    for n in range(policy.attempts):
        asked_wait = None
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
            last = NetworkError(f"{what} failed: {type(exc).__name__}: {exc or 'no detail'}")
        if n + 1 < policy.attempts:
            seconds = policy.delay(n, asked_wait)
            if on_wait is not None:
                on_wait(seconds, f"asked to wait {seconds:.0f} s" if asked_wait is not None else
                        f"retrying {what} in {seconds:.1f} s")
            sleep(seconds)
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
