"""Streamed query bodies (``api``, ``json``, ``csv``), one batch of rows at a time.

A request never holds more than one batch of its payload.  Like Metabase's writers, the
``api`` writer sends ``{"data":{"rows":[`` first and the columns after the rows; when the
query fails once rows are streaming, the error object is appended to the half-written
document and the body is completed (``streaming_response/write-error!``, #60295).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from .catalog import QueryError
from .values import STYLE_API, STYLE_EXPORT, Table, rows_of

BATCH_ROWS = 20_000


@dataclass
class Breakdown:
    """The query fails after ``after_rows`` rows (the ``query_error_next`` fault)."""

    after_rows: int
    error: QueryError


def _batches(table: Table, breakdown: Breakdown | None) -> Iterator[tuple[int, int]]:
    end = table.length if breakdown is None else min(table.length, breakdown.after_rows)
    for start in range(0, end, BATCH_ROWS):
        yield start, min(start + BATCH_ROWS, end)
    if breakdown is not None:
        raise breakdown.error


def completed_on_failure(
    chunks: Iterator[bytes], error_body: Callable[[QueryError], bytes]
) -> Iterator[bytes]:
    """``chunks``, then the error object if producing them fails: the body still ends."""
    try:
        yield from chunks
    except QueryError as exc:
        yield error_body(exc)
    except Exception as exc:  # a sandbox bug mid-stream: Metabase writes any Throwable
        yield error_body(QueryError(f"{type(exc).__name__}: {exc}", "qp"))


def api_stream(
    table: Table,
    tz: Any,
    data_rest: dict[str, Any],
    rest: Callable[[], dict[str, Any]],
    *,
    js_int_to_string: bool = False,
    breakdown: Breakdown | None = None,
) -> Iterator[bytes]:
    """``{"data":{"rows":[`` first, rows batch by batch, then ``data_rest`` and ``rest()``."""
    yield b'{"data":{"rows":['
    first = True
    for start, stop in _batches(table, breakdown):
        rows = rows_of(table, start, stop, STYLE_API, tz, js_int_to_string=js_int_to_string)
        body = orjson.dumps(rows)[1:-1]
        yield body if first else b"," + body
        first = False
    yield b"]," + orjson.dumps(data_rest)[1:] + b"," + orjson.dumps(rest())[1:]


def json_stream(
    table: Table, tz: Any, style: str, breakdown: Breakdown | None = None
) -> Iterator[bytes]:
    """An array of objects keyed by display name (duplicates collapse, like ``zipmap``)."""
    names = [c.display_name for c in table.columns]
    yield b"["
    first = True
    for start, stop in _batches(table, breakdown):
        rows = rows_of(table, start, stop, style, tz)
        body = orjson.dumps([dict(zip(names, r, strict=False)) for r in rows])[1:-1]
        yield body if first else b"," + body
        first = False
    yield b"]"


def csv_stream(
    table: Table, tz: Any, style: str, breakdown: Breakdown | None = None
) -> Iterator[bytes]:
    """A header row of display names, then the rows (booleans as ``true``/``false``)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([c.display_name for c in table.columns])
    yield buf.getvalue().encode()
    bool_cols = [i for i, c in enumerate(table.columns) if c.kind == "bool"]
    for start, stop in _batches(table, breakdown):
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        rows: list[tuple | list[Any]] = list(rows_of(table, start, stop, style, tz))
        if bool_cols and style == STYLE_EXPORT:
            rows = [_csv_bools(r, bool_cols) for r in rows]
        writer.writerows(rows)
        yield buf.getvalue().encode()


def _csv_bools(row: tuple | list[Any], idx: list[int]) -> list[Any]:
    out = list(row)
    for i in idx:
        if out[i] is not None:
            out[i] = "true" if out[i] else "false"
    return out
