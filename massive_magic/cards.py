"""Card and dashboard endpoints on top of a :class:`~massive_magic.session.MetabaseSession`.

How a result is fetched (metabase-api.md §4-5, Traps 5-7) — never a silently
short frame, and the warehouse runs the query once:

1. ``POST <query path>/api`` (the ``api`` export; parameters as the form field
   ``parameters=<json>`` plus ``format_rows=false``, which old and new Metabase read):
   one request whatever the size, streamed through
   :class:`~massive_magic.rowstream.ApiRowStream`. Its ``cols`` come after the rows, so
   a :class:`~massive_magic.frames.FrameBuilder` stores the rows untyped and converts
   them when the tail arrives. Exports always bypass Metabase's result cache.
2. With a ``limit`` of at most 2,000 rows, ``POST <query path>`` instead (JSON body
   ``{"parameters": [...], "ignore_cache": ...}``): rows and cols in one answer of at
   most the cap. If that answer says ``data.rows_truncated`` (servers with a lower cap),
   the rest comes from the ``api`` export typed with the answer's ``cols``. A larger
   ``limit`` reached before the end of the export takes the cols from ``/query``.
3. If the server refuses the ``api`` export (400/404/405/500/501), ``/query`` is used;
   if its answer is flagged truncated, the ``csv`` export is read and converted with
   that answer's ``cols``.

A body that ends early or does not parse raises :class:`ResponseError`; a result at
the export cap (1,048,575 rows) warns :class:`IncompleteResultWarning`. A 500
"Invalid parameter" (declarations read before the card was edited) raises
:class:`ParameterError` asking for ``refresh=True``.

The card name is not part of a query answer: ``run_query`` records the ``name`` it
is given (the client fetches it alongside the first query of a card).
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import orjson

from .errors import (
    AccessDenied,
    CardNotFound,
    DashboardNotFound,
    IncompleteResultWarning,
    MassiveError,
    NotFound,
    ParameterError,
    QueryFailed,
    ResponseError,
)
from .frames import FrameBuilder, frame_from_csv, frame_from_result
from .rowstream import ApiRowStream
from .session import read_json

if TYPE_CHECKING:
    import pandas as pd

    from .session import MetabaseSession

__all__ = [
    "EXPORT_ROW_CAP",
    "QUERY_ROW_CAP",
    "DashboardResult",
    "Dashcard",
    "QueryTarget",
    "card_summary",
    "cards_frame",
    "dashboard_cards",
    "fetch_card",
    "fetch_dashboard",
    "list_cards",
    "run_query",
]

#: Metabase's absolute maximum for exports: Excel's row limit minus the header row.
EXPORT_ROW_CAP = 1_048_575
#: Row counts that mean "stopped at the export maximum" (1,048,576 before Metabase 0.38).
_EXPORT_CAPS = frozenset({EXPORT_ROW_CAP, EXPORT_ROW_CAP + 1})
#: Metabase's default row cap of ``/query`` for bare rows (``rows_truncated`` beyond it).
QUERY_ROW_CAP = 2_000
#: Export statuses that mean "this server does not offer the api export here".
_REFUSED = frozenset({400, 404, 405, 500, 501})
_CHUNK = 1 << 20
#: Rows are parsed in batches of about this many bytes: small enough that one batch's
#: Python objects stay a fraction of the final frame, large enough to amortise calls.
_BATCH_BYTES = 4 << 20
#: Chunks read ahead of the parser (MiB): the download goes on while rows are converted.
_READ_AHEAD = 8

_CARD_LIST_HINT = "Client.cards() lists the cards you can read."


@dataclass(frozen=True)
class QueryTarget:
    """Where a result comes from: a saved card, or a card placed on a dashboard."""

    card_id: int
    dashboard_id: int | None = None
    dashcard_id: int | None = None

    @property
    def path(self) -> str:
        if self.dashboard_id is None:
            return f"/api/card/{self.card_id}/query"
        return (
            f"/api/dashboard/{self.dashboard_id}/dashcard/{self.dashcard_id}"
            f"/card/{self.card_id}/query"
        )

    @property
    def label(self) -> str:
        if self.dashboard_id is None:
            return f"Card {self.card_id}"
        return f"Card {self.card_id} on dashboard {self.dashboard_id}"


# -- metadata ------------------------------------------------------------------


def fetch_card(session: MetabaseSession, card_id: int) -> dict[str, Any]:
    """``GET /api/card/:id`` with errors that say what to do next."""
    target = QueryTarget(card_id)
    with _card_errors(session, target):
        # ignore_view: reading metadata should not fill the user's "recently viewed".
        response = session.request("GET", f"/api/card/{card_id}", params={"ignore_view": "true"})
    card = _as_object(read_json(response), f"/api/card/{card_id}")
    return card


def list_cards(session: MetabaseSession) -> list[dict[str, Any]]:
    """``GET /api/card``: every card this user can read (not archived)."""
    response = session.request("GET", "/api/card", params={"f": "all"})
    cards = read_json(response)
    if not isinstance(cards, list):
        raise ResponseError(
            "Metabase answered /api/card with something other than a list of cards.",
            url=_server_url(session),
        )
    return [c for c in cards if isinstance(c, dict)]


def fetch_dashboard(session: MetabaseSession, dashboard_id: int) -> dict[str, Any]:
    """``GET /api/dashboard/:id`` with errors that say what to do next."""
    url = _server_url(session)
    try:
        response = session.request("GET", f"/api/dashboard/{dashboard_id}")
    except NotFound as exc:
        raise DashboardNotFound(
            f"Dashboard {dashboard_id} not found on {url}. Check the id in the dashboard's URL "
            "(/dashboard/<id>-…).",
            dashboard_id=dashboard_id,
        ) from exc
    except AccessDenied as exc:
        raise AccessDenied(
            f"You may not read dashboard {dashboard_id} on {url} (Metabase answered 403). "
            "Ask a Metabase admin for access to its collection."
        ) from exc
    return _as_object(read_json(response), f"/api/dashboard/{dashboard_id}")


def card_summary(card: Mapping[str, Any]) -> dict[str, Any]:
    """What a notebook user wants to know about a card, from ``GET /api/card/:id``."""
    collection = card.get("collection")
    parameters = []
    for decl in card.get("parameters") or []:
        param: dict[str, Any] = {
            "slug": decl.get("slug"),
            "name": decl.get("name"),
            "type": decl.get("type"),
            "required": bool(decl.get("required")),
            "default": decl.get("default"),
        }
        config = decl.get("values_source_config") or {}
        if decl.get("values_source_type") == "static-list" and isinstance(
            config.get("values"), list
        ):
            param["values"] = [v[0] if isinstance(v, list) and v else v for v in config["values"]]
        parameters.append(param)
    columns = [
        {
            "name": col.get("name"),
            "display_name": col.get("display_name"),
            "type": col.get("effective_type") or col.get("base_type"),
        }
        for col in card.get("result_metadata") or []
    ]
    return {
        "id": card.get("id"),
        "name": card.get("name"),
        "description": card.get("description"),
        "collection": collection.get("name") if isinstance(collection, dict) else None,
        "type": card.get("type") or ("model" if card.get("dataset") else "question"),
        "parameters": parameters,
        "columns": columns,
    }


_CARD_LIST_COLS = [
    {"name": "id", "display_name": "ID", "base_type": "type/Integer"},
    {"name": "name", "display_name": "Name", "base_type": "type/Text"},
    {"name": "collection", "display_name": "Collection", "base_type": "type/Text"},
    {"name": "type", "display_name": "Type", "base_type": "type/Text"},
    {"name": "description", "display_name": "Description", "base_type": "type/Text"},
]


def cards_frame(cards: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The card list as a typed frame: id, name, collection, type, description."""
    rows = []
    for card in cards:
        summary = card_summary(card)
        rows.append([summary[c["name"]] for c in _CARD_LIST_COLS])
    builder = FrameBuilder([{**c, "effective_type": c["base_type"]} for c in _CARD_LIST_COLS])
    builder.add_rows(rows)
    return builder.build()


