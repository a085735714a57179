"""Metabase columns + rows -> a typed pandas DataFrame. Pure conversion, no HTTP.

One table, ``TYPE_TABLE``, maps each Metabase type to a converter; a column is
looked up by its ``effective_type`` (the type after Metabase's coercions, the
one the values are written in), falling back to ``base_type`` when that is
absent. The result dtypes:

==========================================  ===========================================
Metabase type                               pandas dtype
==========================================  ===========================================
``type/Integer``, ``type/BigInteger``       ``Int64`` (nullable; exact, numbers or
                                            strings). Values beyond the 64-bit range:
                                            ``object`` column of exact Python ints +
                                            ``UnknownTypeWarning``
``type/Float``, ``type/Decimal``, ...       ``float64`` (null -> NaN); numbers or strings
``type/Text``, ``type/UUID``, enums, ...    ``string[pyarrow]`` (``pd.StringDtype("pyarrow")``)
``type/Boolean``                            ``boolean`` (nullable)
``type/Date``                               ``datetime64[us]``, midnight, the date *as
                                            written* (the offset Metabase attaches is
                                            ignored, so no day shifts)
``type/DateTime`` and its subtypes,         ``datetime64[us, <results_timezone>]`` when the
``type/Instant``                            values carry offsets (UTC if no results
                                            timezone is known); ``datetime64[us]`` when
                                            the server sent none
``type/Time``                               ``time64[us][pyarrow]``, wall-clock time as
                                            written (the offset Metabase attaches to a
                                            local time is dropped)
``type/TimeWithTZ`` and subtypes            ``object``: ``datetime.time`` with ``tzinfo``
                                            (the offset as sent)
JSON / collections / ``type/*``             ``object``, values unchanged
anything else                               ``object`` + ``UnknownTypeWarning`` (once)
==========================================  ===========================================

Microseconds are the unit for every temporal column: they cover years 1-9999
(``datetime64[ns]`` stops at 2262) and are Metabase's usual precision; finer
fractions are truncated.

Decimals become float64 (about 15 significant digits). To keep exact decimals,
cast the column to text in the card's SQL (``CAST(amount AS TEXT)``): it then
arrives as ``type/Text`` with every digit, and ``.map(decimal.Decimal)`` gives
exact values.

A value that does not fit its column's declared type raises ``ResponseError``
naming the column and the value: nothing is coerced to NaN behind your back.
Column names are Metabase's ``name`` (unique); ``df.attrs["display_names"]``
maps them to display names and ``df.attrs["metabase_types"]`` to the type used.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from massive_magic.errors import MassiveWarning, QueryFailed, ResponseError, UnknownTypeWarning
from massive_magic.gcpause import gc_paused

__all__ = ["TYPE_TABLE", "FrameBuilder", "frame_from_csv", "frame_from_result"]

_TS = pa.timestamp("us")
_TS_UTC = pa.timestamp("us", tz="UTC")
_STR = pa.large_string()
_ARROW_ERRORS = (
    pa.ArrowInvalid,
    pa.ArrowTypeError,
    pa.ArrowNotImplementedError,
    OverflowError,
    UnicodeError,
)
# An offset at the end of an ISO date-time or time: Z, +05, +0530, +05:30.
_OFFSET = r"(?:Z|[+-]\d\d(?::?\d\d)?)$"
_HAS_OFFSET = r"\d\d:\d\d(?::\d\d(?:\.\d*)?)?" + _OFFSET
_HAS_OFFSET_RE = re.compile(_HAS_OFFSET)
_INTEGER_TEXT = re.compile(r"[+-]?\d+")


@dataclass(frozen=True)
class _Column:
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


def _first_value_not(values: Sequence[Any], kinds: tuple[type, ...]) -> Any:
    """The first value of a wrong Python type (error path only)."""
    return next((v for v in values if v is not None and type(v) not in kinds), None)


def _is_text(arr: pa.Array) -> bool:
    """Strings, or nothing but nulls (which any type can take)."""
    kind = arr.type
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind)


def _to_strings(values: Sequence[Any], col: _Column) -> pa.Array:
    try:
        return pa.array(values, type=_STR)
    except _ARROW_ERRORS:
        bad = _first_value_not(values, (str,))
        raise col.error("a value that is not text", repr(bad)) from None


class _Converter:
    """Turns one batch of values into a chunk, and the chunks into a pandas array.

    ``values`` receives a column of the JSON rows (a tuple of Python objects),
    ``strings`` the same column read from a CSV export (an Arrow string array,
    empty cells null), ``arrow`` a column of JSON rows stored before the types
    were known (an Arrow array of the type Arrow inferred: null, bool, int64,
    double or string; see ``_untyped``). ``finish`` also works with no chunks
    (zero rows).
    """

    warn = False

    def values(self, values: Sequence[Any], col: _Column) -> Any:
        return self.strings(_to_strings(values, col), col)

    def arrow(self, arr: pa.Array, col: _Column) -> Any:
        """The exact Python values again: every check of ``values`` applies."""
        return self.values(arr.to_pylist(), col)

    def dictionary(self, arr: pa.DictionaryArray, col: _Column) -> Any:
        """Dictionary-encoded text (see ``_compact_text``): decoded, then ``arrow``."""
        return self.arrow(arr.dictionary_decode(), col)

    def strings(self, arr: pa.Array, col: _Column) -> Any:
        raise NotImplementedError

    def finish(self, chunks: list[Any], col: _Column) -> Any:
        raise NotImplementedError


class _Integer(_Converter):
    """Nullable Int64, exact; strings (``/query`` sends ints beyond 2^53 as text) too."""

    def values(self, values: Sequence[Any], col: _Column) -> Any:
        try:
            arr = pa.array(values)  # inference: int64 only when every value is an int
        except _ARROW_ERRORS:
            return self._mixed(values, col)
        if pa.types.is_int64(arr.type):
            return arr
        if pa.types.is_null(arr.type):
            return arr.cast(pa.int64())
        return self._mixed(values, col)

    def arrow(self, arr: pa.Array, col: _Column) -> Any:
        kind = arr.type
        if pa.types.is_int64(kind):
            return arr
        if pa.types.is_null(kind):
            return arr.cast(pa.int64())
        if pa.types.is_float64(kind):  # only floats (see _untyped): each must be whole
            floats = arr.to_numpy(zero_copy_only=False)  # nulls -> NaN
            valid = ~np.isnan(floats)
            whole = (np.floor(floats) == floats) & (np.abs(floats) <= 2.0**53)
            if not whole[valid].all():
                bad = floats[valid & ~whole][0].item()
                raise col.error("a value that is not an integer", repr(bad))
            return arr.cast(pa.int64())
        return super().arrow(arr, col)

    def _mixed(self, values: Sequence[Any], col: _Column) -> Any:
        n = len(values)
        obj = np.fromiter(values, dtype=object, count=n)
        kinds = np.fromiter(map(type, values), dtype=object, count=n)
        is_int = np.equal(kinds, int)
        is_str = np.equal(kinds, str)
        is_float = np.equal(kinds, float)
        bad = ~(is_int | is_str | is_float | (np.equal(kinds, type(None))))
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
                out[is_str] = pa.array(texts, type=_STR).cast(pa.int64()).to_pylist()
            except _ARROW_ERRORS:
                out[is_str] = [self._exact(t, col) for t in texts.tolist()]
        try:
            return pa.array(out, type=pa.int64())
        except _ARROW_ERRORS:
            return out  # beyond the 64-bit range: exact Python ints, object column

    @staticmethod
    def _exact(text: str, col: _Column) -> int:
        if not _INTEGER_TEXT.fullmatch(text):
            raise col.error("a value that is not an integer", repr(text))
        return int(text)

    def strings(self, arr: pa.Array, col: _Column) -> Any:
        try:
            return arr.cast(pa.int64())
        except _ARROW_ERRORS:
            return self._mixed(arr.to_pylist(), col)

    def finish(self, chunks: list[Any], col: _Column) -> Any:
        if any(isinstance(chunk, np.ndarray) for chunk in chunks):
            warnings.warn(
                f"Column {col.name!r} ({col.type}) has integers beyond the 64-bit range; "
                "kept exact as Python ints in an object column.",
                UnknownTypeWarning,
                stacklevel=4,
            )
            parts = [
                chunk if isinstance(chunk, np.ndarray) else np.array(chunk.to_pylist(), object)
                for chunk in chunks
            ]
            return np.concatenate(parts) if parts else np.array([], dtype=object)
        return pd.Int64Dtype().__from_arrow__(pa.chunked_array(chunks, type=pa.int64()))


class _Float(_Converter):
    """float64; Metabase sends big decimals as numbers or (``/query``) strings."""

    def values(self, values: Sequence[Any], col: _Column) -> Any:
        try:
            arr = pa.array(values)  # inference: bools or text never pass as numbers
            if pa.types.is_floating(arr.type) or pa.types.is_null(arr.type):
                return arr.cast(pa.float64())
            if pa.types.is_int64(arr.type):
                return arr.cast(pa.float64())  # refuses ints that float64 would round
        except _ARROW_ERRORS:
            pass
        n = len(values)
        obj = np.fromiter(values, dtype=object, count=n)
        kinds = np.fromiter(map(type, values), dtype=object, count=n)
        is_str = np.equal(kinds, str)
        is_none = np.equal(kinds, type(None))
        is_num = (np.equal(kinds, int)) | (np.equal(kinds, float))
        bad = ~(is_num | is_str | is_none)
        if bad.any():
            raise col.error("a value that is not a number", repr(obj[bad][0]))
        out = np.full(n, np.nan)
        out[is_num] = np.array(obj[is_num].tolist(), dtype=np.float64)
        if is_str.any():
            out[is_str] = self.strings(pa.array(obj[is_str], type=_STR), col).to_numpy(
                zero_copy_only=False
            )
        return pa.array(out, mask=is_none)

    def arrow(self, arr: pa.Array, col: _Column) -> Any:
        kind = arr.type
        if pa.types.is_float64(kind) or pa.types.is_null(kind):
            return arr.cast(pa.float64())
        if pa.types.is_int64(kind):
            try:
                return arr.cast(pa.float64())  # refuses ints that float64 would round
            except _ARROW_ERRORS:
                pass
        return super().arrow(arr, col)

    def strings(self, arr: pa.Array, col: _Column) -> Any:
        try:
            return arr.cast(pa.float64())
        except _ARROW_ERRORS as exc:
            raise col.error("a value that is not a number", exc) from None

    def finish(self, chunks: list[Any], col: _Column) -> Any:
        return pa.chunked_array(chunks, type=pa.float64()).to_numpy()


class _Boolean(_Converter):
    def values(self, values: Sequence[Any], col: _Column) -> Any:
        try:
            return pa.array(values, type=pa.bool_())
        except _ARROW_ERRORS:
            pass
        try:
            return pa.array(values, type=_STR).cast(pa.bool_())  # "true"/"false"
        except _ARROW_ERRORS:
            bad = _first_value_not(values, (bool,))
            raise col.error("a value that is not a boolean", repr(bad)) from None

    def arrow(self, arr: pa.Array, col: _Column) -> Any:
        if pa.types.is_boolean(arr.type) or pa.types.is_null(arr.type):
            return arr.cast(pa.bool_())
        return super().arrow(arr, col)

    def strings(self, arr: pa.Array, col: _Column) -> Any:
        try:
            return arr.cast(pa.bool_())
        except _ARROW_ERRORS as exc:
            raise col.error("a value that is not a boolean", exc) from None

    def finish(self, chunks: list[Any], col: _Column) -> Any:
        return pd.BooleanDtype().__from_arrow__(pa.chunked_array(chunks, type=pa.bool_()))


class _Text(_Converter):
    """Every character kept; ``""`` and ``"null"`` stay text, only JSON null is null."""

    def values(self, values: Sequence[Any], col: _Column) -> Any:
        return _to_strings(values, col)

    def arrow(self, arr: pa.Array, col: _Column) -> Any:
        if _is_text(arr):
            return arr.cast(_STR)  # new offsets, the same character data
        return super().arrow(arr, col)

    def strings(self, arr: pa.Array, col: _Column) -> Any:
        return arr

    def finish(self, chunks: list[Any], col: _Column) -> Any:
        # Chunks stay chunks: no concatenation copy of the text.
        return pd.StringDtype("pyarrow").__from_arrow__(pa.chunked_array(chunks, type=_STR))


class _Parsed(_Converter):
    """Values written as text (dates, date-times, times): parsed by ``strings``."""

    def arrow(self, arr: pa.Array, col: _Column) -> Any:
        if _is_text(arr):
            return self.strings(arr.cast(_STR), col)
        return super().arrow(arr, col)

    def dictionary(self, arr: pa.DictionaryArray, col: _Column) -> Any:
        """Each distinct text parsed once, then spread out by the indices."""
        return self._take(self.arrow(arr.dictionary, col), arr.indices)

    def _take(self, converted: Any, indices: pa.Array) -> Any:
        return converted.take(indices)


class _Date(_Parsed):
    """The first 10 characters, ``YYYY-MM-DD``, as written: no time zone arithmetic."""

    _ENDS = pa.array(["", "T", " "], type=_STR)

    def strings(self, arr: pa.Array, col: _Column) -> Any:
        after = pc.utf8_slice_codeunits(arr, 10, 11)
        shaped = pc.is_in(after, value_set=self._ENDS)  # false for nulls
        if (pc.sum(shaped).as_py() or 0) != len(arr) - arr.null_count:
            bad = arr.filter(pc.and_(pc.invert(shaped), pc.is_valid(arr)))[0].as_py()
            raise col.error("a value that is not a date", repr(bad))
        try:
            return pc.utf8_slice_codeunits(arr, 0, 10).cast(pa.date32())
        except _ARROW_ERRORS as exc:
            raise col.error("a value that is not a date", exc) from None

    def finish(self, chunks: list[Any], col: _Column) -> Any:
        return pa.chunked_array(chunks, type=pa.date32()).cast(_TS).to_numpy()


class _DateTime(_Parsed):
    """Instants with offsets -> tz-aware in the results timezone; no offsets -> naive.

    A chunk is ``(kind, array)``: ``"aware"`` (timestamp[us, UTC]), ``"naive"``
    (timestamp[us]) or ``"null"`` (no values). The kinds are settled in
    ``finish``, because a first batch may be all nulls.
    """

    def strings(self, arr: pa.Array, col: _Column) -> Any:
        if arr.null_count == len(arr):
            return ("null", arr)
        # A failing cast is slow (Arrow tries harder before giving up): try the
        # kind the first value shows first.
        sample = arr.slice(0, 64).drop_null()
        first = (sample if len(sample) else arr.drop_null())[0].as_py()
        kinds = [("aware", _TS_UTC), ("naive", _TS)]
        if not _HAS_OFFSET_RE.search(first):
            kinds.reverse()
        for kind, target in kinds:
            try:
                return (kind, arr.cast(target))
            except _ARROW_ERRORS:
                pass
        # Mixed, or ISO forms Arrow does not read (nanoseconds, +hh:mm:ss offsets).
        has_offset = pc.match_substring_regex(arr, _HAS_OFFSET)
        aware = pc.if_else(has_offset, arr, pa.scalar(None, _STR))
        naive = pc.if_else(has_offset, pa.scalar(None, _STR), arr)
        aware_ts = self._parse(aware, col, utc=True)
        if naive.null_count == len(naive):
            return ("aware", aware_ts)
        naive_ts = self._parse(naive, col, utc=False)
        if aware.null_count == len(aware):
            return ("naive", naive_ts)
        zone = col.results_timezone
        if zone is None:
            raise col.error(
                "date-times with and without a UTC offset",
                "no results timezone to place the ones without",
            )
        localized = self._localize(naive_ts, zone, col)
        return ("aware", pc.if_else(has_offset, aware_ts, localized.cast(_TS_UTC)))

    @staticmethod
    def _parse(arr: pa.Array, col: _Column, *, utc: bool) -> pa.Array:
        target = _TS_UTC if utc else _TS
        try:
            return arr.cast(target)
        except _ARROW_ERRORS:
            pass
        try:
            parsed = pd.to_datetime(
                pd.Series(arr, dtype=pd.StringDtype("pyarrow")), format="ISO8601", utc=utc
            )
        except (ValueError, TypeError, OverflowError) as exc:
            raise col.error("a value that is not a date-time", exc) from None
        return pa.array(parsed.dt.as_unit("us"), type=target)

    @staticmethod
    def _localize(arr: pa.Array, zone: str, col: _Column) -> pa.Array:
        """Wall-clock times in ``zone`` (a repeated hour takes its first instant)."""
        try:
            return pc.assume_timezone(arr, zone, ambiguous="earliest", nonexistent="earliest")
        except _ARROW_ERRORS as exc:
            raise col.error("a date-time that does not exist in " + zone, exc) from None

    def _take(self, converted: Any, indices: pa.Array) -> Any:
        kind, arr = converted
        return (kind, arr.take(indices))

    def finish(self, chunks: list[Any], col: _Column) -> Any:
        kinds = {kind for kind, _ in chunks} - {"null"}
        zone = col.results_timezone
        aware = "aware" in kinds or (not kinds and zone is not None)
        if "naive" in kinds and col.localize_naive and zone is not None:
            aware = True
        if aware:
            if "naive" in kinds and zone is None:
                raise col.error(
                    "date-times with and without a UTC offset",
                    "no results timezone to place the ones without",
                )
            target = pa.timestamp("us", tz=zone or "UTC")
            parts = []
            for kind, arr in chunks:
                if kind == "naive":
                    parts.append(self._localize(arr, zone or "UTC", col).cast(target))
                else:
                    parts.append(arr.cast(target))
            return pa.chunked_array(parts, type=target).to_pandas().array
        return pa.chunked_array([arr.cast(_TS) for _, arr in chunks], type=_TS).to_numpy()


class _Time(_Parsed):
    """Wall-clock time of day as written; the offset Metabase appends is dropped."""

    _EPOCH = pa.scalar("1970-01-01T", type=_STR)

    def _wall(self, arr: pa.Array, col: _Column) -> pa.Array:
        bare = pc.replace_substring_regex(arr, _OFFSET, "")
        bare = pc.replace_substring_regex(bare, r"(\.\d{6})\d+$", r"\1")  # ns -> us
        try:
            stamped = pc.binary_join_element_wise(self._EPOCH, bare, pa.scalar("", _STR))
            return stamped.cast(_TS).cast(pa.time64("us"))
        except _ARROW_ERRORS as exc:
            raise col.error("a value that is not a time of day", exc) from None

    def strings(self, arr: pa.Array, col: _Column) -> Any:
        return self._wall(arr, col)

    def finish(self, chunks: list[Any], col: _Column) -> Any:
        return pd.arrays.ArrowExtensionArray(pa.chunked_array(chunks, type=pa.time64("us")))


class _TimeWithZone(_Time):
    """``datetime.time`` objects that keep their offset (pandas has no such dtype)."""

    def dictionary(self, arr: pa.DictionaryArray, col: _Column) -> Any:
        return self.arrow(arr.dictionary_decode(), col)

    def strings(self, arr: pa.Array, col: _Column) -> Any:
        walls = self._wall(arr, col).to_pylist()
        offsets = pc.extract_regex(arr, f"(?P<o>{_OFFSET[:-1]})?$").field("o").to_pylist()
        zones = {text: _fixed_zone(text) for text in set(offsets) if text is not None}
        return np.array(
            [
                None if t is None else t.replace(tzinfo=zones.get(o))
                for t, o in zip(walls, offsets, strict=True)
            ],
            dtype=object,
        )

    def finish(self, chunks: list[Any], col: _Column) -> Any:
        return np.concatenate(chunks) if chunks else np.array([], dtype=object)


def _fixed_zone(text: str) -> timezone | None:
    if not text:
        return None
    if text == "Z":
        return timezone.utc
    digits = text[1:].replace(":", "")
    delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
    return timezone(-delta if text[0] == "-" else delta)


class _Object(_Converter):
    """Values unchanged (JSON columns arrive as text or as parsed JSON)."""

    def values(self, values: Sequence[Any], col: _Column) -> Any:
        return np.fromiter(values, dtype=object, count=len(values))

    def strings(self, arr: pa.Array, col: _Column) -> Any:
        return np.array(arr.to_pylist(), dtype=object)

    def finish(self, chunks: list[Any], col: _Column) -> Any:
        return np.concatenate(chunks) if chunks else np.array([], dtype=object)


class _Unknown(_Object):
    warn = True


_INTEGER, _FLOAT, _BOOLEAN, _TEXT = _Integer(), _Float(), _Boolean(), _Text()
_DATE, _DATETIME, _TIME, _TIMETZ = _Date(), _DateTime(), _Time(), _TimeWithZone()
_OBJECT, _UNKNOWN = _Object(), _Unknown()

#: Metabase type -> converter, most specific first within each family (Metabase's
#: ``isa`` hierarchy, ``metabase/types/core.cljc``). Lookup is by exact name.
TYPE_TABLE: dict[str, _Converter] = {
    # type/Number > type/Integer > type/BigInteger
    "type/BigInteger": _INTEGER,
    "type/Integer": _INTEGER,
    # type/Float > type/Decimal (> Currency, Percentage: semantic, once base types)
    "type/Currency": _FLOAT,
    "type/Percentage": _FLOAT,
    "type/Decimal": _FLOAT,
    "type/Float": _FLOAT,
    # type/Text > UUID, enums, CLOB; type/TextLike > BSON ids, IP addresses
    "type/UUID": _TEXT,
    "type/PostgresEnum": _TEXT,
    "type/MySQLEnum": _TEXT,
    "type/OracleCLOB": _TEXT,
    "type/Text": _TEXT,
    "type/MongoBSONID": _TEXT,
    "type/IPAddress": _TEXT,
    "type/TextLike": _TEXT,
    "type/Boolean": _BOOLEAN,
    # type/Temporal > Date | Time > TimeWithTZ > ... | DateTime > DateTimeWithTZ > ...
    "type/Date": _DATE,
    "type/TimeWithLocalTZ": _TIMETZ,
    "type/TimeWithZoneOffset": _TIMETZ,
    "type/TimeWithTZ": _TIMETZ,
    "type/Time": _TIME,
    "type/UNIXTimestampSeconds": _DATETIME,
    "type/UNIXTimestampMilliseconds": _DATETIME,
    "type/UNIXTimestampMicroseconds": _DATETIME,
    "type/UNIXTimestampNanoseconds": _DATETIME,
    "type/Instant": _DATETIME,
    "type/DateTimeWithLocalTZ": _DATETIME,
    "type/DateTimeWithZoneOffset": _DATETIME,
    "type/DateTimeWithZoneID": _DATETIME,
    "type/DateTimeWithTZ": _DATETIME,
    "type/DateTime": _DATETIME,
    "type/Interval": _OBJECT,
    # type/Collection > Array, Dictionary, JSON, XML; type/Structured > SerializedJSON
    "type/Array": _OBJECT,
    "type/Dictionary": _OBJECT,
    "type/JSON": _OBJECT,
    "type/XML": _OBJECT,
    "type/Collection": _OBJECT,
    "type/SerializedJSON": _OBJECT,
    "type/Structured": _OBJECT,
    "type/SnowflakeVariant": _OBJECT,
    "type/DruidJSON": _OBJECT,
    "type/DruidHyperUnique": _OBJECT,
    "type/*": _OBJECT,  # the root: e.g. a column of only NULLs
}


def _column_type(col: dict[str, Any]) -> str:
    return col.get("effective_type") or col.get("base_type") or "type/*"


def _check_timezone(zone: str | None) -> str | None:
    """The results timezone if Arrow and pandas both know it; else UTC, with a warning."""
    if zone is None:
        return None
    if zone == "Z":
        return "UTC"
    try:
        probe = pa.array([0], type=_TS_UTC).cast(pa.timestamp("us", tz=zone))
        pa.chunked_array([probe]).to_pandas()
    except Exception:
        warnings.warn(
            f"Unknown results timezone {zone!r}; date-times are shown in UTC.",
            MassiveWarning,
            stacklevel=3,
        )
        return "UTC"
    return zone


#: Leading values looked at to spot a JSON column (objects, arrays) before Arrow infers.
_PEEK = 16


def _untyped(values: Sequence[Any]) -> Any:
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
    except _ARROW_ERRORS:
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
    """Collects row batches and builds one typed DataFrame.

    ``cols`` is Metabase's ``data.cols``; ``results_timezone`` its
    ``data.results_timezone`` (date-times are shown in it). ``add_rows``
    converts each batch to column arrays at once, so the batch's Python objects
    can be freed before the next one is parsed.

    ``cols=None`` defers the typing, for the ``api`` export, whose ``cols`` come
    after the rows: each batch is stored column by column as compact Arrow
    arrays of inferred type (Python values only where inference would change
    them, see ``_untyped``), and ``build(cols, results_timezone=...)`` converts
    them with the same ``TYPE_TABLE`` converters.
    """

    def __init__(
        self, cols: list[dict[str, Any]] | None = None, *, results_timezone: str | None = None
    ) -> None:
        self._cols: list[dict[str, Any]] = []
        self._names: list[str] = []
        self._columns: list[_Column] = []
        self._converters: list[_Converter] | None = None
        self._chunks: list[list[Any]] = []
        self._width: int | None = None
        self._deferred = cols is None
        self._row_count = 0
        self._built = False
        if cols is not None:
            self._set_columns(cols, results_timezone)
            self._width = len(self._cols)
            self._chunks = [[] for _ in self._cols]

    def _set_columns(self, cols: list[dict[str, Any]], results_timezone: str | None) -> None:
        zone = _check_timezone(results_timezone)
        self._cols = list(cols)
        self._names = [_column_name(col, i) for i, col in enumerate(self._cols)]
        converters: list[_Converter] = []
        for name, col in zip(self._names, self._cols, strict=True):
            kind = _column_type(col)
            converter = TYPE_TABLE.get(kind, _UNKNOWN)
            if converter.warn:
                warnings.warn(
                    f"Column {name!r} has the Metabase type {kind!r}, which massive-magic "
                    "does not know; its values are kept as they are (object dtype).",
                    UnknownTypeWarning,
                    stacklevel=3,
                )
            self._columns.append(_Column(name, kind, zone))
            converters.append(converter)
        self._converters = converters

    @property
    def row_count(self) -> int:
        """Rows added so far."""
        return self._row_count

    @property
    def names(self) -> list[str]:
        """The DataFrame's column names, in order (empty while the columns are unknown)."""
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
                self._chunks[k].append(_untyped(values))
            else:
                self._chunks[k].append(converters[k].values(values, self._columns[k]))
        self._row_count += len(rows)

    def _add_strings(self, arrays: list[pa.Array], count: int) -> None:
        """Add one batch of CSV columns (Arrow strings, empty cells null)."""
        self._check_open()
        assert self._converters is not None, "the CSV path knows its columns"
        for k, arr in enumerate(arrays):
            self._chunks[k].append(self._converters[k].strings(arr, self._columns[k]))
        self._row_count += count

    def _check_open(self) -> None:
        if self._built:
            raise RuntimeError("FrameBuilder.build() was called already; use a new builder.")

    def build(
        self,
        cols: list[dict[str, Any]] | None = None,
        *,
        results_timezone: str | None = None,
    ) -> pd.DataFrame:
        """The DataFrame: columns named by Metabase ``name``, typed per ``TYPE_TABLE``.

        ``cols`` and ``results_timezone`` are given here, and only here, when the
        builder was made without ``cols``. Call it once: the chunks are released
        as the columns are made, so the peak stays near one DataFrame plus one
        column.
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
        arrays: dict[int, Any] = {}
        for k, converter in enumerate(self._converters):
            chunks = self._chunks[k]
            if self._deferred:
                column = self._columns[k]
                for i, raw in enumerate(chunks):  # convert in place: each raw chunk goes
                    if isinstance(raw, pa.DictionaryArray):
                        chunks[i] = converter.dictionary(raw, column)
                    elif isinstance(raw, pa.Array):
                        chunks[i] = converter.arrow(raw, column)
                    else:
                        chunks[i] = converter.values(raw, column)
            array = converter.finish(chunks, self._columns[k])
            if isinstance(array, np.ndarray) and array.dtype == object:
                array = pd.Series(array, dtype=object, copy=False)  # not inferred as str
            arrays[k] = array
            self._chunks[k] = []  # let the chunks go as soon as the column exists
        frame = pd.DataFrame(arrays, index=pd.RangeIndex(self._row_count), copy=False)
        frame.columns = pd.Index(self._names, dtype=object)
        frame.attrs["display_names"] = {
            name: col.get("display_name") or name
            for name, col in zip(self._names, self._cols, strict=True)
        }
        frame.attrs["metabase_types"] = {c.name: c.type for c in self._columns}
        return frame


def _column_name(col: dict[str, Any], index: int) -> str:
    name = col.get("name") or col.get("display_name")
    return str(name) if name else f"column_{index}"


def frame_from_result(data: dict[str, Any]) -> pd.DataFrame:
    """A DataFrame from a whole ``/query`` ``data`` object (``rows``, ``cols``, ...)."""
    builder = FrameBuilder(data.get("cols") or [], results_timezone=data.get("results_timezone"))
    builder.add_rows(data.get("rows") or [])
    return builder.build()


def frame_from_csv(
    cols: list[dict[str, Any]], body: bytes, *, results_timezone: str | None = None
) -> pd.DataFrame:
    """A DataFrame from a Metabase CSV export (``format_rows=false``), same dtypes as JSON.

    The header holds display names, so columns are matched by position with
    ``cols``. CSV cannot tell empty text from null: empty cells are null in
    every column, text included. Date-times written without an offset (CSV drops
    it for local date-times) are placed in ``results_timezone`` when given,
    which is what the JSON answer would have said.
    """
    stripped = body.lstrip()
    if stripped.startswith(b"{"):
        _raise_error_document(stripped)
    builder = FrameBuilder(cols, results_timezone=results_timezone)
    builder._columns = [
        _Column(c.name, c.type, c.results_timezone, localize_naive=True) for c in builder._columns
    ]
    if not stripped:
        return builder.build()
    names = [f"c{k}" for k in range(len(cols))]
    try:
        table = pa_csv.read_csv(
            io.BytesIO(body),
            read_options=pa_csv.ReadOptions(column_names=names, skip_rows=1),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(names, _STR),
                null_values=[""],  # not Arrow's default list, which has "null", "NaN", "N/A"
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid as exc:
        raise ResponseError(
            f"The CSV export could not be read ({str(exc)[:200]}); run it again or "
            "check the card in Metabase."
        ) from None
    for batch in table.to_batches():
        builder._add_strings(list(batch.columns), batch.num_rows)
    return builder.build()


def _raise_error_document(body: bytes) -> None:
    """Exports write a failed query's JSON error document instead of the CSV."""
    import orjson

    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return
    if isinstance(doc, dict) and doc.get("status") == "failed":
        error = str(doc.get("error") or "Error running query")
        raise QueryFailed(
            f"The query failed in Metabase: {error}",
            error=error,
            error_type=doc.get("error_type"),
            details=doc,
        )
