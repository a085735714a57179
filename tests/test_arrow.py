"""Arrow and polars straight from the builder: one type table, the same values as pandas."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
import requests

from massive_magic import Client
from massive_magic.errors import ConfigError, ResponseError, UnknownTypeWarning
from massive_magic.frames import (
    FrameBuilder,
    arrow_attrs,
    arrow_from_csv,
    arrow_from_result,
    frame_from_csv,
    frame_from_result,
    to_polars,
    with_provenance,
)
from massive_magic.rowstream import ApiRowStream
from massive_magic.sandbox import Sandbox, demo

NY = "America/New_York"
STR = pa.large_string()


def col(name: str, kind: str, display: str | None = None) -> dict[str, Any]:
    return {"name": name, "display_name": display or name.title(), "base_type": kind}


def one_column(kind: str, values: list[Any], tz: str | None = None) -> pa.ChunkedArray:
    data = {"cols": [col("x", kind)], "rows": [[v] for v in values], "results_timezone": tz}
    return arrow_from_result(data).column("x")


def arrow_values(series: pd.Series, kind: pa.DataType) -> list[Any]:
    """The pandas column's values as Arrow's ``to_pylist`` gives them for ``kind``."""
    out: list[Any] = []
    for value in series.tolist():
        if value is None or value is pd.NA or value is pd.NaT:
            out.append(None)
        elif isinstance(value, float) and math.isnan(value):
            out.append(None)  # pandas' float64 has NaN for null; Arrow keeps the null
        elif pa.types.is_date32(kind):
            out.append(value.date())
        elif pa.types.is_timestamp(kind):
            out.append(value.to_pydatetime())
        elif pa.types.is_decimal(kind):
            out.append(decimal.Decimal(value))
        elif pa.types.is_large_string(kind) and isinstance(value, dt.time):
            out.append(value.isoformat())  # a time with its offset
        elif pa.types.is_large_string(kind) and not isinstance(value, str):
            out.append(json.dumps(value))  # JSON: compared parsed, below
        else:
            out.append(value)
    return out


def assert_same_values(frame: pd.DataFrame, table: pa.Table) -> None:
    """Column by column, the Arrow table holds exactly the pandas frame's values."""
    assert table.column_names == list(frame.columns)
    assert table.num_rows == len(frame)
    for name in frame.columns:
        kind = table.schema.field(name).type
        got, want = table.column(name).to_pylist(), arrow_values(frame[name], kind)
        if frame[name].dtype == object and pa.types.is_large_string(kind):
            # JSON text: the same text, or JSON of the same value.
            assert [_json_or_text(g) for g in got] == [_json_or_text(w) for w in want], name
        else:
            assert got == want, name


def _json_or_text(text: str | None) -> Any:
    try:
        return json.loads(text) if text is not None else None
    except ValueError:
        return text


# -- the Arrow type of every family ---------------------------------------------------------

# (type, values in, Arrow type, values out) -- the last value is always null.
CASES: list[tuple[str, list[Any], pa.DataType, list[Any]]] = [
    ("type/Integer", [1, -2, 0, None], pa.int64(), [1, -2, 0, None]),
    (
        "type/BigInteger",
        ["9007199254740993", 9223372036854775807, -9223372036854775808, None],
        pa.int64(),
        [9007199254740993, 9223372036854775807, -9223372036854775808, None],
    ),
    ("type/Float", [1.5, 2, -0.25, None], pa.float64(), [1.5, 2.0, -0.25, None]),
    ("type/Decimal", ["1234.50", 3, None], pa.float64(), [1234.5, 3.0, None]),
    ("type/Text", ["a", "", "null", "],[", None], STR, ["a", "", "null", "],[", None]),
    ("type/UUID", ["3f0b2c1e-8d4a-4b6f-9e21-7c5a0d9e1f42", None], STR, None),
    ("type/Boolean", [True, False, None], pa.bool_(), [True, False, None]),
    (
        "type/Date",
        ["2024-01-15T00:00:00+14:00", "0001-01-01", "9999-12-31T00:00:00Z", None],
        pa.date32(),
        [dt.date(2024, 1, 15), dt.date(1, 1, 1), dt.date(9999, 12, 31), None],
    ),
    (
        "type/DateTimeWithLocalTZ",
        ["2024-01-15T05:30:00-05:00", "2024-07-01T12:00:00.123456-04:00", None],
        pa.timestamp("us", tz=NY),
        [
            dt.datetime(2024, 1, 15, 10, 30, tzinfo=dt.timezone.utc),
            dt.datetime(2024, 7, 1, 16, 0, 0, 123456, tzinfo=dt.timezone.utc),
            None,
        ],
    ),
    (
        "type/DateTime",
        ["2024-01-15T10:30:00", "2024-01-15", None],
        pa.timestamp("us"),
        [dt.datetime(2024, 1, 15, 10, 30), dt.datetime(2024, 1, 15), None],
    ),
    (
        "type/Time",
        ["10:30:00Z", "23:59:59.123456789+02:00", None],
        pa.time64("us"),
        [dt.time(10, 30), dt.time(23, 59, 59, 123456), None],
    ),
    (
        "type/TimeWithTZ",
        ["10:30:00+02:00", "10:30:00Z", "10:30:00.5-05:30", None],
        STR,
        ["10:30:00+02:00", "10:30:00+00:00", "10:30:00.500000-05:30", None],
    ),
    (
        "type/JSON",
        ['{"a": 1}', {"a": [1, 2]}, [1, "x"], 3, True, "text", None],
        STR,
        ['{"a": 1}', '{"a":[1,2]}', '[1,"x"]', "3", "true", "text", None],
    ),
    ("type/Array", [[1, 2], [], None], STR, ["[1,2]", "[]", None]),
    ("type/*", [None, None], STR, [None, None]),
]


