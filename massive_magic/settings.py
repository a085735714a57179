"""Settings: the one place that reads environment variables.

Configuration flows one way: explicit argument (or magic option) > ``%config``
traitlet > environment > default. Library layers take a :class:`Settings` and
never look at ``os.environ`` themselves.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import platformdirs

from .errors import ConfigError

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_SESSION_AGE",
    "DEFAULT_READ_TIMEOUT",
    "DEFAULT_URL",
    "ENV_API_KEY",
    "ENV_CACHE_DIR",
    "ENV_EMAIL",
    "ENV_PASSWORD",
    "ENV_URL",
    "Settings",
    "default_cache_dir",
]

DEFAULT_URL = "https://massive.metabaseapp.com"
DEFAULT_CONNECT_TIMEOUT = 10.0
#: A card query can run for minutes (Metabase's own warehouse timeout is 20 minutes).
DEFAULT_READ_TIMEOUT = 1200.0
#: Metabase's MAX_SESSION_AGE default: 20160 minutes, counted from login, not from last use.
DEFAULT_MAX_SESSION_AGE = 14 * 24 * 3600.0

ENV_URL = "MASSIVE_METABASE_URL"
ENV_EMAIL = "MASSIVE_METABASE_EMAIL"
ENV_PASSWORD = "MASSIVE_METABASE_PASSWORD"
ENV_API_KEY = "MASSIVE_METABASE_API_KEY"
ENV_CACHE_DIR = "MASSIVE_MAGIC_CACHE_DIR"
ENV_MAX_SESSION_AGE = "MASSIVE_METABASE_MAX_SESSION_AGE"


def default_cache_dir() -> Path:
    """The user's cache directory for massive-magic (``~/.cache/massive-magic`` on Linux)."""
    return Path(platformdirs.user_cache_dir("massive-magic", appauthor=False))


def normalize_url(url: str) -> str:
    """``https://x.example.com/`` -> ``https://x.example.com``; rejects what is not http(s)."""
    cleaned = url.strip().rstrip("/")
    if not cleaned.startswith(("http://", "https://")):
        raise ConfigError(
            f"Metabase URL {cleaned!r} must start with https:// (or http:// for a local server)."
        )
    return cleaned


@dataclass(frozen=True)
class Settings:
    """Everything a client needs to know, resolved once.

    ``password`` and ``api_key`` are excluded from the repr so that printing a
    Settings (or a Client) never shows a secret.
    """

    url: str = DEFAULT_URL
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    api_key: str | None = field(default=None, repr=False)
    cache_dir: Path = field(default_factory=default_cache_dir)
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    max_session_age: float = DEFAULT_MAX_SESSION_AGE

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", normalize_url(self.url))
        object.__setattr__(self, "cache_dir", Path(self.cache_dir).expanduser())
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise ConfigError("Timeouts must be positive numbers of seconds.")
        if self.max_session_age <= 0:
            raise ConfigError("The maximum session age must be a positive number of seconds.")

    @classmethod
    def resolve(
        cls,
        url: str | None = None,
        username: str | None = None,
        password: str | None = None,
        *,
        api_key: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        timeout: float | tuple[float, float] | None = None,
        max_session_age: float | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        """Explicit values win; the environment fills the gaps; defaults fill the rest.

        ``timeout`` is either one number (the read timeout) or ``(connect, read)``.
        """
        env = os.environ if environ is None else environ
        connect, read = DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT
        if isinstance(timeout, tuple):
            connect, read = float(timeout[0]), float(timeout[1])
        elif timeout is not None:
            read = float(timeout)
            connect = min(connect, read)
        if max_session_age is None and env.get(ENV_MAX_SESSION_AGE):
            try:
                max_session_age = float(env[ENV_MAX_SESSION_AGE])
            except ValueError:
                raise ConfigError(
                    f"{ENV_MAX_SESSION_AGE} must be a number of seconds, "
                    f"not {env[ENV_MAX_SESSION_AGE]!r}."
                ) from None
        return cls(
            url=url or env.get(ENV_URL) or DEFAULT_URL,
            username=username or env.get(ENV_EMAIL) or None,
            password=password if password is not None else (env.get(ENV_PASSWORD) or None),
            api_key=api_key or env.get(ENV_API_KEY) or None,
            cache_dir=Path(cache_dir)
            if cache_dir
            else Path(env.get(ENV_CACHE_DIR) or default_cache_dir()),
            connect_timeout=connect,
            read_timeout=read,
            max_session_age=max_session_age or DEFAULT_MAX_SESSION_AGE,
        )

    def with_changes(self, **changes: object) -> Settings:
        """A copy with some fields replaced (validated again)."""
        return replace(self, **changes)  # type: ignore[arg-type]
