"""``massive_magic.Client``: Massive's Metabase cards as typed pandas DataFrames.

::

    from massive_magic import Client

    with Client() as mb:                       # URL and credentials from the environment
        df = mb.card(484, params={"Day": ("2026-01-01", "2026-01-31")})
        frames = mb.dashboard("https://…/dashboard/3-overview")

Constructing a Client sends nothing; the first call logs in (or reuses a cached
session). A card's parameter declarations are fetched once per Client, so a loop
over many parameter values costs one request per run.
"""

from __future__ import annotations

import operator
import os
import threading
import warnings
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import TYPE_CHECKING, Any

from .card_answers import QueryTarget
from .errors import AuthError, ConfigError, MassiveError, MassiveWarning
from .metadata import (
    DashboardResult,
    card_summary,
    cards_frame,
    dashboard_cards,
    fetch_card,
    fetch_dashboard,
    list_cards,
)
from .outputs import output_kind
from .parameters import build_parameters
from .progress import CardsProgress
from .reader import CardReader, run_query
from .refs import card_id, dashboard_id
from .settings import Settings

if TYPE_CHECKING:
    import pandas as pd

    from .session import MetabaseSession, SessionInfo

__all__ = ["Client", "DashboardResult"]


class Client:
    """A connection to one Metabase as one user (or API key).

    Arguments left out come from the environment (``MASSIVE_METABASE_URL``,
    ``MASSIVE_METABASE_EMAIL``, ``MASSIVE_METABASE_PASSWORD``,
    ``MASSIVE_METABASE_API_KEY``). ``progress=False`` hides the progress bar that
    fetches longer than a second show. ``password_prompt`` is called for a password
    when one is needed and none was given.
    """

    def __init__(
        self,
        url: str | None = None,
        username: str | None = None,
        password: str | None = None,
        *,
        api_key: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        timeout: float | tuple[float, float] | None = None,
        progress: bool = True,
        password_prompt: Callable[[str], str] | None = None,
        allow_http: bool | None = None,
    ) -> None:
        settings = Settings.resolve(
            url,
            username,
            password,
            api_key=api_key,
            cache_dir=cache_dir,
            timeout=timeout,
            allow_http=allow_http,
        )
        self._setup(settings, progress, password_prompt)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        progress: bool = True,
        password_prompt: Callable[[str], str] | None = None,
    ) -> Client:
        """A Client on exactly ``settings``: nothing is read from the environment.

        For callers that resolved the settings themselves (the magics: option >
        traitlet > environment), so a variable in the environment cannot override
        a value they chose to leave out (e.g. an API key beside the sandbox's
        demo password).
        """
        client = cls.__new__(cls)
        client._setup(settings, progress, password_prompt)
        return client

    def _setup(
        self,
        settings: Settings,
        progress: bool,
        password_prompt: Callable[[str], str] | None,
    ) -> None:
        self.settings = settings
        self.progress = progress
        self._password_prompt = password_prompt
        self._session: MetabaseSession | None = None
        self._lock = threading.RLock()
        self._cards: dict[int, dict[str, Any]] = {}  # GET /api/card/:id, per card
        self._names: dict[int, str] = {}  # card names seen anywhere, for provenance

    # -- identity & session ---------------------------------------------------

    @property
    def url(self) -> str:
        return self.settings.url

    @property
    def username(self) -> str | None:
        return self.settings.username

    @property
    def session(self) -> MetabaseSession:
        """The one :class:`MetabaseSession` (created on first use, without a request)."""
        with self._lock:
            if self._session is None:
                from .session import MetabaseSession

                self._session = MetabaseSession(
                    self.settings, password_prompt=self._password_prompt
                )
            return self._session

    def login(self, force: bool = False) -> SessionInfo:
        """Log in now (or reuse a cached session); ``force=True`` always logs in anew."""
        return self.session.login(force=force)

    def logout(self) -> None:
        """End the session on the server and forget the cached token."""
        self.session.logout()

    def close(self) -> None:
        """Release the connection pool; the cached session stays for the next Client."""
        with self._lock:
            session, self._session = self._session, None
        if session is not None:
            session.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        who = f"user={self.username!r}" if self.username else "auth='api key'"
        if not self.username and not self.settings.api_key:
            who = "user=None"
        return f"Client(url={self.url!r}, {who})"

    # -- cards ----------------------------------------------------------------

    def card(
        self,
        ref: int | str,
        params: Mapping[str, Any] | None = None,
        *,
        limit: int | None = None,
        refresh: bool = False,
        output: str = "pandas",
    ) -> Any:
        """The complete result of card ``ref`` as a typed DataFrame (or ``output``).

        ``ref``: 484, ``"484-daily-earnings"`` or the card's URL. ``params``: values
        keyed by parameter slug or display name (dates, ``(start, end)`` ranges,
        lists, Metabase date strings such as ``"past30days"``; ``None`` = no filter).
        ``limit`` keeps the first rows only; ``refresh=True`` re-reads the card's
        parameter declarations and bypasses Metabase's result cache.

        One request in the usual case, whatever the size: the ``api`` export,
        streamed. Exports always bypass Metabase's result cache, so the query
        runs afresh each time; a ``limit`` of at most 2,000 rows uses ``/query``
        instead, which may answer from the cache (unless ``refresh=True``).

        ``df.attrs["massive"]`` records where the frame came from: url, card_id,
        name, parameters, row_count, fetched_at, elapsed, source (query/api/csv)
        and truncated. The name is fetched alongside the first query of a card
        (a concurrent ``GET /api/card/:id``, so no extra wait) and remembered;
        it is None if that lookup failed. The Client's read timeout bounds the
        whole read, not only the wait between two bytes.

        ``output="arrow"`` gives a ``pyarrow.Table`` built from the same typed
        chunks without going through pandas (provenance as JSON in the schema
        metadata key ``massive``), ``output="polars"`` a ``polars.DataFrame`` made
        from that table (no metadata; needs ``massive-magic[polars]``).
        """
        out = output_kind(output)  # before any request
        cid = card_id(ref)
        limit = _check_limit(limit)
        parameters: list[dict[str, Any]] = []
        if params is not None and not isinstance(params, Mapping):
            build_parameters([], params)  # raises ParameterError: not a mapping
        if params:
            card = self._card(cid, refresh=refresh)
            parameters = build_parameters(card.get("parameters") or [], params, owner=f"Card {cid}")
        with self._lock:
            name = self._names.get(cid)
        reader = CardReader(
            self.session,
            QueryTarget(cid),
            parameters,
            limit=limit,
            refresh=refresh,
            progress=self.progress,
            name=name,
            look_up_name=name is None,  # not part of a query answer: fetched alongside
            output=out,
        )
        try:
            return reader.read()
        finally:
            if reader.card is not None:
                self._remember(cid, reader.card)

    def card_info(self, ref: int | str) -> dict[str, Any]:
        """id, name, description, collection, type, parameters and columns of a card."""
        return card_summary(self._card(card_id(ref)))

    def cards(self) -> pd.DataFrame:
        """Every card you can read: id, name, collection, type, description."""
        found = list_cards(self.session)
        with self._lock:
            for card in found:
                if isinstance(card.get("id"), int) and isinstance(card.get("name"), str):
                    self._names[card["id"]] = card["name"]
        return cards_frame(found)

    def _card(self, cid: int, *, refresh: bool = False) -> dict[str, Any]:
        """``GET /api/card/:id``, once per card for the life of this Client."""
        with self._lock:
            cached = None if refresh else self._cards.get(cid)
        if cached is not None:
            return cached
        card = fetch_card(self.session, cid)
        self._remember(cid, card)
        return card

    def _remember(self, cid: int, card: dict[str, Any]) -> None:
        with self._lock:
            self._cards[cid] = card
            if isinstance(card.get("name"), str):
                self._names[cid] = card["name"]

    # -- dashboards -----------------------------------------------------------

    def dashboard(
        self,
        ref: int | str,
        params: Mapping[str, Any] | None = None,
        *,
        max_workers: int = 4,
        output: str = "pandas",
    ) -> DashboardResult:
        """Every card of a dashboard, fetched concurrently, keyed by card name.

        ``params`` are the dashboard's filters, by name or slug. Names repeat as
        "Name (2)". A card that fails does not lose the others: its error is kept
        in ``result.errors`` under its name and a warning names it;
        ``result.raise_errors()`` raises it. ``output`` as for :meth:`card`.
        """
        out = output_kind(output)
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise ConfigError(f"max_workers must be a positive integer, not {max_workers!r}.")
        did = dashboard_id(ref)
        dash = fetch_dashboard(self.session, did)
        parameters = build_parameters(
            dash.get("parameters") or [], params, owner=f"Dashboard {did}"
        )
        entries = dashboard_cards(dash)
        with self._lock:
            for entry in entries:
                if entry.card_name:
                    self._names.setdefault(entry.card_id, entry.card_name)
        frames: dict[str, Any] = {}
        errors: dict[str, MassiveError] = {}
        if entries:
            session = self.session
            bar = CardsProgress(self.progress, dash.get("name") or f"Dashboard {did}", len(entries))
            with (
                bar,
                ThreadPoolExecutor(
                    max_workers=min(max_workers, len(entries)), thread_name_prefix="massive-dash"
                ) as pool,
            ):
                futures = {
                    pool.submit(
                        run_query,
                        session,
                        QueryTarget(e.card_id, did, e.dashcard_id),
                        parameters,
                        progress=False,
                        name=e.card_name,
                        output=out,
                    ): e
                    for e in entries
                }
                try:
                    for future in as_completed(futures):
                        bar.done()
                        try:
                            frames[futures[future].key] = future.result()
                        except AuthError:
                            raise
                        except MassiveError as exc:
                            errors[futures[future].key] = exc
                except BaseException:
                    for other in futures:
                        other.cancel()
                    raise
            frames = {e.key: frames[e.key] for e in entries if e.key in frames}  # display order
        result = DashboardResult(frames, errors, dashboard_id=did, name=dash.get("name"))
        if errors:
            listed = "; ".join(f"{k!r}: {type(v).__name__}: {v}" for k, v in errors.items())
            warnings.warn(
                f"{len(errors)} of {len(entries)} cards of dashboard {did} failed and are "
                f"missing from the result ({listed}). The others are returned; "
                "see result.errors.",
                MassiveWarning,
                stacklevel=2,
            )
        return result


def _check_limit(limit: Any) -> int | None:
    """``limit`` as an int: any whole number (numpy's too; numpy's bools refuse
    ``operator.index``), never a bool, not negative."""
    if limit is None:
        return None
    try:
        count = None if isinstance(limit, bool) else operator.index(limit)
    except TypeError:
        count = None
    if count is None or count < 0:
        raise ConfigError(f"limit must be a whole number of rows (0 or more), not {limit!r}.")
    return count
