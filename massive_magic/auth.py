"""The interface every authentication scheme offers the transport (and the API-key scheme).

Two schemes share one small interface (after httpx's ``Auth``), so the transport
in :mod:`~massive_magic.session` never asks which one it holds:

- :class:`~massive_magic.login.SessionLogin`: ``POST /api/session`` with a user name
  and password, the session shared with other kernels through the token cache,
  renewed once after a 401;
- :class:`ApiKeyAuth`: ``X-API-Key`` on every request; nothing to renew.

Interface: :meth:`~Auth.headers` for a request, :meth:`~Auth.renew` once after a
401 (or raise), :meth:`~Auth.rejected` for a second 401, :attr:`~Auth.info` (who is
logged in), :meth:`~Auth.login`, :meth:`~Auth.logout` and :meth:`~Auth.secrets`
(what to scrub from server text).

Secrets (the password, tokens, the key) are held in :class:`Secret`, whose repr is
``<hidden>``: a traceback that shows local variables shows no secret. The value is
taken out only where the header or login body is built, inside the call that sends it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from .answers import read_json
from .errors import AuthError, NextStep, Step
from .secret import Secret
from .settings import ENV_API_KEY, Settings
from .throttle import utc

__all__ = ["API_KEY_HEADER", "ME", "ApiKeyAuth", "Auth", "Headers", "SessionInfo", "Transport"]

API_KEY_HEADER = "X-API-Key"
ME = "/api/user/current"


Headers = dict[str, Secret]


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


class Transport(Protocol):
    """What a scheme needs from the session: send once, and map a non-2xx answer."""

    def send(
        self, method: str, url: str, headers: Mapping[str, str | Secret], data: Any = None
    ) -> Any: ...

    def checked(
        self, method: str, url: str, response: Any, secrets: tuple[Secret, ...] = ()
    ) -> Any: ...

    def discard(self, response: Any) -> None: ...


class Auth(Protocol):
    """One way to authenticate; :class:`MetabaseSession` holds exactly one."""

    @property
    def kind(self) -> Literal["session", "api_key"]: ...

    @property
    def info(self) -> SessionInfo | None: ...

    def headers(self, transport: Transport) -> Headers: ...

    def renew(self, transport: Transport, sent: Headers) -> Headers: ...

    def rejected(self) -> AuthError: ...

    def login(self, transport: Transport, force: bool) -> SessionInfo: ...

    def logout(self, transport: Transport) -> None: ...

    def secrets(self) -> tuple[Secret, ...]: ...


# -- API keys ------------------------------------------------------------------------------------


class ApiKeyAuth:
    """``X-API-Key`` on every request: no login, no expiry, no lockout (§3.2)."""

    kind: Literal["api_key"] = "api_key"

    def __init__(self, settings: Settings, clock: Callable[[], float]) -> None:
        assert settings.api_key
        self.settings = settings
        self._key = Secret(settings.api_key)
        self._clock = clock
        self._info: SessionInfo | None = None

    @property
    def info(self) -> SessionInfo | None:
        return self._info

    def headers(self, transport: Transport) -> Headers:
        return {API_KEY_HEADER: self._key}

    def renew(self, transport: Transport, sent: Headers) -> Headers:
        """A key is not renewed: a 401 means it was deleted or regenerated."""
        raise self.rejected()

    def rejected(self) -> AuthError:
        return AuthError(
            f"Metabase at {self.settings.url} refused the API key (401); it may have been "
            "deleted or regenerated.",
            next_steps=(NextStep(Step.SET_API_KEY, names=(ENV_API_KEY,)),),
        )

    def login(self, transport: Transport, force: bool) -> SessionInfo:
        """Check the key with ``GET /api/user/current`` and learn whose it is."""
        url = f"{self.settings.url}{ME}"
        response = transport.send("GET", url, self.headers(transport))
        if response.status_code == 401:
            transport.discard(response)
            self.renew(transport, {})
        user = read_json(transport.checked("GET", url, response, self.secrets()))
        email = user.get("email") if isinstance(user, dict) else None
        self._info = SessionInfo(
            url=self.settings.url,
            username=email if isinstance(email, str) else self.settings.username,
            created_at=utc(self._clock()),
            expires_at=None,
            reused=False,
            auth="api_key",
        )
        return self._info

    def logout(self, transport: Transport) -> None:
        self._info = None

    def secrets(self) -> tuple[Secret, ...]:
        return (self._key,)