@pytest.mark.parametrize(("kind", "values", "arrow_type", "expected"), CASES)
def test_arrow_type_of_every_family(
    kind: str, values: list[Any], arrow_type: pa.DataType, expected: list[Any] | None
) -> None:
    column = one_column(kind, values, tz=NY)
    assert column.type == arrow_type
    assert column.to_pylist() == (values if expected is None else expected)


@pytest.mark.parametrize(("kind", "values", "arrow_type", "expected"), CASES)
@pytest.mark.parametrize("batch", [1, 2, 100])
def test_arrow_equals_pandas_eager_and_deferred(
    kind: str, values: list[Any], arrow_type: pa.DataType, expected: Any, batch: int
) -> None:
    cols = [col("x", kind)]
    rows = [[v] for v in values]
    frame = frame_from_result({"cols": cols, "rows": rows, "results_timezone": NY})
    eager = arrow_from_result({"cols": cols, "rows": rows, "results_timezone": NY})
    deferred = FrameBuilder()
    for start in range(0, len(rows), batch):
        deferred.add_rows(rows[start : start + batch])
    table = deferred.build_arrow(cols, results_timezone=NY)
    assert table.equals(eager)
    assert table.schema.field("x").type == arrow_type
    assert_same_values(frame, table)


def test_empty_results_keep_their_schema() -> None:
    cols = [col(f"c{i}", kind) for i, (kind, *_) in enumerate(CASES)]
    types = [arrow_type for _, _, arrow_type, _ in CASES]
    # No value says "without offsets": a known zone makes date-times aware, as in pandas.
    types[[c["base_type"] for c in cols].index("type/DateTime")] = pa.timestamp("us", tz=NY)
    eager = arrow_from_result({"cols": cols, "rows": [], "results_timezone": NY})
    deferred = FrameBuilder().build_arrow(cols, results_timezone=NY)
    for table in (eager, deferred):
        assert table.num_rows == 0
        assert table.column_names == [c["name"] for c in cols]
        assert table.schema.types == types
    assert to_polars(eager).columns == eager.column_names
    naive = arrow_from_result({"cols": [col("t", "type/DateTime")], "rows": []})
    assert naive.schema.field("t").type == pa.timestamp("us")  # as pandas: no zone known


def test_text_keeps_empty_and_null_apart_and_stays_in_chunks() -> None:
    builder = FrameBuilder([col("t", "type/Text")])
    builder.add_rows([[""], [None]])
    builder.add_rows([["c"]])
    column = builder.build_arrow().column("t")
    assert column.to_pylist() == ["", None, "c"]
    assert column.num_chunks == 2  # the builder's chunks, not a concatenated copy


def test_integers_beyond_64_bits_are_decimal128_with_a_warning() -> None:
    values = [2**64, -(2**63) - 1, "123456789012345678901234567890", 1, None]
    with pytest.warns(UnknownTypeWarning, match=r"'x'.*64-bit.*decimal128\(38, 0\)"):
        column = one_column("type/BigInteger", values)
    assert column.type == pa.decimal128(38, 0)
    assert column.to_pylist() == [
        decimal.Decimal(2**64),
        decimal.Decimal(-(2**63) - 1),
        decimal.Decimal(123456789012345678901234567890),
        decimal.Decimal(1),
        None,
    ]
    with pytest.warns(UnknownTypeWarning), pytest.raises(ResponseError, match="38 digits"):
        one_column("type/BigInteger", [10**40])


