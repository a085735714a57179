"""Reading one card's complete result as a typed frame (metabase-api.md §4-5, Traps 5-7).

Never a silently short frame, and the warehouse runs the query once. A
:class:`CardReader` holds one read's state and tries the routes in one fixed order:

=============  ===========================  ===============================================
``limit``      first request                then
=============  ===========================  ===============================================
<= 2,000       ``POST <query path>``        flagged ``data.rows_truncated`` (a server with
               (rows and cols at once, at   a lower cap): the api export, typed with this
               most the cap)                answer's cols; that export refused: the csv one
otherwise      ``POST <query path>/api``    stopped at ``limit`` before the cols (which
               (the ``api`` export,         follow the rows): ``/query`` for the cols;
               streamed: one request        refused (400/404/405/500/501): ``/query``, and
               whatever the size)           the csv export if that answer is truncated
=============  ===========================  ===============================================

Parameters go in the JSON body of ``/query`` and as the form field
``parameters=<json>`` (plus ``format_rows=false``) of exports, which old and new
Metabase read. Exports always bypass Metabase's result cache.

The requests and their bodies are :mod:`~massive_magic.card_requests`' (read
ahead in a thread, within one deadline for the whole read). A body that ends
early or does not parse, an answer without Metabase's ``row_count`` or with
another count, an HTML page and a read past the deadline raise
:class:`ResponseError`; a result at the export cap (1,048,575 rows) warns
:class:`IncompleteResultWarning`; a 500 "Invalid parameter" (declarations read
before the card was edited) raises :class:`ParameterError` with the step to
refresh them.

The card name is not part of a query answer: the reader is given it, or looks it
up (``GET /api/card/:id``) alongside the first request, in the one thread besides
the body reader, which also redraws the progress line. The reader alone writes
the provenance. Every route builds its result (a DataFrame, or an Arrow table
from the same chunks) through an :class:`~massive_magic.outputs.Output`.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import json
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .card_answers import (
    QueryTarget,
    as_object,
    check_row_count,
    is_invalid_parameter,
    parameter_errors,
    parse_json,
    raise_if_failed,
    server_url,
)
from .card_requests import CardRequests
from .errors import CardNotFound, IncompleteResultWarning, MassiveError, ResponseError
from .frames import FrameBuilder
from .links import frame_links
from .metadata import fetch_card
from .outputs import PANDAS, Output
from .progress import ReadProgress
from .rowstream import ApiRowStream

if TYPE_CHECKING:
    from .session import MetabaseSession

__all__ = ["EXPORT_ROW_CAP", "QUERY_ROW_CAP", "CardReader", "QueryTarget", "run_query"]

#: Metabase's absolute maximum for exports: Excel's row limit minus the header row.
EXPORT_ROW_CAP = 1_048_575
#: Row counts that mean "stopped at the export maximum" (1,048,576 before Metabase 0.38).
_EXPORT_CAPS = frozenset({EXPORT_ROW_CAP, EXPORT_ROW_CAP + 1})
#: Metabase's default row cap of ``/query`` for bare rows (``rows_truncated`` beyond it).
QUERY_ROW_CAP = 2_000
#: Export statuses that mean "this server does not offer the api export here".
_REFUSED = frozenset({400, 404, 405, 500, 501})
#: Rows are parsed in batches of about this many bytes: small enough that one batch's
#: Python objects stay a fraction of the final frame, large enough to amortise calls.
_BATCH_BYTES = 4 << 20
#: Seconds between redraws of the progress line (the elapsed time moves while waiting).
_TICK = 0.25


@dataclass
class _Fetched:
    """A converted result (a frame or a table) and where it came from."""

    result: Any
    source: str  # "query", "api" or "csv"
    cached: Any = None
    results_timezone: str | None = None


class CardReader:
    """One read of ``target``: the run's state, and :meth:`read`, the routes in order.

    ``name`` is the card's name if known; ``look_up_name=True`` fetches it (and the
    card's metadata, kept in :attr:`card`) alongside the first request instead.
    A failed lookup leaves the name None and never fails the read. ``output``
    is the kind of result :meth:`read` gives (pandas unless told).
    """

    def __init__(
        self,
        session: MetabaseSession,
        target: QueryTarget,
        parameters: list[dict[str, Any]],
        *,
        limit: int | None = None,
        refresh: bool = False,
        progress: bool = True,
        name: str | None = None,
        look_up_name: bool = False,
        card: dict[str, Any] | None = None,
        dashboard: dict[str, Any] | None = None,
        output: Output = PANDAS,
    ) -> None:
        self.session = session
        self.out = output.built
        self.output = output
        self.target = target
        self.parameters = parameters
        self.limit = limit
        self.refresh = refresh
        self.name = name
        self.look_up_name = look_up_name and name is None
        self.url = server_url(session)
        settings = getattr(session, "settings", None)
        self.timeout: float | None = getattr(settings, "read_timeout", None)
        #: ``GET /api/card/:id``: given (known already), or looked up with the name.
        self.card: dict[str, Any] | None = card
        #: ``GET /api/dashboard/:id`` when the card is read through a dashboard (links).
        self.dashboard = dashboard
        self._bar = ReadProgress(progress, name or target.label)
        self._http = CardRequests(session, target, self.url, self._bar, self.timeout)
        self._form = {
            "parameters": json.dumps(parameters),
            "format_rows": "false",
            "pivot_results": "false",
        }

    # -- the routes ------------------------------------------------------------------------

    def read(self) -> Any:
        """The complete result, typed, with its provenance (see :class:`Output`)."""
        started = time.monotonic()
        fetched_at = datetime.now(timezone.utc)
        self._http.start(started)
        with self._bar, self._alongside(), parameter_errors(self.target, self.url):
            fetched = self._fetch()
        result, rows = fetched.result, self.out.rows(fetched.result)
        truncated = False
        if self.limit is None and fetched.source != "query" and rows in _EXPORT_CAPS:
            truncated = True
            warnings.warn(
                f"{self.target.label} returned {rows:,} rows, Metabase's export maximum; "
                "the result may be missing rows. Filter it with parameters.",
                IncompleteResultWarning,
                stacklevel=3,
            )
        provenance = {
            "url": self.url,
            "card_id": self.target.card_id,
            "name": self.name,
            "dashboard_id": self.target.dashboard_id,
            "dashcard_id": self.target.dashcard_id,
            "parameters": self.parameters,
            "row_count": rows,
            "limit": self.limit,
            "source": fetched.source,
            "truncated": truncated,
            "cached": fetched.cached,
            "results_timezone": fetched.results_timezone,
            "fetched_at": fetched_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "elapsed": round(time.monotonic() - started, 3),
            # From the card JSON the name came with: no request of their own.
            **frame_links(
                self.url,
                self.target.card_id,
                self.card or {"name": self.name},
                self.parameters,
                dashboard=self.dashboard,
            ),
            "client_version": _client_version(),
        }
        return self.output.finish(self.out.tag(result, provenance))

    def _fetch(self) -> _Fetched:
        """The decision table of the module docstring."""
        if self.limit is not None and self.limit <= QUERY_ROW_CAP:
            answer = self._query()
            if not self._truncated(answer):
                return self._from_query(answer)
            export = self._open_export()
            return self._csv(answer) if export is None else self._stream(export, answer)
        export = self._open_export()
        if export is not None:
            return self._stream(export, None)
        answer = self._query()
        return self._csv(answer) if self._truncated(answer) else self._from_query(answer)

    def _truncated(self, answer: dict[str, Any]) -> bool:
        """A ``/query`` answer flagged truncated, short of the rows wanted."""
        data = answer["data"]
        wanted_more = self.limit is None or self.limit > len(data["rows"])
        return bool(data.get("rows_truncated")) and wanted_more

    def _from_query(self, answer: dict[str, Any]) -> _Fetched:
        data = answer["data"]
        rows: list[Any] = data["rows"]
        if self.limit is not None and self.limit < len(rows):
            data = {**data, "rows": rows[: self.limit]}
        zone = data.get("results_timezone")
        return _Fetched(self.out.from_result(data), "query", answer.get("cached"), zone)

    def _stream(self, response: Any, answer: dict[str, Any] | None) -> _Fetched:
        """The api export's rows, typed with ``answer``'s cols if ``/query`` came first.

        Otherwise the cols come after the rows, so the rows are stored untyped and
        converted when the tail arrives; if the limit stops the stream first, a
        ``/query`` answer (at most 2,000 rows) gives them.
        """
        if answer is not None:
            data = answer["data"]
            zone = data.get("results_timezone")
            builder = FrameBuilder(data.get("cols") or [], results_timezone=zone)
            tail = self._rows_into(builder, response)
            if tail is not None:
                self._check_same_columns(data.get("cols") or [], tail)
            return _Fetched(self.out.build(builder), "api", answer.get("cached"), zone)
        builder = FrameBuilder()
        tail = self._rows_into(builder, response)
        if tail is None:  # stopped at the limit, before the columns
            data = self._query()["data"]
            zone = data.get("results_timezone")
            result = self.out.build(builder, data.get("cols") or [], results_timezone=zone)
            return _Fetched(result, "api", None, zone)
        data = _data_of(tail)
        cols = data.get("cols")
        if not isinstance(cols, list) or not all(isinstance(c, dict) for c in cols):
            raise ResponseError(
                f"{self.target.label}: Metabase's export has no column list; run it again.",
                url=self.url,
            )
        zone = data.get("results_timezone")
        result = self.out.build(builder, cols, results_timezone=zone)
        return _Fetched(result, "api", tail.get("cached"), zone)

    def _check_same_columns(self, cols: list[dict[str, Any]], tail: dict[str, Any]) -> None:
        data = _data_of(tail)
        names = [c.get("name") for c in cols]
        tail_names = [c.get("name") for c in data.get("cols") or [] if isinstance(c, dict)]
        if tail_names != names:
            raise ResponseError(
                f"{self.target.label}: the columns changed between two requests ({names} then "
                f"{tail_names}); the card was probably edited. Run it again.",
                url=self.url,
            )

    # -- the three requests ----------------------------------------------------------------

    def _query(self) -> dict[str, Any]:
        """``POST <query path>``: a completed answer with ``data.rows``, or an error."""
        body = {"parameters": self.parameters, "ignore_cache": bool(self.refresh)}
        raw = self._http.whole(self._http.send("", json=body), json_body=True)
        answer = as_object(parse_json(raw, self.target, self.url), self.target.path)
        raise_if_failed(answer, self.target, self.url)
        data = answer.get("data")
        if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
            raise ResponseError(
                f"{self.target.label}: Metabase's answer has no rows; run it again.", url=self.url
            )
        check_row_count(answer, len(data["rows"]), self.target, self.url)
        self._bar.set_rows(len(data["rows"]))
        return answer

    def _open_export(self) -> Any | None:
        """The streaming ``api`` export response, or None when this server refuses it."""
        try:
            return self._http.send("/api", data=self._form)
        except (CardNotFound, ResponseError) as exc:
            if not _refused(exc) or is_invalid_parameter(exc):
                raise
            return None

    def _rows_into(self, builder: FrameBuilder, response: Any) -> dict[str, Any] | None:
        """Feed an ``api`` export's rows to ``builder``; return its tail, checked.

        ``None`` when ``limit`` rows arrived first: reading stops there (and hangs up).
        """
        with self._http.body(response, json_body=True) as chunks:
            stream = ApiRowStream(chunks, batch_bytes=_BATCH_BYTES)
            for batch in stream:
                if self.limit is not None and builder.row_count + len(batch) > self.limit:
                    builder.add_rows(batch[: self.limit - builder.row_count])
                    self._bar.set_rows(builder.row_count)
                    return None  # enough rows: stop reading
                builder.add_rows(batch)  # exactly ``limit`` rows may be all: read on to the tail
                self._bar.set_rows(builder.row_count)
        tail = stream.tail if isinstance(stream.tail, dict) else {}
        raise_if_failed(tail, self.target, self.url)
        check_row_count(tail, builder.row_count, self.target, self.url)
        return tail

    def _csv(self, answer: dict[str, Any]) -> _Fetched:
        """The csv export, converted with the cols of a ``/query`` answer."""
        data = answer["data"]
        zone = data.get("results_timezone")
        body = self._http.whole(self._http.send("/csv", data=self._form), json_body=False)
        if body.lstrip()[:1] == b"{":
            # A failed query answers a csv download with a JSON error document.
            raise_if_failed(parse_json(body, self.target, self.url), self.target, self.url)
            raise ResponseError(
                f"{self.target.label}: the csv export is not CSV; run it again.", url=self.url
            )
        result = self.out.from_csv(data.get("cols") or [], body, results_timezone=zone)
        if self.limit is not None:
            result = self.out.head(result, self.limit)
        self._bar.set_rows(self.out.rows(result))
        return _Fetched(result, "csv", answer.get("cached"), zone)

    # -- beside the read -------------------------------------------------------------------

    @contextmanager
    def _alongside(self) -> Iterator[None]:
        """The one thread beside the read: the name lookup, then redraws of the progress line.

        Joined before the read returns or raises; an unexpected error of the lookup
        is raised only after a read that succeeded (the read's own error wins).
        """
        if not (self.look_up_name or self._bar.drawing):
            yield
            return
        stop = threading.Event()
        failures: list[BaseException] = []

        def run() -> None:
            if self.look_up_name:
                try:
                    self._look_up_name()
                except BaseException as exc:  # raised in the caller, after the read
                    failures.append(exc)
            while self._bar.drawing and not stop.wait(_TICK):
                self._bar.tick()

        thread = threading.Thread(target=run, name="massive-aside", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
        if failures:
            raise failures[0]

    def _look_up_name(self) -> None:
        try:
            card = fetch_card(self.session, self.target.card_id)
        except MassiveError:
            return  # the name stays None; the read's own errors say what matters
        self.card = card
        name = card.get("name")
        if isinstance(name, str):
            self.name = name
            self._bar.describe(name)


def run_query(
    session: MetabaseSession,
    target: QueryTarget,
    parameters: list[dict[str, Any]],
    *,
    limit: int | None = None,
    refresh: bool = False,
    progress: bool = True,
    name: str | None = None,
    card: dict[str, Any] | None = None,
    dashboard: dict[str, Any] | None = None,
    output: Output = PANDAS,
) -> Any:
    """The complete result of ``target``, typed, as ``output`` (a :class:`CardReader`'s read)."""
    reader = CardReader(
        session,
        target,
        parameters,
        limit=limit,
        refresh=refresh,
        progress=progress,
        name=name,
        card=card,
        dashboard=dashboard,
        output=output,
    )
    return reader.read()


@functools.cache
def _client_version() -> str | None:
    """This package's installed version, for the provenance (None from a bare checkout)."""
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        return importlib.metadata.version("massive-magic")
    return None


def _data_of(answer: dict[str, Any]) -> dict[str, Any]:
    data = answer.get("data")
    return data if isinstance(data, dict) else {}


def _refused(exc: MassiveError) -> bool:
    """Whether an export error means "this server does not offer that export here"."""
    status = 404 if isinstance(exc, CardNotFound) else getattr(exc, "status", None)
    return status in _REFUSED
