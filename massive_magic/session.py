"""HTTP transport: one ``requests.Session``, retries, and "401 -> renew once -> resend once".

Every call to Metabase goes through :meth:`MetabaseSession.request`. Who the
request is sent as is the business of an :mod:`~massive_magic.auth` scheme (a
:mod:`~massive_magic.login` session or an API key); the transport only runs the
sequence, with a hard cap (after httpx's ``Auth.auth_flow``)::

    headers = auth.headers()            # memory, a fresh cached session, or one login
    send(request, headers)
    401?  -> headers = auth.renew()     # another kernel's session, else one login
          -> send(request, headers) once more
    401?  -> auth.rejected()            # an AuthError: never a loop

Why so careful: Metabase locks a user out after ten failed logins in an hour and
every further attempt extends the lock (``metabase-api.md`` §1.5), and a session
lives 14 days from its creation (§2.1); see :mod:`~massive_magic.auth` and
:mod:`~massive_magic.throttle`.

Transport rules:

- No cookies, ever: Metabase lets its ``metabase.SESSION`` cookie override the
  ``X-Metabase-Session`` header (§3.1), so the jar rejects every cookie.
- No redirects: a redirect to another host would carry the token header along
  (requests only strips ``Authorization``); a 3xx is reported instead.
- Explicit timeouts (short connect, long read) on every request, and the read
  timeout is also a deadline for each whole answer: a request that is not streamed
  is sent streamed and its body read here in pieces, each read waiting at most
  until the deadline (counted from the send, retries included); past it the
  connection is closed and a :class:`ResponseError` raised. A server dripping a
  byte at a time can no longer hold a call for longer (a streamed body is its
  reader's business: :mod:`~massive_magic.reader` keeps one deadline per card read).
- Bounded retries with backoff by urllib3's ``Retry`` on the adapter, only for what
  cannot have started work on the server: connection errors (nothing was sent) and
  gateway answers (502/503/504, before any body). A request that reached the
  server and got no answer, a read timeout included, is never sent again: Metabase
  would run the query twice. The login POST (its own adapter) is never repeated
  after it reached the server, not even after a gateway answer.
- Secrets are never in a repr, a log line, a warning, an exception or a traceback's
  local variables (:class:`~massive_magic.auth.Secret`); server text is scrubbed of
  them in :mod:`~massive_magic.answers`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
import warnings
import zlib
from collections.abc import Callable, Mapping
from http.cookiejar import DefaultCookiePolicy
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version
from typing import Any
from urllib.parse import urlsplit

import orjson
import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from .answers import RETRY_STATUSES, error_text, raise_for_answer, read_json, transport_message
from .auth import ApiKeyAuth, Auth, SessionInfo
from .errors import MassiveWarning, NextStep, ResponseError, Step
from .login import SessionLogin
from .secret import Secret
from .settings import Settings, is_loopback
from .throttle import THROTTLE_FALLBACK, is_throttle_message, throttle_wait, throttled_until
from .token_store import TokenStore

__all__ = [
    "RETRY_STATUSES",
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

#: The most one read of a body asks for (the pieces of a non-streamed answer).
_PIECE = 256 * 1024
#: The shortest wait for the body once the deadline is near (or passed during retries):
#: a body already on its way is still read; a dripping one is cut here.
_LAST_WAIT = 0.05

#: Methods repeated after a gateway answer or a connection error. Every POST this client
#: sends outside ``/api/session`` is a card or dashboard *query*, which is read-only.
_REPEATABLE = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "POST"})


def _user_agent() -> str:
    try:
        return f"massive-magic/{_dist_version('massive-magic')}"
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "massive-magic"


def _json_default(value: Any) -> Any:
    from decimal import Decimal

    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot send a {type(value).__name__} to Metabase as JSON")


class _RejectAllCookies(DefaultCookiePolicy):
    """Keep no cookie and send none: a stale ``metabase.SESSION`` would beat the header."""

    def set_ok(self, cookie: Any, request: Any) -> bool:
        return False

    def return_ok(self, cookie: Any, request: Any) -> bool:
        return False


def _wire(headers: Mapping[str, str | Secret]) -> dict[str, str]:
    """The headers as sent: secrets revealed here, inside the call that sends them."""
    return {k: v.reveal() if isinstance(v, Secret) else v for k, v in headers.items()}


def _retry(retries: int, backoff_factor: float, *, login: bool) -> Retry:
    """Connection errors always; gateway answers for data requests, never for the login."""
    return Retry(
        total=retries,
        connect=retries,  # nothing reached the server: safe even for the login
        read=0,  # it reached the server: a query would run twice
        status=0 if login else retries,
        other=0,
        allowed_methods=frozenset({"GET", "HEAD"}) if login else _REPEATABLE,
        status_forcelist=() if login else RETRY_STATUSES,
        backoff_factor=backoff_factor,
        backoff_max=10.0,
        raise_on_status=False,
        raise_on_redirect=False,
        respect_retry_after_header=not login,
        retry_after_max=30,
    )


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
        self.auth: Auth = (
            ApiKeyAuth(settings, clock)
            if settings.api_key
            else SessionLogin(settings, self.store, clock, password_prompt)
        )
        self._timeout = (settings.connect_timeout, settings.read_timeout)
        self._http = self._make_http(retries, backoff_factor)
        parts = urlsplit(settings.url)
        if parts.scheme == "http" and not is_loopback(parts.hostname or ""):
            warnings.warn(
                f"{settings.url} is plain http:// to another machine (allowed by allow_http): "
                "the password and the session cross the network in clear text.",
                MassiveWarning,
                stacklevel=2,
            )

    def _make_http(self, retries: int, backoff_factor: float) -> requests.Session:
        http = requests.Session()
        http.cookies.set_policy(_RejectAllCookies())
        http.headers["User-Agent"] = _user_agent()
        base = self.settings.url
        data = HTTPAdapter(max_retries=_retry(retries, backoff_factor, login=False))
        login = HTTPAdapter(max_retries=_retry(retries, backoff_factor, login=True))
        http.mount(f"{base}/", data)
        http.mount(f"{base}/api/session", login)
        return http

    # -- public surface -------------------------------------------------------------------

    def __repr__(self) -> str:
        state = "active" if self.auth.info is not None else "not logged in"
        return (
            f"<MetabaseSession url={self.settings.url!r} user={self.settings.username!r} "
            f"auth={self.auth.kind} {state}>"
        )

    def __enter__(self) -> MetabaseSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def info(self) -> SessionInfo | None:
        """The session in use (no token in it), or ``None`` before the first login."""
        return self.auth.info

    @property
    def _current(self) -> Any:
        """The session scheme's current session (for tests that must see the token)."""
        return getattr(self.auth, "_current", None)

    def login(self, force: bool = False) -> SessionInfo:
        """Make sure the credentials work; reuse a fresh cached session unless ``force``.

        An explicit call may log in again after a refused login (the automatic
        path never does). With an API key there is no login: the key is checked
        with ``GET /api/user/current``.
        """
        return self.auth.login(self, force)

    def logout(self) -> None:
        """End the session on the server (``DELETE /api/session``) and forget it here.

        An already expired or unknown session (404/401) is fine. A remembered
        login lockout survives the logout, so it still protects the account.
        """
        self.auth.logout(self)

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
    ) -> requests.Response:
        """Send one authenticated request; a 2xx response, or a MassiveError.

        ``path`` is ``/api/...`` (or a full URL on this server). ``json`` is sent
        with orjson; ``data`` as a form or raw body. With ``stream=True`` the caller
        reads (and closes) the body of the returned response.
        """
        method = method.upper()
        url = self._url(path)
        headers: dict[str, str | Secret] = {}
        if json is not None:
            data = orjson.dumps(json, default=_json_default, option=orjson.OPT_SERIALIZE_NUMPY)
            headers["Content-Type"] = "application/json"
        auth = self.auth
        sent = auth.headers(self)
        response = self.send(method, url, {**headers, **sent}, data, params, stream)
        if response.status_code == 401:
            self.discard(response)
            log.debug("401 from %s %s", method, path)
            sent = auth.renew(self, sent)
            response = self.send(method, url, {**headers, **sent}, data, params, stream)
            if response.status_code == 401:
                self.discard(response)
                raise auth.rejected()
        return self.checked(method, url, response, tuple(sent.values()), stream=stream)

    # -- transport (also what an auth scheme sends through) ------------------------------------

    def _url(self, path: str) -> str:
        base = self.settings.url
        if path.startswith(("http://", "https://")):
            if not path.startswith(f"{base}/"):
                raise ValueError(f"{path!r} is not on {base}; the session token stays there.")
            return path
        return f"{base}/{path.lstrip('/')}"

    def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str | Secret],
        data: Any = None,
        params: Mapping[str, Any] | None = None,
        stream: bool = False,
    ) -> requests.Response:
        """One request through the pooled session; transport failures become ResponseError.

        Unless ``stream``, the whole answer (headers and body) arrives within the read
        timeout, counted from here, or the connection is closed and a ResponseError
        raised; the body is then in ``response.content`` as usual.

        The error is raised after the ``except`` block, so it has no context: a
        requests exception keeps the prepared request, whose headers hold the token.
        """
        timeout = self._timeout[1]
        deadline = time.monotonic() + timeout
        try:
            response = self._http.request(
                method,
                url,
                headers=_wire(headers),
                data=data,
                params=params,
                stream=True,
                timeout=self._timeout,
                allow_redirects=False,
            )
        except requests.exceptions.RequestException as exc:
            message, steps = transport_message(exc, url, self.settings.url, timeout)
        else:
            if not stream:
                _read_whole(response, deadline, timeout)
            return response
        raise ResponseError(message, url=url, next_steps=steps)

    def checked(
        self,
        method: str,
        url: str,
        response: requests.Response,
        secrets: tuple[Secret, ...] = (),
        *,
        stream: bool = False,
    ) -> requests.Response:
        """Return a 2xx response; map anything else to the error tree, scrubbed of secrets."""
        if 200 <= response.status_code < 300:
            return response
        raise_for_answer(
            method,
            url,
            self.settings.url,
            response,
            stream=stream,
            secrets=(*secrets, *self.auth.secrets()),
        )

    @staticmethod
    def discard(response: requests.Response) -> None:
        """Drop a response we will not use, returning its connection to the pool."""
        with contextlib.suppress(requests.exceptions.RequestException):
            response.content  # noqa: B018 - read the (small) body so the connection is reusable
        response.close()


