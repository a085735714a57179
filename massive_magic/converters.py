"""One converter per family of Metabase types: values in, a typed column out.

A converter turns each batch of a column into a *chunk* (mostly an Arrow array
of the final type), then all the chunks into the column: ``to_arrow`` gives the
Arrow column and ``to_pandas`` the pandas one, which for every type with an
Arrow counterpart is a view of ``to_arrow``'s result, so the two never disagree.
Which converter a Metabase type gets is decided in ``typetable.TYPE_TABLE``
only. This module holds the base class and the numbers, text, booleans and
JSON; ``temporal`` the dates, date-times and times.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa

from massive_magic.errors import ResponseError, UnknownTypeWarning

__all__ = [
    "ARROW_ERRORS",
    "STR",
    "TS",
    "TS_UTC",
    "Boolean",
    "Column",
    "Converter",
    "Float",
    "Integer",
    "Object",
    "Text",
    "Unknown",
    "is_text",
    "to_strings",
]

TS = pa.timestamp("us")
TS_UTC = pa.timestamp("us", tz="UTC")
STR = pa.large_string()
ARROW_ERRORS = (
    pa.ArrowInvalid,
    pa.ArrowTypeError,
    pa.ArrowNotImplementedError,
    OverflowError,
    UnicodeError,
)
_INTEGER_TEXT = re.compile(r"[+-]?\d+")


@dataclass(frozen=True)
class Column:
    """What a converter needs to know about the column it converts."""

    name: str
    type: str
    results_timezone: str | None
    localize_naive: bool = False

    def error(self, what: str, detail: object) -> ResponseError:
        text = str(detail)
        if len(text) > 200:
            text = text[:200] + "..."
        return ResponseError(
            f"Column {self.name!r} ({self.type}) holds {what}: {text}. "
            "Check the column's type in the card's metadata in Metabase."
        )


def _of_type(kinds: np.ndarray, kind: type) -> np.ndarray:
    """Where an object array of ``type(value)`` holds exactly ``kind`` (so ``bool`` is
    not ``int``), vectorised. ``kind`` goes in as a 0-d object array: compared as one
    object, not converted."""
    return np.equal(kinds, np.array(kind, dtype=object))


def _first_value_not(values: Sequence[Any], kinds: tuple[type, ...]) -> Any:
    """The first value of a wrong Python type (error path only)."""
    return next((v for v in values if v is not None and type(v) not in kinds), None)


def is_text(arr: pa.Array) -> bool:
    """Strings, or nothing but nulls (which any type can take)."""
    kind = arr.type
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind)


def to_strings(values: Sequence[Any], col: Column) -> pa.Array:
    try:
        return pa.array(values, type=STR)
    except ARROW_ERRORS:
        bad = _first_value_not(values, (str,))
        raise col.error("a value that is not text", repr(bad)) from None


class Converter:
    """Turns one batch of values into a chunk, and the chunks into a column.

    In: ``values`` receives a column of the JSON rows (a tuple of Python
    objects), ``strings`` the same column read as text (a CSV export: an Arrow
    string array, empty cells null), ``stored`` a column of JSON rows stored
    before the types were known (an Arrow array of the type Arrow inferred:
    null, bool, int64, double or string; see ``builder.untyped``).

    Out: ``to_arrow`` the Arrow column, ``to_pandas`` the pandas one; by default
    ``pandas`` of the Arrow column, so both come from the same chunks and the
    same type decision. Both also work with no chunks (zero rows). They may
    empty ``chunks`` as they go, to release memory.
    """

    warn = False

    def values(self, values: Sequence[Any], col: Column) -> Any:
        return self.strings(to_strings(values, col), col)

    def stored(self, arr: pa.Array, col: Column) -> Any:
        """The exact Python values again: every check of ``values`` applies."""
        return self.values(arr.to_pylist(), col)

    def dictionary(self, arr: pa.DictionaryArray, col: Column) -> Any:
        """Dictionary-encoded text (see ``builder.untyped``): decoded, then ``stored``."""
        return self.stored(arr.dictionary_decode(), col)

    def strings(self, arr: pa.Array, col: Column) -> Any:
        raise NotImplementedError

    def to_arrow(self, chunks: list[Any], col: Column) -> pa.ChunkedArray:
        raise NotImplementedError

    def to_pandas(self, chunks: list[Any], col: Column) -> Any:
        return self.pandas(self.to_arrow(chunks, col))

    def pandas(self, column: pa.ChunkedArray) -> Any:
        """The pandas array for ``to_arrow``'s column."""
        raise NotImplementedError


