"""frames: one type table, exact values, real dtypes, never a silent coercion."""

from __future__ import annotations

import datetime as dt
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from massive_magic.builder import untyped
from massive_magic.errors import MassiveWarning, QueryFailed, ResponseError, UnknownTypeWarning
from massive_magic.frames import (
    TYPE_TABLE,
    FrameBuilder,
    frame_from_csv,
    frame_from_result,
)

UTC = dt.timezone.utc
NY = "America/New_York"


def col(name: str, base: str, effective: str | None = None, display: str | None = None) -> dict:
    c = {"name": name, "display_name": display or name.title(), "base_type": base}
    if effective is not None:
        c["effective_type"] = effective
    return c


def one_column(kind: str, values: list[Any], tz: str | None = None) -> pd.Series:
    data = {"cols": [col("x", kind)], "rows": [[v] for v in values], "results_timezone": tz}
    return frame_from_result(data)["x"]


def ts(text: str, tz: str | None = None) -> pd.Timestamp:
    stamp = pd.Timestamp(text) if tz is None else pd.Timestamp(text, tz=tz)
    return stamp.as_unit("us")


# (type, values in, dtype out, values out) -- the last value is always null.
CASES: list[tuple[str, list[Any], str, list[Any]]] = [
    ("type/Integer", [1, -2, 0, None], "Int64", [1, -2, 0, pd.NA]),
    (
        "type/BigInteger",
        [9007199254740993, 9223372036854775807, -9223372036854775808, None],
        "Int64",
        [9007199254740993, 9223372036854775807, -9223372036854775808, pd.NA],
    ),
    (
        "type/BigInteger",  # /query sends integers beyond 2^53 as strings
        ["9007199254740993", "9223372036854775807", "-9223372036854775808", 5, None],
        "Int64",
        [9007199254740993, 9223372036854775807, -9223372036854775808, 5, pd.NA],
    ),
    ("type/Integer", [1.0, 2, None], "Int64", [1, 2, pd.NA]),
    ("type/Float", [1.5, 2, -0.25, None], "float64", [1.5, 2.0, -0.25, np.nan]),
    ("type/Decimal", ["1234.50", 3, "1e3", None], "float64", [1234.5, 3.0, 1000.0, np.nan]),
    ("type/Decimal", [9007199254740993, 0.5, None], "float64", [9007199254740992.0, 0.5, np.nan]),
    ("type/Currency", [1.25, None], "float64", [1.25, np.nan]),
    ("type/Boolean", [True, False, None], "boolean", [True, False, pd.NA]),
    (
        "type/Text",
        ["a,b", 'q"uote', "line\nbreak", "ünï ✓", "null", "", "],[", None],
        "string",
        ["a,b", 'q"uote', "line\nbreak", "ünï ✓", "null", "", "],[", pd.NA],
    ),
    (
        "type/UUID",
        ["3f0b2c1e-8d4a-4b6f-9e21-7c5a0d9e1f42", None],
        "string",
        ["3f0b2c1e-8d4a-4b6f-9e21-7c5a0d9e1f42", pd.NA],
    ),
    ("type/PostgresEnum", ["red", None], "string", ["red", pd.NA]),
    ("type/IPAddress", ["10.0.0.1", None], "string", ["10.0.0.1", pd.NA]),
    (
        "type/Date",
        [
            "2024-01-15T00:00:00-05:00",
            "2024-01-15T00:00:00+14:00",
            "2024-01-15T00:00:00Z",
            "2024-12-31",
            "0001-01-01T00:00:00Z",
            "9999-12-31T00:00:00Z",
            None,
        ],
        "datetime64[us]",
        [
            ts("2024-01-15"),
            ts("2024-01-15"),
            ts("2024-01-15"),
            ts("2024-12-31"),
            pd.Timestamp(np.datetime64("0001-01-01", "us")),
            pd.Timestamp(np.datetime64("9999-12-31", "us")),
            pd.NaT,
        ],
    ),
    (
        "type/Time",
        ["10:30:00Z", "23:59:59.123456+02:00", "00:00:00", "01:02:03.123456789", None],
        "time64[us][pyarrow]",
        [dt.time(10, 30), dt.time(23, 59, 59, 123456), dt.time(0), dt.time(1, 2, 3, 123456), None],
    ),
    (
        "type/TimeWithTZ",
        ["10:30:00+02:00", "10:30:00Z", "10:30:00.5-05:30", None],
        "object",
        [
            dt.time(10, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            dt.time(10, 30, tzinfo=UTC),
            dt.time(10, 30, 0, 500000, tzinfo=dt.timezone(-dt.timedelta(hours=5, minutes=30))),
            None,
        ],
    ),
    ("type/JSON", ['{"a": 1}', {"a": [1, 2]}, [1, "x"], None], "object", None),
    ("type/Array", [[1, 2], [], None], "object", None),
    ("type/Dictionary", [{"k": None}, None], "object", None),
    ("type/SerializedJSON", ['{"a":1}', None], "object", None),
    ("type/*", [None, None], "object", None),
]


@pytest.mark.parametrize(("kind", "values", "dtype", "expected"), CASES)
def test_type_table(kind: str, values: list[Any], dtype: str, expected: list[Any] | None) -> None:
    series = one_column(kind, values)
    assert str(series.dtype) == dtype
    assert series.isna().tolist() == [v is None for v in values]  # nulls stay null, only nulls
    if expected is None:  # object columns: values unchanged, the very same objects
        assert series.tolist() == values
        return
    for got, want in zip(series.tolist(), expected, strict=True):
        if want is None or want is pd.NA or want is pd.NaT or want is np.nan:
            assert pd.isna(got)
        else:
            assert got == want
            assert type(got) is type(want) or isinstance(want, (int, float))
    if dtype == "object" and kind.startswith("type/Time"):
        assert [v.utcoffset() for v in series if v is not None] == [
            e.utcoffset() for e in expected if e is not None
        ]


def test_string_dtype_is_pyarrow_backed() -> None:
    series = one_column("type/Text", ["a", None])
    assert series.dtype == pd.StringDtype("pyarrow")
    assert isinstance(series.array, pd.arrays.ArrowStringArray)


def test_type_table_covers_every_family() -> None:
    families = (
        "type/Integer type/BigInteger type/Float type/Decimal type/Text type/UUID type/TextLike "
        "type/Boolean type/Date type/Time type/TimeWithTZ type/DateTime type/DateTimeWithTZ "
        "type/DateTimeWithLocalTZ type/DateTimeWithZoneOffset type/DateTimeWithZoneID "
        "type/Instant type/JSON type/Collection type/Array type/Dictionary type/XML "
        "type/SerializedJSON"
    )
    assert set(families.split()) <= set(TYPE_TABLE)


@pytest.mark.parametrize(
    "kind",
    [
        "type/DateTime",
        "type/DateTimeWithTZ",
        "type/DateTimeWithLocalTZ",
        "type/DateTimeWithZoneOffset",
        "type/DateTimeWithZoneID",
        "type/Instant",
    ],
)
def test_datetimes_are_tz_aware_in_the_results_timezone(kind: str) -> None:
    values = ["2024-01-15T05:30:00-05:00", "2024-07-01T12:00:00.123456-04:00", None]
    series = one_column(kind, values, tz=NY)
    assert str(series.dtype) == "datetime64[us, America/New_York]"
    assert series[0] == ts("2024-01-15T10:30:00Z")
    assert series[0].hour == 5 and series[1].hour == 12
    assert series[1].microsecond == 123456
    assert pd.isna(series[2])


def test_datetimes_without_results_timezone_are_utc() -> None:
    series = one_column("type/DateTimeWithTZ", ["2024-01-15T05:30:00+02:00", None])
    assert str(series.dtype) == "datetime64[us, UTC]"
    assert series[0] == ts("2024-01-15T03:30:00Z")


def test_naive_datetimes_stay_naive() -> None:
    values = ["2024-01-15T10:30:00", "2024-01-15", "2024-01-15 23:59:59.5", None]
    series = one_column("type/DateTime", values, tz=NY)
    assert str(series.dtype) == "datetime64[us]"
    assert series.tolist()[:3] == [
        ts("2024-01-15 10:30"),
        ts("2024-01-15"),
        ts("2024-01-15 23:59:59.5"),
    ]


def test_odd_iso_forms_go_through_pandas() -> None:
    values = ["2024-01-15T10:30:00.123456789Z", "2024-01-15T10:30:00+0530", None]
    series = one_column("type/DateTime", values, tz="UTC")
    assert series.tolist()[:2] == [ts("2024-01-15T10:30:00.123456Z"), ts("2024-01-15T05:00Z")]


def test_mixed_offsets_and_none_use_the_results_timezone() -> None:
    values = ["2024-01-15T10:30:00-05:00", "2024-01-15T10:30:00", None]
    series = one_column("type/DateTime", values, tz=NY)
    assert series.tolist()[:2] == [ts("2024-01-15T15:30Z"), ts("2024-01-15T15:30Z")]
    with pytest.raises(ResponseError, match="'x'"):
        one_column("type/DateTime", values)


def test_zero_rows_keep_columns_and_dtypes() -> None:
    cols = [col(f"c{i}", kind) for i, (kind, *_) in enumerate(CASES)]
    frame = frame_from_result({"cols": cols, "rows": [], "results_timezone": NY})
    assert list(frame.columns) == [c["name"] for c in cols]
    assert len(frame) == 0
    assert [str(d) for d in frame.dtypes] == [dtype for _, _, dtype, _ in CASES]
    aware = frame_from_result({"cols": [col("t", "type/DateTime")], "rows": []})
    assert str(aware.dtypes["t"]) == "datetime64[us]"


def test_names_display_names_and_types() -> None:
    cols = [
        col("count", "type/Integer", display="Count"),
        col("count_2", "type/Integer", display="Count"),
        col("created", "type/Text", "type/DateTime", display="Created"),
    ]
    frame = frame_from_result(
        {"cols": cols, "rows": [[1, 2, "2024-01-15T10:30:00Z"]], "results_timezone": "UTC"}
    )
    assert list(frame.columns) == ["count", "count_2", "created"]
    assert frame.attrs["display_names"] == {
        "count": "Count",
        "count_2": "Count",
        "created": "Created",
    }
    # effective_type wins over base_type: a text column coerced to a date-time.
    assert frame.attrs["metabase_types"] == {
        "count": "type/Integer",
        "count_2": "type/Integer",
        "created": "type/DateTime",
    }
    assert str(frame["created"].dtype) == "datetime64[us, UTC]"


def test_integers_beyond_64_bits_stay_exact_with_a_warning() -> None:
    values = [2**64, -(2**63) - 1, "123456789012345678901234567890", 1, None]
    with pytest.warns(UnknownTypeWarning, match="'x'.*64-bit"):
        series = one_column("type/BigInteger", values)
    assert series.dtype == object
    assert series.tolist() == [2**64, -(2**63) - 1, 123456789012345678901234567890, 1, None]


def test_a_wide_batch_then_a_normal_one_is_one_object_column() -> None:
    builder = FrameBuilder([col("x", "type/BigInteger")])
    builder.add_rows([[1], [None]])
    builder.add_rows([[2**70]])
    with pytest.warns(UnknownTypeWarning):
        frame = builder.build()
    assert frame["x"].tolist() == [1, None, 2**70]


@pytest.mark.parametrize(
    ("kind", "bad"),
    [
        ("type/Integer", "abc"),
        ("type/Integer", 1.5),
        ("type/Integer", 1e20),
        ("type/Integer", "1.5"),
        ("type/Integer", True),
        ("type/Integer", [1]),
        ("type/Float", "abc"),
        ("type/Float", True),
        ("type/Boolean", "maybe"),
        ("type/Boolean", 1),
        ("type/Text", 12),
        ("type/Text", {"a": 1}),
        ("type/Date", "15/01/2024"),
        ("type/Date", "2024-01-15garbage"),
        ("type/Date", 20240115),
        ("type/DateTime", "yesterday"),
        ("type/Time", "half past ten"),
    ],
)
def test_a_value_that_does_not_fit_raises_naming_column_and_value(kind: str, bad: Any) -> None:
    with pytest.raises(ResponseError) as info:
        one_column(kind, [None, bad], tz="UTC")
    message = str(info.value)
    assert "'x'" in message and kind in message
    assert str(bad).strip("[]{}'\"").split(":")[0] in message


def test_unknown_type_warns_once_and_keeps_values() -> None:
    cols = [col("geo", "type/Geometry"), col("n", "type/Integer")]
    with pytest.warns(UnknownTypeWarning, match="'geo'.*type/Geometry") as record:
        builder = FrameBuilder(cols)
        builder.add_rows([[{"lat": 1}, 1]])
        builder.add_rows([["POINT(1 2)", 2]])
        frame = builder.build()
    assert len(record) == 1
    assert frame["geo"].tolist() == [{"lat": 1}, "POINT(1 2)"]
    assert str(frame["n"].dtype) == "Int64"


def test_known_json_types_do_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        one_column("type/JSON", ['{"a":1}'])


def test_batches_equal_one_batch() -> None:
    cols = [col("i", "type/Integer"), col("t", "type/Text"), col("d", "type/DateTimeWithTZ")]
    rows = [
        [i, f"r{i}", None if i % 3 else f"2024-01-{1 + i % 28:02d}T10:00:00Z"] for i in range(50)
    ]
    rows[:10] = [[None, None, None]] * 10  # a first batch of nothing but nulls
    builder = FrameBuilder(cols, results_timezone=NY)
    for start in range(0, 50, 10):
        builder.add_rows(rows[start : start + 10])
    builder.add_rows([])
    assert builder.row_count == 50
    whole = frame_from_result({"cols": cols, "rows": rows, "results_timezone": NY})
    pd.testing.assert_frame_equal(builder.build(), whole)
    assert str(whole["d"].dtype) == "datetime64[us, America/New_York]"


def test_build_once() -> None:
    builder = FrameBuilder([col("i", "type/Integer")])
    builder.add_rows([[1]])
    assert builder.build()["i"].tolist() == [1]
    with pytest.raises(RuntimeError):
        builder.build()
    with pytest.raises(RuntimeError):
        builder.add_rows([[2]])


def test_text_stays_in_chunks() -> None:
    builder = FrameBuilder([col("t", "type/Text")])
    builder.add_rows([["a"], ["b"]])
    builder.add_rows([["c"]])
    array = builder.build()["t"].array
    assert isinstance(array, pd.arrays.ArrowStringArray)
    assert array._pa_array.num_chunks == 2


@pytest.mark.parametrize("rows", [[[1, 2, 3]], [[1]], [[1, 2], [1]], [{"a": 1}]])
def test_rows_of_the_wrong_width_raise(rows: list[Any]) -> None:
    with pytest.raises(ResponseError):
        FrameBuilder([col("a", "type/Integer"), col("b", "type/Integer")]).add_rows(rows)


@pytest.mark.parametrize(
    ("zone", "dtype"),
    [("Z", "UTC"), ("+05:00", "UTC+05:00"), ("Etc/GMT+5", "Etc/GMT+5"), ("Asia/Kolkata", None)],
)
def test_results_timezone_forms(zone: str, dtype: str | None) -> None:
    series = one_column("type/DateTime", ["2024-01-15T10:30:00Z"], tz=zone)
    assert str(series.dtype) == f"datetime64[us, {dtype or zone}]"
    assert series[0] == ts("2024-01-15T10:30:00Z")


def test_unknown_results_timezone_falls_back_to_utc_with_a_warning() -> None:
    with pytest.warns(MassiveWarning, match="Mars/Olympus"):
        series = one_column("type/DateTime", ["2024-01-15T10:30:00Z"], tz="Mars/Olympus")
    assert str(series.dtype) == "datetime64[us, UTC]"


# -- deferred typing: the api export sends cols after the rows ------------------------------


def deferred(
    cols: list[dict], rows: list[list[Any]], tz: str | None = None, batch: int = 2
) -> pd.DataFrame:
    """Rows added in batches before the columns are known, as from the api export."""
    builder = FrameBuilder()
    for start in range(0, len(rows), batch):
        builder.add_rows(rows[start : start + batch])
    assert builder.row_count == len(rows)
    return builder.build(cols, results_timezone=tz)


@pytest.mark.parametrize("batch", [1, 2, 100])
@pytest.mark.parametrize(("kind", "values", "dtype", "expected"), CASES)
def test_deferred_typing_equals_the_eager_path(
    kind: str, values: list[Any], dtype: str, expected: list[Any] | None, batch: int
) -> None:
    cols = [col("x", kind)]
    rows = [[v] for v in values]
    got = deferred(cols, rows, tz=NY, batch=batch)
    want = frame_from_result({"cols": cols, "rows": rows, "results_timezone": NY})
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert str(got["x"].dtype) == dtype
    if expected is None:  # object columns: values unchanged
        assert got["x"].tolist() == values
        assert [type(v) for v in got["x"]] == [type(v) for v in values]


@pytest.mark.parametrize(
    ("kind", "values"),
    [
        ("type/DateTimeWithLocalTZ", ["2024-01-15T05:30:00-05:00", None, "2024-07-01T12:00:00Z"]),
        ("type/DateTime", ["2024-01-15T10:30:00", None, "2024-01-15"]),
        ("type/DateTime", ["2024-01-15T10:30:00-05:00", "2024-01-15T10:30:00", None]),
        ("type/Time", ["10:30:00Z", None]),
        ("type/TimeWithTZ", ["10:30:00+02:00", None]),
    ],
)
def test_deferred_temporal_columns(kind: str, values: list[Any]) -> None:
    cols = [col("x", kind)]
    rows = [[v] for v in values]
    whole = frame_from_result({"cols": cols, "rows": rows, "results_timezone": NY})
    for batch in (1, 2, 3):
        pd.testing.assert_frame_equal(deferred(cols, rows, tz=NY, batch=batch), whole)


def test_deferred_json_values_are_the_same_objects() -> None:
    doc, items = {"a": [1, 2], "b": {"c": None}}, [1, "x", {"k": 2}]
    values = [doc, items, '{"a": 1}', None, 3, 2.5, True, [], {}]
    rows = [[v] for v in values]
    for batch in (1, 2, len(rows)):
        frame = deferred([col("j", "type/JSON")], rows, batch=batch)
        assert frame["j"].dtype == object
        assert frame["j"].tolist() == values
        assert [type(v) for v in frame["j"]] == [type(v) for v in values]
    frame = deferred([col("j", "type/JSON")], rows, batch=len(rows))
    assert frame["j"].iloc[0] is doc and frame["j"].iloc[1] is items


@pytest.mark.parametrize(
    "values",
    [
        [{"a": 1}, {"a": 2}],  # Arrow would make a struct column
        [[1, 2], [3]],  # ... a list column
        [None, {"a": 1}],
        [1, 2.5],  # ... floats of the ints
        [1.5, True],  # ... 1.0 of True
        [1, "a"],
        [2**64, 1],  # beyond int64
    ],
)
def test_untyped_keeps_values_arrow_would_change(values: list[Any]) -> None:
    stored = untyped(tuple(values))
    assert not isinstance(stored, pa.Array)
    assert list(stored) == values


@pytest.mark.parametrize(
    ("values", "arrow_type"),
    [
        ([1, None, -(2**63)], pa.int64()),
        ([1.5, None, 2.0], pa.float64()),
        (["a", None, ""], pa.string()),
        ([True, None, False], pa.bool_()),
        ([None, None], pa.null()),
    ],
)
def test_untyped_stores_plain_columns_as_arrow(values: list[Any], arrow_type: pa.DataType) -> None:
    stored = untyped(tuple(values))
    assert isinstance(stored, pa.Array) and stored.type == arrow_type
    assert stored.to_pylist() == values


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("type/Text", "2024-01-{:02d}T00:00:00+01:00"),
        ("type/Date", "2024-01-{:02d}T00:00:00+01:00"),
        ("type/DateTimeWithLocalTZ", "2024-01-{:02d}T00:00:00+01:00"),
        ("type/DateTime", "2024-01-{:02d}T10:00:00"),
        ("type/Time", "10:{:02d}:00+01:00"),
        ("type/TimeWithTZ", "10:{:02d}:00+01:00"),
        ("type/JSON", '{{"day": {}}}'),
    ],
)
def test_deferred_repetitive_text_is_stored_encoded(kind: str, text: str) -> None:
    """Dates as text and other repeated strings wait dictionary-encoded, then convert alike."""
    days = [text.format(1 + i % 7) for i in range(3_000)]
    rows = [[None if i % 13 == 0 else day] for i, day in enumerate(days)]
    builder = FrameBuilder()
    builder.add_rows(rows)
    [stored] = builder._chunks[0]
    assert pa.types.is_dictionary(stored.type)
    assert stored.nbytes < pa.array(days).nbytes / 2
    frame = builder.build([col("x", kind)], results_timezone=NY)
    want = frame_from_result({"cols": [col("x", kind)], "rows": rows, "results_timezone": NY})
    pd.testing.assert_frame_equal(frame, want, check_exact=True)
    unique = [[f"id-{i}"] for i in range(3_000)]  # distinct text stays plain
    assert not pa.types.is_dictionary(untyped(tuple(r[0] for r in unique)).type)


