"""Settings: arguments first, then the environment, then a ``.env`` file, then defaults.

>>> s = Settings.resolve(cqtai_api_key="sk-123", poll_interval=0.5)
>>> s.poll_interval
0.5
>>> s.cqtai_api_key
Secret('********')

API keys are held in :class:`Secret`, whose ``str`` and ``repr`` never show the value; only the
HTTP layer calls :meth:`Secret.reveal`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

from .errors import ConfigError

__all__ = ["Secret", "Settings", "redact", "read_dotenv"]

DEFAULTS = {
    "cqtai_url": "https://api.cqtai.com",
    "apiframe_url": "https://api.apiframe.ai",
    "suno_cdn_url": "https://cdn1.suno.ai",
    "poll_interval": 5.0,
    "job_timeout": 1800.0,
    "retry_delay": 0.5,
    "http_timeout": 30.0,
}

# field name -> environment variable
ENV_NAMES = {
    "cqtai_url": "STEMLAB_CQTAI_URL",
    "apiframe_url": "STEMLAB_APIFRAME_URL",
    "suno_cdn_url": "STEMLAB_SUNO_CDN_URL",
    "cqtai_api_key": "CQTAI_API_KEY",
    "apiframe_api_key": "APIFRAME_API_KEY",
    "cache_dir": "STEMLAB_CACHE_DIR",
    "poll_interval": "STEMLAB_POLL_INTERVAL",
    "job_timeout": "STEMLAB_JOB_TIMEOUT",
    "retry_delay": "STEMLAB_RETRY_DELAY",
    "http_timeout": "STEMLAB_HTTP_TIMEOUT",
}


class Secret:
    """A string that does not print itself.

    >>> k = Secret("afk_live_123")
    >>> str(k), repr(k)
    ('********', "Secret('********')")
    >>> k.reveal()
    'afk_live_123'
    """

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = str(value)

    def reveal(self) -> str:
        return self._value

    def __str__(self) -> str:
        return "********"

    def __repr__(self) -> str:
        return "Secret('********')"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self):  # never pickle the value into a file by accident
        raise TypeError("a Secret cannot be pickled")


def read_dotenv(path: str | os.PathLike = ".env") -> dict[str, str]:
    """Read ``KEY=VALUE`` lines from a ``.env`` file; a missing file gives ``{}``.

    Blank lines, ``#`` comments and a leading ``export`` are allowed; values may be quoted.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return {}
    values = {}
    for line in text.splitlines():
        match = re.match(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$", line)
        if not match or line.lstrip().startswith("#"):
            continue
        name, value = match.groups()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            value = value.split(" #", 1)[0].strip()
        values[name] = value
    return values


def _default_cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("stemlab", appauthor=False))


@dataclass(frozen=True)
class Settings:
    """Everything stemlab needs to reach providers and the cache. Build with :meth:`resolve`.

    ``poll_interval`` is the pause between polls of a job, ``job_timeout`` the longest a fetch
    waits for a job, ``retry_delay`` the first pause before a retry (it doubles each time),
    ``http_timeout`` the longest wait for any one HTTP answer; all in seconds.
    """

    cqtai_url: str = DEFAULTS["cqtai_url"]
    apiframe_url: str = DEFAULTS["apiframe_url"]
    suno_cdn_url: str = DEFAULTS["suno_cdn_url"]
    cqtai_api_key: Secret | None = field(default=None, repr=False)
    apiframe_api_key: Secret | None = field(default=None, repr=False)
    cache_dir: Path = field(default_factory=_default_cache_dir)
    poll_interval: float = DEFAULTS["poll_interval"]
    job_timeout: float = DEFAULTS["job_timeout"]
    retry_delay: float = DEFAULTS["retry_delay"]
    http_timeout: float = DEFAULTS["http_timeout"]

    @classmethod
    def resolve(cls, *, environ: Mapping[str, str] | None = None, dotenv: str | os.PathLike | None = ".env",
                **overrides: Any) -> "Settings":
        """Settings from ``overrides`` (``None`` means "not given"), then ``environ``, then ``dotenv``.

        >>> Settings.resolve(environ={"STEMLAB_POLL_INTERVAL": "2"}, dotenv=None).poll_interval
        2.0
        """
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        environ = os.environ if environ is None else environ
        file_values = read_dotenv(dotenv) if dotenv else {}
        values: dict[str, Any] = {}
        for name in known:
            given = overrides.get(name)
            if given is None:
                env_name = ENV_NAMES.get(name)
                given = (environ.get(env_name) or file_values.get(env_name)) if env_name else None
            if given is not None and given != "":
                values[name] = given
        return cls()._with(values)

    def _with(self, values: Mapping[str, Any]) -> "Settings":
        clean: dict[str, Any] = {}
        for name, value in values.items():
            if name.endswith("_api_key"):
                clean[name] = value if isinstance(value, Secret) else Secret(str(value).strip())
            elif name.endswith("_url"):
                clean[name] = str(value).rstrip("/")
            elif name == "cache_dir":
                clean[name] = Path(value).expanduser()
            elif name in ("poll_interval", "job_timeout", "retry_delay", "http_timeout"):
                try:
                    number = float(value)
                except (TypeError, ValueError):
                    raise ConfigError(f"{ENV_NAMES[name]} must be a number of seconds, not {value!r}") from None
                if number < 0:
                    raise ConfigError(f"{ENV_NAMES[name]} must not be negative")
                clean[name] = number
            else:
                clean[name] = value
        return replace(self, **clean)

    def key_for(self, provider: str) -> Secret:
        """The API key for ``provider``, or a :class:`ConfigError` that says where to put it."""
        key = getattr(self, f"{provider}_api_key", None)
        if not key:
            env = ENV_NAMES[f"{provider}_api_key"]
            raise ConfigError(f"no {provider} API key: pass api_key=... or set {env} (environment or .env)")
        return key

    def secrets(self) -> list[str]:
        """The raw key values, for :func:`redact`."""
        return [k.reveal() for k in (self.cqtai_api_key, self.apiframe_api_key) if k]


def redact(obj: Any, secrets: list[str] | tuple[str, ...] = ()) -> Any:
    """Return ``obj`` (str, dict, list) with every secret value and auth-like field masked.

    >>> redact({"token": "abc", "note": "key abc used"}, ["abc"])
    {'token': '********', 'note': 'key ******** used'}
    """
    secret_fields = {"authorization", "x-api-key", "api_key", "apikey", "token", "secret", "password"}
    if isinstance(obj, str):
        for secret in secrets:
            if secret:
                obj = obj.replace(secret, "********")
        return obj
    if isinstance(obj, Mapping):
        return {k: ("********" if str(k).lower().replace("_", "-") in {f.replace("_", "-") for f in secret_fields}
                    else redact(v, secrets)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(redact(v, secrets) for v in obj)
    return obj
