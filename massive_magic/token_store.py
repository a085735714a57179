"""The session cache on disk: one private, atomically written file per (server URL, user).

Why it exists: Metabase locks a user out after ten failed logins in an hour, and a
session stays valid for 14 days. So every kernel on the machine should share one
session per user instead of logging in at each start.

What an entry holds (JSON, schema version 1)::

    {"version": 1, "url": "...", "username": "...",
     "session_id": "...", "created_at": 1767225600.0, "throttled_until": null}

never a password. ``created_at`` is when the session was created (Metabase's
maximum age counts from there, not from last use); ``throttled_until`` is the
time before which no login may be sent for this user, so that a restarted kernel
cannot extend Metabase's lockout.

Rules, after cachecontrol's ``FileCache``:

- the directory is created 0700 and each file is 0600; a directory that another
  user owns, or that group or others may write to (``/tmp``-like), is refused with
  a :class:`~massive_magic.errors.ConfigError`: anyone who can write there could
  plant a session of their own;
- a write goes to ``mkstemp`` in the same directory, is chmod 0600, then
  ``os.replace``-d over the old file, so a reader sees the old or the new entry,
  never half of one;
- a missing file means "nothing cached"; a corrupt or unreadable one is ignored
  with a :class:`~massive_magic.errors.CacheWarning`, never an error;
- :meth:`TokenStore.lock` is a ``filelock`` per entry, held around "read, maybe
  log in, write", so that several processes renewing at once send one login. A
  lock file whose entry is gone is removed while still held, so no empty ``.lock``
  files pile up (a process waiting on the removed file sees it unlinked and takes
  the lock on the new one: filelock checks the link count after ``flock``).

The pure bookkeeping (:meth:`TokenEntry.is_fresh`, :meth:`TokenEntry.throttle_remaining`)
takes the current time as an argument, so it is tested without a clock or a server.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import stat
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import filelock

from .errors import CacheWarning, ConfigError, NextStep, Step
from .settings import ENV_CACHE_DIR

__all__ = ["RENEW_MARGIN", "SCHEMA_VERSION", "TokenEntry", "TokenStore", "directory_problem"]

SCHEMA_VERSION = 1
#: Renew a session this many seconds before its maximum age, so that a request
#: started just before expiry does not get a 401 (capped at a tenth of the age).
RENEW_MARGIN = 60.0
#: How long to wait for another process that holds the entry's lock (it is
#: logging in). After that we carry on without the lock, with a warning.
LOCK_TIMEOUT = 120.0


@dataclass(frozen=True)
class TokenEntry:
    """One cached session (or throttle memory) for a (url, username) pair.

    Times are POSIX seconds. ``session_id`` is excluded from the repr.
    """

    session_id: str | None = field(default=None, repr=False)
    created_at: float | None = None
    throttled_until: float | None = None

    def is_fresh(self, now: float, max_age: float) -> bool:
        """Whether the session may still be used at ``now`` under a fixed ``max_age``.

        A session created "in the future" (a clock jumped back) is not trusted.
        """
        if not self.session_id or self.created_at is None:
            return False
        margin = min(RENEW_MARGIN, max_age / 10)
        age = now - self.created_at
        return -margin <= age < max_age - margin

    def throttle_remaining(self, now: float) -> float:
        """Seconds until a login may be sent again (0.0 when not throttled)."""
        if self.throttled_until is None:
            return 0.0
        return max(0.0, self.throttled_until - now)

    def with_session(self, session_id: str, created_at: float) -> TokenEntry:
        """A new session replaces the old one and ends any throttle memory."""
        return replace(self, session_id=session_id, created_at=created_at, throttled_until=None)

    def with_throttle(self, until: float) -> TokenEntry:
        """Remember a lockout; the cached session (if any) is kept."""
        return replace(self, throttled_until=until)


def directory_problem(mode: int, owner: int, me: int | None) -> str | None:
    """Why a cache directory cannot be trusted with sessions, or ``None`` when it can.

    ``mode`` and ``owner`` come from ``os.stat``; ``me`` is this user's id (``None``
    where the platform has no user ids).
    """
    if me is not None and owner != me:
        return f"it belongs to another user (uid {owner})"
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"group or others may write to it (mode {stat.S_IMODE(mode):04o})"
    return None


def _finite_number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError("not a finite number")
    return float(value)


def _entry_from_document(doc: Any, url: str, username: str) -> TokenEntry | None:
    """Validate a parsed file; ``ValueError`` for anything unexpected."""
    if not isinstance(doc, dict) or doc.get("version") != SCHEMA_VERSION:
        raise ValueError("unknown format")
    if doc.get("url") != url or doc.get("username") != username:
        # A hash collision or a copied file: not ours, treat as nothing cached.
        return None
    session_id = doc.get("session_id")
    if session_id is not None and (not isinstance(session_id, str) or not session_id):
        raise ValueError("bad session id")
    return TokenEntry(
        session_id=session_id,
        created_at=_finite_number(doc.get("created_at")),
        throttled_until=_finite_number(doc.get("throttled_until")),
    )


class TokenStore:
    """Session entries in ``directory``, one file per (url, username).

    Every method is safe to call from several threads and processes at once.
    Failures to read or write are reported as :class:`CacheWarning` and otherwise
    ignored: a broken cache costs a login, never a crash.
    """

    def __init__(self, directory: str | os.PathLike[str], *, owner: int | None = None) -> None:
        self.directory = Path(directory).expanduser()
        #: the user id the directory must belong to (this process's user by default)
        self.owner = owner if owner is not None else _my_uid()

    def __repr__(self) -> str:
        return f"TokenStore({str(self.directory)!r})"

    # -- paths -------------------------------------------------------------------

    def path_for(self, url: str, username: str) -> Path:
        """The entry file: a hash of the key, so no user name leaks into a file name."""
        digest = hashlib.sha256(f"{url}\0{username}".encode()).hexdigest()[:32]
        return self.directory / f"session-{digest}.json"

    def _ensure_directory(self) -> None:
        """Create the directory 0700; tighten it if it is ours and only readable by others."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = self._trusted()
        if info is not None and info.st_mode & 0o077:
            os.chmod(self.directory, 0o700)

    def _trusted(self) -> os.stat_result | None:
        """The directory's stat (``None`` if missing); a ConfigError if it is not private."""
        try:
            info = self.directory.stat()
        except FileNotFoundError:
            return None
        problem = directory_problem(info.st_mode, info.st_uid, self.owner)
        if problem is not None:
            raise ConfigError(
                f"The session cache directory {self.directory} is not private: {problem}; "
                "a session found there could have been planted, so none is read or written.",
                next_steps=(NextStep(Step.SET_CACHE_DIR, names=(ENV_CACHE_DIR,)),),
            )
        return info

    # -- reading -----------------------------------------------------------------

    def load(self, url: str, username: str) -> TokenEntry | None:
        """The entry, or ``None`` when nothing (usable) is cached."""
        path = self.path_for(url, username)
        try:
            self._trusted()
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            _warn(
                f"The session cache {path} could not be read ({exc.strerror or exc}); ignoring it."
            )
            return None
        try:
            return _entry_from_document(json.loads(raw), url, username)
        except (ValueError, UnicodeDecodeError):
            _warn(
                f"The session cache {path} is corrupt; ignoring it "
                "(it is replaced at the next login)."
            )
            return None

    # -- writing -----------------------------------------------------------------

    def save(self, url: str, username: str, entry: TokenEntry) -> None:
        """Write ``entry`` atomically (mkstemp, write, chmod 0600, fsync, replace)."""
        path = self.path_for(url, username)
        doc = {
            "version": SCHEMA_VERSION,
            "url": url,
            "username": username,
            "session_id": entry.session_id,
            "created_at": entry.created_at,
            "throttled_until": entry.throttled_until,
        }
        data = json.dumps(doc, indent=1).encode()
        tmp_name: str | None = None
        try:
            self._ensure_directory()
            fd, tmp_name = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")
            try:
                os.fchmod(fd, 0o600)
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp_name, path)
            tmp_name = None
        except OSError as exc:
            _warn(f"The session cache {path} could not be written ({exc.strerror or exc}).")
        finally:
            if tmp_name is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp_name)

    def delete(self, url: str, username: str) -> None:
        """Forget the entry (a missing one is fine)."""
        path = self.path_for(url, username)
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            _warn(f"The session cache {path} could not be removed ({exc.strerror or exc}).")

    # -- locking -----------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, url: str, username: str, *, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
        """Hold the entry's cross-process lock (a ``.lock`` file next to it, 0600).

        When the lock cannot be taken (read-only directory, another process stuck
        for ``timeout`` seconds) the block runs anyway, with a warning: a missing
        lock may cost an extra login, never a failure.
        """
        lock_path = self.path_for(url, username).with_suffix(".lock")
        file_lock = filelock.FileLock(lock_path, timeout=timeout, mode=0o600)
        try:
            self._ensure_directory()
            file_lock.acquire()
        except (OSError, filelock.Timeout) as exc:
            reason = "timed out" if isinstance(exc, filelock.Timeout) else str(exc)
            _warn(f"The session cache lock {lock_path} could not be taken ({reason}).")
            yield
            return
        try:
            yield
        finally:
            try:
                if not self.path_for(url, username).exists():
                    # No entry left: the lock file goes too, removed while still held.
                    with contextlib.suppress(OSError):
                        lock_path.unlink()
            finally:
                file_lock.release()


def _my_uid() -> int | None:
    getuid = getattr(os, "getuid", None)  # absent on Windows
    return getuid() if getuid is not None else None


def _warn(message: str) -> None:
    warnings.warn(message, CacheWarning, stacklevel=4)
