"""Settings: the one place that reads environment variables.

Configuration flows one way: explicit argument (or magic option) > ``%config``
traitlet > environment > default. Library layers take a :class:`Settings` and
never look at ``os.environ`` themselves.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

import platformdirs

from .errors import ConfigError, NextStep, Step
from .snapshot_keys import SnapshotMode, parse_max_age, parse_mode

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_SESSION_AGE",
    "DEFAULT_READ_TIMEOUT",
    "DEFAULT_URL",
    "ENV_ALLOW_HTTP",
    "ENV_API_KEY",
    "ENV_CACHE_DIR",
    "ENV_EMAIL",
    "ENV_PASSWORD",
    "ENV_SNAPSHOTS",
    "ENV_SNAPSHOT_MAX_AGE",
    "ENV_SNAPSHOT_MODE",
    "ENV_URL",
    "SANDBOX_SNAPSHOT_SERVER",
    "Settings",
    "default_cache_dir",
    "is_loopback",
    "normalize_url",
    "resolve_snapshots",
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
#: ``1`` lets the client send the password over plain http:// to another machine.
ENV_ALLOW_HTTP = "MASSIVE_MAGIC_ALLOW_HTTP"
#: The snapshot directory, and what card reads do with it (record, replay, auto, off).
ENV_SNAPSHOTS = "MASSIVE_MAGIC_SNAPSHOTS"
ENV_SNAPSHOT_MODE = "MASSIVE_MAGIC_SNAPSHOT_MODE"
#: The oldest snapshot replay accepts (``7d``, ``12h``); older ones are errors.
ENV_SNAPSHOT_MAX_AGE = "MASSIVE_MAGIC_SNAPSHOT_MAX_AGE"
#: What snapshots of a sandbox started by ``%massive_login --sandbox`` are keyed by
#: instead of its URL: its port changes from kernel to kernel, its demo data does not.
SANDBOX_SNAPSHOT_SERVER = "sandbox://demo"

#: First path segments of Metabase's own pages: a server URL never contains them.
_APP_ROUTES = frozenset(
    {
        "question", "dashboard", "collection", "model", "metric", "browse", "card", "api",
        "auth", "admin", "public", "embed", "search", "reference", "account", "archive",
        "trash",
    }
)  # fmt: skip


def default_cache_dir() -> Path:
    """The user's cache directory for massive-magic (``~/.cache/massive-magic`` on Linux)."""
    return Path(platformdirs.user_cache_dir("massive-magic", appauthor=False))


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine by itself: ``localhost``, 127.0.0.0/8, ``::1``.

    Decided from the text alone; a name is never resolved (DNS could say anything).
    """
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalize_url(url: str, *, allow_http: bool = False) -> str:
    """``https://x.example.com/`` -> ``https://x.example.com``; refuses unsafe server URLs.

    Refused: another scheme; a user name or password in the URL (never repeated in
    the message); the address of a card or page instead of the server's; plain
    ``http://`` to another machine unless ``allow_http`` (the password would cross
    the network in clear text).
    """
    cleaned = url.strip().rstrip("/")
    authority = cleaned.split("://", 1)[-1].split("/", 1)[0]
    if "@" in authority:
        raise ConfigError(
            "The Metabase URL holds a user name or password before '@'; it is not used "
            "(and not repeated here). Give the server's address alone.",
            next_steps=(
                NextStep(Step.SET_USER, names=(ENV_EMAIL,)),
                NextStep(Step.SET_PASSWORD, names=(ENV_PASSWORD,)),
            ),
        )
    if not cleaned.startswith(("http://", "https://")):
        raise ConfigError(
            f"Metabase URL {cleaned!r} must start with https:// (or http:// for a local server)."
        )
    parts = urlsplit(cleaned)
    segments = [s for s in parts.path.split("/") if s]
    page = next((n for n, s in enumerate(segments) if s.lower() in _APP_ROUTES), None)
    if page is not None or parts.query or parts.fragment:
        server = f"{parts.scheme}://{parts.netloc}" + "".join(
            f"/{s}" for s in segments[: page if page is not None else len(segments)]
        )
        raise ConfigError(
            f"{cleaned} looks like the address of a card or page, not of the Metabase server; "
            f"the server's URL would be {server} (a card is read by its id or URL separately)."
        )
    if parts.scheme == "http" and not allow_http and not is_loopback(parts.hostname or ""):
        raise ConfigError(
            f"{cleaned} is plain http:// to another machine: the password and the session "
            "would cross the network in clear text.",
            next_steps=(NextStep(Step.USE_HTTPS),),
        )
    return cleaned


def resolve_snapshots(
    directory: str | os.PathLike[str] | None = None,
    mode: str | SnapshotMode | None = None,
    max_age: str | dt.timedelta | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> tuple[Path | None, SnapshotMode, dt.timedelta | None]:
    """``snapshots``, ``snapshot_mode`` and ``snapshot_max_age`` for :class:`Settings`.

    Each given value wins over its environment variable. The mode defaults to
    ``auto`` when there is a directory, else ``off``.
    """
    env = os.environ if environ is None else environ
    where = directory or env.get(ENV_SNAPSHOTS) or None
    if mode is None and env.get(ENV_SNAPSHOT_MODE, "").strip():
        with _naming(ENV_SNAPSHOT_MODE, env):
            mode = parse_mode(env[ENV_SNAPSHOT_MODE])
    chosen = parse_mode(mode) if mode is not None else None
    if chosen is None:
        chosen = SnapshotMode.AUTO if where else SnapshotMode.OFF
    if max_age is None and env.get(ENV_SNAPSHOT_MAX_AGE, "").strip():
        with _naming(ENV_SNAPSHOT_MAX_AGE, env):
            max_age = parse_max_age(env[ENV_SNAPSHOT_MAX_AGE])
    age = parse_max_age(max_age)
    _check_snapshots(chosen, where)
    return (Path(where) if where else None), chosen, age


def _check_snapshots(mode: SnapshotMode, directory: object) -> None:
    """Every mode but ``off`` needs a directory."""
    if mode is not SnapshotMode.OFF and not directory:
        raise ConfigError(
            f"Snapshot mode {mode.value!r} needs a snapshot directory, and none is named.",
            next_steps=(NextStep(Step.SET_SNAPSHOT_DIR, names=(ENV_SNAPSHOTS,)),),
        )


@contextmanager
def _naming(name: str, env: Mapping[str, str]) -> Iterator[None]:
    """A ConfigError about an environment variable's value names the variable."""
    try:
        yield
    except ConfigError as exc:
        raise ConfigError(f"{name}={env[name]!r}: {exc.message}") from None


