"""Every error and warning massive-magic raises.

Messages say what happened and what to do next. None of them ever contains a
password or a session token.

What to do next is data, not prose: an error carries ``next_steps``, a tuple of
:class:`NextStep` (a :class:`Step` and the names it concerns), and each edge words
them itself. ``str(exc)`` is the Python API's wording (:data:`PYTHON_WORDS`); the
magics, the CLI and the picker render the same steps with their own tables through
:func:`render`, so no edge rewrites another's sentences.

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
     ├── ParameterError (ValueError) an unknown parameter name or a value that cannot fit
     └── SnapshotError               a recorded card result cannot be given back (.reason)

    MassiveWarning (UserWarning)
     ├── IncompleteResultWarning     a result stopped at a server-side row cap
     ├── UnknownTypeWarning          a column type without a conversion; kept as object
     ├── CacheWarning                the token cache could not be read or written
     └── SnapshotWarning             a replayed snapshot may differ from Metabase's answer now
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

__all__ = [
    "PYTHON_WORDS",
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
    "NextStep",
    "NotFound",
    "ParameterError",
    "QueryFailed",
    "ResponseError",
    "SnapshotError",
    "SnapshotWarning",
    "Step",
    "UnknownTypeWarning",
    "render",
]


class Step(str, Enum):
    """Something the user can do next; each edge (Python, magics, CLI, picker) words it."""

    LIST_CARDS = "list_cards"  # see which cards this user can read
    SHOW_PARAMETERS = "show_parameters"  # see a card's parameters (ref)
    GIVE_PARAMETER = "give_parameter"  # give a value for the parameters in names
    REFRESH = "refresh"  # re-read the card's declarations / bypass the result cache
    READ_DASHBOARD = "read_dashboard"  # read the whole dashboard instead (ref)
    READ_CARD = "read_card"  # read it as a card (ref)
    LOGIN = "login"  # log in again (explicitly)
    SET_USER = "set_user"  # name the login e-mail
    SET_PASSWORD = "set_password"  # provide the password (names: the env variable)
    USE_API_KEY = "use_api_key"  # an API key avoids logins (names: the env variable)
    SET_API_KEY = "set_api_key"  # the API key was refused: provide a current one (names)
    RAISE_TIMEOUT = "raise_timeout"  # allow a card more time
    WAIT_THEN_LOGIN = "wait_then_login"  # wait out a lockout, then log in once
    USE_HTTPS = "use_https"  # use an https:// URL (or opt in to http)
    CONNECT_SERVER = "connect_server"  # connect to the server a URL names (names: its origin)
    INSTALL_EXTRA = "install_extra"  # install an optional extra (names: the extra)
    SET_CACHE_DIR = "set_cache_dir"  # point the session cache at a private directory (names)
    RECORD_SNAPSHOT = "record_snapshot"  # record the snapshot (again) while online
    ALLOW_OLDER = "allow_older"  # allow older snapshots (a larger max age)
    LEAVE_REPLAY = "leave_replay"  # leave replay mode to read from Metabase
    SET_SNAPSHOT_DIR = "set_snapshot_dir"  # name the snapshot directory (names: the variable)


@dataclass(frozen=True)
class NextStep:
    """One thing to do next: which step, and the card/dashboard and names it concerns."""

    step: Step
    ref: int | str | None = None
    names: tuple[str, ...] = ()

    def words(self, table: Mapping[Step, str]) -> str:
        """This step in the words of ``table`` (``{ref}`` and ``{names}`` filled in)."""
        template = table.get(self.step, "")
        return template.format(ref=self.ref, names=", ".join(self.names)) if template else ""


#: The Python API's words for each step; ``str(exc)`` uses them.
PYTHON_WORDS: Mapping[Step, str] = {
    Step.LIST_CARDS: "Client.cards() lists the cards you can read.",
    Step.SHOW_PARAMETERS: "Client.card_info({ref}) lists the parameters.",
    Step.GIVE_PARAMETER: "Give {names} a value with params={{...}}.",
    Step.REFRESH: "Run it again with refresh=True.",
    Step.READ_DASHBOARD: "Read the whole dashboard with Client.dashboard({ref}).",
    Step.READ_CARD: "Use Client.card({ref}) for it.",
    Step.LOGIN: "Log in again with Client.login(force=True).",
    Step.SET_USER: "Pass username=... or set {names}.",
    Step.SET_PASSWORD: "Pass password=... or set {names}.",
    Step.USE_API_KEY: "Or use an API key ({names}).",
    Step.SET_API_KEY: "Set a current API key in {names}.",
    Step.RAISE_TIMEOUT: "Raise it with Client(timeout=<seconds>).",
    Step.WAIT_THEN_LOGIN: "Then call Client.login() once.",
    Step.USE_HTTPS: "Use an https:// URL, or pass allow_http=True if you must.",
    Step.CONNECT_SERVER: "Read it with a Client(url='{names}') of that server.",
    Step.INSTALL_EXTRA: "Install it with pip install 'massive-magic[{names}]'.",
    Step.SET_CACHE_DIR: "Pass cache_dir=... or set {names} to a directory only you can write.",
    Step.RECORD_SNAPSHOT: "Record it with snapshot_mode='record' (or 'auto') while online.",
    Step.ALLOW_OLDER: "Or allow older snapshots with snapshot_max_age=... (e.g. '30d').",
    Step.LEAVE_REPLAY: "Read from Metabase with snapshot_mode='auto' (or 'record', 'off').",
    Step.SET_SNAPSHOT_DIR: "Pass snapshots=DIR or set {names}.",
}


def render(exc: BaseException, table: Mapping[Step, str]) -> str:
    """``exc``'s message followed by its next steps in the words of ``table``."""
    if not isinstance(exc, MassiveError):
        return str(exc)
    steps = [words for step in exc.next_steps if (words := step.words(table))]
    message = exc.message.rstrip()
    if steps and message and message[-1] not in ".!?)":
        message += "."  # server text ends a sentence, never runs into the advice
    return " ".join([message, *steps]) if message else " ".join(steps)