def test_deferred_integers_beyond_64_bits() -> None:
    rows = [[1], [2**64], [None], [-(2**63) - 1]]
    with pytest.warns(UnknownTypeWarning, match="'x'.*64-bit"):
        frame = deferred([col("x", "type/BigInteger")], rows, batch=1)
    assert frame["x"].tolist() == [1, 2**64, None, -(2**63) - 1]


def test_deferred_all_null_chunk_then_typed_chunks() -> None:
    cols = [
        col("i", "type/Integer"),
        col("f", "type/Float"),
        col("t", "type/Text"),
        col("b", "type/Boolean"),
        col("d", "type/Date"),
        col("at", "type/DateTimeWithTZ"),
        col("j", "type/JSON"),
    ]
    rows = [[None] * 7, [None] * 7]
    rows += [[1, 1.5, "a", True, "2024-01-15", "2024-01-15T10:30:00Z", {"k": 1}]]
    rows += [[2, 2.5, "b", False, "2024-01-16T00:00:00+02:00", None, [1]]]
    frame = deferred(cols, rows, tz=NY, batch=2)
    pd.testing.assert_frame_equal(
        frame, frame_from_result({"cols": cols, "rows": rows, "results_timezone": NY})
    )
    assert frame["i"].tolist() == [pd.NA, pd.NA, 1, 2]
    assert str(frame["at"].dtype) == "datetime64[us, America/New_York]"
    assert frame["j"].tolist() == [None, None, {"k": 1}, [1]]


