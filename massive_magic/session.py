"""HTTP and authentication: one ``requests.Session``, one login, one renewal on 401.

Every call to Metabase goes through :meth:`MetabaseSession.request`. The auth flow
is a short explicit sequence with a hard cap (after httpx's ``Auth.auth_flow``)::

    token = memory, else a fresh cached session, else one login
    send(request, token)
    401?  -> token = the cache's token if another kernel renewed it, else one login
          -> send(request, token) once more
    401?  -> AuthError (never a loop; a refused login is never retried)

Why so careful: Metabase locks a user out after ten failed logins in an hour and
every further attempt extends the lock (``metabase-api.md`` §1.5), and a session
lives 14 days from its creation (§2.1). So sessions are shared between kernels
through :class:`~massive_magic.token_store.TokenStore`, a session near its maximum
age is renewed before use (no wasted 401), concurrent renewals send one login
(a thread lock plus the cache's file lock, re-checking the token after each),
and a lockout is remembered on disk so that a restarted kernel cannot extend it.

Transport rules:

- No cookies, ever: Metabase lets its ``metabase.SESSION`` cookie override the
  ``X-Metabase-Session`` header (§3.1), so the jar rejects every cookie.
- No redirects: a redirect to another host would carry the token header along
  (requests only strips ``Authorization``); a 3xx is reported instead.
- Explicit timeouts (short connect, long read) on every request.
- Bounded retries with backoff by urllib3's ``Retry`` on the adapter: connection
  errors always (nothing was sent), 502/503/504 for requests that are safe to
  repeat. Every POST this client sends outside ``/api/session`` is a card or
  dashboard *query*, which is read-only; the login POST (its own adapter) is
  never repeated after it reached the server.
- The token is never in a repr, a log line, a warning or an exception.
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from http.cookiejar import DefaultCookiePolicy
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version
from typing import Any, Literal, NamedTuple

import orjson
import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from .errors import AccessDenied, AuthError, LoginThrottled, NotFound, ResponseError
from .settings import ENV_API_KEY, ENV_EMAIL, ENV_PASSWORD, Settings
from .token_store import TokenEntry, TokenStore

__all__ = [
    "THROTTLE_FALLBACK",
    "MetabaseSession",
    "SessionInfo",
    "error_text",
    "is_throttle_message",
    "read_json",
    "throttle_wait",
    "throttled_until",
]

log = logging.getLogger(__name__)

#: How long to stay away after "Too many attempts! Please try again later.":
#: Metabase only unlocks after a full hour without attempts.
THROTTLE_FALLBACK = 3600.0
#: Gateway answers worth repeating (Metabase itself sends 503 when overloaded).
RETRY_STATUSES = frozenset({502, 503, 504})
#: Methods repeated after a gateway error; see the module docstring about POST.
_REPEATABLE = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "POST"})
#: How much of an error body we read to describe it.
_ERROR_BODY_LIMIT = 64 * 1024


def _user_agent() -> str:
    try:
        return f"massive-magic/{_dist_version('massive-magic')}"
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "massive-magic"


# -- pure helpers (plain values in, plain values out) -----------------------------------

_THROTTLED = re.compile(r"too many attempts", re.IGNORECASE)
_WAIT = re.compile(r"must wait\s+([\d.,\u00a0\u202f' ]*\d)\s+seconds?", re.IGNORECASE)


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


def _shorten(text: str, limit: int = 300) -> str:
    line = text.strip().splitlines()[0].strip() if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _looks_like_html(content_type: str, text: str) -> bool:
    head = text.lstrip()[:64].lower()
    return "html" in content_type.lower() or head.startswith(("<!doctype", "<html", "<head"))


def _json_error_text(doc: Any) -> str | None:
    """Metabase's message from error shapes E2-E5 (never the stack trace)."""
    if isinstance(doc, str):
        return _shorten(doc) or None
    if not isinstance(doc, dict):
        return None
    errors = doc.get("errors")
    if isinstance(errors, dict) and errors:
        parts = []
        for key, value in errors.items():
            text = value if isinstance(value, str) else orjson.dumps(value).decode()
            parts.append(text if key == "_error" else f"{key}: {text}")
        return _shorten("; ".join(parts))
    if isinstance(errors, str) and errors.strip():
        return _shorten(errors)
    for key in ("message", "error", "cause"):
        value = doc.get(key)
        if isinstance(value, str) and value.strip():
            return _shorten(value)
    return None