# -- dashboards ----------------------------------------------------------------


@dataclass(frozen=True)
class Dashcard:
    """One card placed on a dashboard, with the unique name its frame is keyed by."""

    key: str
    dashcard_id: int
    card_id: int
    card_name: str | None


def dashboard_cards(dashboard: Mapping[str, Any]) -> list[Dashcard]:
    """The dashboard's cards in display order, keyed "Name", "Name (2)", ...

    ``dashcards`` (Metabase 0.48+) falls back to ``ordered_cards``; text and heading
    cards (``card_id`` null) are skipped.
    """
    raw = dashboard.get("dashcards")
    if raw is None:
        raw = dashboard.get("ordered_cards")
    placed = [d for d in raw or [] if isinstance(d, dict) and d.get("card_id") is not None]
    placed.sort(key=lambda d: (d.get("row") or 0, d.get("col") or 0))
    seen: dict[str, int] = {}
    out = []
    for dashcard in placed:
        card = dashcard.get("card") if isinstance(dashcard.get("card"), dict) else {}
        name = card.get("name") if isinstance(card.get("name"), str) else None
        base = name or f"Card {dashcard['card_id']}"
        seen[base] = seen.get(base, 0) + 1
        key = base if seen[base] == 1 else f"{base} ({seen[base]})"
        while key in seen and key != base:
            seen[base] += 1
            key = f"{base} ({seen[base]})"
        seen.setdefault(key, 1)
        out.append(Dashcard(key, int(dashcard["id"]), int(dashcard["card_id"]), name))
    return out


