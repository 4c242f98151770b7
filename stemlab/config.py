"""Settings: arguments first, then the environment, then a ``.env`` file, then defaults.

>>> s = Settings.resolve(cqtai_api_key="sk-123", poll_interval=0.5, environ={}, dotenv=None)
>>> s.poll_interval
0.5
>>> s.cqtai_api_key
Secret('********')

Settings are resolved once, at the entry point a user calls (:meth:`Settings.of`), and passed
down; nothing below an entry point reads the environment. Two kinds of setting exist:

* general ones, fields of :class:`Settings`: ``cache_dir``, ``poll_interval``, ``job_timeout``,
  ``retry_delay``, ``http_timeout``;
* provider options, declared by each provider (:mod:`stemlab.providers`): base URLs named
  ``<x>_url`` and API keys named ``<x>_api_key``. Their defaults belong to the provider.

Every setting has one environment variable, by one rule (:func:`env_name`): ``cqtai_api_key`` is
``CQTAI_API_KEY``, any other ``name`` is ``STEMLAB_<NAME>`` (``cqtai_url`` is
``STEMLAB_CQTAI_URL``, ``cache_dir`` is ``STEMLAB_CACHE_DIR``).

API keys are held in :class:`Secret`, whose ``str`` and ``repr`` never show the value; only the
HTTP layer calls :meth:`Secret.reveal`.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

from .errors import ConfigError

__all__ = ["Secret", "Settings", "redact", "read_dotenv", "env_name", "is_option"]

SECONDS = ("poll_interval", "job_timeout", "retry_delay", "http_timeout")


def env_name(setting: str) -> str:
    """The environment variable of a setting.

    >>> env_name("cqtai_api_key"), env_name("suno_cdn_url"), env_name("poll_interval")
    ('CQTAI_API_KEY', 'STEMLAB_SUNO_CDN_URL', 'STEMLAB_POLL_INTERVAL')
    """
    return setting.upper() if setting.endswith("_api_key") else f"STEMLAB_{setting.upper()}"


def is_option(name: str) -> bool:
    """Whether ``name`` is spelled like a provider option: ``<x>_url`` or ``<x>_api_key``."""
    return bool(re.fullmatch(r"[a-z][a-z0-9_]*_(url|api_key)", name))


def _option_of(variable: str) -> str | None:
    """The provider option an environment variable sets (the inverse of :func:`env_name`), or None."""
    if re.fullmatch(r"[A-Z][A-Z0-9_]*_API_KEY", variable):
        return variable.lower()
    match = re.fullmatch(r"STEMLAB_([A-Z0-9_]+_URL)", variable)
    return match.group(1).lower() if match else None


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
    ``http_timeout`` the longest wait for any one HTTP answer; all in seconds. ``options`` holds
    the provider options that were given or found (URLs as text, keys as :class:`Secret`); read
    them with :meth:`option` and :meth:`key`, or as attributes (``settings.cqtai_url``, None
    when not set).
    """

    cache_dir: Path = field(default_factory=_default_cache_dir)
    poll_interval: float = 5.0
    job_timeout: float = 1800.0
    retry_delay: float = 0.5
    http_timeout: float = 30.0
    options: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def resolve(cls, *, environ: Mapping[str, str] | None = None, dotenv: str | os.PathLike | None = ".env",
                **overrides: Any) -> "Settings":
        """Settings from ``overrides`` (``None`` means "not given"), then ``environ``, then ``dotenv``.

        >>> Settings.resolve(environ={"STEMLAB_POLL_INTERVAL": "2"}, dotenv=None).poll_interval
        2.0
        """
        environ = os.environ if environ is None else environ
        found = {**(read_dotenv(dotenv) if dotenv else {}), **{k: v for k, v in environ.items() if v != ""}}
        values: dict[str, Any] = {}
        for variable, value in found.items():
            option = _option_of(variable)
            if option is not None and value != "":
                values[option] = value
        for name in _GENERAL:
            if found.get(env_name(name), "") != "":
                values[name] = found[env_name(name)]
        return cls().replace(**{**values, **{k: v for k, v in overrides.items() if v is not None}})

    @classmethod
    def of(cls, settings: "Settings | None" = None, **overrides: Any) -> "Settings":
        """The settings an entry point works with: ``settings`` (resolved from the environment
        when None) with ``overrides`` (those that are not None) on top.

        >>> base = Settings(cache_dir=Path("/tmp/a"))
        >>> Settings.of(base, cache_dir="/tmp/b", poll_interval=None).cache_dir
        PosixPath('/tmp/b')
        """
        if settings is None:
            return cls.resolve(**overrides)
        return settings.replace(**overrides)

    def replace(self, **overrides: Any) -> "Settings":
        """A copy with ``overrides`` applied (None means "keep"), each checked and normalised."""
        general: dict[str, Any] = {}
        options = dict(self.options)
        for name, value in overrides.items():
            if value is None:
                continue
            if is_option(name) and name.endswith("_api_key"):
                options[name] = _checked_key(name, value if isinstance(value, Secret) else Secret(str(value).strip()))
            elif is_option(name):
                options[name] = str(value).rstrip("/")
            elif name == "cache_dir":
                general[name] = Path(value).expanduser()
            elif name in SECONDS:
                general[name] = _seconds(name, value)
            else:
                raise ConfigError(f"unknown setting {name!r}: use one of {', '.join(_GENERAL)}, or a provider's "
                                  f"<name>_url / <name>_api_key")
        return replace(self, **general, options=options)

    def option(self, name: str, default: str | None = None) -> Any:
        """A provider option (``"cqtai_url"``...), or ``default`` when it was not set."""
        value = self.options.get(name)
        return default if value is None else value

    def key(self, name: str) -> Secret:
        """The API key ``name`` (``"cqtai_api_key"``), or a :class:`ConfigError` that says where to put it."""
        key = self.options.get(name)
        if not key:
            provider = name.removesuffix("_api_key")
            raise ConfigError(f"no {provider} API key: set {env_name(name)} (in the environment or a .env file), "
                              f"or pass api_key=... in Python")
        return key

    def __getattr__(self, name: str) -> Any:  # settings.cqtai_url, settings.apiframe_api_key
        if is_option(name):
            return self.__dict__.get("options", {}).get(name)
        raise AttributeError(f"'Settings' object has no attribute {name!r}")

    def secrets(self) -> list[str]:
        """The raw key values, for :func:`redact`."""
        return [value.reveal() for value in self.options.values() if isinstance(value, Secret) and value]


_GENERAL = tuple(f.name for f in fields(Settings) if f.name != "options")


def _seconds(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{env_name(name)} must be a number of seconds, not {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise ConfigError(f"{env_name(name)} must be a finite number of seconds, 0 or more, not {value!r}")
    return number


def _checked_key(name: str, key: Secret) -> Secret:
    """``key``, or a :class:`ConfigError` (nothing sent, nothing recorded) when it cannot be a key:
    an HTTP header takes printable ASCII only, so a pasted line break or zero-width space would fail
    the request after the submit was recorded. The message names the character, never the key."""
    for character in key.reveal():
        if not " " < character < "\x7f":
            what = {"\n": "a line break", "\r": "a carriage return", "\t": "a tab", " ": "a space"}.get(
                character, f"the character U+{ord(character):04X}")
            raise ConfigError(f"{env_name(name)} holds {what}, which no API key has; paste the key again")
    return key


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
