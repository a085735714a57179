"""Incremental parser for Metabase's ``api`` export body.

``POST /api/card/:id/query/api`` answers the whole result in one JSON document
that begins ``{"data":{"rows":[`` and then streams the rows, followed by
``"cols"`` and the other keys. A million-row answer is ~100 MB; parsing it whole
keeps the body *and* a million Python lists in memory at once. ``ApiRowStream``
instead parses it batch by batch from the byte chunks as they arrive:

* keep a buffer (about ``batch_bytes``); find the last row separator ``],[`` in
  it (whitespace allowed);
* ``orjson.loads(b"[" + buf[:sep+1] + b"]")``: a separator inside a string or a
  nested array leaves an unterminated string or unbalanced brackets, so that
  prefix is invalid JSON and we back off to the previous separator; a prefix
  that parses ends exactly at a row boundary, because JSON parsing is
  deterministic left to right. A tiny parse of the last few rows first skips
  hopeless separators cheaply; if several cuts still fail, an exact row-by-row
  scan (stdlib ``json``) takes over for that batch;
* at the end, ``{"data":{"rows":[`` + the remainder is a complete document that
  holds the last rows and the tail (``cols``, ``status``, ...).

A body that does not start with the rows (an error document
``{"status":"failed",...}``, another key order) is parsed whole. Invalid JSON or
a body that ends early raises ``ResponseError`` -- never a silently shorter
result -- except Metabase's failure mid-stream (#60295: its error object follows
the last row written): that object becomes the ``tail``, for the caller to raise.

Each slice is parsed with :func:`~massive_magic.exactjson.loads_exact` (orjson,
or the stdlib where orjson would lose an integer's digits).

The work is linear in the body, whatever its shape: the opening tokens are
matched chunk by chunk (whitespace between them is dropped as it arrives), and
after a cut that leaves ``r`` bytes behind the next cut waits for at least
``2 * r`` bytes, so no byte is joined, scanned or parsed more than a constant
number of times (``ApiRowStream.work`` counts them; the tests hold it to a
multiple of the body's size).

Padding is refused early (:mod:`~massive_magic.padding`): a run of more than
16 MiB of whitespace anywhere in the body raises ``ResponseError`` as soon as the
run passes the limit, without reading the rest.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from massive_magic.errors import ResponseError
from massive_magic.exactjson import InvalidJSON, loads_exact
from massive_magic.padding import WHITESPACE_RUN_LIMIT, limit_whitespace

__all__ = ["ApiRowStream"]

_WS_RUN = re.compile(rb"[ \t\r\n]*")
_WS_TEXT = re.compile(r"[ \t\r\n]*")
# The tokens an ``api`` body starts with, whitespace allowed between them.
_PREFIX_TOKENS = (b"{", b'"data"', b":", b"{", b'"rows"', b":", b"[")
# A row boundary: the ``]`` closing a row, a comma, the ``[`` opening the next.
_SEPARATOR = re.compile(rb"\][ \t\r\n]*,[ \t\r\n]*\[")
# Backing off further than this means rows full of nested arrays or strings that
# look like separators; the exact (slower) row-by-row scan takes over then.
_MAX_ATTEMPTS = 4
# Candidates looked at (most skipped by a tiny local parse) before the exact scan.
_MAX_CANDIDATES = 64
_BROKEN = (
    "The answer ended early or was not valid JSON. Metabase does this when a query "
    "fails mid-stream; run it again or check the card in Metabase."
)


# Where an object appended to the rows may start: after a row's ``]``, or at the start.
_FAILURE_START = re.compile(rb"(?:^|\])[ \t\r\n,]*(?=\{)")
_FAILURE_TRIES = 16


def _appended_failure(rest: bytes) -> dict[str, Any] | None:
    """The ``{"status":"failed",...}`` object a query failing mid-stream appends to the
    rows (invalid JSON, #60295), or None: the failure's own words, for the caller."""
    starts = [match.end() for match in _FAILURE_START.finditer(rest)]
    for start in reversed(starts[-_FAILURE_TRIES:]):  # it ends the body: try from the end
        try:
            doc = orjson.loads(rest[start:])
        except orjson.JSONDecodeError:
            continue
        if isinstance(doc, dict) and doc.get("status") == "failed":
            return doc
    return None


def _plausible(buf: bytes, matches: list[tuple[int, int]], idx: int) -> tuple[bool, int]:
    """Whether the separator ``matches[idx]`` looks like a real row boundary.

    A real boundary closes a row that began at one of the few separators before
    it, so ``[`` + that stretch + ``]`` parses; a ``],[`` inside a string or a
    nested array leaves it unterminated. These parses are a few rows long, so a
    hopeless cut costs microseconds instead of a whole failed batch parse. Only
    a hint: the parse of the whole batch decides. Also returns the bytes parsed.
    """
    if idx == 0:
        return True, 0  # no evidence in this window: let the batch parse decide
    close = matches[idx][0]
    parsed = 0
    for j in range(idx - 1, max(idx - 5, -1), -1):
        piece = buf[matches[j][1] : close + 1]
        parsed += len(piece)
        try:
            orjson.loads(b"[" + piece + b"]")
        except orjson.JSONDecodeError:
            continue
        return True, parsed
    return False, parsed


def _skip_ws(buf: bytes, i: int) -> int:
    match = _WS_RUN.match(buf, i)
    return match.end() if match else i


def _skip_ws_text(text: str, i: int) -> int:
    match = _WS_TEXT.match(text, i)
    return match.end() if match else i


def _match_prefix(buf: bytes) -> tuple[int | bool | None, bytes]:
    """Where the rows start in ``buf``, and what to keep of it while that is unknown.

    ``(index just after the rows' [, buf)``; ``(False, buf)`` for another document;
    ``(None, kept)`` when more bytes are needed: ``kept`` is the tokens matched so
    far without the whitespace between them, plus the start of the next token, so
    the bytes kept stay a few dozen however much whitespace came.
    """
    i = 0
    for k, token in enumerate(_PREFIX_TOKENS):
        i = _skip_ws(buf, i)
        available = buf[i : i + len(token)]
        if available != token[: len(available)]:
            return False, buf
        if len(available) < len(token):
            return None, b"".join(_PREFIX_TOKENS[:k]) + available
        i += len(token)
    return i, buf


class ApiRowStream:
    """Row batches parsed incrementally from an ``api`` export body.

    ``chunks`` is any iterable of ``bytes`` (``response.iter_content(1 << 20)``).
    Iterating yields ``list[list]`` batches of roughly ``batch_bytes`` of JSON
    each; after the iteration ends, ``tail`` is the rest of the document as a
    dict (``data.cols``, ``data.results_timezone``, ``status``, ``row_count``...,
    with ``data.rows`` removed) and ``row_count`` the number of rows yielded.
    The iteration raises ``ResponseError`` for invalid or truncated JSON, and for
    a run of more than ``max_whitespace_run`` bytes of whitespace (see the module
    docstring), after possibly yielding some batches: a consumer must not use a
    partial result.

    ``work`` counts the bytes the stream itself copied, scanned or parsed (not
    the chunks' arrival): a deterministic measure of its cost, linear in the body.
    """

    def __init__(
        self,
        chunks: Iterable[bytes],
        *,
        batch_bytes: int = 1 << 20,
        max_whitespace_run: int = WHITESPACE_RUN_LIMIT,
    ) -> None:
        self._max_run = max(1, max_whitespace_run)
        self._chunks = self._guarded(chunks)
        self._batch_bytes = max(1, batch_bytes)
        self.tail: dict[str, Any] | None = None
        self.row_count = 0
        self.work = 0
        self._consumed = False

    def __repr__(self) -> str:
        state = "done" if self.tail is not None else "pending"
        return f"<ApiRowStream {state} rows={self.row_count}>"

    def __iter__(self) -> Iterator[list[list[Any]]]:
        if self._consumed:
            return
        self._consumed = True
        for batch in self._batches():
            if batch:
                self.row_count += len(batch)
                yield batch

    # -- padding --------------------------------------------------------------

    def _guarded(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """The chunks through :func:`limit_whitespace`, counted as work (two passes)."""
        for chunk in limit_whitespace(chunks, self._max_run):
            self.work += 2 * len(chunk)
            yield chunk

    # -- the two modes ------------------------------------------------------

    def _batches(self) -> Iterator[list[list[Any]]]:
        head = b""
        for chunk in self._chunks:
            head += chunk
            self.work += len(head)
            start, head = _match_prefix(head)
            if start is None:
                continue
            if start is False:
                yield from self._whole(head)
            else:
                assert start is not True
                yield from self._rows(head[start:])
            return
        yield from self._whole(head)

    def _whole(self, head: bytes) -> Iterator[list[list[Any]]]:
        """Not an ``api`` body (or too short to tell): parse it in one piece."""
        parts = [head]
        parts.extend(self._chunks)
        body = b"".join(parts)
        del parts
        self.work += 2 * len(body)  # joined, parsed
        try:
            doc = loads_exact(body)
        except InvalidJSON as exc:
            raise ResponseError(_BROKEN) from exc
        if not isinstance(doc, dict):
            raise ResponseError(
                "The answer is not a Metabase query result (expected a JSON object); "
                "check the card in Metabase."
            )
        rows = self._take_rows(doc)
        self.tail = doc
        if rows:
            yield rows

    def _rows(self, rest: bytes) -> Iterator[list[list[Any]]]:
        """The rows come first: parse them in batches as the bytes arrive.

        A cut is tried once ``batch_bytes`` have gathered, and never before the
        buffer is twice what the last cut left behind: a long row, or whitespace
        between rows, is then looked at a constant number of times per byte
        instead of once per chunk.
        """
        pending: list[bytes] = [rest]
        size = len(rest)
        threshold = self._batch_bytes
        for chunk in self._chunks:
            pending.append(chunk)
            size += len(chunk)
            if size < threshold:
                continue
            buf = b"".join(pending)
            self.work += len(buf)
            rows, buf = self._cut(buf)
            pending = [buf]
            size = len(buf)
            threshold = max(self._batch_bytes, 2 * size)
            if rows:
                yield rows
        # The stream ended: the remainder + the consumed prefix is the whole rest.
        buf = b"".join(pending)
        del pending
        self.work += 2 * len(buf)  # joined, parsed
        try:
            doc = loads_exact(b'{"data":{"rows":[' + buf)
        except InvalidJSON as exc:
            failure = _appended_failure(buf)
            if failure is None:
                raise ResponseError(_BROKEN) from exc
            self.tail = failure  # the rows before it are not a result: the caller raises
            return
        rows = self._take_rows(doc)
        self.tail = doc
        if rows:
            yield rows

    # -- helpers -----------------------------------------------------------------

    @staticmethod
    def _take_rows(doc: dict[str, Any]) -> list[list[Any]]:
        data = doc.get("data")
        if not isinstance(data, dict):
            return []
        rows = data.pop("rows", None)
        if rows is None:
            return []
        if not isinstance(rows, list) or not set(map(type, rows)) <= {list}:
            raise ResponseError(
                "The answer's data.rows is not a list of rows; check the card in Metabase."
            )
        return rows

    def _cut(self, buf: bytes) -> tuple[list[list[Any]], bytes]:
        """Parse the complete rows at the start of ``buf``; return them and the remainder.

        ``buf`` starts at a row's ``[`` (after optional whitespace); so does the
        remainder, unless nothing could be cut.
        """
        first = _skip_ws(buf, 0)
        self.work += first
        if first >= len(buf) or buf[first] != 0x5B:  # "[": not a row (end of rows?)
            return [], buf
        end = len(buf)
        window = 1 << 12
        attempts = candidates = 0
        while attempts < _MAX_ATTEMPTS and candidates < _MAX_CANDIDATES and end > first:
            lo = max(first, end - window)
            self.work += min(end + 64, len(buf)) - lo
            matches = [
                (m.start(), m.end() - 1)
                for m in _SEPARATOR.finditer(buf, lo, end + 64)
                if m.start() < end
            ]
            if not matches:
                if lo == first:
                    break
                window *= 4
                continue
            for idx in range(len(matches) - 1, -1, -1):
                close, next_row = matches[idx]
                candidates += 1
                if candidates >= _MAX_CANDIDATES:
                    break
                plausible, parsed = _plausible(buf, matches, idx)
                self.work += parsed
                if not plausible:
                    continue  # a "],[" inside a string or a nested array
                attempts += 1
                self.work += close + 1 - first
                try:
                    rows = loads_exact(b"[" + buf[first : close + 1] + b"]")
                except InvalidJSON:
                    if attempts >= _MAX_ATTEMPTS:
                        break
                    continue
                if not set(map(type, rows)) <= {list}:
                    raise ResponseError(
                        "The answer's data.rows is not a list of rows; check the card in Metabase."
                    )
                self.work += len(buf) - next_row
                return rows, buf[next_row:]
            end = matches[0][0]
        return self._scan(buf, first)

    def _scan(self, buf: bytes, first: int) -> tuple[list[list[Any]], bytes]:
        """Exact but slower: decode the rows one by one with the stdlib scanner.

        Used when several candidate cuts in a row failed (rows full of nested
        arrays or of strings that contain ``],[``), so memory stays bounded.
        """
        decoder = json.JSONDecoder()
        # surrogateescape round-trips a multi-byte character cut at the end.
        text = buf[first:].decode("utf-8", errors="surrogateescape")
        self.work += 2 * len(text)  # decoded, scanned
        rows: list[list[Any]] = []
        i = 0
        resume = 0
        n = len(text)
        while i < n:
            try:
                row, j = decoder.raw_decode(text, i)
            except (ValueError, RecursionError):
                break
            if not isinstance(row, list):
                break
            k = _skip_ws_text(text, j)
            if k >= n or text[k] != ",":
                break  # the end of the rows, or of the bytes so far
            k = _skip_ws_text(text, k + 1)
            if k >= n or text[k] != "[":
                break
            rows.append(row)
            resume = k
            i = k
        if not rows:
            return [], buf
        self.work += n - resume
        return rows, text[resume:].encode("utf-8", errors="surrogateescape")