def error_text(content_type: str, body: bytes) -> str | None:
    """Metabase's own words from an error body, or ``None`` (HTML page, empty, unreadable).

    Handles plain text (``Unauthenticated``, ``Not found.``), ``{"errors": {...}}``,
    ``{"message": ...}`` and exception dumps, whose ``trace``/``via`` are dropped.
    """
    text = body.decode("utf-8", "replace").strip()
    if not text or _looks_like_html(content_type, text):
        return None
    if "json" in content_type.lower() or text[:1] in '{["':
        try:
            return _json_error_text(orjson.loads(body))
        except orjson.JSONDecodeError:
            if "json" in content_type.lower():
                return None  # a cut-off document: no reliable message in it
    return _shorten(text)


def _html_title(body: bytes) -> str | None:
    match = re.search(rb"<title>\s*([^<]{1,120}?)\s*</title>", body, re.IGNORECASE)
    return match.group(1).decode("utf-8", "replace") if match else None


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot send a {type(value).__name__} to Metabase as JSON")


# -- public data --------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionInfo:
    """What a caller may know about the session; deliberately holds no token.

    ``expires_at`` is ``None`` for an API key (it does not expire).
    """

    url: str
    username: str | None
    created_at: datetime
    expires_at: datetime | None
    reused: bool
    auth: Literal["session", "api_key"]


class _Current(NamedTuple):
    """The session in use; replaced as a whole so threads never see half an update."""

    token: str
    created_at: float
    reused: bool


class _RejectAllCookies(DefaultCookiePolicy):
    """Keep no cookie and send none: a stale ``metabase.SESSION`` would beat the header."""

    def set_ok(self, cookie: Any, request: Any) -> bool:
        return False

    def return_ok(self, cookie: Any, request: Any) -> bool:
        return False


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc)


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def _interactive_stdin() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError):  # replaced or closed stdin
        return False


def _transport_reason(exc: BaseException) -> str:
    match = re.search(r"\[Errno -?\d+\] ([^'\")]+)", str(exc))
    if match:
        return match.group(1).strip()
    return type(exc).__name__


def read_json(response: requests.Response) -> Any:
    """The body parsed with orjson; an invalid or cut-off body is a :class:`ResponseError`."""
    try:
        body = response.content
    except requests.exceptions.RequestException:
        raise ResponseError(
            f"The answer from {response.url} ended early (the connection was closed) — try again.",
            status=response.status_code,
            url=response.url,
        ) from None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        # ``from None``: orjson's error keeps the whole document, which may hold a token.
        what = "is empty" if not body.strip() else "is not valid JSON (it may have been cut off)"
        raise ResponseError(
            f"The answer from {response.url} {what} — try again; if this persists, "
            "something between you and Metabase is changing the answers.",
            status=response.status_code,
            url=response.url,
        ) from None


# -- the session ----------------------------------------------------------------------------