class DashboardResult(dict):  # type: ignore[type-arg]
    """``dict[str, DataFrame]`` of a dashboard's cards, plus what went wrong.

    A card that fails does not lose the others: its error is in ``.errors`` under
    the same name (and a warning names it). ``raise_errors()`` turns the first
    failure back into an exception for scripts that want all or nothing.
    """

    def __init__(
        self,
        frames: Mapping[str, pd.DataFrame],
        errors: Mapping[str, MassiveError],
        *,
        dashboard_id: int,
        name: str | None,
    ) -> None:
        super().__init__(frames)
        self.errors: dict[str, MassiveError] = dict(errors)
        self.dashboard_id = dashboard_id
        self.name = name

    def raise_errors(self) -> None:
        """Raise the first card's error, if any card failed."""
        for error in self.errors.values():
            raise error

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k!r}: {len(v)} rows" for k, v in self.items())
        failed = f"; failed: {', '.join(map(repr, self.errors))}" if self.errors else ""
        return f"<DashboardResult {self.dashboard_id} {self.name!r} {{{shapes}}}{failed}>"


# -- running a card -------------------------------------------------------------


@dataclass
class _Fetched:
    """A converted result and where it came from."""

    frame: pd.DataFrame
    source: str  # "query", "api" or "csv"
    cached: Any = None
    results_timezone: str | None = None