def test_deferred_int_chunk_then_float_chunk_in_a_float_column() -> None:
    frame = deferred([col("f", "type/Decimal")], [[1], [2], [2.5], [None], [3]], batch=2)
    assert str(frame["f"].dtype) == "float64"
    assert frame["f"].tolist()[:3] == [1.0, 2.0, 2.5] and np.isnan(frame["f"].iloc[3])


def test_deferred_float_chunk_in_an_integer_column_must_be_whole() -> None:
    frame = deferred([col("i", "type/Integer")], [[1.0], [None], [2]], batch=2)
    assert str(frame["i"].dtype) == "Int64" and frame["i"].tolist() == [1, pd.NA, 2]
    for bad in (1.5, 2.0**60):
        with pytest.raises(ResponseError, match=r"'i'.*not an integer"):
            deferred([col("i", "type/Integer")], [[1.0], [bad]], batch=2)


def test_deferred_bool_column() -> None:
    rows = [[True], [None], [False], [True], ["false"], ["true"]]  # /query-style text too
    frame = deferred([col("b", "type/Boolean")], rows, batch=2)
    assert str(frame["b"].dtype) == "boolean"
    assert frame["b"].tolist() == [True, pd.NA, False, True, False, True]
    with pytest.raises(ResponseError, match=r"'b'.*not a boolean"):
        deferred([col("b", "type/Boolean")], [[True], [1]], batch=1)


