"""Users, sessions, API keys and Metabase's login throttle, on an injectable clock.

The throttle follows ``metabase/throttle`` 1.0.2 ``with-throttling`` exactly: attempts are
kept one hour; once ``threshold`` failed attempts sit in the window every try is refused
(the right password too) and counted as another failure; the "wait N seconds" figure is
``15 s * (attempts + 1 - threshold) ** 1.5`` after the latest attempt, rounded.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
import uuid
from dataclasses import dataclass, field

DEFAULT_MAX_SESSION_AGE = 14 * 24 * 3600.0


class Clock:
    """Wall-clock time plus an offset tests can move; optionally frozen.

    ``advance`` ages sessions and throttle windows without sleeping.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offset = 0.0
        self._frozen: float | None = None

    def now(self) -> float:
        """Seconds since the epoch, as the sandbox sees it."""
        with self._lock:
            return self._frozen if self._frozen is not None else time.time() + self._offset

    def utcnow(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.now(), dt.timezone.utc)

    def advance(self, seconds: float) -> None:
        with self._lock:
            if self._frozen is not None:
                self._frozen += seconds
            else:
                self._offset += seconds

    def set(self, epoch: float) -> None:
        """Jump to ``epoch`` (time keeps running from there unless frozen)."""
        with self._lock:
            if self._frozen is not None:
                self._frozen = float(epoch)
            else:
                self._offset = float(epoch) - time.time()

    def freeze(self, epoch: float | None = None) -> None:
        """Stop the clock (at ``epoch`` or now) so messages with seconds are exact."""
        now = self.now() if epoch is None else float(epoch)
        with self._lock:
            self._frozen = now

    def unfreeze(self) -> None:
        now = self.now()
        with self._lock:
            self._frozen = None
            self._offset = now - time.time()

    def reset(self) -> None:
        """Back to real time."""
        with self._lock:
            self._offset = 0.0
            self._frozen = None


@dataclass
class User:
    id: int
    email: str
    password: str = field(repr=False)
    first_name: str
    last_name: str
    superuser: bool = False

    def describe(self) -> dict[str, object]:
        """``GET /api/user/current``."""
        return {
            "id": self.id,
            "email": self.email,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "common_name": f"{self.first_name} {self.last_name}".strip(),
            "is_superuser": self.superuser,
            "is_active": True,
            "is_qbnewb": False,
            "locale": None,
            "sso_source": None,
            "date_joined": "2024-01-02T09:00:00Z",
            "last_login": None,
            "personal_collection_id": 100 + self.id,
            "group_ids": [1, 2] if self.superuser else [1],
        }


@dataclass
class Session:
    user: User
    created: float


class Throttler:
    """One of Metabase's login throttlers (per user name or per source address)."""

    def __init__(
        self, field_key: str, threshold: int, *, ttl: float = 3600.0, initial_delay: float = 15.0
    ) -> None:
        self.field_key = field_key
        self.threshold = threshold
        self.ttl = ttl
        self.initial_delay = initial_delay
        self.attempts: dict[str, list[float]] = {}

    def prune(self, now: float) -> None:
        cutoff = now - self.ttl
        for key in list(self.attempts):
            kept = [t for t in self.attempts[key] if t > cutoff]
            if kept:
                self.attempts[key] = kept
            else:
                del self.attempts[key]

    def blocked_message(self, key: str, now: float) -> str | None:
        """The refusal message if ``key`` is over the threshold, else None."""
        attempts = self.attempts.get(key, [])
        if self.threshold - len(attempts) > 0:
            return None
        over = len(attempts) + 1 - self.threshold
        delay = over**1.5 * self.initial_delay
        left = max(attempts) + delay - now
        if left > 0:
            seconds = math.floor(left + 0.5)  # Clojure's math/round: halves go up
            return f"Too many attempts! You must wait {seconds} seconds before trying again."
        return "Too many attempts! Please try again later."

    def add(self, key: str, now: float) -> None:
        self.attempts.setdefault(key, []).append(now)

    def clear(self) -> None:
        self.attempts.clear()


class Accounts:
    """Users, API keys, live sessions and the two login throttlers."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.lock = threading.Lock()
        self.users: dict[str, User] = {}
        self.api_keys: dict[str, User] = {}
        self.sessions: dict[str, Session] = {}
        self.max_session_age = DEFAULT_MAX_SESSION_AGE
        self.by_username = Throttler("username", 10)
        self.by_address = Throttler("username", 50)

    def add_user(
        self,
        email: str,
        password: str,
        *,
        first_name: str = "",
        last_name: str = "",
        superuser: bool = False,
    ) -> User:
        with self.lock:
            user = User(
                len(self.users) + 2,
                email,
                password,
                first_name or email.split("@")[0].capitalize(),
                last_name,
                superuser,
            )
            self.users[email.lower()] = user
            return user

    def login(self, username: str, password: str, address: str) -> tuple[str | None, str | None]:
        """(session id, None) on success, or (None, error field + message) as a pair."""
        with self.lock:
            now = self.clock.now()
            keys = ((self.by_address, address), (self.by_username, username))
            for throttler, _ in keys:
                throttler.prune(now)
            for throttler, key in keys:
                message = throttler.blocked_message(key, now)
                if message:
                    for t, k in keys:
                        t.add(k, now)
                    return None, message
            user = self.users.get(username.lower())
            if user is None or user.password != password:
                for t, k in keys:
                    t.add(k, now)
                return None, None
            token = str(uuid.uuid4())
            self.sessions[token] = Session(user, now)
            return token, None

    def session_user(self, token: str | None) -> User | None:
        if not token:
            return None
        with self.lock:
            session = self.sessions.get(token)
            if session is None:
                return None
            if self.clock.now() - session.created >= self.max_session_age:
                return None
            return session.user

    def logout(self, token: str | None) -> bool:
        with self.lock:
            return bool(token) and self.sessions.pop(token or "", None) is not None

    def expire_sessions(self) -> None:
        with self.lock:
            self.sessions.clear()

    def reset_throttles(self) -> None:
        with self.lock:
            self.by_username.clear()
            self.by_address.clear()
