"""Running a card for one query endpoint: the answer in its format, completed or failed.

Every answer here is a Metabase ``StreamingResponse``: its status (202 for ``/query`` and
the ``api`` export, 200 for files) is chosen before the query runs, so a query that fails
still answers that status with a ``"status": "failed"`` document (metabase-api.md §4.6).
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from .catalog import Card, Dashboard, QueryError, RunContext, resolve_card_parameters
from .responses import JSON_TYPE, Response, streamed_answer
from .streams import Breakdown, api_stream, completed_on_failure, csv_stream, json_stream
from .values import STYLE_EXPORT, STYLE_FORMATTED, Table, Zone, zone

if TYPE_CHECKING:
    from .handle import Sandbox


@dataclass
class QueryRun:
    """One run of ``card`` answered in ``fmt`` (``query``, ``api``, ``json`` or ``csv``)."""

    sb: Sandbox
    card: Card
    params: list[Any]
    fmt: str
    context: str
    format_rows: bool = False
    ignore_cache: bool = True
    dashboard: Dashboard | None = None
    #: asked for once rows are ready; a ``Breakdown`` makes the query fail mid-stream
    breakdown: Callable[[], Breakdown | None] = lambda: None
    tz: Zone = field(init=False)
    started: float = field(init=False)
    started_at: str = field(init=False)
    limit: int = field(init=False)

    def __post_init__(self) -> None:
        self.tz = zone(self.sb.report_timezone)
        self.started = time.perf_counter()
        self.started_at = _iso_now(self.sb.clock.now(), self.tz.tz)
        is_query = self.fmt == "query"
        self.limit = self.sb.query_row_limit if is_query else self.sb.export_row_limit

    # -- the run ----------------------------------------------------------------------------
    def answer(self) -> Response:
        """Run the card; ``InvalidParameter`` (a 500 before streaming) propagates."""
        today = dt.datetime.fromtimestamp(self.sb.clock.now(), self.tz.tz).date()
        try:
            values = resolve_card_parameters(self.card, self.params)
            context = RunContext(today, self.card.id, self.limit)
            table = self.card.run(values, context).head(self.limit)
        except QueryError as exc:
            return streamed_answer(self.status, [self.error_body(exc)], self.content_type)
        breakdown = self.breakdown()
        if self.fmt == "query":
            return self._rows_answer(table, breakdown, query=True)
        if self.fmt == "api":
            return self._rows_answer(table, breakdown, query=False)
        return self._file_answer(table, breakdown)

    @property
    def status(self) -> int:
        return 202 if self.fmt in ("query", "api") else 200

    @property
    def content_type(self) -> str:
        return "text/csv" if self.fmt == "csv" else JSON_TYPE

    def elapsed(self) -> int:
        return int((time.perf_counter() - self.started) * 1000)

    def json_query(self) -> dict[str, Any]:
        """The query as Metabase echoes it: native SQL, parameters and middleware flags."""
        fmt, card = self.fmt, self.card
        is_file = fmt in ("json", "csv")
        out: dict[str, Any] = {
            "type": "native",
            "native": {
                "query": card.sql,
                "template-tags": {t.name: t.template_tag() for t in card.tags},
            },
            "database": 2,
            "parameters": self.params,
            "constraints": (
                {"max-results": 10000, "max-results-bare-rows": self.limit}
                if fmt == "query"
                else None
            ),
            "middleware": {
                "js-int-to-string?": fmt == "query",
                "ignore-cached-results?": self.ignore_cache,
                "process-viz-settings?": is_file,
                "format-rows?": self.format_rows if is_file else True,
            },
        }
        if self.dashboard is not None:
            out["dashboard_id"] = self.dashboard.id
        return out

    # -- answers ------------------------------------------------------------------------------
    def _rows_answer(self, table: Table, breakdown: Breakdown | None, *, query: bool) -> Response:
        """``/query`` (capped, big integers as strings) or the ``api`` export (uncapped)."""
        cols = table.metadata()
        report_tz = self.sb.report_timezone
        data_rest: dict[str, Any] = {
            "cols": cols,
            "native_form": {"query": self.card.sql, "params": None},
            "results_timezone": report_tz,
            "requested_timezone": report_tz,
            "format-rows?": True,
        }
        if query:
            data_rest["results_metadata"] = {"columns": cols}
        data_rest["insights"] = None
        if query and table.length == self.limit:
            data_rest["rows_truncated"] = self.limit
        json_query = self.json_query()

        def rest() -> dict[str, Any]:
            return {
                "cached": None,
                "database_id": 2,
                "started_at": self.started_at,
                "json_query": json_query,
                "average_execution_time": None,
                "status": "completed",
                "context": self.context,
                "row_count": table.length,
                "running_time": self.elapsed(),
            }

        rows = api_stream(
            table, self.tz, data_rest, rest, js_int_to_string=query, breakdown=breakdown
        )
        return streamed_answer(202, completed_on_failure(rows, self.error_body))

    def _file_answer(self, table: Table, breakdown: Breakdown | None) -> Response:
        """A ``json`` or ``csv`` download, with Metabase's attachment file name."""
        filename = f"{_slug(self.card.name)}_{self.started_at.replace(':', '')}.{self.fmt}"
        disposition = ("Content-Disposition", f'attachment; filename="{filename}"')
        style = STYLE_FORMATTED if self.format_rows else STYLE_EXPORT
        writer = json_stream if self.fmt == "json" else csv_stream
        rows = writer(table, self.tz, style, breakdown)
        chunks = completed_on_failure(rows, self.error_body)
        return streamed_answer(200, chunks, self.content_type, [disposition])

    def error_body(self, exc: QueryError) -> bytes:
        """The ``"status": "failed"`` document (``json_query`` dropped for file formats)."""
        card = self.card
        details = dict(exc.details)
        klass = details.pop("class", "clojure.lang.ExceptionInfo")
        outer = (
            f"Error executing query: {exc.error}"
            if exc.error_type == "invalid-query"
            else exc.error
        )
        doc: dict[str, Any] = {
            "data": {"rows": [], "cols": []},
            "row_count": 0,
            "status": "failed",
            "class": klass,
            "error": exc.error,
            **details,
            "stacktrace": [
                "org.postgresql.core.v3.QueryExecutorImpl.receiveErrorResponse"
                "(QueryExecutorImpl.java:2725)"
            ],
            "error_type": exc.error_type,
            "ex-data": {"type": exc.error_type},
            "via": [
                {
                    "status": "failed",
                    "class": "clojure.lang.ExceptionInfo",
                    "error": outer,
                    "stacktrace": ["--> driver.sql_jdbc.execute$execute_reducible_query"],
                    "error_type": exc.error_type,
                    "ex-data": {"type": exc.error_type, "sql": card.sql, "params": None},
                }
            ],
            "json_query": self.json_query(),
            "database_id": 2,
            "card_id": card.id,
            "action_id": None,
            "context": self.context,
            "started_at": self.started_at,
            "running_time": 0,
        }
        if self.fmt in ("json", "csv"):
            del doc["json_query"]
        return orjson.dumps(doc)


def _iso_now(epoch: float, tz: Any) -> str:
    moment = dt.datetime.fromtimestamp(epoch, tz)
    text = moment.isoformat(timespec="microseconds")
    return text.replace("+00:00", "Z")


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "query_result"