def run_query(
    session: MetabaseSession,
    target: QueryTarget,
    parameters: list[dict[str, Any]],
    *,
    limit: int | None = None,
    refresh: bool = False,
    progress: bool = True,
    name: str | None = None,
) -> pd.DataFrame:
    """The complete result of ``target`` as a typed frame with provenance in ``attrs``."""
    url = _server_url(session)
    started = time.monotonic()
    fetched_at = datetime.now(timezone.utc)
    with _Progress(progress, name or target.label) as bar, _parameter_errors(target, url):
        if limit is not None and limit <= QUERY_ROW_CAP:
            fetched = _via_query(session, target, parameters, limit, refresh, bar, api=True)
        else:
            fetched = _via_api(session, target, parameters, limit, refresh, bar)
    frame = fetched.frame
    truncated = False
    if limit is None and fetched.source != "query" and len(frame) in _EXPORT_CAPS:
        truncated = True
        warnings.warn(
            f"{target.label} returned {len(frame):,} rows, Metabase's export maximum; "
            "the result may be missing rows. Filter it with parameters.",
            IncompleteResultWarning,
            stacklevel=3,
        )
    frame.attrs["massive"] = {
        "url": url,
        "card_id": target.card_id,
        "name": name,
        "dashboard_id": target.dashboard_id,
        "dashcard_id": target.dashcard_id,
        "parameters": parameters,
        "row_count": len(frame),
        "limit": limit,
        "source": fetched.source,
        "truncated": truncated,
        "cached": fetched.cached,
        "results_timezone": fetched.results_timezone,
        "fetched_at": fetched_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "elapsed": round(time.monotonic() - started, 3),
    }
    return frame


def _export_form(parameters: list[dict[str, Any]]) -> dict[str, str]:
    return {
        "parameters": json.dumps(parameters),
        "format_rows": "false",
        "pivot_results": "false",
    }


def _refused(exc: MassiveError) -> bool:
    """Whether an export error means "this server does not offer that export here"."""
    status = 404 if isinstance(exc, CardNotFound) else getattr(exc, "status", None)
    return status in _REFUSED


def _open_api_export(
    session: MetabaseSession, target: QueryTarget, form: dict[str, str]
) -> Any | None:
    """The streaming ``api`` export response, or None when this server refuses that export."""
    try:
        with _card_errors(session, target):
            return session.request("POST", target.path + "/api", data=form, stream=True)
    except (CardNotFound, ResponseError) as exc:
        if not _refused(exc) or _is_invalid_parameter(exc):
            raise
        return None


def _via_api(
    session: MetabaseSession,
    target: QueryTarget,
    parameters: list[dict[str, Any]],
    limit: int | None,
    refresh: bool,
    bar: _Progress,
) -> _Fetched:
    """The ``api`` export first: one request, and the warehouse runs the query once.

    Its ``cols`` follow the rows, so the rows are stored untyped and converted
    when the tail arrives. If ``limit`` stops the stream first, the columns come
    from a ``/query`` answer (at most 2,000 rows). A server that refuses the
    export gets the ``/query`` route.
    """
    url = _server_url(session)
    response = _open_api_export(session, target, _export_form(parameters))
    if response is None:
        return _via_query(session, target, parameters, limit, refresh, bar, api=False)
    builder = FrameBuilder()
    try:
        tail = _stream_rows(target, response, builder, limit, bar, url)
    finally:
        response.close()
    if tail is None:  # stopped at the limit, before the columns
        data = _query_answer(session, target, parameters, refresh, bar)["data"]
        zone = data.get("results_timezone")
        frame = builder.build(data.get("cols") or [], results_timezone=zone)
        return _Fetched(frame, "api", None, zone)
    data = tail.get("data") if isinstance(tail.get("data"), dict) else {}
    cols = data.get("cols")
    if not isinstance(cols, list) or not all(isinstance(c, dict) for c in cols):
        raise ResponseError(
            f"{target.label}: Metabase's export has no column list; run it again.", url=url
        )
    zone = data.get("results_timezone")
    frame = builder.build(cols, results_timezone=zone)
    return _Fetched(frame, "api", tail.get("cached"), zone)