@pytest.mark.parametrize(
    ("kind", "bad"),
    [
        ("type/Integer", "abc"),
        ("type/Integer", True),
        ("type/Float", True),
        ("type/Text", 12),
        ("type/Date", 20240115),
        ("type/DateTime", "yesterday"),
        ("type/Time", 1.5),
    ],
)
def test_deferred_value_that_does_not_fit_raises(kind: str, bad: Any) -> None:
    with pytest.raises(ResponseError, match=f"'x' \\({kind}\\)"):
        deferred([col("x", kind)], [[None], [bad]], tz="UTC", batch=1)


def test_deferred_empty_result_keeps_columns_and_dtypes() -> None:
    cols = [col(f"c{i}", kind) for i, (kind, *_) in enumerate(CASES)]
    frame = FrameBuilder().build(cols, results_timezone=NY)
    assert list(frame.columns) == [c["name"] for c in cols]
    assert len(frame) == 0
    assert [str(d) for d in frame.dtypes] == [dtype for _, _, dtype, _ in CASES]
    assert frame.attrs["display_names"]["c0"] == "C0"


def test_deferred_width_is_checked() -> None:
    builder = FrameBuilder()
    builder.add_rows([[1, 2]])
    with pytest.raises(ResponseError, match="A row has 3 values but the result has 2"):
        builder.add_rows([[1, 2, 3]])
    with pytest.raises(ResponseError, match="2 values but the result has 3 columns"):
        builder.build([col("a", "type/Integer")] * 3)


