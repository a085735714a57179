"""ApiRowStream: every chunking of a body yields the same rows; broken bodies raise."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import orjson
import pandas as pd
import pytest

from massive_magic.errors import ResponseError
from massive_magic.rowstream import ApiRowStream

COLS = [
    {"name": "id", "display_name": "ID", "base_type": "type/BigInteger"},
    {"name": "label", "display_name": "Label", "base_type": "type/Text"},
    {"name": "tags", "display_name": "Tags", "base_type": "type/Array"},
]
# Strings holding the separators the parser looks for, nested arrays, unicode, escapes.
ROWS: list[list[Any]] = [
    [1, "plain", None],
    [9007199254740993, "a],[b", [1, [2, 3]]],
    [-9223372036854775808, "ends]]", [[1], [2]]],
    [9223372036854775807, 'quote " and \\ and ],[ and ]],"cols"', []],
    [None, "ünïcödé ✓ \u2028 \n newline", [["x", "],["]]],
    [18446744073709551615, "", [{"k": "],["}]],
    [7, "null", None],
]


def api_body(rows: list[list[Any]], *, indent: bool = False) -> bytes:
    """Rows first, then cols and the rest, as Metabase's api export writes it."""
    doc = {
        "data": {"rows": rows, "cols": COLS, "results_timezone": "UTC", "format-rows?": False},
        "status": "completed",
        "row_count": len(rows),
        "json_query": {"parameters": [[1, 2], [3, 4]], "x": "],["},
    }
    if indent:
        return json.dumps(doc, indent=2, ensure_ascii=False).encode()
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def collect(chunks: Iterable[bytes], **kwargs: Any) -> tuple[list[list[Any]], ApiRowStream]:
    stream = ApiRowStream(chunks, **kwargs)
    rows = [row for batch in stream for row in batch]
    return rows, stream


def expected_tail(body: bytes) -> dict[str, Any]:
    doc = json.loads(body)
    del doc["data"]["rows"]
    return doc


BODY = api_body(ROWS)


@pytest.mark.parametrize("split", range(len(BODY) + 1))
def test_every_two_chunk_split_gives_the_same_rows(split: int) -> None:
    rows, stream = collect([BODY[:split], BODY[split:]], batch_bytes=1)
    assert rows == ROWS
    assert stream.tail == expected_tail(BODY)
    assert stream.row_count == len(ROWS)


@pytest.mark.parametrize("batch_bytes", [1, 7, 64, 1 << 20])
def test_one_byte_chunks(batch_bytes: int) -> None:
    rows, stream = collect([BODY[i : i + 1] for i in range(len(BODY))], batch_bytes=batch_bytes)
    assert rows == ROWS
    assert stream.tail == expected_tail(BODY)


def test_batches_come_before_the_end() -> None:
    many = [[i, f"row {i} ],[", [i]] for i in range(5000)]
    body = api_body(many)
    stream = ApiRowStream((body[i : i + 4096] for i in range(0, len(body), 4096)), batch_bytes=8192)
    sizes = [len(batch) for batch in stream]
    assert sum(sizes) == 5000
    assert len(sizes) > 10  # really incremental
    assert stream.tail is not None and stream.tail["row_count"] == 5000