def _via_query(
    session: MetabaseSession,
    target: QueryTarget,
    parameters: list[dict[str, Any]],
    limit: int | None,
    refresh: bool,
    bar: _Progress,
    *,
    api: bool,
) -> _Fetched:
    """``/query`` (capped, typically at 2,000 rows); past the cap, an export with its cols.

    ``api=False`` when the server refused the ``api`` export: then the csv one.
    """
    answer = _query_answer(session, target, parameters, refresh, bar)
    data = answer["data"]
    rows: list[Any] = data["rows"]
    zone = data.get("results_timezone")
    if data.get("rows_truncated") and (limit is None or limit > len(rows)):
        cols = data.get("cols") or []
        form = _export_form(parameters)
        if api:
            frame, source = _export(session, target, form, cols, zone, limit, bar)
        else:
            frame, source = _csv_export(session, target, form, cols, zone, limit, bar), "csv"
        return _Fetched(frame, source, answer.get("cached"), zone)
    if limit is not None and limit < len(rows):
        data = {**data, "rows": rows[:limit]}
    return _Fetched(frame_from_result(data), "query", answer.get("cached"), zone)


def _query_answer(
    session: MetabaseSession,
    target: QueryTarget,
    parameters: list[dict[str, Any]],
    refresh: bool,
    bar: _Progress,
) -> dict[str, Any]:
    """``POST <query path>``: a completed answer with ``data.rows``, or an error."""
    url = _server_url(session)
    body = {"parameters": parameters, "ignore_cache": bool(refresh)}
    answer = _post_json(session, target, body, bar)
    _raise_if_failed(answer, target, url)
    data = answer.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
        raise ResponseError(
            f"{target.label}: Metabase's answer has no rows; run it again.", url=url
        )
    _check_row_count(answer, len(data["rows"]), target, url)
    return answer


def _check_row_count(
    answer: Mapping[str, Any], received: int, target: QueryTarget, url: str
) -> None:
    """A result shorter (or longer) than Metabase's own ``row_count`` is an error."""
    count = answer.get("row_count")
    if isinstance(count, int) and count != received:
        raise ResponseError(
            f"{target.label}: Metabase announced {count} rows but sent {received}; run it again.",
            url=url,
        )


def _export(
    session: MetabaseSession,
    target: QueryTarget,
    form: dict[str, str],
    cols: list[dict[str, Any]],
    timezone_name: str | None,
    limit: int | None,
    bar: _Progress,
) -> tuple[pd.DataFrame, str]:
    """Stream the complete result from the api export, or read the csv export."""
    url = _server_url(session)
    response = _open_api_export(session, target, form)
    if response is None:
        return _csv_export(session, target, form, cols, timezone_name, limit, bar), "csv"
    builder = FrameBuilder(cols, results_timezone=timezone_name)
    try:
        tail = _stream_rows(target, response, builder, limit, bar, url)
    finally:
        response.close()
    if tail is not None:
        data = tail.get("data") if isinstance(tail.get("data"), dict) else {}
        names = [c.get("name") for c in cols]
        tail_names = [c.get("name") for c in data.get("cols") or [] if isinstance(c, dict)]
        if tail_names != names:
            raise ResponseError(
                f"{target.label}: the columns changed between two requests ({names} then "
                f"{tail_names}); the card was probably edited. Run it again.",
                url=url,
            )
    return builder.build(), "api"


def _stream_rows(
    target: QueryTarget,
    response: Any,
    builder: FrameBuilder,
    limit: int | None,
    bar: _Progress,
    url: str,
) -> dict[str, Any] | None:
    """Feed an ``api`` export's rows to ``builder``; return its tail, checked.

    ``None`` when ``limit`` rows arrived first: reading stops there (the caller
    closes the response, which hangs up).
    """
    with _Prefetch(_chunks(response, bar, target, url), response) as chunks:
        stream = ApiRowStream(chunks, batch_bytes=_BATCH_BYTES)
        for batch in stream:
            if limit is not None and builder.row_count + len(batch) > limit:
                builder.add_rows(batch[: limit - builder.row_count])
                return None  # enough rows: stop reading
            builder.add_rows(batch)  # exactly ``limit`` rows may be all: read on to the tail
    tail = stream.tail if isinstance(stream.tail, dict) else {}
    _raise_if_failed(tail, target, url)
    _check_row_count(tail, builder.row_count, target, url)
    return tail


