"""Scripted failures for the sandbox: which request fails, how, and how many times.

Routes
    ``"cqtai.submit"``, ``"cqtai.poll"``, ``"apiframe.submit"``, ``"apiframe.poll"`` (a stems
    job), ``"apiframe.parent"`` (GET of a library song's parent job), ``"download"`` (any file
    on either CDN).
Kinds and their parameters
    ``"status"``  ``status=500`` (any code), ``message=`` (default: the provider's words),
    ``retry_after=`` seconds (sets ``Retry-After``), ``style="body"|"http"`` (CQTAI routes
    only; default the sandbox's ``cqtai_error_style``). Nothing is processed.
    ``"malformed"``  ``variant="html"`` (200 ``text/html`` ``<html>oops</html>``, nothing
    processed) or ``variant="truncated"`` (processed normally, the body cut in half but
    framed correctly, so a submit does create a job).
    ``"drop"``  downloads: headers with the full ``Content-Length``, ``after_bytes=`` of the
    body (default half), then the connection is closed. Other routes: the connection is closed
    without an answer and nothing is processed.
    ``"hang_after_accept"``  submit routes only: the job is created and recorded, the answer
    is withheld for ``seconds=`` (default 30), then the connection is closed without one.
    ``"delay"``  ``seconds=``, then the normal answer.
    ``"accepted"``  submit routes only: the job is created and recorded, and the answer is
    ``body=`` (text) with ``status=`` (default 200, or 202 for Apiframe): an acceptance the
    client cannot read, e.g. ``'{"code":200,"data":null}'``.
    ``"redirect"``  ``status=`` (default 307) to ``to=`` (default ``https://elsewhere.invalid``
    plus the request's path); nothing is processed.
    ``"echo_key"``  an error (``status=``, default 401) whose message quotes the key the
    request presented, as a careless provider might.
    ``"trickle"``  downloads: the body at ``bytes_per_second=`` (default 1), headers first.

Every fault takes ``times=`` (default 1; ``None`` = no limit), ``every=`` (default 1: hit the
n-th, 2n-th ... matching request, so ``every=10, times=None`` fails one request in ten) and
``path_contains=`` (only requests whose path and query contain that text). Faults are tried
in the order they were added; one request consumes at most one fault.

>>> faults = Faults()
>>> f = faults.add("download", "drop", after_bytes=100, path_contains="suno-cdn")
>>> faults.take("download", "/apiframe-cdn/audio/x-0.mp3") is None
True
>>> faults.take("download", "/suno-cdn/abc.mp3") is f, f.remaining
(True, 0)
>>> faults.take("download", "/suno-cdn/abc.mp3") is None
True
>>> g = faults.add("cqtai.poll", "status", status=503, every=3, times=None)
>>> [faults.take("cqtai.poll", "/cqtai/api/cqt/info/suno?id=x") is g for _ in range(6)]
[False, False, True, False, False, True]
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Fault", "Faults", "ROUTES", "KINDS"]

ROUTES = ("cqtai.submit", "cqtai.poll", "apiframe.submit", "apiframe.poll", "apiframe.parent",
          "download")
SUBMIT_ROUTES = ("cqtai.submit", "apiframe.submit")

# kind -> {parameter: default}
KINDS: dict[str, dict[str, Any]] = {
    "status": {"status": 500, "message": None, "retry_after": None, "style": None},
    "malformed": {"variant": "html"},
    "drop": {"after_bytes": None},
    "hang_after_accept": {"seconds": 30.0},
    "delay": {"seconds": 1.0},
    "accepted": {"body": '{"code":200,"data":null}', "status": None},
    "redirect": {"status": 307, "to": None},
    "echo_key": {"status": 401},
    "trickle": {"bytes_per_second": 1.0},
}


@dataclass
class Fault:
    """One scripted failure. ``params`` holds every parameter of its kind, defaults filled in."""

    route: str
    kind: str
    params: dict[str, Any]
    times: int | None = 1
    path_contains: str | None = None
    every: int = 1
    hits: int = field(default=0)
    seen: int = field(default=0)  # matching requests, hit or not (for ``every``)

    @property
    def remaining(self) -> int | None:
        """How many more requests it will hit (``None``: unlimited)."""
        return None if self.times is None else self.times - self.hits

    def matches(self, route: str, path: str) -> bool:
        return (route == self.route and self.remaining != 0
                and (self.path_contains is None or self.path_contains in path))

    def __getattr__(self, name: str) -> Any:  # fault.seconds, fault.status ...
        params = self.__dict__.get("params", {})
        if name in params:
            return params[name]
        raise AttributeError(name)


class Faults:
    """The sandbox's fault script (``sb.faults``); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, route: str, kind: str, *, times: int | None = 1, path_contains: str | None = None,
            every: int = 1, **params: Any) -> Fault:
        """Script a failure; returns the :class:`Fault` (its ``hits`` count requests hit).

        >>> Faults().add("cqtai.poll", "status", status=429, retry_after=2).params["retry_after"]
        2
        """
        if route not in ROUTES:
            raise ValueError(f"unknown fault route {route!r}; use one of {', '.join(ROUTES)}")
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; use one of {', '.join(KINDS)}")
        unknown = set(params) - set(KINDS[kind])
        if unknown:
            raise TypeError(f"fault kind {kind!r} takes no parameter {sorted(unknown)[0]!r}; "
                            f"it takes {', '.join(KINDS[kind]) or 'none'}")
        if kind in ("hang_after_accept", "accepted") and route not in SUBMIT_ROUTES:
            raise ValueError(f"{kind} applies to submit routes only")
        if kind == "trickle" and route != "download":
            raise ValueError("trickle applies to downloads only")
        if kind == "malformed" and params.get("variant", "html") not in ("html", "truncated"):
            raise ValueError("malformed variant must be 'html' or 'truncated'")
        if kind == "status" and not 100 <= int(params.get("status", 500)) <= 599:
            raise ValueError("status must be an HTTP status code (100-599)")
        if params.get("style") not in (None, "body", "http"):
            raise ValueError("style must be 'body' or 'http'")
        if times is not None and times < 1:
            raise ValueError("times must be at least 1, or None for every request")
        if not isinstance(every, int) or every < 1:
            raise ValueError("every must be a whole number, 1 or more")
        fault = Fault(route, kind, {**KINDS[kind], **params}, times, path_contains, every)
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, route: str, path: str) -> Fault | None:
        """The first fault matching a request (its hit is counted), or ``None``."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(route, path):
                    fault.seen += 1
                    if fault.seen % fault.every == 0:
                        fault.hits += 1
                        return fault
        return None

    def pending(self) -> list[Fault]:
        """Faults that will still hit some request."""
        with self._lock:
            return [f for f in self._faults if f.remaining != 0]

    def clear(self) -> None:
        """Forget every fault."""
        with self._lock:
            self._faults.clear()

    def __len__(self) -> int:
        return len(self.pending())
