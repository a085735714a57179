"""A DataFrame <-> Parquet bytes, exactly. Pure conversion, no files, no HTTP.

A snapshot must give back the frame the client built, value for value and
dtype for dtype. Parquet holds most columns as they are; the few it cannot hold
exactly are *encoded*, and each column's ``spec`` (kept in the snapshot's
manifest) says how, so decoding restores them:

=====================================  ==========================  =====================
pandas column                          stored in Parquet as        spec ``kind``
=====================================  ==========================  =====================
``Int64``, ``boolean`` (nullable)      int64, bool with nulls      ``masked``
``string[pyarrow]``                    large_string ("" != null)   ``string``
``time64[us][pyarrow]`` (ArrowDtype)   time64[us]                  ``arrow``
``datetime64[us, tz]``                 timestamp[us, tz]           ``datetimetz``
``float64``, ``datetime64[us]``, ...   double (NaN kept), ...      ``numpy``
object: Python ints (beyond 2^63)      decimal128(38, 0), or text  ``int``
                                       past 38 digits
object: ``datetime.time`` with offset  ISO text ``10:30:00+02:00``  ``time``
object: text only                      large_string                ``str``
object: JSON values (dicts, lists...)  JSON text per value         ``json``
=====================================  ==========================  =====================

Anything else (categories, a value JSON would change, such as a tuple or a
non-text dict key) is refused with ``SnapshotError`` at encoding: a snapshot is
exact or it is not written.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from massive_magic.errors import SnapshotError

__all__ = ["decode_frame", "encode_frame", "read_parquet", "write_parquet"]

_STR = pa.large_string()
_DECIMAL = pa.decimal128(38, 0)
_DECIMAL_MAX = 10**38 - 1
_MASKED = {
    *(f"{sign}Int{bits}" for sign in ("", "U") for bits in (8, 16, 32, 64)),
    "Float32",
    "Float64",
    "boolean",
}
_JSON_SCALARS = (str, int, float, bool, type(None))
COMPRESSION = "zstd"


# -- encoding --------------------------------------------------------------------------------


def encode_frame(frame: pd.DataFrame) -> tuple[pa.Table, dict[str, Any]]:
    """The Arrow table to write and the layout (column specs) to decode it with.

    Raises ``SnapshotError`` (reason ``"unsupported"``) for a column that a
    snapshot cannot give back exactly.
    """
    names = list(frame.columns)
    if not all(isinstance(name, str) for name in names):
        raise _unsupported("column names that are not text")
    if not (isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0) or (
        frame.index.step != 1
    ):
        raise _unsupported("an index other than 0, 1, 2, ...")
    unique = len(set(names)) == len(names)
    fields = names if unique else [f"{i}:{name}" for i, name in enumerate(names)]
    arrays, specs = [], []
    for i, name in enumerate(names):
        array, spec = _encode_column(name, frame.iloc[:, i])
        spec = {"name": name, "field": fields[i], "dtype": str(frame.dtypes.iloc[i]), **spec}
        arrays.append(array)
        specs.append(spec)
    table = pa.Table.from_arrays(arrays, names=fields)
    layout = {"rows": len(frame), "columns_dtype": str(frame.columns.dtype), "columns": specs}
    return table, layout


def _encode_column(name: str, series: pd.Series) -> tuple[Any, dict[str, Any]]:
    dtype = series.dtype
    values = series.array
    if isinstance(dtype, pd.StringDtype):
        na = "NA" if dtype.na_value is pd.NA else "nan"
        return _arrow_of(values), {"kind": "string", "storage": dtype.storage, "na": na}
    if isinstance(dtype, pd.ArrowDtype):
        return _arrow_of(values), {"kind": "arrow"}
    if str(dtype) in _MASKED:
        return _arrow_of(values), {"kind": "masked"}
    if isinstance(dtype, pd.DatetimeTZDtype):
        return pa.array(series), {"kind": "datetimetz"}
    if isinstance(dtype, np.dtype) and dtype.kind in "biufmM":
        # from_pandas=False: NaN stays a NaN value (not null), as in the frame.
        data = series.to_numpy()
        if dtype.kind in "mM":
            return pa.array(data, mask=np.isnat(data)), {"kind": "numpy"}
        return pa.array(data, from_pandas=False), {"kind": "numpy"}
    if isinstance(dtype, np.dtype) and dtype.kind == "O":
        return _encode_objects(name, series.to_numpy())
    raise _unsupported(f"column {name!r} of dtype {dtype}")


def _arrow_of(values: Any) -> pa.Array | pa.ChunkedArray:
    """Arrow-backed arrays hand over their chunks as they are (no copy)."""
    return values.__arrow_array__()


def _encode_objects(name: str, values: np.ndarray) -> tuple[pa.Array, dict[str, Any]]:
    kinds = set(map(type, values)) - {type(None)}
    present = values.tolist()
    if kinds <= {str}:
        return pa.array(values, type=_STR), {"kind": "str"}
    if kinds == {int}:
        if all(-_DECIMAL_MAX <= v <= _DECIMAL_MAX for v in present if v is not None):
            decimals = [None if v is None else Decimal(v) for v in present]
            return pa.array(decimals, type=_DECIMAL), {"kind": "int", "as": "decimal"}
        texts = [None if v is None else str(v) for v in present]
        return pa.array(texts, type=_STR), {"kind": "int", "as": "text"}
    if kinds == {dt.time}:
        texts = [None if v is None else v.isoformat() for v in present]
        return pa.array(texts, type=_STR), {"kind": "time"}
    bad = next((v for v in present if not _json_exact(v)), _NOTHING)
    if bad is not _NOTHING:
        raise _unsupported(
            f"column {name!r}, whose value {_short(bad)} JSON would not give back exactly"
        )
    texts = [None if v is None else json.dumps(v, ensure_ascii=False) for v in present]
    return pa.array(texts, type=_STR), {"kind": "json"}


_NOTHING = object()


def _json_exact(value: Any) -> bool:
    """Whether ``json.loads(json.dumps(value))`` is ``value``, types included."""
    kind = type(value)
    if kind in _JSON_SCALARS:
        return True
    if kind is list:
        return all(map(_json_exact, value))
    if kind is dict:
        return all(type(k) is str and _json_exact(v) for k, v in value.items())
    return False


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _unsupported(what: str) -> SnapshotError:
    return SnapshotError(
        f"A snapshot cannot keep {what} exactly, so none was written.", reason="unsupported"
    )


# -- decoding --------------------------------------------------------------------------------


def decode_frame(table: pa.Table, layout: dict[str, Any]) -> pd.DataFrame:
    """The frame ``encode_frame`` was given (attrs aside), from its table and layout.

    Raises ``SnapshotError`` (reason ``"corrupt"``) when the table does not fit
    the layout.
    """
    specs = layout["columns"]
    rows = layout["rows"]
    if table.num_rows != rows or table.column_names != [s["field"] for s in specs]:
        raise _corrupt("its Parquet file does not hold the columns and rows its manifest lists")
    arrays: dict[int, Any] = {}
    for i, spec in enumerate(specs):
        column = table.column(i)
        try:
            array = _DECODERS[spec["kind"]](column, spec)
        except (KeyError, ValueError, TypeError, AttributeError, pa.ArrowException) as exc:
            raise _corrupt(f"column {spec['name']!r} cannot be decoded ({exc})") from None
        if isinstance(array, np.ndarray) and array.dtype == object:
            array = pd.Series(array, dtype=object, copy=False)
        arrays[i] = array
    frame = pd.DataFrame(arrays, index=pd.RangeIndex(rows), copy=False)
    frame.columns = pd.Index([s["name"] for s in specs], dtype=layout["columns_dtype"])
    got = [str(t) for t in frame.dtypes]
    want = [s["dtype"] for s in specs]
    if got != want:
        raise _corrupt(f"its columns decode to dtypes {got}, not {want}")
    return frame


def _corrupt(what: str) -> SnapshotError:
    return SnapshotError(f"The snapshot is damaged: {what}.", reason="corrupt")


def _objects(values: list[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _decode_string(column: pa.ChunkedArray, spec: dict[str, Any]) -> Any:
    na = pd.NA if spec["na"] == "NA" else np.nan
    dtype: Any = pd.StringDtype(spec["storage"], na_value=na)
    return dtype.__from_arrow__(column)


def _decode_masked(column: pa.ChunkedArray, spec: dict[str, Any]) -> Any:
    dtype: Any = pd.api.types.pandas_dtype(spec["dtype"])
    return dtype.__from_arrow__(column)


def _decode_numpy(column: pa.ChunkedArray, spec: dict[str, Any]) -> Any:
    return column.to_numpy().astype(spec["dtype"], copy=False)


def _decode_int(column: pa.ChunkedArray, spec: dict[str, Any]) -> Any:
    return _objects([None if v is None else int(v) for v in column.to_pylist()])


def _decode_time(column: pa.ChunkedArray, spec: dict[str, Any]) -> Any:
    parse = dt.time.fromisoformat
    return _objects([None if v is None else parse(v) for v in column.to_pylist()])


def _decode_json(column: pa.ChunkedArray, spec: dict[str, Any]) -> Any:
    loads = json.loads
    return _objects([None if v is None else loads(v) for v in column.to_pylist()])


_DECODERS: dict[str, Callable[[pa.ChunkedArray, dict[str, Any]], Any]] = {
    "string": _decode_string,
    "arrow": lambda column, spec: pd.arrays.ArrowExtensionArray(column),
    "masked": _decode_masked,
    "datetimetz": lambda column, spec: column.to_pandas().array,
    "numpy": _decode_numpy,
    "str": lambda column, spec: _objects(column.to_pylist()),
    "int": _decode_int,
    "time": _decode_time,
    "json": _decode_json,
}


# -- Parquet bytes -----------------------------------------------------------------------------


def write_parquet(table: pa.Table) -> pa.Buffer:
    """The table as Parquet bytes (zstd), in memory: the caller hashes them and writes."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression=COMPRESSION)
    return sink.getvalue()


def read_parquet(data: bytes | pa.Buffer) -> pa.Table:
    """Parquet bytes -> table; ``SnapshotError`` (corrupt) if they are not valid Parquet."""
    try:
        return pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise _corrupt(f"its Parquet file cannot be read ({str(exc)[:200]})") from None