def test_columns_are_given_exactly_once() -> None:
    with pytest.raises(TypeError, match="needs the columns"):
        FrameBuilder().build()
    with pytest.raises(TypeError, match="has its columns already"):
        FrameBuilder([col("a", "type/Integer")]).build([col("a", "type/Integer")])


def test_deferred_unknown_type_warns_at_build() -> None:
    builder = FrameBuilder()
    builder.add_rows([[{"lat": 1}], ["POINT(1 2)"]])
    with pytest.warns(UnknownTypeWarning, match="'geo'.*type/Geometry"):
        frame = builder.build([col("geo", "type/Geometry")])
    assert frame["geo"].tolist() == [{"lat": 1}, "POINT(1 2)"]


# -- CSV fallback -------------------------------------------------------------------------

CSV_COLS = [
    col("id", "type/BigInteger", display="ID"),
    col("amount", "type/Decimal", display="Amount"),
    col("label", "type/Text", display="Label"),
    col("paid", "type/Boolean", display="Label"),  # duplicate display name
    col("day", "type/Date", display="Day"),
    col("at", "type/DateTime", display="At"),
    col("at_tz", "type/DateTimeWithLocalTZ", display="At TZ"),
    col("clock", "type/Time", display="Clock"),
    col("doc", "type/JSON", display="Doc"),
]
CSV_BODY = (
    b"ID,Amount,Label,Label,Day,At,At TZ,Clock,Doc\r\n"
    b'9223372036854775807,1234.5,"a, ""quoted""\nline",true,2024-01-15,2024-01-15T10:30:00,'
    b'2024-01-15T10:30:00-05:00,10:30:00,"{""a"": 1}"\r\n'
    b"-9223372036854775808,,null,false,2024-12-31,2024-01-15,2024-07-01T08:00:00-04:00,"
    b"23:59:59.5,\r\n"
    b",,,,,,,,\r\n"
)


