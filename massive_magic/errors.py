"""Every error and warning massive-magic raises.

Messages say what happened and what to do next. None of them ever contains a
password or a session token.

    MassiveError
     ├── ConfigError                 missing or invalid setting (URL, credentials, options)
     ├── AuthError                   login refused, session rejected, no password available
     │    └── LoginThrottled         Metabase's login lockout; .retry_after seconds or None
     ├── ResponseError               an answer Metabase would not send: proxy HTML page,
     │                               invalid or truncated JSON, 5xx after retries
     ├── NotFound                    404 from Metabase
     │    ├── CardNotFound           ... for a card
     │    └── DashboardNotFound      ... for a dashboard
     ├── AccessDenied                403: the user may not read this card or dashboard
     ├── QueryFailed                 Metabase ran the query and it failed ("status": "failed");
     │                               .error (Metabase's text) and .error_type
     ├── BadCardRef (ValueError)     a card/dashboard reference that cannot be parsed
     └── ParameterError (ValueError) an unknown parameter name or a value that cannot fit

    MassiveWarning (UserWarning)
     ├── IncompleteResultWarning     a result stopped at a server-side row cap
     ├── UnknownTypeWarning          a column type without a conversion; kept as object
     └── CacheWarning                the token cache could not be read or written
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AccessDenied",
    "AuthError",
    "BadCardRef",
    "CacheWarning",
    "CardNotFound",
    "ConfigError",
    "DashboardNotFound",
    "IncompleteResultWarning",
    "LoginThrottled",
    "MassiveError",
    "MassiveWarning",
    "NotFound",
    "ParameterError",
    "QueryFailed",
    "ResponseError",
    "UnknownTypeWarning",
]


class MassiveError(Exception):
    """Base of every error raised by massive-magic."""


class ConfigError(MassiveError):
    """A setting is missing or invalid (server URL, credentials, an option)."""


class AuthError(MassiveError):
    """Metabase refused the credentials or the session, or no credentials are available."""


class LoginThrottled(AuthError):
    """Metabase's login lockout is active for this user.

    ``retry_after`` is the wait the server named, in seconds, or ``None`` when it
    only said "try again later". Metabase keeps the lock until a full hour passes
    without attempts, so every extra try makes it longer.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ResponseError(MassiveError):
    """An answer that Metabase itself would not send.

    A proxy's HTML error page, a body that is not valid JSON or ends early, or an
    unexpected 5xx after the retries ran out.
    """

    def __init__(self, message: str, *, status: int | None = None, url: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.url = url


class NotFound(MassiveError):
    """Metabase answered 404 Not found."""


class CardNotFound(NotFound):
    """No card with this id exists, or it is not visible to this user."""

    def __init__(self, message: str, *, card_id: int | None = None) -> None:
        super().__init__(message)
        self.card_id = card_id


class DashboardNotFound(NotFound):
    """No dashboard with this id exists."""

    def __init__(self, message: str, *, dashboard_id: int | None = None) -> None:
        super().__init__(message)
        self.dashboard_id = dashboard_id


class AccessDenied(MassiveError):
    """Metabase answered 403: this user may not read the card or dashboard."""


class QueryFailed(MassiveError):
    """Metabase ran the query and it failed.

    ``error`` is Metabase's own message and ``error_type`` its classification
    (``invalid-query``, ``missing-required-parameter``, ``invalid-parameter``, ...).
    """

    def __init__(
        self,
        message: str,
        *,
        error: str | None = None,
        error_type: str | None = None,
        card_id: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.error = error
        self.error_type = error_type
        self.card_id = card_id
        self.details = details or {}


class BadCardRef(MassiveError, ValueError):
    """A card or dashboard reference that cannot be turned into an id."""


class ParameterError(MassiveError, ValueError):
    """A parameter name the card does not declare, or a value that cannot fit its type."""


class MassiveWarning(UserWarning):
    """Base of every warning issued by massive-magic."""


class IncompleteResultWarning(MassiveWarning):
    """The result reached a server-side row cap and may be missing rows."""


class UnknownTypeWarning(MassiveWarning):
    """A column has a Metabase type without a conversion; its values are kept as objects."""


class CacheWarning(MassiveWarning):
    """The token cache could not be read or written; the client carries on without it."""
