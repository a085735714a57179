"""Login-throttle memory: remember Metabase's lockout on disk so no kernel extends it.

Metabase refuses logins for a user name after ten failed attempts within an hour
(``metabase-api.md`` §1.5). It names a wait ("You must wait 15 seconds"); after
that wait it takes one attempt, a wrong one extends the lock, and the count only
clears an hour after the last failure. Every attempt during the lock counts as
another failure, so this client remembers the lock in the session cache and sends
no login before it lifts, even from a restarted kernel or another process.

The helpers at the top take plain values (message text, times), so they are tested
without a server or a clock.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable
from datetime import datetime, timezone

from .errors import CacheWarning, LoginThrottled, NextStep, Step
from .settings import ENV_API_KEY
from .token_store import TokenEntry, TokenStore

__all__ = [
    "MAX_REMEMBERED_WAIT",
    "THROTTLE_FALLBACK",
    "ThrottleMemory",
    "duration",
    "is_throttle_message",
    "plausible",
    "throttle_wait",
    "throttled_until",
    "utc",
]

#: How long to stay away after "Too many attempts! Please try again later.":
#: Metabase only unlocks after a full hour without attempts.
THROTTLE_FALLBACK = 3600.0
#: A remembered lock further away than this was not written by this client (the
#: longest wait Metabase names grows with the failures, but not to weeks): the
#: entry is ignored with a warning instead of locking the user out for ever.
MAX_REMEMBERED_WAIT = 7 * 24 * 3600.0

_THROTTLED = re.compile(r"too many attempts", re.IGNORECASE)
_WAIT = re.compile(r"must wait\s+([\d.,\u00a0\u202f' ]*\d)\s+seconds?", re.IGNORECASE)


# -- pure helpers ---------------------------------------------------------------------------


def is_throttle_message(message: str | None) -> bool:
    """Whether a login error is Metabase's lockout ("Too many attempts! ...")."""
    return bool(message) and _THROTTLED.search(message or "") is not None


def throttle_wait(message: str) -> float | None:
    """The wait Metabase named, in seconds, or ``None`` for "Please try again later.".

    ``"Too many attempts! You must wait 16,339 seconds before trying again."`` -> 16339.0
    (numbers may carry the user's locale's group separators).
    """
    match = _WAIT.search(message)
    if match is None:
        return None
    digits = re.sub(r"\D", "", match.group(1))
    return float(digits) if digits else None


def throttled_until(now: float, wait: float | None) -> float:
    """When the next login may be sent: the named wait, or a conservative hour."""
    return now + (wait if wait is not None else THROTTLE_FALLBACK)


def plausible(until: float | None, now: float) -> bool:
    """Whether a remembered ``throttled_until`` can have been written by this client."""
    if until is None:
        return True
    return math.isfinite(until) and until - now <= MAX_REMEMBERED_WAIT


def utc(timestamp: float) -> datetime:
    """A POSIX time as an aware UTC datetime."""
    return datetime.fromtimestamp(timestamp, tz=timezone.utc)


def duration(seconds: float) -> str:
    """``42 s``, ``12 min``, ``4.5 h``: a wait as people read it."""
    seconds = max(0, round(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def _locked(username: str, base: str, said: str, until: float) -> str:
    """What Metabase does during a lockout, and when this client allows the next try."""
    return (
        f"Metabase refuses logins for {username} at {base} after too many failed attempts"
        f"{said}. After the wait it takes one attempt; a wrong one extends the lock, and the "
        "count of failures clears one hour after the last one. This client sends no login "
        f"for {username} before {utc(until):%Y-%m-%d %H:%M:%S} UTC."
    )


_NEXT = (NextStep(Step.WAIT_THEN_LOGIN), NextStep(Step.USE_API_KEY, names=(ENV_API_KEY,)))


# -- the memory -------------------------------------------------------------------------------


class ThrottleMemory:
    """The lockout of one (server, user), kept in the session cache beside its session."""

    def __init__(self, store: TokenStore, clock: Callable[[], float]) -> None:
        self.store = store
        self._clock = clock

    def sane(self, base: str, username: str, entry: TokenEntry | None) -> TokenEntry | None:
        """``entry``, or ``None`` (with a CacheWarning) when its lock cannot be ours."""
        if entry is None or plausible(entry.throttled_until, self._clock()):
            return entry
        path = self.store.path_for(base, username)
        warnings.warn(
            f"The session cache {path} remembers a login lock that ends implausibly late; "
            "ignoring the entry.",
            CacheWarning,
            stacklevel=4,
        )
        return None

    def check(self, base: str, username: str, entry: TokenEntry | None) -> None:
        """Raise :class:`LoginThrottled` while a remembered lock holds; send nothing."""
        now = self._clock()
        remaining = entry.throttle_remaining(now) if entry is not None else 0.0
        if remaining > 0:
            said = f"; no login was sent ({duration(remaining)} left of the wait)"
            raise LoginThrottled(
                _locked(username, base, said, now + remaining),
                retry_after=remaining,
                next_steps=_NEXT,
            )

    def remember(
        self, base: str, username: str, entry: TokenEntry | None, text: str, now: float
    ) -> LoginThrottled:
        """Store the lock Metabase just announced in ``text``; the error to raise."""
        wait = throttle_wait(text)
        until = throttled_until(now, wait)
        self.store.save(base, username, (entry or TokenEntry()).with_throttle(until))
        named = f"wait {duration(wait)}" if wait is not None else "try again later"
        return LoginThrottled(
            _locked(username, base, f" (it says: {named})", until),
            retry_after=wait,
            next_steps=_NEXT,
        )