class MassiveError(Exception):
    """Base of every error raised by massive-magic.

    ``message`` says what happened (no edge-specific advice in it); ``next_steps``
    say what to do, as data. ``str(exc)`` joins them in the Python API's words.
    """

    def __init__(self, message: str = "", *, next_steps: Sequence[NextStep] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.next_steps: tuple[NextStep, ...] = tuple(next_steps)

    def __str__(self) -> str:
        return render(self, PYTHON_WORDS)


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

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        next_steps: Sequence[NextStep] = (),
    ) -> None:
        super().__init__(message, next_steps=next_steps)
        self.retry_after = retry_after


class ResponseError(MassiveError):
    """An answer that Metabase itself would not send.

    A proxy's HTML error page, a body that is not valid JSON or ends early, or an
    unexpected 5xx after the retries ran out.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        url: str | None = None,
        next_steps: Sequence[NextStep] = (),
    ) -> None:
        super().__init__(message, next_steps=next_steps)
        self.status = status
        self.url = url


class NotFound(MassiveError):
    """Metabase answered 404 Not found."""


class CardNotFound(NotFound):
    """No card with this id exists, or it is not visible to this user."""

    def __init__(
        self, message: str, *, card_id: int | None = None, next_steps: Sequence[NextStep] = ()
    ) -> None:
        super().__init__(message, next_steps=next_steps)
        self.card_id = card_id


class DashboardNotFound(NotFound):
    """No dashboard with this id exists."""

    def __init__(
        self, message: str, *, dashboard_id: int | None = None, next_steps: Sequence[NextStep] = ()
    ) -> None:
        super().__init__(message, next_steps=next_steps)
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
        next_steps: Sequence[NextStep] = (),
    ) -> None:
        super().__init__(message, next_steps=next_steps)
        self.error = error
        self.error_type = error_type
        self.card_id = card_id
        self.details = details or {}


class BadCardRef(MassiveError, ValueError):
    """A card or dashboard reference that cannot be turned into an id."""


class ParameterError(MassiveError, ValueError):
    """A parameter name the card does not declare, or a value that cannot fit its type."""


class SnapshotError(MassiveError):
    """A recorded card result (snapshot) cannot be given back.

    ``reason`` is ``"missing"`` (no snapshot matches exactly), ``"expired"`` (older
    than the allowed age), ``"corrupt"`` (truncated, edited or unreadable files) or
    ``"unsupported"`` (a frame that a snapshot could not give back exactly, so none
    was written) or ``"replay"`` (replay mode was asked for something only the server
    has: a refresh, the card list). ``path`` is the snapshot's manifest or directory, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        reason: str = "missing",
        path: str | None = None,
        next_steps: Sequence[NextStep] = (),
    ) -> None:
        super().__init__(message, next_steps=next_steps)
        self.reason = reason
        self.path = path


class MassiveWarning(UserWarning):
    """Base of every warning issued by massive-magic."""


class IncompleteResultWarning(MassiveWarning):
    """The result reached a server-side row cap and may be missing rows."""


class UnknownTypeWarning(MassiveWarning):
    """A column has a Metabase type without a conversion; its values are kept as objects."""


class CacheWarning(MassiveWarning):
    """The token cache could not be read or written; the client carries on without it."""


class SnapshotWarning(MassiveWarning):
    """A replayed snapshot may differ from what Metabase would answer now.

    The card was edited in Metabase after the snapshot was recorded, or the read
    used relative dates (``past30days``), which were resolved when it was recorded.
    """
