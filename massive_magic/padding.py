"""Refusing an answer padded with whitespace, as its chunks arrive.

A run of more than ``WHITESPACE_RUN_LIMIT`` (16 MiB) of whitespace anywhere in a
body -- before the document, between tokens, or inside a text value -- raises
``ResponseError`` as soon as the run passes the limit, without reading the rest.
No JSON writer pads like that, and no result holds a cell of 16 MiB of blanks; a
proxy or server fault does. Used on every JSON body: the ``api`` export's rows
(:mod:`~massive_magic.rowstream`) and the answers read whole (``/query``, csv).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from massive_magic.errors import ResponseError

__all__ = ["WHITESPACE_RUN_LIMIT", "limit_whitespace"]

_WS = b" \t\r\n"
#: The longest run of whitespace a body may hold (see the module docstring).
WHITESPACE_RUN_LIMIT = 16 << 20
# Whitespace runs are measured on windows of at most this size, so the run
# inside one window is never the one that passes the limit unnoticed.
_RUN_WINDOW = 1 << 20

_PADDED = (
    "The answer holds more than {limit} of whitespace in a row, which no Metabase "
    "result does (a proxy or server fault padded it); reading stopped there."
)


def limit_whitespace(
    chunks: Iterable[bytes], max_run: int = WHITESPACE_RUN_LIMIT
) -> Iterator[bytes]:
    """The non-empty chunks as ``bytes``; a ResponseError once a whitespace run passes
    ``max_run``, before the rest is read (any JSON answer, in rows or read whole).

    Each window is stripped at both ends (C speed): a run is the trailing whitespace of
    one window, whole windows of it, and the leading whitespace of the next.
    """
    max_run = max(1, max_run)
    window = min(_RUN_WINDOW, max_run)
    run = 0
    for raw in chunks:
        if not raw:
            continue
        chunk = bytes(raw)
        for start in range(0, len(chunk), window):
            part = chunk if len(chunk) <= window else chunk[start : start + window]
            body = part.lstrip(_WS)
            run += len(part) - len(body)
            if run > max_run:
                raise ResponseError(_PADDED.format(limit=_size(max_run)))
            if body:
                run = len(body) - len(body.rstrip(_WS))
        yield chunk


def _size(n: int) -> str:
    return f"{n >> 20} MiB" if n % (1 << 20) == 0 else f"{n:,} bytes"