class MetabaseSession:
    """One authenticated connection to one Metabase for one user (or API key).

    Thread-safe: dashboards run their cards from a thread pool on one session.
    ``password_prompt(message) -> str`` is called when a login needs a password
    that the settings do not have (the magics pass a getpass-based prompt).
    ``retries`` and ``backoff_factor`` tune the transport retries.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        store: TokenStore | None = None,
        clock: Callable[[], float] = time.time,
        password_prompt: Callable[[str], str] | None = None,
        retries: int = 3,
        backoff_factor: float = 0.5,
    ) -> None:
        self.settings = settings
        self.store = store if store is not None else TokenStore(settings.cache_dir)
        self._clock = clock
        self._password_prompt = password_prompt
        self._password = settings.password  # memory only; never written anywhere
        self._prompted = False
        self._refused = False  # a login was refused: no automatic login until login()
        self._lock = threading.RLock()
        self._current: _Current | None = None
        self._api_key_info: SessionInfo | None = None
        self._timeout = (settings.connect_timeout, settings.read_timeout)
        self._http = self._make_http(retries, backoff_factor)

    def _make_http(self, retries: int, backoff_factor: float) -> requests.Session:
        http = requests.Session()
        http.cookies.set_policy(_RejectAllCookies())
        http.headers["User-Agent"] = _user_agent()
        data_retry = Retry(
            total=retries,
            connect=retries,
            read=min(retries, 1),  # a dropped connection, not a long query that timed out
            status=retries,
            other=0,
            allowed_methods=_REPEATABLE,
            status_forcelist=RETRY_STATUSES,
            backoff_factor=backoff_factor,
            backoff_max=10.0,
            raise_on_status=False,
            raise_on_redirect=False,
            retry_after_max=30,
        )
        login_retry = Retry(
            total=retries,
            connect=retries,  # nothing reached the server: safe even for the login
            read=0,
            status=0,
            other=0,
            allowed_methods=frozenset({"GET", "HEAD"}),
            status_forcelist=(),
            backoff_factor=backoff_factor,
            backoff_max=10.0,
            raise_on_status=False,
            raise_on_redirect=False,
            respect_retry_after_header=False,
        )
        base = self.settings.url
        http.mount(f"{base}/", HTTPAdapter(max_retries=data_retry, pool_maxsize=32))
        http.mount(f"{base}/api/session", HTTPAdapter(max_retries=login_retry, pool_maxsize=4))
        return http

    # -- public surface -------------------------------------------------------------------

    def __repr__(self) -> str:
        auth = "api_key" if self.settings.api_key else "session"
        state = "active" if (self._current or self._api_key_info) else "not logged in"
        return (
            f"<MetabaseSession url={self.settings.url!r} user={self.settings.username!r} "
            f"auth={auth} {state}>"
        )

    def __enter__(self) -> MetabaseSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def info(self) -> SessionInfo | None:
        """The session in use (no token in it), or ``None`` before the first login."""
        if self.settings.api_key:
            return self._api_key_info
        current = self._current
        if current is None:
            return None
        return SessionInfo(
            url=self.settings.url,
            username=self.settings.username,
            created_at=_utc(current.created_at),
            expires_at=_utc(current.created_at) + timedelta(seconds=self.settings.max_session_age),
            reused=current.reused,
            auth="session",
        )

    def login(self, force: bool = False) -> SessionInfo:
        """Make sure a session exists; reuse a fresh cached one unless ``force``.

        An explicit call may log in again after a refused login (the automatic
        path never does). With an API key there is no login: the key is checked
        with ``GET /api/user/current``.
        """
        if self.settings.api_key:
            response = self.request("GET", "/api/user/current")
            user = read_json(response)
            email = user.get("email") if isinstance(user, dict) else None
            now = _utc(self._clock())
            self._api_key_info = SessionInfo(
                url=self.settings.url,
                username=email if isinstance(email, str) else self.settings.username,
                created_at=now,
                expires_at=None,
                reused=False,
                auth="api_key",
            )
            return self._api_key_info
        username = self._require_username()
        with self._lock:
            if force:
                self._check_may_login(self.store.load(self.settings.url, username), explicit=True)
                self._password_for(username)
                with self.store.lock(self.settings.url, username):
                    self._login_locked(self.store.load(self.settings.url, username), explicit=True)
            else:
                self._session_token(stale=None, explicit=True)
        info = self.info
        assert info is not None
        return info

    def logout(self) -> None:
        """End the session on the server (``DELETE /api/session``) and forget it here.

        An already expired or unknown session (404/401) is fine. A remembered
        login lockout survives the logout, so it still protects the account.
        """
        if self.settings.api_key:
            self._api_key_info = None
            return
        username = self.settings.username
        if username is None:
            return
        base = self.settings.url
        with self._lock, self.store.lock(base, username):
            entry = self.store.load(base, username)
            tokens: set[str] = set()
            if self._current is not None:
                tokens.add(self._current.token)
            if entry is not None and entry.session_id:
                tokens.add(entry.session_id)
            self._current = None
            if entry is not None and entry.throttle_remaining(self._clock()) > 0:
                self.store.save(base, username, TokenEntry(throttled_until=entry.throttled_until))
            else:
                self.store.delete(base, username)
        for token in tokens:
            response = self._send("DELETE", f"{base}/api/session", {"X-Metabase-Session": token})
            response.close()
            if response.status_code not in (200, 204, 401, 404):
                log.debug("logout at %s answered %s", base, response.status_code)
        log.debug("logged out of %s as %s", base, username)

    def close(self) -> None:
        """Release pooled connections (the cached session stays valid for other kernels)."""
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: Any = None,
        params: Mapping[str, Any] | None = None,
        stream: bool = False,
        timeout: float | tuple[float, float] | None = None,
    ) -> requests.Response:
        """Send one authenticated request; a 2xx response, or a MassiveError.

        ``path`` is ``/api/...`` (or a full URL on this server). ``json`` is sent
        with orjson; ``data`` as a form or raw body. With ``stream=True`` the caller
        reads (and closes) the body of the returned response.
        """
        method = method.upper()
        url = self._url(path)
        headers: dict[str, str] = {}
        if json is not None:
            data = orjson.dumps(json, default=_json_default, option=orjson.OPT_SERIALIZE_NUMPY)
            headers["Content-Type"] = "application/json"
        send_timeout = self._request_timeout(timeout)
        api_key = self.settings.api_key
        if api_key:
            headers["X-API-Key"] = api_key
            response = self._send(method, url, headers, data, params, stream, send_timeout)
            if response.status_code == 401:
                _discard(response)
                raise AuthError(
                    f"Metabase at {self.settings.url} refused the API key (401). It may have "
                    f"been deleted or regenerated: set a current key in {ENV_API_KEY}."
                )
            return self._checked(method, url, response, stream)

        token = self._session_token(stale=None)
        headers["X-Metabase-Session"] = token
        response = self._send(method, url, headers, data, params, stream, send_timeout)
        if response.status_code == 401:
            _discard(response)
            log.debug("401 from %s %s: renewing the session", method, path)
            headers["X-Metabase-Session"] = self._session_token(stale=token)
            response = self._send(method, url, headers, data, params, stream, send_timeout)
            if response.status_code == 401:
                _discard(response)
                raise AuthError(
                    f"Metabase at {self.settings.url} refused the session for "
                    f"{self.settings.username} right after it was renewed. Log in again "
                    "(Client.login(force=True) or %massive_login); if this persists, ask a "
                    "Metabase admin whether the account is active."
                )
        return self._checked(method, url, response, stream)

    # -- tokens -------------------------------------------------------------------------------

    def _fresh(self, created_at: float, now: float) -> bool:
        entry = TokenEntry(session_id="-", created_at=created_at)
        return entry.is_fresh(now, self.settings.max_session_age)

    def _session_token(self, *, stale: str | None, explicit: bool = False) -> str:
        """A usable token other than ``stale``: from memory, the cache, or one login."""
        current = self._current
        if (
            current is not None
            and current.token != stale
            and self._fresh(current.created_at, self._clock())
        ):
            return current.token  # the fast path: no lock, no disk
        username = self._require_username()
        base = self.settings.url
        with self._lock:
            # Another thread may have renewed while we waited for the lock.
            current = self._current
            if current is not None and current.token != stale:
                if self._fresh(current.created_at, self._clock()):
                    return current.token
                stale = current.token  # too old: renew it before use
            entry = self.store.load(base, username)
            adopted = self._adopt(entry, stale)
            if adopted is not None:
                return adopted
            # A login looks needed: refuse early, or ask for the password *before* taking
            # the file lock, so other kernels never wait on someone typing.
            self._check_may_login(entry, explicit=explicit)
            self._password_for(username)
            with self.store.lock(base, username):
                # Another process may have logged in while we waited for the file lock.
                entry = self.store.load(base, username)
                adopted = self._adopt(entry, stale)
                if adopted is not None:
                    return adopted
                return self._login_locked(entry, explicit=explicit)

    def _adopt(self, entry: TokenEntry | None, stale: str | None) -> str | None:
        if entry is None or not entry.session_id or entry.session_id == stale:
            return None
        if entry.created_at is None or not self._fresh(entry.created_at, self._clock()):
            return None
        self._current = _Current(entry.session_id, entry.created_at, reused=True)
        log.debug(
            "using the cached session for %s at %s", self.settings.username, self.settings.url
        )
        return entry.session_id

    def _require_username(self) -> str:
        username = self.settings.username
        if not username:
            raise AuthError(
                f"No Metabase user name for {self.settings.url}: set {ENV_EMAIL} "
                f"(or pass username=...), or use an API key ({ENV_API_KEY})."
            )
        return username

    def _password_for(self, username: str) -> str:
        if self._password:
            return self._password
        message = f"Metabase password for {username} at {self.settings.url}: "
        if self._password_prompt is not None:
            password = self._password_prompt(message)
        elif _interactive_stdin():
            password = getpass.getpass(message)
        else:
            raise AuthError(
                f"No password for {username} at {self.settings.url}: set the environment "
                f"variable {ENV_PASSWORD} (or pass password=...), or use an API key "
                f"({ENV_API_KEY})."
            )
        if not password:
            raise AuthError(f"No password was entered for {username} at {self.settings.url}.")
        self._password, self._prompted = password, True
        return password

    def _check_may_login(self, entry: TokenEntry | None, *, explicit: bool) -> None:
        """Raise instead of sending a login that is known to be useless or harmful."""
        username = self._require_username()
        base = self.settings.url
        now = self._clock()
        remaining = entry.throttle_remaining(now) if entry is not None else 0.0
        if remaining > 0:
            raise LoginThrottled(
                f"Metabase locked logins for {username} at {base} after too many attempts; "
                f"no login was sent. Wait {_duration(remaining)} (until "
                f"{_utc(now + remaining):%H:%M} UTC): every attempt extends the lock. "
                f"An API key ({ENV_API_KEY}) is not affected.",
                retry_after=remaining,
            )
        if self._refused and not explicit:
            raise AuthError(
                f"The last login for {username} at {base} was refused, so no new attempt "
                f"is made automatically (ten failures lock the account). Check {ENV_PASSWORD} "
                "and log in again."
            )

    def _login_locked(self, entry: TokenEntry | None, *, explicit: bool) -> str:
        """``POST /api/session`` once; the caller holds the thread and file locks."""
        self._check_may_login(entry, explicit=explicit)  # another process may have been locked out
        username = self._require_username()
        base = self.settings.url
        now = self._clock()
        password = self._password_for(username)
        log.debug("logging in to %s as %s", base, username)
        body = orjson.dumps({"username": username, "password": password})
        headers = {"Content-Type": "application/json", "X-Metabase-Locale": "en"}
        response = self._send("POST", f"{base}/api/session", headers, body, None, False, None)
        if response.status_code == 200:
            doc = read_json(response)
            token = doc.get("id") if isinstance(doc, dict) else None
            if not isinstance(token, str) or not token:
                raise ResponseError(
                    f"The login answer from {base} holds no session id; is this a Metabase?",
                    status=200,
                    url=response.url,
                )
            self.store.save(base, username, (entry or TokenEntry()).with_session(token, now))
            self._current = _Current(token, now, reused=False)
            self._refused = False
            return token
        if response.status_code in (400, 401):
            text = error_text(response.headers.get("Content-Type", ""), response.content) or ""
            if password in text:
                text = text.replace(password, "***")
            if is_throttle_message(text):
                wait = throttle_wait(text)
                until = throttled_until(now, wait)
                self.store.save(base, username, (entry or TokenEntry()).with_throttle(until))
                named = f"wait {_duration(wait)}" if wait is not None else "try again later"
                raise LoginThrottled(
                    f"Metabase locked logins for {username} at {base} after too many attempts "
                    f"(it says: {named}). No login will be sent before {_utc(until):%H:%M} UTC; "
                    "every attempt extends the lock, which lifts after an hour without any. "
                    f"An API key ({ENV_API_KEY}) is not affected.",
                    retry_after=wait,
                )
            self._refused = True
            if self._prompted:
                self._password, self._prompted = None, False  # ask again next time
            raise AuthError(
                f"Metabase at {base} refused the login for {username}"
                f"{': ' + text if text else ''}. Check the user name ({ENV_EMAIL}) and the "
                f"password ({ENV_PASSWORD}), then log in again; ten failures in an hour "
                "lock the account."
            )
        self._checked("POST", f"{base}/api/session", response, False)
        raise ResponseError(
            f"Metabase at {base} answered the login with {response.status_code} instead of 200.",
            status=response.status_code,
            url=response.url,
        )

    # -- transport ------------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        base = self.settings.url
        if path.startswith(("http://", "https://")):
            if not path.startswith(f"{base}/"):
                raise ValueError(f"{path!r} is not on {base}; the session token stays there.")
            return path
        return f"{base}/{path.lstrip('/')}"

    def _request_timeout(self, timeout: float | tuple[float, float] | None) -> tuple[float, float]:
        if timeout is None:
            return self._timeout
        if isinstance(timeout, tuple):
            return (float(timeout[0]), float(timeout[1]))
        return (min(self._timeout[0], float(timeout)), float(timeout))

    def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        data: Any = None,
        params: Mapping[str, Any] | None = None,
        stream: bool = False,
        timeout: tuple[float, float] | None = None,
    ) -> requests.Response:
        """One request through the pooled session; transport failures become ResponseError.

        Exceptions are raised ``from None``: a requests exception keeps the prepared
        request, whose headers hold the token.
        """
        try:
            return self._http.request(
                method,
                url,
                headers=headers,
                data=data,
                params=params,
                stream=stream,
                timeout=timeout or self._timeout,
                allow_redirects=False,
            )
        except requests.exceptions.RequestException as exc:
            message = self._transport_message(exc, url, (timeout or self._timeout)[1])
        raise ResponseError(message, url=url) from None

    def _transport_message(self, exc: BaseException, url: str, read_timeout: float) -> str:
        """A short, secret-free sentence for a request that got no (complete) answer."""
        base = self.settings.url
        # Once urllib3 gives up retrying, requests reports every cause as a ConnectionError
        # wrapping MaxRetryError; the real cause is its ``reason``.
        cause = getattr(exc.args[0], "reason", None) if exc.args else None
        if isinstance(exc, requests.exceptions.ReadTimeout) or isinstance(
            cause, urllib3.exceptions.ReadTimeoutError
        ):
            return (
                f"Metabase at {base} did not answer within {read_timeout:g} s — "
                "try again, or raise the timeout."
            )
        if isinstance(exc, requests.exceptions.ChunkedEncodingError):
            return f"The answer from {url} ended early (the connection was closed) — try again."
        if isinstance(cause, urllib3.exceptions.ProtocolError):
            return f"The connection to {base} was dropped before it answered — try again."
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return f"Could not connect to {base} (timed out) — check the URL and your network."
        if isinstance(exc, requests.exceptions.ConnectionError):
            return (
                f"Could not connect to {base} ({_transport_reason(exc)}) — "
                "check the URL and your network."
            )
        return f"The request to {url} failed ({type(exc).__name__}) — try again."

    def _checked(
        self, method: str, url: str, response: requests.Response, stream: bool
    ) -> requests.Response:
        """Return a 2xx response; map anything else to the error tree."""
        status = response.status_code
        if 200 <= status < 300:
            return response
        body = _error_body(response, stream)
        content_type = response.headers.get("Content-Type", "")
        reason = response.reason or ""
        path = url[len(self.settings.url) :] or "/"
        base = self.settings.url
        if 300 <= status < 400:
            location = response.headers.get("Location", "?")
            raise ResponseError(
                f"{url} redirected ({status}) to {location}. Set the Metabase URL to the "
                "address it moved to (the session token is not sent on redirects).",
                status=status,
                url=url,
            )
        text = error_text(content_type, body)
        if text is None:
            title = _html_title(body)
            kind = "an HTML page, probably a proxy" if title or body.strip() else "an empty body"
            advice = "try again in a minute" if status >= 500 else f"check the URL {base}"
            raise ResponseError(
                f"The server at {base} answered {status} {reason} ({kind}) — {advice}.",
                status=status,
                url=url,
            )
        if status == 403:
            raise AccessDenied(f"Metabase at {base} denied {method} {path}: {text}")
        if status == 404:
            raise NotFound(f"Metabase at {base} found nothing at {path}: {text}")
        advice = " — try again in a minute" if status in RETRY_STATUSES else ""
        raise ResponseError(
            f"Metabase at {base} answered {status} {reason} to {method} {path}: {text}{advice}",
            status=status,
            url=url,
        )


def _error_body(response: requests.Response, stream: bool) -> bytes:
    """Up to 64 KiB of an error body; a body that cannot be read counts as empty."""
    try:
        if not stream:
            return response.content[:_ERROR_BODY_LIMIT]
        return next(response.iter_content(_ERROR_BODY_LIMIT), b"")
    except requests.exceptions.RequestException:
        return b""
    finally:
        response.close()


def _discard(response: requests.Response) -> None:
    """Drop a response we will not use, returning its connection to the pool."""
    with contextlib.suppress(requests.exceptions.RequestException):
        response.content  # noqa: B018 - read the (small) body so the connection is reusable
    response.close()
