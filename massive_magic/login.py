"""The session-login scheme: one Metabase session per user, shared with other kernels.

``POST /api/session`` with the user name and password gives a session that lives
14 days from its creation (``metabase-api.md`` §2.1). It is kept in the token
cache so every kernel on the machine uses it instead of logging in again, renewed
once after a 401 or just before its maximum age, and never obtained by a login
that is known to fail: a refused login is remembered (no automatic retry, every
caller sees its reason) and so is Metabase's lockout (:mod:`~massive_magic.throttle`).
The first session taken from disk is checked to be this user's.
"""

from __future__ import annotations

import getpass
import logging
import sys
import threading
import warnings
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Literal, NamedTuple

import orjson

from .answers import error_text, read_json
from .auth import ME, Headers, SessionInfo, Transport
from .errors import AuthError, CacheWarning, NextStep, ResponseError, Step
from .secret import Secret
from .settings import ENV_API_KEY, ENV_EMAIL, ENV_PASSWORD, Settings
from .throttle import ThrottleMemory, is_throttle_message, utc
from .token_store import TokenEntry, TokenStore

__all__ = ["SESSION_HEADER", "SessionLogin"]

log = logging.getLogger(__name__)

SESSION_HEADER = "X-Metabase-Session"


class _Current(NamedTuple):
    """The session in use; replaced as a whole so threads never see half an update."""

    secret: Secret
    created_at: float
    reused: bool

    @property
    def token(self) -> str:
        return self.secret.reveal()


def _interactive_stdin() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError):  # replaced or closed stdin
        return False


def _copy(error: AuthError) -> AuthError:
    """A fresh instance of a remembered error (one object raised in two threads would
    share one traceback)."""
    return type(error)(error.message, next_steps=error.next_steps)