# -- a whole answer within its deadline --------------------------------------------------------


def _read_whole(response: requests.Response, deadline: float, timeout: float) -> None:
    """Read the body into ``response.content`` by the deadline, or hang up and raise.

    ``read1`` returns what one socket read brought, so the deadline is checked between
    pieces, and before each read the socket waits at most until the deadline. The
    pieces are read as sent and decoded at the end: urllib3's decoding ``read1`` keeps
    reading until the decoder yields a byte, which a dripped gzip body delays at will.
    No thread; the cost over requests' own ``content`` is a ``settimeout`` per piece.
    A body cut short (or undecodable) is an error for a 2xx answer and an empty body
    for any other, which is then reported by its status. Errors are raised outside the
    ``except`` blocks: no urllib3 exception rides along as their context.
    """
    raw = response.raw
    pieces: list[bytes] = []
    too_slow = cut = False
    try:
        while True:
            # The connection until the body is in; then back in the pool (or closed),
            # and another thread's: its socket is not ours to touch any more.
            sock = getattr(getattr(raw, "connection", None), "sock", None)
            if sock is not None:
                sock.settimeout(min(timeout, max(deadline - time.monotonic(), _LAST_WAIT)))
            piece = raw.read1(_PIECE, decode_content=False)
            if not piece:
                break
            pieces.append(piece)
            if not raw.closed and time.monotonic() >= deadline:
                too_slow = True
                break
        body = _decoded(b"".join(pieces), response.headers.get("Content-Encoding", ""))
    except (TimeoutError, urllib3.exceptions.ReadTimeoutError):
        too_slow = True
    except (urllib3.exceptions.HTTPError, OSError, zlib.error):
        cut = True
    if too_slow or cut:
        response.close()  # hang up: the server sees the client leave
        body = b""
    if too_slow:
        raise ResponseError(
            f"The answer from {response.url} did not finish within the timeout of "
            f"{timeout:g} s; the connection was closed.",
            status=response.status_code,
            url=response.url,
            next_steps=(NextStep(Step.RAISE_TIMEOUT),),
        )
    if cut and 200 <= response.status_code < 300:
        raise ResponseError(
            f"The answer from {response.url} ended early (the connection was closed) — try again.",
            status=response.status_code,
            url=response.url,
        )
    response._content = body
    response._content_consumed = True  # type: ignore[attr-defined]


def _decoded(body: bytes, encoding: str) -> bytes:
    """``body`` without its ``Content-Encoding``: gzip here (what Metabase sends), any
    other through urllib3's own decoders (a response object over the bytes)."""
    encoding = encoding.strip().lower()
    if not encoding or encoding == "identity" or not body:
        return body
    if encoding in ("gzip", "x-gzip"):
        out = []
        while body:  # one member after another, like urllib3's GzipDecoder
            inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out.append(inflate.decompress(body))
            out.append(inflate.flush())
            if not inflate.eof:
                raise zlib.error("the gzip body ends early")
            body = inflate.unused_data
        return b"".join(out)
    whole = urllib3.HTTPResponse(
        body=io.BytesIO(body),
        headers={"Content-Encoding": encoding},
        preload_content=False,
        decode_content=True,
    )
    return whole.read()
