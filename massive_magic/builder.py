"""Row batches -> one typed pandas DataFrame or Arrow table, typed by ``TYPE_TABLE``.

``FrameBuilder`` converts each batch of rows to column chunks as it arrives (or,
when the columns come after the rows, stores them compactly until they are
known), then builds either output from the same chunks: ``build()`` a
DataFrame, ``build_arrow()`` a ``pyarrow.Table`` without going through pandas.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from massive_magic.converters import ARROW_ERRORS, Column, Converter
from massive_magic.errors import ResponseError, UnknownTypeWarning
from massive_magic.gcpause import gc_paused
from massive_magic.typetable import check_timezone, column_type, converter_for

__all__ = ["FrameBuilder", "column_name", "untyped"]

#: Leading values looked at to spot a JSON column (objects, arrays) before Arrow infers.
_PEEK = 16


def untyped(values: Sequence[Any]) -> Any:
    """One column of a batch, stored compactly before its Metabase type is known.

    An Arrow array of the inferred type when that loses nothing: null, bool,
    int64, string, or double when every value is a float (Arrow would turn ints
    into floats, and True into 1.0). Otherwise the values themselves: JSON
    objects and arrays (Arrow would make structs and lists of them), integers
    beyond 64 bits, mixed kinds. The column's converter checks either later.
    """
    head = [v for v in values[:_PEEK] if v is not None]
    if head and isinstance(head[0], (dict, list)):
        return values
    try:
        arr = pa.array(values)
    except ARROW_ERRORS:
        return values
    kind = arr.type
    if pa.types.is_floating(kind):
        if not set(map(type, values)) <= {float, type(None)}:
            return values
    elif pa.types.is_string(kind):
        return _compact_text(arr)
    elif not (pa.types.is_int64(kind) or pa.types.is_boolean(kind) or pa.types.is_null(kind)):
        return values  # nested (dicts, lists), or anything unforeseen
    return arr


def _compact_text(arr: pa.Array) -> pa.Array:
    """Repetitive text (dates as text, countries, app names) dictionary-encoded.

    Date-times and dates arrive as ~25-byte strings and end as 8-byte values;
    until the types are known, encoding the repetitive ones keeps the stored
    batches below the size of the final frame.
    """
    if len(arr) < 256:
        return arr
    sample = arr.slice(0, 2048)
    if pc.count_distinct(sample, mode="all").as_py() * 2 > len(sample):
        return arr  # mostly distinct: the dictionary would not pay
    encoded = pc.dictionary_encode(arr)
    return encoded if encoded.nbytes < arr.nbytes else arr


class FrameBuilder:
    """Collects row batches and builds one typed DataFrame or Arrow table.

    ``cols`` is Metabase's ``data.cols``; ``results_timezone`` its
    ``data.results_timezone`` (date-times are shown in it). ``add_rows``
    converts each batch to column arrays at once, so the batch's Python objects
    can be freed before the next one is parsed. ``localize_naive=True`` reads
    date-times written without an offset as wall-clock times in
    ``results_timezone`` (a CSV export drops the offsets the JSON answer has).

    ``cols=None`` defers the typing, for the ``api`` export, whose ``cols`` come
    after the rows: each batch is stored column by column as compact Arrow
    arrays of inferred type (Python values only where inference would change
    them, see ``untyped``), and ``build(cols, results_timezone=...)`` (or
    ``build_arrow``) converts them with the same ``TYPE_TABLE`` converters.
    """

    def __init__(
        self,
        cols: list[dict[str, Any]] | None = None,
        *,
        results_timezone: str | None = None,
        localize_naive: bool = False,
    ) -> None:
        self._cols: list[dict[str, Any]] = []
        self._names: list[str] = []
        self._columns: list[Column] = []
        self._converters: list[Converter] | None = None
        self._chunks: list[list[Any]] = []
        self._width: int | None = None
        self._deferred = cols is None
        self._localize_naive = localize_naive
        self._row_count = 0
        self._built = False
        if cols is not None:
            self._set_columns(cols, results_timezone)
            self._width = len(self._cols)
            self._chunks = [[] for _ in self._cols]

    def _set_columns(self, cols: list[dict[str, Any]], results_timezone: str | None) -> None:
        zone = check_timezone(results_timezone)
        self._cols = list(cols)
        self._names = [column_name(col, i) for i, col in enumerate(self._cols)]
        converters: list[Converter] = []
        for name, col in zip(self._names, self._cols, strict=True):
            kind = column_type(col)
            converter = converter_for(kind)
            if converter.warn:
                warnings.warn(
                    f"Column {name!r} has the Metabase type {kind!r}, which massive-magic "
                    "does not know; its values are kept as they are (object dtype; "
                    "JSON text in Arrow).",
                    UnknownTypeWarning,
                    stacklevel=3,
                )
            self._columns.append(Column(name, kind, zone, self._localize_naive))
            converters.append(converter)
        self._converters = converters

    @property
    def row_count(self) -> int:
        """Rows added so far."""
        return self._row_count

    @property
    def names(self) -> list[str]:
        """The column names, in order (empty while the columns are unknown)."""
        return list(self._names)

    def add_rows(self, rows: list[list[Any]]) -> None:
        """Convert (or, without ``cols``, store) one batch of rows, positional by column."""
        self._check_open()
        if not rows:
            return
        if not set(map(type, rows)) <= {list, tuple}:
            raise ResponseError("The answer's rows are not lists; check the card in Metabase.")
        width = len(rows[0]) if self._width is None else self._width
        try:
            with gc_paused():
                # zip is the fastest transposition; its iterator per row only costs
                # time when the cyclic GC walks them, hence the pause.
                columns = list(zip(*rows, strict=True))
        except ValueError:
            columns = []
        if len(columns) != width or len(rows[0]) != width:
            other = next((len(r) for r in rows if len(r) != width), len(rows[0]))
            raise ResponseError(
                f"A row has {other} values but the result has {width} columns; "
                "check the card in Metabase."
            )
        if self._width is None:
            self._width = width
            self._chunks = [[] for _ in range(width)]
        converters = self._converters
        for k, values in enumerate(columns):
            if converters is None:
                self._chunks[k].append(untyped(values))
            else:
                self._chunks[k].append(converters[k].values(values, self._columns[k]))
        self._row_count += len(rows)

    def add_text_batch(self, batch: pa.RecordBatch) -> None:
        """Add one batch of columns read as text, positional (a CSV export's cells).

        Each column is an Arrow string array with null for an empty cell; the
        builder must have its ``cols``. Every value is parsed per ``TYPE_TABLE``
        from its text, as the JSON path parses dates and big numbers.
        """
        self._check_open()
        if self._converters is None:
            raise TypeError("add_text_batch needs a FrameBuilder made with its cols.")
        if batch.num_columns != len(self._converters):
            raise ResponseError(
                f"A batch has {batch.num_columns} columns but the result has "
                f"{len(self._converters)}; check the card in Metabase."
            )
        for k, arr in enumerate(batch.columns):
            self._chunks[k].append(self._converters[k].strings(arr, self._columns[k]))
        self._row_count += batch.num_rows

    def _check_open(self) -> None:
        if self._built:
            raise RuntimeError("FrameBuilder.build() was called already; use a new builder.")

    def _typed(
        self, cols: list[dict[str, Any]] | None, results_timezone: str | None
    ) -> Iterator[tuple[Converter, Column, list[Any]]]:
        """Each column's converter, description and typed chunks, in order.

        Settles the columns first (given here when the builder was made without
        them). Stored chunks are converted in place, and each column's chunks
        are let go once the caller moves on: the peak stays near one output
        plus one column.
        """
        self._check_open()
        if self._deferred:
            if cols is None:
                raise TypeError("FrameBuilder(cols=None).build() needs the columns: build(cols).")
            if self._width is None:  # no rows: the columns decide
                self._width = len(cols)
                self._chunks = [[] for _ in cols]
            elif self._width != len(cols):
                raise ResponseError(
                    f"The rows have {self._width} values but the result has {len(cols)} "
                    "columns; check the card in Metabase."
                )
            self._set_columns(cols, results_timezone)
        elif cols is not None:
            raise TypeError("This FrameBuilder has its columns already: call build().")
        assert self._converters is not None
        self._built = True
        for k, converter in enumerate(self._converters):
            chunks = self._chunks[k]
            column = self._columns[k]
            if self._deferred:
                for i, raw in enumerate(chunks):  # convert in place: each raw chunk goes
                    if isinstance(raw, pa.DictionaryArray):
                        chunks[i] = converter.dictionary(raw, column)
                    elif isinstance(raw, pa.Array):
                        chunks[i] = converter.stored(raw, column)
                    else:
                        chunks[i] = converter.values(raw, column)
            yield converter, column, chunks
            self._chunks[k] = []  # let the chunks go as soon as the column exists

    def _attrs(self) -> dict[str, dict[str, str]]:
        return {
            "display_names": {
                name: col.get("display_name") or name
                for name, col in zip(self._names, self._cols, strict=True)
            },
            "metabase_types": {c.name: c.type for c in self._columns},
        }

    def build(
        self,
        cols: list[dict[str, Any]] | None = None,
        *,
        results_timezone: str | None = None,
    ) -> pd.DataFrame:
        """The DataFrame: columns named by Metabase ``name``, typed per ``TYPE_TABLE``.

        ``cols`` and ``results_timezone`` are given here, and only here, when the
        builder was made without ``cols``. Call it (or ``build_arrow``) once: the
        chunks are released as the columns are made, so the peak stays near one
        DataFrame plus one column. ``df.attrs["display_names"]`` maps the names
        to display names and ``df.attrs["metabase_types"]`` to the type used.
        """
        arrays: dict[int, Any] = {}
        for k, (converter, column, chunks) in enumerate(self._typed(cols, results_timezone)):
            array = converter.to_pandas(chunks, column)
            if isinstance(array, np.ndarray) and array.dtype == object:
                array = pd.Series(array, dtype=object, copy=False)  # not inferred as str
            arrays[k] = array
        frame = pd.DataFrame(arrays, index=pd.RangeIndex(self._row_count), copy=False)
        frame.columns = pd.Index(self._names, dtype=object)
        frame.attrs.update(self._attrs())
        return frame

    def build_arrow(
        self,
        cols: list[dict[str, Any]] | None = None,
        *,
        results_timezone: str | None = None,
    ) -> pa.Table:
        """The Arrow table, straight from the chunks (no pandas): same calling shape as ``build``.

        Types per ``TYPE_TABLE`` (its Arrow column). The schema metadata holds
        ``display_names`` and ``metabase_types`` as JSON, the same dicts as the
        DataFrame's ``attrs``. Text and numbers are not copied: the table's
        columns are the builder's chunks.
        """
        fields: list[pa.Field] = []
        columns: list[pa.ChunkedArray] = []
        for converter, column, chunks in self._typed(cols, results_timezone):
            array = converter.to_arrow(chunks, column)
            fields.append(pa.field(column.name, array.type))
            columns.append(array)
        metadata = {
            key: json.dumps(value, ensure_ascii=False) for key, value in self._attrs().items()
        }
        schema = pa.schema(fields, metadata=metadata)
        if not columns:
            return schema.empty_table()
        return pa.Table.from_arrays(columns, schema=schema)


def column_name(col: dict[str, Any], index: int) -> str:
    """The column's Metabase ``name`` (unique), else its display name, else its position."""
    name = col.get("name") or col.get("display_name")
    return str(name) if name else f"column_{index}"