class Integer(Converter):
    """Nullable Int64, exact; strings (``/query`` sends ints beyond 2^53 as text) too.

    A chunk is an int64 array, or an object array of Python ints when a value
    is beyond the 64-bit range: the column is then exact Python ints (pandas)
    or ``decimal128(38, 0)`` (Arrow), with a warning.
    """

    def values(self, values: Sequence[Any], col: Column) -> Any:
        try:
            arr = pa.array(values)  # inference: int64 only when every value is an int
        except ARROW_ERRORS:
            return self._mixed(values, col)
        if pa.types.is_int64(arr.type):
            return arr
        if pa.types.is_null(arr.type):
            return arr.cast(pa.int64())
        return self._mixed(values, col)

    def stored(self, arr: pa.Array, col: Column) -> Any:
        kind = arr.type
        if pa.types.is_int64(kind):
            return arr
        if pa.types.is_null(kind):
            return arr.cast(pa.int64())
        if pa.types.is_float64(kind):  # only floats (see builder.untyped): each must be whole
            floats = arr.to_numpy(zero_copy_only=False)  # nulls -> NaN
            valid = ~np.isnan(floats)
            whole = (np.floor(floats) == floats) & (np.abs(floats) <= 2.0**53)
            if not whole[valid].all():
                bad = floats[valid & ~whole][0].item()
                raise col.error("a value that is not an integer", repr(bad))
            return arr.cast(pa.int64())
        return super().stored(arr, col)

    def _mixed(self, values: Sequence[Any], col: Column) -> Any:
        n = len(values)
        obj = np.fromiter(values, dtype=object, count=n)
        kinds = np.fromiter(map(type, values), dtype=object, count=n)
        is_int = _of_type(kinds, int)
        is_str = _of_type(kinds, str)
        is_float = _of_type(kinds, float)
        bad = ~(is_int | is_str | is_float | _of_type(kinds, type(None)))
        if bad.any():
            raise col.error("a value that is not an integer", repr(obj[bad][0]))
        out = np.full(n, None, dtype=object)
        out[is_int] = obj[is_int]
        if is_float.any():
            floats = obj[is_float].astype(np.float64)
            # 1.0 is fine; 1.5 is not an integer, and past 2**53 a float is not exact.
            whole = (np.floor(floats) == floats) & (np.abs(floats) <= 2.0**53)
            if not whole.all():
                raise col.error("a value that is not an integer", repr(floats[~whole][0].item()))
            out[is_float] = [int(f) for f in floats.tolist()]
        if is_str.any():
            texts = obj[is_str]
            try:
                out[is_str] = pa.array(texts, type=STR).cast(pa.int64()).to_pylist()
            except ARROW_ERRORS:
                out[is_str] = [self._exact(t, col) for t in texts.tolist()]
        try:
            return pa.array(out, type=pa.int64())
        except ARROW_ERRORS:
            return out  # beyond the 64-bit range: exact Python ints, object column

    @staticmethod
    def _exact(text: str, col: Column) -> int:
        if not _INTEGER_TEXT.fullmatch(text):
            raise col.error("a value that is not an integer", repr(text))
        return int(text)

    def strings(self, arr: pa.Array, col: Column) -> Any:
        try:
            return arr.cast(pa.int64())
        except ARROW_ERRORS:
            return self._mixed(arr.to_pylist(), col)

    @staticmethod
    def _wide(chunks: list[Any], col: Column, kept: str) -> bool:
        if not any(isinstance(chunk, np.ndarray) for chunk in chunks):
            return False
        warnings.warn(
            f"Column {col.name!r} ({col.type}) has integers beyond the 64-bit range; "
            f"kept exact as {kept}.",
            UnknownTypeWarning,
            stacklevel=5,
        )
        return True

    def to_arrow(self, chunks: list[Any], col: Column) -> pa.ChunkedArray:
        if not self._wide(chunks, col, "decimal128(38, 0)"):
            return pa.chunked_array(chunks, type=pa.int64())
        target = pa.decimal128(38, 0)
        try:
            return pa.chunked_array([pa.array(chunk, type=target) for chunk in chunks])
        except ARROW_ERRORS:
            raise col.error(
                "an integer of more than 38 digits", "beyond Arrow's decimal128(38, 0)"
            ) from None

    def to_pandas(self, chunks: list[Any], col: Column) -> Any:
        if self._wide(chunks, col, "Python ints in an object column"):
            parts = [
                chunk if isinstance(chunk, np.ndarray) else np.array(chunk.to_pylist(), object)
                for chunk in chunks
            ]
            return np.concatenate(parts)
        return self.pandas(pa.chunked_array(chunks, type=pa.int64()))

    def pandas(self, column: pa.ChunkedArray) -> Any:
        # pandas-stubs lack ExtensionDtype.__from_arrow__ (pandas has it).
        return pd.Int64Dtype().__from_arrow__(column)  # type: ignore[attr-defined]