def test_csv_gives_the_same_dtypes_as_json() -> None:
    frame = frame_from_csv(CSV_COLS, CSV_BODY, results_timezone=NY)
    json_frame = frame_from_result({"cols": CSV_COLS, "rows": [], "results_timezone": NY})
    assert frame.dtypes.to_dict() == json_frame.dtypes.to_dict()
    assert list(frame.columns) == [c["name"] for c in CSV_COLS]
    assert frame.attrs["display_names"]["paid"] == "Label"
    first, second = frame.iloc[0], frame.iloc[1]
    assert first["id"] == 9223372036854775807 and second["id"] == -9223372036854775808
    assert first["amount"] == 1234.5 and np.isnan(second["amount"])
    assert first["label"] == 'a, "quoted"\nline'
    assert second["label"] == "null"  # the word, not a null
    assert first["paid"] is np.True_ or first["paid"] is True
    assert first["day"] == ts("2024-01-15")
    # CSV drops the offset of local date-times; the results timezone puts it back.
    assert first["at"] == ts("2024-01-15T10:30:00", NY)
    assert second["at"] == ts("2024-01-15T00:00:00", NY)
    assert first["at_tz"] == ts("2024-01-15T15:30:00Z")
    assert first["clock"] == dt.time(10, 30) and second["clock"] == dt.time(23, 59, 59, 500000)
    assert first["doc"] == '{"a": 1}'
    assert frame.iloc[2].isna().all()  # empty cells are null, text included