def test_unknown_types_are_json_text_with_one_warning() -> None:
    with pytest.warns(UnknownTypeWarning, match="type/Geometry") as record:
        column = one_column("type/Geometry", [{"lat": 1}, "POINT(1 2)", None])
    assert len(record) == 1
    assert column.type == STR and column.to_pylist() == ['{"lat":1}', "POINT(1 2)", None]


def test_schema_metadata_holds_display_names_and_types() -> None:
    cols = [col("count", "type/Integer", "Count"), col("count_2", "type/Integer", "Count")]
    table = arrow_from_result({"cols": cols, "rows": [[1, 2]]})
    frame = frame_from_result({"cols": cols, "rows": [[1, 2]]})
    assert arrow_attrs(table) == frame.attrs
    assert json.loads(table.schema.metadata[b"display_names"]) == {
        "count": "Count",
        "count_2": "Count",
    }


def test_with_provenance_adds_the_massive_key() -> None:
    table = arrow_from_result({"cols": [col("i", "type/Integer")], "rows": [[1]]})
    provenance = {
        "card_id": 501,
        "name": "All types ✓",
        "parameters": [{"type": "number/=", "value": [1]}],
        "fetched_at": dt.datetime(2024, 1, 15, 10, 30, tzinfo=dt.timezone.utc),
    }
    tagged = with_provenance(table, provenance)
    attrs = arrow_attrs(tagged)
    assert attrs["massive"] == {**provenance, "fetched_at": "2024-01-15 10:30:00+00:00"}
    assert attrs["display_names"] == {"i": "I"}  # kept
    assert tagged.column("i").chunks[0].buffers()[1].address == (
        table.column("i").chunks[0].buffers()[1].address  # the columns are shared
    )
    assert "massive" not in arrow_attrs(table)  # the original is unchanged
    assert arrow_attrs(with_provenance(tagged, {"card_id": 7}))["massive"] == {"card_id": 7}


def test_build_arrow_once_and_columns_once() -> None:
    builder = FrameBuilder([col("i", "type/Integer")])
    builder.add_rows([[1]])
    builder.build_arrow()
    with pytest.raises(RuntimeError):
        builder.build()
    with pytest.raises(TypeError, match="needs the columns"):
        FrameBuilder().build_arrow()
    with pytest.raises(TypeError, match="has its columns already"):
        FrameBuilder([col("a", "type/Integer")]).build_arrow([col("a", "type/Integer")])


# -- CSV -------------------------------------------------------------------------------------

CSV_COLS = [
    col("id", "type/BigInteger", "ID"),
    col("label", "type/Text", "Label"),
    col("at", "type/DateTime", "At"),
    col("day", "type/Date", "Day"),
]
CSV_BODY = (
    b"ID,Label,At,Day\r\n"
    b'9223372036854775807,"a, ""quoted""",2024-01-15T10:30:00,2024-01-15\r\n'
    b",,,\r\n"
)


def test_arrow_from_csv_equals_frame_from_csv() -> None:
    table = arrow_from_csv(CSV_COLS, CSV_BODY, results_timezone=NY)
    frame = frame_from_csv(CSV_COLS, CSV_BODY, results_timezone=NY)
    assert_same_values(frame, table)
    assert table.schema.field("at").type == pa.timestamp("us", tz=NY)  # placed in the zone
    assert table.column("at")[0].as_py() == dt.datetime(2024, 1, 15, 15, 30, tzinfo=dt.timezone.utc)
    empty = arrow_from_csv(CSV_COLS, b"ID,Label,At,Day\n", results_timezone=NY)
    assert empty.num_rows == 0 and empty.schema.types == table.schema.types


def test_csv_batches_of_the_wrong_width_raise() -> None:
    builder = FrameBuilder(CSV_COLS)
    with pytest.raises(ResponseError, match="1 columns but the result has 4"):
        builder.add_text_batch(pa.record_batch([pa.array(["1"], STR)], names=["c0"]))
    with pytest.raises(TypeError, match="needs a FrameBuilder made with its cols"):
        FrameBuilder().add_text_batch(pa.record_batch([pa.array(["1"], STR)], names=["c0"]))


# -- polars ----------------------------------------------------------------------------------


