"""The protocol every stem provider implements, and what its clients return.

A provider is one module with one :class:`Provider` subclass, plus one entry in the registry
(:data:`stemlab.providers.REGISTRY`). The subclass declares:

* ``name``, and the request it validates (:meth:`Provider.request`, a frozen dataclass with
  ``cache_key``, ``body()`` and ``describe()``);
* the settings it needs: ``urls`` (setting name -> default base URL) and ``key_setting`` (the
  API key's setting name); their environment variables follow :func:`stemlab.config.env_name`;
* how it talks: :meth:`Provider.submit`, :meth:`Provider.poll` (a :class:`JobStatus`, with the
  finished stems) and :meth:`Provider.source` (the track the stems were split from);
* how its command line reads a request (:meth:`Provider.add_arguments`, :meth:`Provider.arguments`).

The shared scaffold (auth headers, one call with retries, typed errors that quote the provider's
own words) lives here, so a provider module holds only what is its own: URLs, JSON and hints.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from urllib.parse import urlsplit
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

import httpx

from ..config import Secret, Settings, env_name, redact
from ..errors import (AuthError, ConflictError, ContentPolicyError, CreditsError, ProviderError,
                      ProviderServerError, RateLimitError, RedirectError, UsageError)
from ..http import REDIRECTS, RetryPolicy, check_url, retry_after, retrying
from ..terminal import printable

__all__ = ["Provider", "StemRef", "SourceRef", "JobStatus", "provider_error", "words_of", "number_or_none"]


@dataclass(frozen=True)
class StemRef:
    """One stem as a provider describes it: canonical ``name``, the provider's ``label``, the
    ``url`` of its audio and the ``duration`` the provider states (seconds, or None)."""

    name: str
    label: str
    url: str
    duration: float | None = None


@dataclass(frozen=True)
class SourceRef:
    """The track the stems were split from (``track_id``: its provider id, when it has one)."""

    url: str
    duration: float | None = None
    track_id: str | None = None


@dataclass(frozen=True)
class JobStatus:
    """A poll's answer: ``state`` is ``"running"``, ``"done"`` or ``"failed"``.

    ``progress`` is percent (0-100) when the provider reports it; ``stems`` is filled when done;
    ``error`` holds the provider's own words when failed; ``raw`` is the whole response body.
    """

    state: str
    progress: float | None = None
    stems: tuple[StemRef, ...] = ()
    error: str | None = None
    raw: Mapping = field(default_factory=dict)


class Provider:
    """A stem provider's client. One instance per fetch; the httpx client is owned by the caller.

    Subclasses set the class attributes below and implement :meth:`submit`, :meth:`poll`,
    :meth:`source` and :meth:`_read`.
    """

    name: ClassVar[str]
    title: ClassVar[str]                    # one line for --help and the docs
    request_type: ClassVar[type]            # a frozen dataclass validated in __post_init__
    urls: ClassVar[dict[str, str]]          # setting name -> default; the first is the API's base URL
    key_setting: ClassVar[str]              # e.g. "cqtai_api_key"
    hints: ClassVar[dict[int, str]] = {}    # HTTP status or body code -> what to do
    docs_url: ClassVar[str] = ""
    examples: ClassVar[tuple[str, ...]] = ()  # command lines for `stemlab fetch <name> --help`

    def __init__(self, http: httpx.Client, settings: Settings, *, policy: RetryPolicy = RetryPolicy()):
        self.http = http
        self.policy = policy
        self.settings = settings
        self.base_url = self.url(next(iter(self.urls)))
        self._key: Secret | None = settings.option(self.key_setting)
        self.on_wait = None  # told of every wait before a retry: (seconds, why), e.g. for a progress bar

    # -- declarations --------------------------------------------------------------------------
    @classmethod
    def request(cls, **arguments: Any):
        """The validated request for ``arguments``; a :class:`UsageError` (and nothing sent) when wrong."""
        accepted = [f.name for f in dataclasses.fields(cls.request_type)]
        extra = [name for name, value in arguments.items() if name not in accepted and value not in (None, False, ())]
        if extra:
            raise UsageError(f"{cls.name} does not take {', '.join(extra)}; it takes {', '.join(accepted)}")
        return cls.request_type(**{name: value for name, value in arguments.items() if name in accepted})

    @classmethod
    def settings_names(cls) -> tuple[str, ...]:
        """Every setting this provider reads."""
        return (*cls.urls, cls.key_setting)

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add this provider's request arguments to its ``stemlab fetch <name>`` parser."""
        raise NotImplementedError

    @classmethod
    def arguments(cls, args: argparse.Namespace) -> dict[str, Any]:
        """The keyword arguments of :meth:`request` from parsed command-line ``args``."""
        raise NotImplementedError

    def url(self, setting: str) -> str:
        """A base URL setting (https, or http on loopback), its default when not set."""
        return check_url(self.settings.option(setting, self.urls[setting]), what=f"{setting} setting")

    # -- the job -------------------------------------------------------------------------------
    def submit(self, request) -> str:
        """Start the split and return the provider's job id (retried only when clearly refused)."""
        raise NotImplementedError

    def poll(self, job_id: str) -> JobStatus:
        """One look at the job (retried with backoff on network errors, 429 and 5xx)."""
        raise NotImplementedError

    def source(self, request) -> SourceRef:
        """The track that was split."""
        raise NotImplementedError

    # -- the scaffold --------------------------------------------------------------------------
    def _auth(self, key: str) -> dict[str, str]:
        """The credential headers for ``key``."""
        raise NotImplementedError

    def _headers(self) -> dict[str, str]:
        if not self._key:
            raise UsageError(f"no {self.name} API key: set {env_name(self.key_setting)} (in the environment or a "
                             f".env file), or pass api_key=... in Python")
        return self._auth(self._key.reveal())

    def _read(self, response: httpx.Response, *, job_id: str | None = None) -> dict:
        """The body of a successful answer, or the typed error for a failed one."""
        raise NotImplementedError

    def _call(self, method: str, path: str, *, what: str, sent_is_safe: bool, job_id: str | None = None,
              **kwargs: Any) -> dict:
        """One API call, read by :meth:`_read`, retried by the rules of :func:`stemlab.http.retrying`."""
        headers = self._headers()

        def attempt() -> dict:
            response = self.http.request(method, f"{self.base_url}{path}", headers=headers, **kwargs)
            if response.status_code in REDIRECTS:  # never followed: the key would go with it
                raise RedirectError(f"{self.name} answered {what} with a redirect ({response.status_code}) to "
                                    f"{_origin(response.headers.get('Location', ''))}; stemlab does not follow "
                                    f"API redirects, so your key was not sent there", provider=self.name,
                                    status=response.status_code, job_id=job_id)
            return self._read(response, job_id=job_id)

        on_wait = self.on_wait and (lambda seconds, why: self.on_wait(seconds, f"{self.name} {why}"))
        return retrying(attempt, policy=self.policy, sent_is_safe=sent_is_safe, what=what, on_wait=on_wait,
                        hint=self._unreachable_hint(submit=not sent_is_safe))

    def _unreachable_hint(self, *, submit: bool) -> str:
        """What to try when the API cannot be reached (no network, or a wrong URL setting)."""
        setting = next(iter(self.urls))
        after = ("nothing was submitted, so nothing was charged" if submit else
                 "the job is kept: fetch again to resume it (no new charge)")
        return (f"check your internet connection and {env_name(setting)} (now {self.base_url}), or use "
                f"`stemlab sandbox` to try stemlab offline; {after}")

    def _error(self, status: int, words: str, response: httpx.Response, job_id: str | None) -> ProviderError:
        """The typed error for ``status``, with the provider's own ``words`` (any key they echo
        masked) and this provider's hint."""
        words = redact(words, self.settings.secrets())
        hint = self.hints.get(status) or (self.hints.get(500) or f"{self.name} failed on its side; fetch again later"
                                          if status >= 500 else f"see {self.docs_url}")
        return provider_error(self.name, status, words, hint=hint, job_id=job_id, retry_after=retry_after(response))