def test_csv_header_only_and_empty() -> None:
    header = b"ID,Amount,Label,Label,Day,At,At TZ,Clock,Doc\n"
    for body in (header, b""):
        frame = frame_from_csv(CSV_COLS, body, results_timezone=NY)
        assert len(frame) == 0 and list(frame.columns) == [c["name"] for c in CSV_COLS]


def test_csv_error_document_raises_query_failed() -> None:
    body = b'{"status":"failed","error":"ERROR: boom","error_type":"invalid-query"}'
    with pytest.raises(QueryFailed, match="boom") as info:
        frame_from_csv(CSV_COLS, body)
    assert info.value.error_type == "invalid-query"


def test_csv_with_the_wrong_column_count_raises() -> None:
    with pytest.raises(ResponseError, match="CSV"):
        frame_from_csv(CSV_COLS[:2], b"ID,Amount\n1,2,3\n")


def test_csv_bad_value_names_the_column() -> None:
    with pytest.raises(ResponseError, match="'id'"):
        frame_from_csv(CSV_COLS[:1], b"ID\nnot-a-number\n")


def test_csv_big_integers_beyond_64_bits() -> None:
    with pytest.warns(UnknownTypeWarning):
        frame = frame_from_csv(CSV_COLS[:1], b"ID\n123456789012345678901234567890\n1\n")
    assert frame["id"].tolist() == [123456789012345678901234567890, 1]


def test_arrow_is_available_for_time_dtype() -> None:
    assert one_column("type/Time", []).dtype == pd.ArrowDtype(pa.time64("us"))