def _positive(value: float, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{what} must be a number of seconds, not {value!r}.")
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{what} must be positive and finite (seconds), not {value!r}.")


@dataclass(frozen=True)
class Settings:
    """Everything a client needs to know, resolved once.

    ``password`` and ``api_key`` are excluded from the repr so that printing a
    Settings (or a Client) never shows a secret. ``allow_http`` permits plain
    ``http://`` to another machine. ``env_password_withheld`` records that
    ``MASSIVE_METABASE_PASSWORD`` was not used because it belongs to another account.

    ``snapshots`` is the snapshot directory and ``snapshot_mode`` what card reads do
    with it; ``snapshot_max_age`` the oldest snapshot a replay accepts;
    ``snapshot_server`` what snapshots are keyed by instead of ``url`` (the
    sandbox's, whose port changes), None for the URL itself.
    """

    url: str = DEFAULT_URL
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    api_key: str | None = field(default=None, repr=False)
    cache_dir: Path = field(default_factory=default_cache_dir)
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    max_session_age: float = DEFAULT_MAX_SESSION_AGE
    allow_http: bool = False
    env_password_withheld: bool = field(default=False, repr=False)
    snapshots: Path | None = None
    snapshot_mode: SnapshotMode = SnapshotMode.OFF
    snapshot_max_age: dt.timedelta | None = None
    snapshot_server: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", normalize_url(self.url, allow_http=self.allow_http))
        object.__setattr__(self, "cache_dir", Path(self.cache_dir).expanduser())
        if self.snapshots is not None:
            object.__setattr__(self, "snapshots", Path(self.snapshots).expanduser())
        mode = parse_mode(self.snapshot_mode)
        object.__setattr__(self, "snapshot_mode", mode)
        object.__setattr__(self, "snapshot_max_age", parse_max_age(self.snapshot_max_age))
        _check_snapshots(mode, self.snapshots)
        _positive(self.connect_timeout, "Timeouts")
        _positive(self.read_timeout, "Timeouts")
        _positive(self.max_session_age, "The maximum session age")

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
        allow_http: bool | None = None,
        snapshots: str | os.PathLike[str] | None = None,
        snapshot_mode: str | SnapshotMode | None = None,
        snapshot_max_age: str | dt.timedelta | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        """Explicit values win; the environment fills the gaps; defaults fill the rest.

        ``timeout`` is either one number (the read timeout) or ``(connect, read)``.
        ``MASSIVE_METABASE_PASSWORD`` is the password of ``MASSIVE_METABASE_EMAIL``'s
        account: it is not used for another user name (it serves any user name when
        no e-mail is set).
        """
        env = os.environ if environ is None else environ
        where, mode, age = resolve_snapshots(
            snapshots, snapshot_mode, snapshot_max_age, environ=env
        )
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
        env_email = env.get(ENV_EMAIL) or None
        user = username or env_email
        withheld = False
        if password is None and env.get(ENV_PASSWORD):
            if env_email is None or user is None or user.casefold() == env_email.casefold():
                password = env[ENV_PASSWORD]
            else:
                withheld = True  # the environment's password is another account's
        if allow_http is None:
            allow_http = env.get(ENV_ALLOW_HTTP, "").strip().lower() in ("1", "true", "yes")
        return cls(
            url=url or env.get(ENV_URL) or DEFAULT_URL,
            username=user,
            password=password,
            api_key=api_key or env.get(ENV_API_KEY) or None,
            cache_dir=Path(cache_dir)
            if cache_dir
            else Path(env.get(ENV_CACHE_DIR) or default_cache_dir()),
            connect_timeout=connect,
            read_timeout=read,
            max_session_age=max_session_age or DEFAULT_MAX_SESSION_AGE,
            allow_http=allow_http,
            env_password_withheld=withheld,
            snapshots=where,
            snapshot_mode=mode,
            snapshot_max_age=age,
        )

    def with_changes(self, **changes: object) -> Settings:
        """A copy with some fields replaced (validated again)."""
        return replace(self, **changes)  # type: ignore[arg-type]
