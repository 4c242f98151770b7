"""What every provider client returns, and how provider errors become typed exceptions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from ..errors import (AuthError, ConflictError, ContentPolicyError, CreditsError, ProviderError,
                      ProviderServerError, RateLimitError)

__all__ = ["StemRef", "SourceRef", "JobStatus", "provider_error", "words_of"]


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
    """The track the stems were split from."""

    url: str
    duration: float | None = None


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


_ERROR_CLASSES = {401: AuthError, 403: AuthError, 402: CreditsError, 409: ConflictError,
                  429: RateLimitError, 451: ContentPolicyError}


def words_of(body: Mapping | None, *fields: str) -> str:
    """The provider's own words from the first non-empty field of ``body`` (e.g. msg, error)."""
    for name in fields or ("errorMsg", "msg", "error", "message"):
        value = (body or {}).get(name)
        if isinstance(value, Mapping):
            value = value.get("message") or value.get("msg")
        if value not in (None, ""):
            return str(value)
    return ""


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