def test_big_integers_are_exact() -> None:
    """orjson turns integers beyond 64 bits into floats; those batches use the stdlib."""
    huge = [[2**70, "a", None], [-(2**63) - 1, "b", None], [12345678901234567890123, "c", None]]
    body = api_body(huge + ROWS)
    for split in (0, 20, len(body) // 2):
        rows, _ = collect([body[:split], body[split:]], batch_bytes=16)
        assert rows == huge + ROWS
        assert all(type(row[0]) is int for row in rows if row[0] is not None)


@pytest.mark.parametrize(
    "body",
    [
        b' { "data" : { "rows" : [ [1, "a", null] , [2, "b", [1]] ] , "cols": [] }, '
        b'"status": "x" }',
        b'{\n  "data": {\n    "rows": [\n      [1, "a", null],\n      [2, "b", [1]]\n    ],\n'
        b'    "cols": []\n  },\n  "status": "x"\n}\n',
        b'{"status":"x","data":{"cols":[],"rows":[[1,"a",null],[2,"b",[1]]]}}',
        b'{"data":{"cols":[],"rows":[[1,"a",null],[2,"b",[1]]]},"status":"x"}',
    ],
    ids=["spaces", "indented", "status-first", "cols-first"],
)
def test_whitespace_and_other_key_orders(body: bytes) -> None:
    for split in range(len(body) + 1):
        rows, stream = collect([body[:split], body[split:]], batch_bytes=1)
        assert rows == [[1, "a", None], [2, "b", [1]]]
        assert stream.tail == {"data": {"cols": []}, "status": "x"}


def test_indented_big_document() -> None:
    body = api_body(ROWS * 50, indent=True)
    rows, stream = collect([body[i : i + 97] for i in range(0, len(body), 97)], batch_bytes=500)
    assert rows == ROWS * 50
    assert stream.tail == expected_tail(body)


def test_zero_rows() -> None:
    body = api_body([])
    for split in range(len(body) + 1):
        rows, stream = collect([body[:split], body[split:]], batch_bytes=1)
        assert rows == []
        assert stream.tail is not None and stream.tail["data"]["cols"] == COLS


def test_error_document_is_the_tail() -> None:
    error = {
        "status": "failed",
        "error": 'ERROR: relation "x" does not exist',
        "error_type": "invalid-query",
        "row_count": 0,
        "data": {"rows": [], "cols": []},
    }
    body = orjson.dumps(error)
    rows, stream = collect([body[:10], body[10:]])
    assert rows == []
    assert stream.tail == {**error, "data": {"cols": []}}


def test_empty_chunks_are_ignored() -> None:
    rows, _ = collect([b"", BODY[:5], b"", BODY[5:], b""], batch_bytes=1)
    assert rows == ROWS


@pytest.mark.parametrize("cut", sorted({*range(0, len(BODY) - 1, 3), len(BODY) - 1}))
def test_truncated_body_raises_never_fewer_rows(cut: int) -> None:
    stream = ApiRowStream([BODY[:cut]], batch_bytes=1)
    with pytest.raises(ResponseError, match="ended early or was not valid JSON"):
        for _ in stream:
            pass
    assert stream.tail is None


def test_truncated_large_body_raises_after_some_batches() -> None:
    body = api_body([[i, "x" * 20, None] for i in range(3000)])
    half = body[: len(body) // 2]
    stream = ApiRowStream([half[i : i + 500] for i in range(0, len(half), 500)], batch_bytes=1000)
    seen = 0
    with pytest.raises(ResponseError):
        for batch in stream:
            seen += len(batch)
    assert 0 < seen < 3000
    assert stream.tail is None


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   ",
        b"<html><body>502 Bad Gateway</body></html>",
        b'{"data":{"rows":[[1,"a"],[2,"b"]]',
        b'{"data":{"rows":[[1,"a"],[2,"b"]]}}trailing',
        # an object appended to the rows that is not Metabase's failure
        b'{"data":{"rows":[[1,"a"],[2,"b"],{"status":"completed","error":"x"}',
        b'{"data":{"rows":[[1,"a"],[2,"b"]{"status":"failed"}trailing',
        b'{"data":{"rows":[[1,"a"],[2,"b"]],"cols":[]},"status":"completed"',
        b'{"data":{"rows":[[1,"a"],[2,"b]],"cols":[]},"status":"completed"}',
    ],
)
def test_invalid_bodies_raise(body: bytes) -> None:
    with pytest.raises(ResponseError):
        collect([body], batch_bytes=4)


FAILURE = {"status": "failed", "error": "Error reducing rows", "error_type": "qp", "row_count": 0}


@pytest.mark.parametrize("rows", [[], [[1, "a"]], [[i, "]{x"] for i in range(500)]])
@pytest.mark.parametrize("between", [b"", b",", b"\n"])
def test_a_failure_appended_mid_stream_is_the_tail(rows: list[list[Any]], between: bytes) -> None:
    """Metabase #60295: the error object follows the last row written (invalid JSON)."""
    written = b",".join(orjson.dumps(r) for r in rows)
    body = b'{"data":{"rows":[' + written + (between if rows else b"") + orjson.dumps(FAILURE)
    for size in (7, 64, len(body)):
        chunks = [body[i : i + size] for i in range(0, len(body), size)]
        _, stream = collect(chunks, batch_bytes=16)
        assert stream.tail == FAILURE  # the caller raises its words, never a short frame


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b'{"data":{"rows":[1, 2]}}'])
def test_not_a_result_raises(body: bytes) -> None:
    with pytest.raises(ResponseError):
        collect([body])