def _csv_export(
    session: MetabaseSession,
    target: QueryTarget,
    form: dict[str, str],
    cols: list[dict[str, Any]],
    timezone_name: str | None,
    limit: int | None,
    bar: _Progress,
) -> pd.DataFrame:
    url = _server_url(session)
    with _card_errors(session, target):
        response = session.request("POST", target.path + "/csv", data=form, stream=True)
    try:
        with _Prefetch(_chunks(response, bar, target, url), response) as chunks:
            body = b"".join(chunks)
    finally:
        response.close()
    if body.lstrip()[:1] == b"{":
        # A failed query answers a csv download with a JSON error document.
        _raise_if_failed(_parse(body, target, url), target, url)
        raise ResponseError(f"{target.label}: the csv export is not CSV; run it again.", url=url)
    frame = frame_from_csv(cols, body, results_timezone=timezone_name)
    return frame.head(limit) if limit is not None else frame


def _post_json(
    session: MetabaseSession, target: QueryTarget, body: dict[str, Any], bar: _Progress
) -> dict[str, Any]:
    url = _server_url(session)
    with _card_errors(session, target):
        response = session.request("POST", target.path, json=body, stream=True)
    try:
        raw = b"".join(_chunks(response, bar, target, url))
    finally:
        response.close()
    return _as_object(_parse(raw, target, url), target.path)


def _chunks(response: Any, bar: _Progress, target: QueryTarget, url: str) -> Iterator[bytes]:
    """The body in chunks, counted for the progress bar; a cut connection is an error."""
    try:
        for chunk in response.iter_content(chunk_size=_CHUNK):
            if chunk:
                bar.add(len(chunk))
                yield chunk
    except OSError as exc:  # requests' errors derive from OSError (IOError)
        raise ResponseError(
            f"{target.label}: the answer from {url} ended early ({type(exc).__name__}). "
            "Nothing was kept; run it again.",
            url=url,
        ) from None


class _Prefetch:
    """Read a body's chunks in a thread, so the download overlaps with parsing.

    Socket reads release the GIL, so while the main thread turns one batch into
    columns the next megabytes keep arriving instead of waiting in the server's
    send buffer. At most ``_READ_AHEAD`` chunks are held; errors from the reader
    are raised in the consumer; leaving early stops the reader.
    """

    _DONE = object()

    def __init__(self, chunks: Iterator[bytes], response: Any) -> None:
        self._chunks = chunks
        self._response = response
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=_READ_AHEAD)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="massive-read", daemon=True)

    def __enter__(self) -> Iterator[bytes]:
        self._thread.start()
        return self._consume()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            # Leaving early (a limit, an error): hang up rather than wait for more bytes.
            with contextlib.suppress(Exception):
                self._response.close()
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):  # unblock a reader waiting to put
                self._queue.get(timeout=0.05)
        self._thread.join()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _read(self) -> None:
        try:
            for chunk in self._chunks:
                if not self._put(chunk):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(exc)
            return
        self._put(self._DONE)

    def _consume(self) -> Iterator[bytes]:
        while True:
            item = self._queue.get()
            if item is self._DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item


