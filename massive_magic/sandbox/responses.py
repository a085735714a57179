"""The answer an endpoint hands to the HTTP layer, and the bodies every endpoint shares."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from .catalog import BadRequest

JSON_TYPE = "application/json; charset=utf-8"
NOT_FOUND = "Not found."
FORBIDDEN = "You don't have permissions to do that."
UNAUTHENTICATED = "Unauthenticated"


@dataclass
class Response:
    """A complete answer (``body``) or a streamed one (``chunks``).

    ``streamed`` marks Metabase's ``StreamingResponse`` (the query endpoints): sent chunked
    with ``X-Accel-Buffering: no`` and ``Connection: close`` (metabase-api.md §4.7), where
    a complete answer keeps the connection alive.
    """

    status: int
    body: bytes = b""
    content_type: str = JSON_TYPE
    headers: list[tuple[str, str]] = field(default_factory=list)
    chunks: Iterable[bytes] | None = None
    streamed: bool = False

    @property
    def is_json(self) -> bool:
        return self.content_type.startswith("application/json")


def json_answer(status: int, obj: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, orjson.dumps(obj), JSON_TYPE, headers or [])


def text_answer(status: int, text: str) -> Response:
    return Response(status, text.encode(), "text/plain")


def streamed_answer(
    status: int,
    chunks: Iterable[bytes],
    content_type: str = JSON_TYPE,
    headers: list[tuple[str, str]] | None = None,
) -> Response:
    return Response(status, b"", content_type, headers or [], chunks=chunks, streamed=True)


def errors400(key: str, message: str) -> BadRequest:
    """A validation failure answered as E3 JSON ``{"errors": {key: message}}``."""
    return BadRequest(400, message, {key: message})


def throwable(message: str, data: dict[str, Any]) -> dict[str, Any]:
    """Clojure's ``Throwable->map`` plus ``message`` and the ex-data, as Metabase's E4 body."""
    trace = [
        ["metabase.query_processor.card$validate_card_parameters", "invokeStatic", "card.clj", 238],
        ["metabase.query_processor.card$process_query_for_card", "invokeStatic", "card.clj", 305],
        ["metabase.queries.api.card$run_query_for_card_async", "invokeStatic", "card.clj", 812],
    ]
    return {
        "via": [
            {
                "type": "clojure.lang.ExceptionInfo",
                "message": message,
                "data": data,
                "at": trace[0],
            }
        ],
        "trace": trace,
        "cause": message,
        "data": data,
        "message": message,
        **data,
    }