def test_rows_full_of_separators_use_the_exact_scan() -> None:
    """Every candidate cut fails: the row-by-row fallback keeps memory bounded."""
    nested = [[i, "],[" * 5, [[1], [2], [3], [4], [5], [6]]] for i in range(400)]
    body = api_body(nested)
    stream = ApiRowStream([body[i : i + 512] for i in range(0, len(body), 512)], batch_bytes=2048)
    batches = list(stream)
    assert [row for batch in batches for row in batch] == nested
    assert len(batches) > 5


def test_iterating_twice_yields_nothing_more() -> None:
    stream = ApiRowStream([BODY])
    assert sum(len(b) for b in stream) == len(ROWS)
    assert list(stream) == []
    assert "rows=7" in repr(stream)


def test_streamed_frame_equals_the_whole_parse() -> None:
    """ApiRowStream + FrameBuilder over small chunks == frame_from_result on the document."""
    from massive_magic.frames import FrameBuilder, frame_from_result

    cols = [
        {"name": "id", "display_name": "ID", "base_type": "type/BigInteger"},
        {"name": "day", "display_name": "Day", "base_type": "type/Date"},
        {"name": "at", "display_name": "At", "base_type": "type/DateTimeWithLocalTZ"},
        {"name": "label", "display_name": "Label", "base_type": "type/Text"},
    ]
    rows = [
        [
            9007199254740993 + i if i % 2 else -9223372036854775808 + i,
            f"2024-01-{1 + i % 28:02d}T00:00:00+14:00",
            None if i % 5 == 0 else f"2024-03-{1 + i % 28:02d}T10:00:00-05:00",
            f'row {i} "],[" ]]',
        ]
        for i in range(3000)
    ]
    doc = {"data": {"rows": rows, "cols": cols, "results_timezone": "America/New_York"}}
    body = orjson.dumps(doc)
    stream = ApiRowStream((body[i : i + 1000] for i in range(0, len(body), 1000)), batch_bytes=4096)
    builder = FrameBuilder(cols, results_timezone="America/New_York")
    for batch in stream:
        builder.add_rows(batch)
    streamed = builder.build()
    pd.testing.assert_frame_equal(streamed, frame_from_result(doc["data"]))
    assert streamed["id"].iloc[1] == 9007199254740994
    assert streamed["id"].iloc[0] == -9223372036854775808
    assert streamed["day"].iloc[0] == pd.Timestamp("2024-01-01")


# -- linear work and padding (issue #10) ---------------------------------------------------

MIB = 1 << 20
TAIL = b'],"cols":[],"results_timezone":"UTC"},"status":"completed"}'


def padded(where: str, pad: bytes) -> bytes:
    """A small api body with ``pad`` at one place: before it, between tokens, in the rows..."""
    bodies = {
        "before": pad + b'{"data":{"rows":[[1,"a"],[2,"b"]' + TAIL,
        "between-tokens": b'{"data":' + pad + b'{"rows":[[1,"a"],[2,"b"]' + TAIL,
        "between-rows": b'{"data":{"rows":[[1,"a"],' + pad + b'[2,"b"]' + TAIL,
        "inside-a-row": b'{"data":{"rows":[[1,"a"],[2,' + pad + b'"b"]' + TAIL,
        "after-the-rows": b'{"data":{"rows":[[1,"a"],[2,"b"]' + pad + TAIL,
        "error-document": b'{"status":"failed",' + pad + b'"error":"boom","data":{"rows":[]}}',
    }
    return bodies[where]