def _origin(location: str) -> str:
    """Where a redirect points, for a message: its scheme and host only (a URL may carry tokens)."""
    parts = urlsplit(location)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else "another path"


# 408 (the server gave up waiting for the request) is retried like a 5xx: nothing was processed
_ERROR_CLASSES = {401: AuthError, 403: AuthError, 402: CreditsError, 408: ProviderServerError, 409: ConflictError,
                  429: RateLimitError, 451: ContentPolicyError}


def words_of(body, *fields: str) -> str:
    """The provider's own words: the first non-empty field of ``body`` (e.g. msg, error), or the
    body itself when it is a JSON string or a list of strings (``["index must be 1 or 2"]``);
    at most 300 characters, without escape sequences or control characters, never raising
    whatever the JSON.

    >>> words_of({"msg": "", "error": {"message": "no"}}, "msg", "error"), words_of(["bad", 1]), words_of(7)
    ('no', 'bad', '')
    """
    return printable(_words(body, fields))[:300]


def _words(body, fields: tuple[str, ...]) -> str:
    if isinstance(body, str):
        return body
    if isinstance(body, list):
        return "; ".join(item for item in body[:20] if isinstance(item, str))
    if not isinstance(body, Mapping):
        return ""
    for name in fields or ("errorMsg", "msg", "error", "message"):
        value = body.get(name)
        if isinstance(value, Mapping):
            value = value.get("message") or value.get("msg")
        if isinstance(value, (str, int, float)) and not isinstance(value, bool) and value != "":
            return str(value)[:1000]
    return ""


def number_or_none(value, *, low: float = 0.0, high: float = 1e7) -> float | None:
    """A JSON number as a float when it is finite and within ``[low, high]``; None for anything
    else (strings, booleans, huge ints, NaN), which a provider's answer may hold.

    >>> number_or_none(12.5), number_or_none("12"), number_or_none(10 ** 400), number_or_none(True)
    (12.5, None, None, None)
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) and low <= number <= high else None


def provider_error(provider: str, status: int, words: str, *, hint: str, retry_after: float | None = None,
                   job_id: str | None = None) -> ProviderError:
    """The typed error for ``status``, with the provider's ``words`` quoted and a ``hint``.

    >>> str(provider_error("cqtai", 402, "insufficient credits", hint="recharge in the CQTAI console"))
    "cqtai: 402 'insufficient credits': recharge in the CQTAI console"
    """
    cls = _ERROR_CLASSES.get(status) or (ProviderServerError if status >= 500 else ProviderError)
    quoted = f" {words!r}" if words else ""
    message = f"{provider}: {status}{quoted}: {hint}"
    kwargs = dict(provider=provider, status=status, job_id=job_id)
    if cls is RateLimitError:
        return RateLimitError(message, retry_after=retry_after, **kwargs)
    return cls(message, **kwargs)