def _parse(raw: bytes, target: QueryTarget, url: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        what = "is empty" if not raw.strip() else "is not valid JSON (it may have been cut off)"
        raise ResponseError(
            f"{target.label}: the answer from {url} {what}; run it again.", url=url
        ) from None


def _as_object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ResponseError(f"Metabase answered {path} with something other than an object.")
    return value


_HINTS = {
    "missing-required-parameter": (
        "Give it a value with params={{...}}; Client.card_info({ref}) lists the parameters."
    ),
    "invalid-parameter": (
        "Check the parameter values; Client.card_info({ref}) shows each parameter's type."
    ),
    "timed-out": "The query hit Metabase's time limit; narrow it with parameters.",
    "missing-required-permissions": "Ask a Metabase admin for access to the card's data.",
}


def _raise_if_failed(answer: Mapping[str, Any], target: QueryTarget, url: str) -> None:
    """Metabase answers a failed query with 202/200 and ``"status": "failed"``."""
    status = answer.get("status")
    if status in (None, "completed"):
        return
    error = answer.get("error")
    error_text = error if isinstance(error, str) and error else "Error running query"
    error_type = answer.get("error_type") if isinstance(answer.get("error_type"), str) else None
    hint = _HINTS.get(error_type or "", "Open the card in Metabase to see the same error.")
    details = {
        k: answer[k] for k in ("class", "state", "error_type", "card_id", "status") if k in answer
    }
    raise QueryFailed(
        f"{target.label} failed on {url}: {error_text.strip()} {hint.format(ref=target.card_id)}",
        error=error_text,
        error_type=error_type,
        card_id=target.card_id,
        details=details,
    )


def _is_invalid_parameter(exc: MassiveError) -> bool:
    """Metabase's 500 for a parameter the card does not declare (any more)."""
    return isinstance(exc, ResponseError) and exc.status == 500 and "Invalid parameter" in str(exc)


@contextmanager
def _parameter_errors(target: QueryTarget, url: str) -> Iterator[None]:
    """A 500 "Invalid parameter" means the declarations we built from are stale."""
    try:
        yield
    except ResponseError as exc:
        if not _is_invalid_parameter(exc):
            raise
        if target.dashboard_id is None:
            advice = (
                "the card's parameters changed on the server since they were read. "
                "Run it again with refresh=True to re-read them."
            )
        else:
            advice = "check the dashboard's filters in Metabase."
        detail = str(exc).split(": ", 1)[-1]
        raise ParameterError(f"{target.label} on {url}: {detail} — {advice}") from exc


@contextmanager
def _card_errors(session: MetabaseSession, target: QueryTarget) -> Iterator[None]:
    """Translate 404/403 into messages that name the card and say what to do next."""
    try:
        yield
    except CardNotFound:
        raise
    except NotFound as exc:
        url = _server_url(session)
        if target.dashboard_id is None:
            message = (
                f"Card {target.card_id} not found on {url}. Check the id in the card's URL "
                f"(/question/<id>-…); {_CARD_LIST_HINT}"
            )
        else:
            message = (
                f"Card {target.card_id} is not on dashboard {target.dashboard_id} "
                f"(dashcard {target.dashcard_id}) on {url}; reload the dashboard."
            )
        raise CardNotFound(message, card_id=target.card_id) from exc
    except AccessDenied as exc:
        raise AccessDenied(
            f"You may not read card {target.card_id} on {_server_url(session)} (Metabase "
            f"answered 403). Ask a Metabase admin for access to its collection; {_CARD_LIST_HINT}"
        ) from exc


def _server_url(session: MetabaseSession) -> str:
    settings = getattr(session, "settings", None)
    return str(getattr(settings, "url", "") or "Metabase")


# -- progress ------------------------------------------------------------------


class _Progress:
    """A tqdm bar that appears after a second: elapsed time first, then bytes.

    tqdm only redraws on ``update``, so a small thread ticks it while the server
    is still thinking. ``enabled=False`` (``Client(progress=False)``) makes it a no-op.
    """

    def __init__(self, enabled: bool, desc: str) -> None:
        self.enabled = enabled
        self.desc = desc
        self._bar: Any = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                desc=self.desc, unit="B", unit_scale=True, unit_divisor=1024, delay=1.0
            )
            self._ticker = threading.Thread(target=self._tick, daemon=True)
            self._ticker.start()
        return self

    def _tick(self) -> None:
        while not self._stop.wait(0.25):
            with self._lock:
                if self._bar is not None:
                    self._bar.update(0)

    def add(self, count: int) -> None:
        if self._bar is not None:
            with self._lock:
                self._bar.update(count)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        if self._bar is not None:
            with self._lock:
                self._bar.close()
                self._bar = None
