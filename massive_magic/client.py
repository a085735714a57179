"""``massive_magic.Client``: Massive's Metabase cards as typed pandas DataFrames.

::

    from massive_magic import Client

    with Client() as mb:                       # URL and credentials from the environment
        df = mb.card(484, params={"Day": ("2026-01-01", "2026-01-31")})
        frames = mb.dashboard("https://…/dashboard/3-overview")

Constructing a Client sends nothing; the first call logs in (or reuses a cached
session). A card's parameter declarations are fetched once per Client, so a loop
over many parameter values costs one request per run.

With ``snapshots=DIR`` every card read is recorded to DIR or replayed from it
(``snapshot_mode``: record, replay, auto; see :mod:`massive_magic.snapshot_reads`);
in replay nothing is ever sent, so no credentials are needed.
"""

from __future__ import annotations

import datetime as dt
import operator
import os
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .card_answers import QueryTarget
from .card_memory import CardMemory
from .dashboards import read_dashboard
from .errors import ConfigError
from .links import merge_params, parse_card_url, parse_dashboard_url
from .metadata import (
    DashboardResult,
    card_summary,
    cards_frame,
    dashboard_cards,
    fetch_card,
    fetch_dashboard,
    list_cards,
)
from .outputs import PANDAS, Output, output_kind
from .parameters import build_parameters
from .reader import CardReader
from .settings import Settings, resolve_snapshots
from .snapshot_keys import SnapshotMode
from .snapshot_reads import ReplayLogin, SnapshotReads

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

    ``snapshots``: a directory that card reads are recorded to and replayed from, per
    ``snapshot_mode`` (``record``, ``replay``, ``auto`` (the default with a
    directory), ``off``); ``snapshot_max_age`` (``"7d"`` or a timedelta) makes an
    older snapshot an error. Left out: ``MASSIVE_MAGIC_SNAPSHOTS``,
    ``MASSIVE_MAGIC_SNAPSHOT_MODE``, ``MASSIVE_MAGIC_SNAPSHOT_MAX_AGE``.
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
        snapshots: str | os.PathLike[str] | None = None,
        snapshot_mode: str | None = None,
        snapshot_max_age: str | dt.timedelta | None = None,
    ) -> None:
        settings = Settings.resolve(
            url,
            username,
            password,
            api_key=api_key,
            cache_dir=cache_dir,
            timeout=timeout,
            allow_http=allow_http,
            snapshots=snapshots,
            snapshot_mode=snapshot_mode,
            snapshot_max_age=snapshot_max_age,
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
        self._memory = CardMemory()  # card JSON and names, once per Client
        self._reads: SnapshotReads | None = None  # for the settings in self._reads_for
        self._reads_for: tuple[Any, ...] = ()

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

    def login(self, force: bool = False) -> SessionInfo | ReplayLogin:
        """Log in now (or reuse a cached session); ``force=True`` always logs in anew.

        In replay nothing is sent: the answer says where snapshots are replayed from.
        """
        reads = self._snapshot_reads()
        if reads is not None and reads.replaying:
            return reads.login(self.settings)
        return self.session.login(force=force)

    def logout(self) -> None:
        """End the session on the server and forget the cached token (replay: nothing)."""
        reads = self._snapshot_reads()
        if reads is None or not reads.replaying:
            self.session.logout()

    def use_snapshots(
        self,
        directory: str | os.PathLike[str] | None,
        mode: str | None = None,
        max_age: str | dt.timedelta | None = None,
    ) -> None:
        """From now on, record to / replay from ``directory`` (None: off), as the
        constructor's ``snapshots``, ``snapshot_mode`` and ``snapshot_max_age``
        (here the environment is not consulted)."""
        where, chosen, age = resolve_snapshots(directory, mode, max_age, environ={})
        self.settings = self.settings.with_changes(
            snapshots=where, snapshot_mode=chosen, snapshot_max_age=age
        )

    def _snapshot_reads(self) -> SnapshotReads | None:
        """The snapshot reads of the current settings; None when snapshots are off."""
        s = self.settings
        if s.snapshot_mode is SnapshotMode.OFF:
            return None
        ident = (s.snapshots, s.snapshot_mode, s.snapshot_max_age, s.snapshot_server, s.url)
        with self._lock:
            if self._reads is None or self._reads_for != ident:
                self._reads, self._reads_for = SnapshotReads(s), ident
            return self._reads

    def _server_for_refs(self) -> str | None:
        """The server a pasted link must name: this Client's (a sandbox replay: any)."""
        return None if self.url.startswith("sandbox://") else self.url

    def _can_ask(self) -> bool:
        """Whether Metabase can be asked without a prompt: a key, a password, a session."""
        s = self.settings
        session = self._session
        return bool(s.api_key or s.password or (session is not None and session.info))

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
        s = self.settings
        if s.snapshot_mode is not SnapshotMode.OFF:
            who += f", snapshots={str(s.snapshots)!r}, snapshot_mode={s.snapshot_mode.value!r}"
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

        ``ref``: 484, ``"484-daily-earnings"`` or the card's URL; filters in the
        URL's query string (``?country=DE&country=GB``, as Metabase writes them)
        are read as parameters. ``params``: values keyed by parameter slug or
        display name (dates, ``(start, end)`` ranges, lists, Metabase date strings
        such as ``"past30days"``; ``None`` = no filter); they override the URL's.
        ``limit`` keeps the first rows only; ``refresh=True`` re-reads the card's
        parameter declarations and bypasses Metabase's result cache.

        One request in the usual case, whatever the size: the ``api`` export,
        streamed. Exports always bypass Metabase's result cache, so the query
        runs afresh each time; a ``limit`` of at most 2,000 rows uses ``/query``
        instead, which may answer from the cache (unless ``refresh=True``).

        ``df.attrs["massive"]`` records where the frame came from: url, card_id,
        name, parameters, row_count, fetched_at, elapsed, source (query/api/csv),
        truncated, card_url (the card's link with the parameters sent: open it, or
        pass it back to ``card()``), card_updated_at and client_version. The name
        (and card_url's slug) is fetched alongside the first query of a card
        (a concurrent ``GET /api/card/:id``, so no extra wait) and remembered;
        it is None if that lookup failed. The Client's read timeout bounds the
        whole read, not only the wait between two bytes.

        ``output="arrow"`` gives a ``pyarrow.Table`` built from the same typed
        chunks without going through pandas (provenance as JSON in the schema
        metadata key ``massive``), ``output="polars"`` a ``polars.DataFrame`` made
        from that table (no metadata; needs ``massive-magic[polars]``).

        With snapshots, ``refresh=True`` also reads live and records again (in
        replay it is an error); a replayed frame has ``source="snapshot"``.
        """
        out = output_kind(output)  # before any request
        _, cid, from_url = parse_card_url(ref, server=self._server_for_refs())
        limit = _check_limit(limit)
        parameters: list[dict[str, Any]] = []
        if params is not None and not isinstance(params, Mapping):
            build_parameters([], params)  # raises ParameterError: not a mapping
        reads = self._snapshot_reads()
        if reads is not None:
            reads.check_refresh(refresh)
        if params or from_url:
            live = lambda: self._card(cid, refresh=refresh)  # noqa: E731
            wanted = {**from_url, **(params or {})}
            card = (
                live()
                if reads is None
                else reads.declarations(cid, wanted, refresh=refresh, live=live)
            )
            decls = card.get("parameters") or []
            values = merge_params(from_url, params, decls)
            parameters = build_parameters(decls, values, owner=f"Card {cid}")
        if reads is None:
            return self._read(cid, parameters, limit, refresh, out)
        frame = reads.card(
            cid,
            parameters,
            limit,
            refresh=refresh,
            fetch=lambda: self._read(cid, parameters, limit, refresh),
            known=lambda: self._memory.card(cid),
            current=self._card if self._can_ask() else None,
            name=self._memory.name(cid),
        )
        return out.from_frame(frame)  # snapshots hold pandas frames

    def _read(
        self,
        cid: int,
        parameters: list[dict[str, Any]],
        limit: int | None,
        refresh: bool,
        output: Output = PANDAS,
    ) -> Any:
        """The live read of a card (a :class:`CardReader`); remembers what it learnt."""
        name, known = self._memory.name(cid), self._memory.known(cid)
        reader = CardReader(
            self.session,
            QueryTarget(cid),
            parameters,
            limit=limit,
            refresh=refresh,
            progress=self.progress,
            name=name,
            look_up_name=name is None,  # not part of a query answer: fetched alongside
            card=known,
            output=output,
        )
        try:
            return reader.read()
        finally:
            if reader.card is not None and reader.card is not known:  # looked up alongside
                self._memory.remember(cid, reader.card)

    def card_info(self, ref: int | str) -> dict[str, Any]:
        """What card ``ref`` is, as ``%massive_info`` shows it (one request, then cached).

        Keys: id, name, description, collection, type, url (its Metabase link),
        updated_at and last_edited_by, parameters (slug, name, type, default,
        required, values when Metabase lists them) and columns (name,
        display_name, Metabase type, and the pandas dtype it becomes).
        """
        _, cid, _ = parse_card_url(ref, server=self._server_for_refs())
        self._refuse_in_replay(f"Describing card {cid}")
        return card_summary(self._card(cid), server=self.url, details=True)

    def cards(self) -> pd.DataFrame:
        """Every card you can read: id, name, collection, type, description."""
        self._refuse_in_replay("Listing the cards")
        found = list_cards(self.session)
        self._memory.saw_list(found)
        return cards_frame(found)

    def _card(self, cid: int, *, refresh: bool = False) -> dict[str, Any]:
        """``GET /api/card/:id``, once per card for the life of this Client."""
        cached = None if refresh else self._memory.card(cid)
        if cached is not None:
            return cached
        card = fetch_card(self.session, cid)
        self._memory.remember(cid, card)
        return card

    def _refuse_in_replay(self, what: str) -> None:
        reads = self._snapshot_reads()
        if reads is not None:
            reads.refuse(what)

    # -- dashboards -----------------------------------------------------------

    @property
    def dashboards_read(self) -> dict[int, str | None]:
        """Dashboards this Client has read, id -> name (completion offers them)."""
        return self._memory.dashboards()

    def dashboard(
        self,
        ref: int | str,
        params: Mapping[str, Any] | None = None,
        *,
        max_workers: int = 4,
        output: str = "pandas",
    ) -> DashboardResult:
        """Every card of a dashboard, fetched concurrently, keyed by card name.

        ``params`` are the dashboard's filters, by name or slug; those in a
        dashboard URL's query string count too (``params`` win). Names repeat as
        "Name (2)". A card that fails does not lose the others: its error is kept
        in ``result.errors`` under its name and a warning names it;
        ``result.raise_errors()`` raises it. ``output`` as for :meth:`card`.
        """
        out = output_kind(output)
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise ConfigError(f"max_workers must be a positive integer, not {max_workers!r}.")
        _, did, from_url = parse_dashboard_url(ref, server=self._server_for_refs())
        reads = self._snapshot_reads()
        live = lambda: fetch_dashboard(self.session, did)  # noqa: E731
        dash = live() if reads is None else reads.layout(did, live)
        decls = dash.get("parameters") or []
        if from_url and (params is None or isinstance(params, Mapping)):
            params = merge_params(from_url, params, decls)
        parameters = build_parameters(decls, params, owner=f"Dashboard {did}")
        entries = dashboard_cards(dash)
        self._memory.saw_dashboard(did, dash, entries)
        replaying = reads is not None and reads.replaying
        return read_dashboard(
            self.session if entries and not replaying else None,
            did,
            dash,
            entries,
            parameters,
            output=out,
            max_workers=max_workers,
            progress=self.progress,
            reads=reads,
            ask=self._card if reads is not None and self._can_ask() else None,
        )


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