def test_to_polars_types_and_values() -> None:
    cols = [col(f"c{i}", kind) for i, (kind, *_) in enumerate(CASES)]
    width = max(len(values) for _, values, _, _ in CASES)
    padded = [values + [None] * (width - len(values)) for _, values, _, _ in CASES]
    rows = [list(row) for row in zip(*padded, strict=True)]
    table = arrow_from_result({"cols": cols, "rows": rows, "results_timezone": NY})
    frame = to_polars(table)
    assert isinstance(frame, pl.DataFrame)
    assert frame.shape == (table.num_rows, table.num_columns)
    schema = dict(frame.schema)
    assert schema["c0"] == pl.Int64 and schema["c2"] == pl.Float64
    assert schema["c4"] == pl.String and schema["c6"] == pl.Boolean
    assert schema["c7"] == pl.Date and schema["c10"] == pl.Time
    assert schema["c8"] == pl.Datetime("us", NY) and schema["c9"] == pl.Datetime("us")
    for name in table.column_names:
        assert frame[name].to_list() == table.column(name).to_pylist(), name


def test_to_polars_without_polars_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    table = arrow_from_result({"cols": [col("i", "type/Integer")], "rows": [[1]]})
    monkeypatch.setitem(sys.modules, "polars", None)  # import polars now raises ImportError
    with pytest.raises(ConfigError) as info:
        to_polars(table)
    assert "massive-magic[polars]" in info.value.message
    assert "pip install 'massive-magic[polars]'" in str(info.value)


# -- the sandbox's all-types card, read for real ---------------------------------------------


@pytest.fixture
def http(sandbox: Sandbox) -> Iterator[requests.Session]:
    session = requests.Session()
    answer = requests.post(
        f"{sandbox.url}/api/session",
        json={"username": sandbox.username, "password": sandbox.password},
        timeout=10,
    )
    session.headers["X-Metabase-Session"] = answer.json()["id"]
    yield session
    session.close()


ALL_TYPES_ARROW = {
    "id": pa.int64(),
    "big_id": pa.int64(),
    "amount": pa.float64(),
    "ratio": pa.float64(),
    "label": STR,
    "active": pa.bool_(),
    "day": pa.date32(),
    "created_at": pa.timestamp("us", tz="<zone>"),  # Metabase sends offsets
    "paid_at": pa.timestamp("us", tz="<zone>"),
    "start_time": pa.time64("us"),
    "payload": STR,
    "variant": STR,
    "count": pa.int64(),
    "count_2": pa.int64(),
}


@pytest.mark.parametrize("zone", ["Europe/Berlin", NY])
def test_all_types_card_arrow_equals_the_clients_frame(
    sandbox: Sandbox, http: requests.Session, tmp_path: Path, zone: str
) -> None:
    """Every read path's Arrow table == the pandas frame ``Client.card`` gives, column by column."""
    sandbox.report_timezone = zone
    with Client(
        sandbox.url, sandbox.username, sandbox.password, cache_dir=tmp_path, progress=False
    ) as mb:
        frame = mb.card(demo.ALL_TYPES)
    base = f"{sandbox.url}/api/card/{demo.ALL_TYPES}/query"

    data = http.post(base, timeout=30).json()["data"]
    from_query = arrow_from_result(data)
    expected = {
        name: pa.timestamp("us", tz=zone) if kind == pa.timestamp("us", tz="<zone>") else kind
        for name, kind in ALL_TYPES_ARROW.items()
    }
    assert dict(zip(from_query.column_names, from_query.schema.types, strict=True)) == expected
    assert_same_values(frame, from_query)
    assert arrow_attrs(from_query) == {
        k: v for k, v in frame.attrs.items() if k in ("display_names", "metabase_types")
    }

    form = {"format_rows": "false", "pivot_results": "false"}
    with http.post(base + "/api", data=form, stream=True, timeout=30) as response:
        stream = ApiRowStream(response.iter_content(1 << 10), batch_bytes=256)
        builder = FrameBuilder()
        for batch in stream:
            builder.add_rows(batch)
    assert stream.tail is not None
    tail = stream.tail["data"]
    from_api = builder.build_arrow(tail["cols"], results_timezone=tail["results_timezone"])
    assert from_api.equals(from_query)

    body = http.post(base + "/csv", data=form, timeout=30).content
    from_csv = arrow_from_csv(data["cols"], body, results_timezone=zone)
    assert from_csv.schema.types == from_query.schema.types
    assert_same_values(frame_from_csv(data["cols"], body, results_timezone=zone), from_csv)
    # CSV cannot tell "" from null; everything else is the JSON answer's.
    assert from_csv.column("label").to_pylist()[6] is None
    assert from_query.column("label").to_pylist()[6] == ""
    for name in ("id", "big_id", "amount", "day", "created_at", "paid_at", "start_time"):
        assert from_csv.column(name).equals(from_query.column(name)), name

    polars_frame = to_polars(with_provenance(from_query, frame.attrs["massive"]))
    assert polars_frame["paid_at"].dtype == pl.Datetime("us", zone)
    for name in from_query.column_names:
        assert polars_frame[name].to_list() == from_query.column(name).to_pylist(), name