class SessionLogin:
    """User name + password -> one Metabase session, shared with other kernels on disk.

    A token comes from memory, else from a fresh cached session, else from one login.
    Concurrent renewals send one login (a thread lock plus the cache's file lock,
    re-checking the token after each). A refused login is remembered: no automatic
    login follows it, and every caller sees the refusal's own reason.
    """

    kind: Literal["session"] = "session"

    def __init__(
        self,
        settings: Settings,
        store: TokenStore,
        clock: Callable[[], float],
        password_prompt: Callable[[str], str] | None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.throttle = ThrottleMemory(store, clock)
        self._clock = clock
        self._password_prompt = password_prompt
        # memory only; never written anywhere
        self._password = Secret(settings.password) if settings.password else None
        self._prompted = False
        self._refusal: AuthError | None = None  # no automatic login until login()
        self._lock = threading.RLock()
        self._current: _Current | None = None
        self._checked_disk = False  # the first session taken from disk is checked once
        self._seen: tuple[Secret, ...] = ()  # recent tokens, to scrub from server text

    # -- the interface ---------------------------------------------------------------------

    @property
    def info(self) -> SessionInfo | None:
        current = self._current
        if current is None:
            return None
        created = utc(current.created_at)
        return SessionInfo(
            url=self.settings.url,
            username=self.settings.username,
            created_at=created,
            expires_at=created + timedelta(seconds=self.settings.max_session_age),
            reused=current.reused,
            auth="session",
        )

    def headers(self, transport: Transport) -> Headers:
        return {SESSION_HEADER: self._token(transport, stale=None)}

    def renew(self, transport: Transport, sent: Headers) -> Headers:
        log.debug("401: renewing the session for %s", self.settings.username)
        return {SESSION_HEADER: self._token(transport, stale=sent.get(SESSION_HEADER))}

    def rejected(self) -> AuthError:
        return AuthError(
            f"Metabase at {self.settings.url} refused the session for "
            f"{self.settings.username} right after it was renewed; if this persists, a "
            "Metabase admin can tell whether the account is active.",
            next_steps=(NextStep(Step.LOGIN),),
        )

    def login(self, transport: Transport, force: bool) -> SessionInfo:
        """Make sure a session exists; reuse a fresh cached one unless ``force``.

        An explicit call may log in again after a refused login (the automatic
        path never does).
        """
        base, username = self.settings.url, self._username()
        with self._lock:
            if force:
                entry = self._load(base, username)
                self._check_may_login(entry, explicit=True)
                self._password_for(username)
                with self.store.lock(base, username):
                    self._login_locked(transport, self._load(base, username), explicit=True)
            else:
                self._token(transport, stale=None, explicit=True)
        info = self.info
        assert info is not None
        return info

    def logout(self, transport: Transport) -> None:
        """``DELETE /api/session`` for every token known here, and forget the cache entry.

        An already expired or unknown session (404/401) is fine. A remembered login
        lockout survives the logout, so it still protects the account.
        """
        username = self.settings.username
        if username is None:
            return
        base = self.settings.url
        with self._lock, self.store.lock(base, username):
            entry = self.store.load(base, username)
            tokens: list[Secret] = []
            if self._current is not None:
                tokens.append(self._current.secret)
            if entry is not None and entry.session_id:
                cached = Secret(entry.session_id)
                if cached not in tokens:
                    tokens.append(cached)
            self._current = None
            if entry is not None and entry.throttle_remaining(self._clock()) > 0:
                self.store.save(base, username, TokenEntry(throttled_until=entry.throttled_until))
            else:
                self.store.delete(base, username)
        for secret in tokens:
            response = transport.send("DELETE", f"{base}/api/session", {SESSION_HEADER: secret})
            transport.discard(response)
            if response.status_code not in (200, 204, 401, 404):
                log.debug("logout at %s answered %s", base, response.status_code)
        log.debug("logged out of %s as %s", base, username)

    def secrets(self) -> tuple[Secret, ...]:
        password = (self._password,) if self._password is not None else ()
        return (*self._seen, *password)

    # -- tokens -------------------------------------------------------------------------------

    def _fresh(self, created_at: float, now: float) -> bool:
        entry = TokenEntry(session_id="-", created_at=created_at)
        return entry.is_fresh(now, self.settings.max_session_age)

    def _use(self, secret: Secret, created_at: float, reused: bool) -> Secret:
        self._current = _Current(secret, created_at, reused)
        self._seen = (secret, *self._seen[:3])
        return secret

    def _load(self, base: str, username: str) -> TokenEntry | None:
        return self.throttle.sane(base, username, self.store.load(base, username))

    def _token(
        self, transport: Transport, *, stale: Secret | None, explicit: bool = False
    ) -> Secret:
        """A usable token other than ``stale``: from memory, the cache, or one login."""
        current = self._current
        if (
            current is not None
            and current.secret != stale
            and self._fresh(current.created_at, self._clock())
        ):
            return current.secret  # the fast path: no lock, no disk
        username = self._username()
        base = self.settings.url
        with self._lock:
            # Another thread may have renewed while we waited for the lock.
            current = self._current
            if current is not None and current.secret != stale:
                if self._fresh(current.created_at, self._clock()):
                    return current.secret
                stale = current.secret  # too old: renew it before use
            entry = self._load(base, username)
            adopted = self._adopt(transport, entry, stale)
            if adopted is not None:
                return adopted
            # A login looks needed: refuse early, or ask for the password *before* taking
            # the file lock, so other kernels never wait on someone typing.
            self._check_may_login(entry, explicit=explicit)
            self._password_for(username)
            with self.store.lock(base, username):
                # Another process may have logged in while we waited for the file lock.
                entry = self._load(base, username)
                adopted = self._adopt(transport, entry, stale)
                if adopted is not None:
                    return adopted
                return self._login_locked(transport, entry, explicit=explicit)

    def _adopt(
        self, transport: Transport, entry: TokenEntry | None, stale: Secret | None
    ) -> Secret | None:
        if entry is None or not entry.session_id or entry.created_at is None:
            return None
        secret = Secret(entry.session_id)
        if secret == stale or not self._fresh(entry.created_at, self._clock()):
            return None
        if not self._checked_disk and not self._belongs_to_user(transport, secret):
            return None
        self._checked_disk = True
        log.debug(
            "using the cached session for %s at %s", self.settings.username, self.settings.url
        )
        return self._use(secret, entry.created_at, reused=True)

    def _belongs_to_user(self, transport: Transport, secret: Secret) -> bool:
        """One ``GET /api/user/current``: is a session read from disk this user's?

        A session of another account (a copied or planted cache file) is discarded
        with a CacheWarning; a dead one is simply not used.
        """
        base, username = self.settings.url, self._username()
        url = f"{base}{ME}"
        response = transport.send("GET", url, {SESSION_HEADER: secret})
        if response.status_code == 401:
            transport.discard(response)
            return False
        user = read_json(transport.checked("GET", url, response, (secret,)))
        email = user.get("email") if isinstance(user, dict) else None
        if isinstance(email, str) and _same_user(email, username):
            return True
        self.store.delete(base, username)
        warnings.warn(
            f"The cached session for {username} at {base} belongs to another account; "
            "it was discarded.",
            CacheWarning,
            stacklevel=2,
        )
        return False

    # -- logging in ---------------------------------------------------------------------------

    def _username(self) -> str:
        username = self.settings.username
        if not username:
            raise AuthError(
                f"No Metabase user name for {self.settings.url}.",
                next_steps=(
                    NextStep(Step.SET_USER, names=(ENV_EMAIL,)),
                    NextStep(Step.USE_API_KEY, names=(ENV_API_KEY,)),
                ),
            )
        return username

    def _password_for(self, username: str) -> Secret:
        if self._password is not None:
            return self._password
        base = self.settings.url
        message = f"Metabase password for {username} at {base}: "
        if self._password_prompt is not None:
            try:
                password = self._password_prompt(message)
            except AuthError as exc:  # a prompt that cannot ask (a kernel without stdin)
                if not self.settings.env_password_withheld:
                    raise
                # Its advice (set the password variable) would not help: say whose it is.
                raise self._no_password(username) from exc
        elif _interactive_stdin():
            password = getpass.getpass(message)
        else:
            raise self._no_password(username)
        if not password:
            raise AuthError(f"No password was entered for {username} at {base}.")
        self._password, self._prompted = Secret(password), True
        return self._password

    def _no_password(self, username: str) -> AuthError:
        """No password and no way to ask: name what to set (and why the env's is not used)."""
        if self.settings.env_password_withheld:
            reason = (
                f" ({ENV_PASSWORD} is the password of {ENV_EMAIL}, another account, "
                "so it is not sent for this one)"
            )
            names: tuple[str, ...] = (ENV_EMAIL, ENV_PASSWORD)
        else:
            reason, names = "", (ENV_PASSWORD,)
        return AuthError(
            f"No password for {username} at {self.settings.url}{reason}.",
            next_steps=(
                NextStep(Step.SET_PASSWORD, names=names),
                NextStep(Step.USE_API_KEY, names=(ENV_API_KEY,)),
            ),
        )

    def _check_may_login(self, entry: TokenEntry | None, *, explicit: bool) -> None:
        """Raise instead of sending a login that is known to be useless or harmful."""
        self.throttle.check(self.settings.url, self._username(), entry)
        if self._refusal is not None and not explicit:
            raise _copy(self._refusal)

    def _login_locked(
        self, transport: Transport, entry: TokenEntry | None, *, explicit: bool
    ) -> Secret:
        """``POST /api/session`` once; the caller holds the thread and file locks."""
        self._check_may_login(entry, explicit=explicit)  # another process may have been locked out
        username = self._username()
        base = self.settings.url
        now = self._clock()
        password = self._password_for(username)
        log.debug("logging in to %s as %s", base, username)
        url = f"{base}/api/session"
        response = transport.send(
            "POST",
            url,
            {"Content-Type": "application/json", "X-Metabase-Locale": "en"},
            orjson.dumps({"username": username, "password": password.reveal()}),
        )
        if response.status_code == 200:
            secret = _session_id(response, base)
            self.store.save(
                base, username, (entry or TokenEntry()).with_session(secret.reveal(), now)
            )
            self._refusal = None
            self._checked_disk = True  # our own login: what the cache holds now is ours
            return self._use(secret, now, reused=False)
        if response.status_code in (400, 401):
            text = _refusal_text(transport, response, self.secrets())
            if is_throttle_message(text):
                raise self.throttle.remember(base, username, entry, text, now)
            if self._prompted:
                self._password, self._prompted = None, False  # ask again next time
            self._refusal = AuthError(
                f"Metabase at {base} refused the login for {username}"
                f"{': ' + text if text else ''}. Ten failures in an hour lock the account.",
                next_steps=(
                    NextStep(Step.SET_USER, names=(ENV_EMAIL,)),
                    NextStep(Step.SET_PASSWORD, names=(ENV_PASSWORD,)),
                    NextStep(Step.LOGIN),
                ),
            )
            raise _copy(self._refusal)
        transport.checked("POST", url, response, self.secrets())
        raise ResponseError(
            f"Metabase at {base} answered the login with {response.status_code} instead of 200.",
            status=response.status_code,
            url=response.url,
        )


def _session_id(response: Any, base: str) -> Secret:
    """The session id of a successful login answer (kept out of the caller's frame)."""
    doc = read_json(response)
    token = doc.get("id") if isinstance(doc, dict) else None
    if not isinstance(token, str) or not token:
        raise ResponseError(
            f"The login answer from {base} holds no session id; is this a Metabase?",
            status=200,
            url=response.url,
        )
    return Secret(token)


def _refusal_text(transport: Transport, response: Any, secrets: tuple[Secret, ...]) -> str:
    """Metabase's reason for refusing a login, scrubbed (the body may echo the password)."""
    body = response.content
    transport.discard(response)
    return error_text(response.headers.get("Content-Type", ""), body, secrets) or ""


def _same_user(email: str, username: str) -> bool:
    """Whether Metabase's ``email`` is the account ``username`` logs in as (case aside).

    An LDAP user name carries no domain: it is compared with the e-mail's local part.
    """
    email, username = email.casefold(), username.casefold()
    return email == username or ("@" not in username and email.split("@")[0] == username)
