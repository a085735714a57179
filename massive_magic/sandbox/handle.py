"""The handle tests hold: a running sandbox, its demo data, settings, faults and request log.

``Sandbox`` owns the state (accounts, cards, dashboards, clock, faults, log) and the
:class:`~.transport.Server` that answers over HTTP; everything here is Python-only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from . import demo
from .auth import Accounts, Clock, User
from .catalog import Card, Dashboard, QueryError, RunContext, Tag
from .faults import Faults, Request, path_matches
from .transport import Server
from .values import BASE_TYPE_KINDS, Table, column, zone

QUERY_ROW_LIMIT = 2000
EXPORT_ROW_LIMIT = 1_048_575


class Sandbox:
    """A running sandbox: ``srv.url``, demo credentials, clock, faults and the request log."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.clock = Clock()
        self.faults = Faults()
        self.accounts = Accounts(self.clock)
        self.log: list[Request] = []
        self._log_lock = threading.Lock()
        self.report_timezone = "Europe/Berlin"
        #: Metabase's ``unaggregated-query-row-limit`` (``/query``) and download row limit
        self.query_row_limit = QUERY_ROW_LIMIT
        self.export_row_limit = EXPORT_ROW_LIMIT
        self.cards: dict[int, Card] = demo.build_cards()
        self.dashboards: dict[int, Dashboard] = demo.build_dashboards()
        self._next_card_id = 900
        demo_user = self.accounts.add_user(
            demo.DEMO_USERNAME, demo.DEMO_PASSWORD, first_name="Demo", last_name="Partner"
        )
        self.accounts.add_user(
            demo.ADMIN_USERNAME,
            "admin-" + demo.DEMO_PASSWORD,
            first_name="Massive",
            last_name="Admin",
            superuser=True,
        )
        self.accounts.api_keys[demo.DEMO_API_KEY] = demo_user
        self.username = demo.DEMO_USERNAME
        self.password = demo.DEMO_PASSWORD
        self.api_key = demo.DEMO_API_KEY
        self._httpd = Server((host, port), self)
        self.host, self.port = str(self._httpd.server_address[0]), self._httpd.server_address[1]
        self.url = f"http://{self.host}:{self.port}"
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> Sandbox:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"massive-sandbox-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread (``python -m massive_magic.sandbox``)."""
        self._httpd.serve_forever(poll_interval=0.2)

    def stop(self) -> None:
        """Stop serving and close every open connection."""
        self._httpd.shutdown()
        self._httpd.close_all()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<Sandbox {self.url} user={self.username}>"

    # -- settings --------------------------------------------------------------------------
    @property
    def report_timezone(self) -> str:
        """Metabase's report time zone: offsets of dates and datetimes in query results."""
        return self._report_timezone

    @report_timezone.setter
    def report_timezone(self, name: str) -> None:
        zone(name)  # raises ZoneInfoNotFoundError for an unknown name, here and not later
        self._report_timezone = name

    @property
    def max_session_age(self) -> float:
        """Seconds a session lives after login (Metabase ``MAX_SESSION_AGE``; default 14 d)."""
        return self.accounts.max_session_age

    @max_session_age.setter
    def max_session_age(self, seconds: float) -> None:
        self.accounts.max_session_age = float(seconds)

    # -- test helpers ----------------------------------------------------------------------
    def count(self, method: str | None = None, path: str | None = None) -> int:
        """Requests seen so far matching ``method`` and ``path`` (exact, or prefix with ``*``)."""
        with self._log_lock:
            return sum(
                1
                for r in self.log
                if (method is None or r.method == method.upper()) and path_matches(path, r.path)
            )

    def requests(self, method: str | None = None, path: str | None = None) -> list[Request]:
        """The matching log records, oldest first."""
        with self._log_lock:
            return [
                r
                for r in self.log
                if (method is None or r.method == method.upper()) and path_matches(path, r.path)
            ]

    def reset_log(self) -> None:
        with self._log_lock:
            self.log.clear()

    @staticmethod
    def overlapping(a: Request, b: Request) -> bool:
        """``a`` and ``b`` were in flight at one moment (see ``Request.started/finished``).

        Assert order and concurrency with this and ``a.finished <= b.started`` ("``b``
        was sent after ``a`` was answered"), never with the wall clock."""
        return a.overlaps(b)

    def max_in_flight(self, method: str | None = None, path: str | None = None) -> int:
        """The most matching requests that were in flight at one moment."""
        edges: list[tuple[float, int]] = []
        for r in self.requests(method, path):
            edges.append((r.started, 1))
            edges.append((float("inf") if r.finished is None else r.finished, -1))
        peak = now = 0
        for _, step in sorted(edges):  # an end sorts before a start at the same instant
            now += step
            peak = max(peak, now)
        return peak

    def add_user(
        self,
        email: str,
        password: str,
        *,
        first_name: str = "",
        last_name: str = "",
        superuser: bool = False,
    ) -> User:
        """Create another login (e.g. to test throttling without locking the demo user)."""
        return self.accounts.add_user(
            email, password, first_name=first_name, last_name=last_name, superuser=superuser
        )

    def add_api_key(self, key: str, email: str | None = None) -> None:
        """Make ``key`` (must start with ``mb_``) act as ``email`` (default: the demo user)."""
        self.accounts.api_keys[key] = self.accounts.users[(email or self.username).lower()]

    def add_card(
        self,
        name: str,
        columns: list[dict[str, Any] | tuple[str, str]],
        rows: list[list[Any]] | None = None,
        *,
        card_id: int | None = None,
        description: str | None = None,
        parameters: list[dict[str, Any]] | None = None,
        run: Callable[[dict[str, Any]], list[list[Any]]] | None = None,
        error: str | None = None,
        error_type: str = "invalid-query",
        restricted: bool = False,
    ) -> int:
        """Serve a new native card and return its id.

        ``columns``: ``(name, base_type)`` pairs or dicts with ``name``, ``base_type`` and
        optional ``display_name``, ``database_type``, ``semantic_type``.  ``rows``: Python
        values (``date``, ``datetime`` (aware for ``*WithTZ`` types), ``time``, numbers,
        str, bool, None).  ``parameters``: dicts with ``name`` and ``type`` (template tag
        type: text/number/date/dimension) and optional ``display_name``, ``widget_type``,
        ``default``, ``required``, ``values``.  ``run(values)`` may compute rows from the
        resolved parameter values instead of ``rows``; ``error`` makes every run fail.
        """
        cid = card_id if card_id is not None else self._new_card_id()
        specs = [_column_spec(c) for c in columns]
        tags = [
            Tag(
                cid,
                p["name"],
                p.get("display_name") or p["name"].replace("_", " ").capitalize(),
                p.get("type", "text"),
                widget_type=p.get("widget_type"),
                default=p.get("default"),
                required=bool(p.get("required", False)),
                values=p.get("values"),
                multi=bool(p.get("multi", False)),
            )
            for p in parameters or []
        ]

        def build(data_rows: list[list[Any]]) -> Table:
            cols = [
                column(s["name"], s["kind"], [r[i] for r in data_rows], **s["meta"])
                for i, s in enumerate(specs)
            ]
            return Table(cols, len(data_rows))

        fixed = build(rows or [])

        def runner(values: dict[str, Any], ctx: RunContext) -> Table:
            if error is not None:
                raise QueryError(error, error_type)
            return build(run(values)) if run is not None else fixed

        self.cards[cid] = Card(
            cid,
            name,
            f"SELECT * FROM sandbox_card_{cid}",
            build([]).columns,
            runner,
            tags=tags,
            description=description,
            restricted=restricted,
        )
        return cid

    def _new_card_id(self) -> int:
        while self._next_card_id in self.cards:
            self._next_card_id += 1
        self._next_card_id += 1
        return self._next_card_id - 1

    def expire_sessions(self) -> None:
        """Forget every session (as if an admin signed everyone out)."""
        self.accounts.expire_sessions()

    def reset(self) -> None:
        """Between tests: faults, log, clock, throttles, settings and extra cards/users."""
        self.faults.clear()
        self.reset_log()
        self.clock.reset()
        self.accounts.reset_throttles()
        self.accounts.max_session_age = 14 * 24 * 3600.0
        self.report_timezone = "Europe/Berlin"
        self.query_row_limit = QUERY_ROW_LIMIT
        self.export_row_limit = EXPORT_ROW_LIMIT
        # restore the demo catalogue in place (tests hold references to these dicts)
        self.cards.clear()
        self.cards.update(demo.build_cards())
        self.dashboards.clear()
        self.dashboards.update(demo.build_dashboards())
        self._next_card_id = 900
        demo_users = {demo.DEMO_USERNAME, demo.ADMIN_USERNAME}
        for email in [e for e in self.accounts.users if e not in demo_users]:
            del self.accounts.users[email]
        for key in [k for k in self.accounts.api_keys if k != demo.DEMO_API_KEY]:
            del self.accounts.api_keys[key]

    def _record(self, request: Request) -> None:
        with self._log_lock:
            self.log.append(request)


def _column_spec(spec: dict[str, Any] | tuple[str, str]) -> dict[str, Any]:
    if isinstance(spec, tuple):
        spec = {"name": spec[0], "base_type": spec[1]}
    base_type = spec.get("base_type", "type/Text")
    kind = spec.get("kind") or BASE_TYPE_KINDS.get(base_type, "other")
    meta = {
        "display_name": spec.get("display_name", ""),
        "base_type": base_type,
        "database_type": spec.get("database_type", ""),
        "semantic_type": spec.get("semantic_type"),
    }
    return {"name": spec["name"], "kind": kind, "meta": meta}