class Float(Converter):
    """float64; Metabase sends big decimals as numbers or (``/query``) strings."""

    def values(self, values: Sequence[Any], col: Column) -> Any:
        try:
            arr = pa.array(values)  # inference: bools or text never pass as numbers
            if pa.types.is_floating(arr.type) or pa.types.is_null(arr.type):
                return arr.cast(pa.float64())
            if pa.types.is_int64(arr.type):
                return arr.cast(pa.float64())  # refuses ints that float64 would round
        except ARROW_ERRORS:
            pass
        n = len(values)
        obj = np.fromiter(values, dtype=object, count=n)
        kinds = np.fromiter(map(type, values), dtype=object, count=n)
        is_str = _of_type(kinds, str)
        is_none = _of_type(kinds, type(None))
        is_num = _of_type(kinds, int) | _of_type(kinds, float)
        bad = ~(is_num | is_str | is_none)
        if bad.any():
            raise col.error("a value that is not a number", repr(obj[bad][0]))
        out = np.full(n, np.nan)
        out[is_num] = np.array(obj[is_num].tolist(), dtype=np.float64)
        if is_str.any():
            out[is_str] = self.strings(pa.array(obj[is_str], type=STR), col).to_numpy(
                zero_copy_only=False
            )
        return pa.array(out, mask=is_none)

    def stored(self, arr: pa.Array, col: Column) -> Any:
        kind = arr.type
        if pa.types.is_float64(kind) or pa.types.is_null(kind):
            return arr.cast(pa.float64())
        if pa.types.is_int64(kind):
            try:
                return arr.cast(pa.float64())  # refuses ints that float64 would round
            except ARROW_ERRORS:
                pass
        return super().stored(arr, col)

    def strings(self, arr: pa.Array, col: Column) -> Any:
        try:
            return arr.cast(pa.float64())
        except ARROW_ERRORS as exc:
            raise col.error("a value that is not a number", exc) from None

    def to_arrow(self, chunks: list[Any], col: Column) -> pa.ChunkedArray:
        return pa.chunked_array(chunks, type=pa.float64())

    def pandas(self, column: pa.ChunkedArray) -> Any:
        return column.to_numpy()  # null -> NaN


