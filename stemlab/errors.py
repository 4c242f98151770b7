"""One exception hierarchy for stemlab, with messages a user can act on.

Every error stemlab raises derives from :class:`StemlabError`. Each class carries the
command-line exit code it maps to, so the CLI turns any of them into one line and a code::

    >>> from stemlab.errors import UsageError
    >>> err = UsageError("pass exactly one of index= and track_id=")
    >>> err.exit_code
    2

Messages never contain an API key: keys live in :class:`stemlab.config.Secret` objects whose
``str`` and ``repr`` are masked, and provider text is passed through :func:`redact` first.
"""

from __future__ import annotations

__all__ = [
    "StemlabError",
    "UsageError",
    "ConfigError",
    "ProviderError",
    "AuthError",
    "CreditsError",
    "RateLimitError",
    "ContentPolicyError",
    "ConflictError",
    "ProviderServerError",
    "ProtocolError",
    "RedirectError",
    "JobFailedError",
    "JobTimeoutError",
    "SubmitUncertainError",
    "NetworkError",
    "DownloadError",
    "DecodeError",
    "CacheError",
    "PackError",
]


class StemlabError(Exception):
    """Base class of every error stemlab raises. ``exit_code`` is the CLI's exit status."""

    exit_code = 3


class UsageError(StemlabError, ValueError):
    """The call itself is wrong; nothing was sent to any provider."""

    exit_code = 2


class ConfigError(UsageError):
    """A setting is missing or malformed (for example no API key)."""


class ProviderError(StemlabError):
    """A provider answered with an error, or with something stemlab cannot read.

    Parameters
    ----------
    message : str
        What happened and what to do, in one line.
    provider : str, optional
        ``"cqtai"`` or ``"apiframe"``.
    status : int, optional
        The HTTP status or the body's ``code``, whichever carried the error.
    job_id : str, optional
        The provider's job id, when the error concerns a submitted job.
    """

    def __init__(self, message: str, *, provider: str | None = None, status: int | None = None,
                 job_id: str | None = None):
        super().__init__(message)
        self.provider = provider
        self.status = status
        self.job_id = job_id


class AuthError(ProviderError):
    """The API key was missing, wrong, revoked or inactive (401/403)."""


class CreditsError(ProviderError):
    """The account has too few credits (402)."""


class RateLimitError(ProviderError):
    """Too many requests or too many running tasks (429). ``retry_after`` is in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ContentPolicyError(ProviderError):
    """The provider refused the content (CQTAI code 451)."""


class ConflictError(ProviderError):
    """The request conflicts with the job it names (Apiframe 409, e.g. stems of a stems job)."""


class ProviderServerError(ProviderError):
    """The provider failed on its side (5xx)."""


class ProtocolError(ProviderError):
    """The provider's answer was not what its documented API promises (bad JSON, missing field)."""


class RedirectError(ProtocolError):
    """A provider's API answered with a redirect. stemlab does not follow it: the API key would go
    with the request to wherever it points."""


class JobFailedError(ProviderError):
    """A submitted job ended in failure; the message carries the provider's own words."""


class JobTimeoutError(ProviderError):
    """A job did not finish within the overall job timeout. Fetching again resumes it."""


class SubmitUncertainError(ProviderError):
    """A submit was sent but no answer came back: the job may exist, and may have been charged.

    stemlab never repeats such a submit on its own; ``force=True`` does, at the user's word.
    """


class NetworkError(StemlabError):
    """The network failed (connection refused, reset, timeout) after all retries.

    ``host`` is the host that could not be reached (``"api.cqtai.com"``), when known.
    """

    def __init__(self, message: str, *, host: str | None = None):
        super().__init__(message)
        self.host = host


class DownloadError(StemlabError):
    """A file could not be downloaded completely (size mismatch, size cap, refused URL)."""


class DecodeError(StemlabError):
    """An audio file could not be decoded, or decoded to an implausible length."""


class CacheError(StemlabError):
    """The cache folder is unusable or a cached set is inconsistent."""


class PackError(CacheError):
    """A class pack (``stemlab pack import``) is not a whole, well-formed stemlab pack: not a zip,
    truncated, an entry that differs from the pack's manifest, an unsafe entry name, a zip bomb.
    Nothing was installed; the message says what, and to get the pack again."""