def chunked(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


PLACES = [
    "before",
    "between-tokens",
    "between-rows",
    "inside-a-row",
    "after-the-rows",
    "error-document",
]


@pytest.mark.parametrize("where", PLACES)
def test_work_is_linear_in_the_body_wherever_the_whitespace_is(where: str) -> None:
    """Bytes joined, scanned and parsed stay a fixed multiple of the body at every size.

    Before the fix each 16 KiB chunk re-joined and re-scanned everything buffered so
    far: the ratio grew with the body (over 100x the body at 4 MiB).
    """
    ratios = []
    for mib in (0.5, 1, 2, 4):
        body = padded(where, b" \n" * int(mib * MIB / 2))
        rows, stream = collect(chunked(body, 16 << 10), batch_bytes=16 << 10)
        assert stream.tail is not None
        if where != "error-document":
            assert rows == [[1, "a"], [2, "b"]]
        ratios.append(stream.work / len(body))
    assert max(ratios) <= 16, ratios
    assert ratios[-1] <= ratios[0] + 1, ratios  # no growth with the size


def test_work_is_linear_for_one_long_row() -> None:
    """A long text value arriving in small chunks: each cut waits for twice the rest."""
    for mib in (1, 4):
        body = api_body([[1, "x" * (mib * MIB), None], [2, "y", None]])
        rows, stream = collect(chunked(body, 8 << 10), batch_bytes=8 << 10)
        assert [row[0] for row in rows] == [1, 2]
        assert stream.work <= 16 * len(body)


def test_work_for_an_ordinary_body_is_a_small_multiple() -> None:
    body = api_body([[i, f"row {i} ],[", [i]] for i in range(20_000)])
    _, stream = collect(chunked(body, 64 << 10), batch_bytes=256 << 10)
    assert stream.work <= 8 * len(body)


def endless_whitespace() -> Iterable[bytes]:
    """A body that never ends: 1 MiB chunks of blanks, counted as they are taken."""
    while True:
        endless_whitespace.taken += 1  # type: ignore[attr-defined]
        yield b" " * MIB


@pytest.mark.parametrize("start", [b"", b'{"data":{"rows":[[1,"a"],', b'{"data":{"rows":[[1,"a"'])
def test_padding_is_refused_early_not_buffered(start: bytes) -> None:
    """More than 16 MiB of whitespace in a row: ResponseError after 17 chunks, not at the end."""
    endless_whitespace.taken = 0  # type: ignore[attr-defined]

    def body() -> Iterable[bytes]:
        yield start
        yield from endless_whitespace()

    stream = ApiRowStream(body())
    with pytest.raises(ResponseError, match="more than 16 MiB of whitespace in a row"):
        for _ in stream:
            pass
    assert endless_whitespace.taken == 17  # type: ignore[attr-defined]
    assert stream.tail is None


@pytest.mark.parametrize("where", PLACES)
def test_the_whitespace_limit_is_exact_across_chunk_boundaries(where: str) -> None:
    limit = 300
    fits, too_long = padded(where, b"\t" * limit), padded(where, b"\r\n" * 150 + b" ")
    for size in (1, 7, 64, 299, 300, 301, 4096):
        _, stream = collect(chunked(fits, size), batch_bytes=16, max_whitespace_run=limit)
        assert stream.tail is not None
        with pytest.raises(ResponseError, match="more than 300 bytes of whitespace in a row"):
            collect(chunked(too_long, size), batch_bytes=16, max_whitespace_run=limit)


def test_runs_broken_by_a_token_are_separate() -> None:
    """Whitespace is measured per run: many shorter runs are fine (pretty-printed JSON)."""
    rows = [[i, "a" * 10] for i in range(50)]
    body = b'{"data":{"rows":[' + (b" " * 200 + b",").join(orjson.dumps(r) for r in rows) + TAIL
    got, _ = collect(chunked(body, 97), batch_bytes=64, max_whitespace_run=300)
    assert got == rows


def test_a_text_value_of_blanks_under_the_limit_is_data() -> None:
    body = api_body([[1, " " * 5000, None]])
    rows, _ = collect(chunked(body, 512), max_whitespace_run=5000)
    assert rows == [[1, " " * 5000, None]]


def test_an_integer_of_thousands_of_digits_is_a_response_error() -> None:
    body = b'{"data":{"rows":[[1],[' + b"9" * 5000 + b"]" + TAIL
    with pytest.raises(ResponseError):
        collect(chunked(body, 1000), batch_bytes=100)