class Boolean(Converter):
    def values(self, values: Sequence[Any], col: Column) -> Any:
        try:
            return pa.array(values, type=pa.bool_())
        except ARROW_ERRORS:
            pass
        try:
            return pa.array(values, type=STR).cast(pa.bool_())  # "true"/"false"
        except ARROW_ERRORS:
            bad = _first_value_not(values, (bool,))
            raise col.error("a value that is not a boolean", repr(bad)) from None

    def stored(self, arr: pa.Array, col: Column) -> Any:
        if pa.types.is_boolean(arr.type) or pa.types.is_null(arr.type):
            return arr.cast(pa.bool_())
        return super().stored(arr, col)

    def strings(self, arr: pa.Array, col: Column) -> Any:
        try:
            return arr.cast(pa.bool_())
        except ARROW_ERRORS as exc:
            raise col.error("a value that is not a boolean", exc) from None

    def to_arrow(self, chunks: list[Any], col: Column) -> pa.ChunkedArray:
        return pa.chunked_array(chunks, type=pa.bool_())

    def pandas(self, column: pa.ChunkedArray) -> Any:
        # pandas-stubs lack ExtensionDtype.__from_arrow__ (pandas has it).
        return pd.BooleanDtype().__from_arrow__(column)  # type: ignore[attr-defined]


class Text(Converter):
    """Every character kept; ``""`` and ``"null"`` stay text, only JSON null is null."""

    def values(self, values: Sequence[Any], col: Column) -> Any:
        return to_strings(values, col)

    def stored(self, arr: pa.Array, col: Column) -> Any:
        if is_text(arr):
            return arr.cast(STR)  # new offsets, the same character data
        return super().stored(arr, col)

    def strings(self, arr: pa.Array, col: Column) -> Any:
        return arr

    def to_arrow(self, chunks: list[Any], col: Column) -> pa.ChunkedArray:
        # Chunks stay chunks: no concatenation copy of the text.
        return pa.chunked_array(chunks, type=STR)

    def pandas(self, column: pa.ChunkedArray) -> Any:
        # pandas-stubs lack ExtensionDtype.__from_arrow__ (pandas has it).
        return pd.StringDtype("pyarrow").__from_arrow__(column)  # type: ignore[attr-defined]


class Object(Converter):
    """Values unchanged (JSON columns arrive as text or as parsed JSON).

    pandas: an object column of the values as sent. Arrow has no "any" type:
    a ``large_string`` column of JSON text, where text is kept as sent (that is
    how Metabase sends JSON columns) and any other value (a parsed object, an
    array, a number, a boolean) is written as JSON; null stays null.
    """

    def values(self, values: Sequence[Any], col: Column) -> Any:
        return np.fromiter(values, dtype=object, count=len(values))

    def strings(self, arr: pa.Array, col: Column) -> Any:
        return np.array(arr.to_pylist(), dtype=object)

    def to_arrow(self, chunks: list[Any], col: Column) -> pa.ChunkedArray:
        return pa.chunked_array([_json_text(chunk) for chunk in chunks], type=STR)

    def to_pandas(self, chunks: list[Any], col: Column) -> Any:
        return np.concatenate(chunks) if chunks else np.array([], dtype=object)


class Unknown(Object):
    """A type the table does not name: values kept as for JSON, with a warning."""

    warn = True


def _json_text(values: np.ndarray) -> pa.Array:
    """Text as it is, anything else as JSON text (nulls stay null)."""
    try:
        return pa.array(values, type=STR)  # text and nulls only: the common case
    except ARROW_ERRORS:
        pass
    return pa.array(
        [v if v is None or type(v) is str else _dumps(v) for v in values.tolist()], type=STR
    )


def _dumps(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # integers beyond 64 bits, other exotic values
        return json.dumps(value, ensure_ascii=False, default=str)
