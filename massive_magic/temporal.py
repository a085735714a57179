"""The temporal converters: dates, date-times and times of day, parsed from text.

Metabase writes temporal values as ISO text. Arrow parses them (its casts are
vectorised); only forms Arrow does not read (nanoseconds, ``+hh:mm:ss``
offsets) go through pandas. See ``typetable`` for which Metabase type gets which.
"""

from __future__ import annotations

import re
from datetime import timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from massive_magic.converters import ARROW_ERRORS, STR, TS, TS_UTC, Column, Converter, is_text

__all__ = ["Date", "DateTime", "Parsed", "Time", "TimeWithZone"]

# An offset at the end of an ISO date-time or time: Z, +05, +0530, +05:30.
_OFFSET = r"(?:Z|[+-]\d\d(?::?\d\d)?)$"
_HAS_OFFSET = r"\d\d:\d\d(?::\d\d(?:\.\d*)?)?" + _OFFSET
_HAS_OFFSET_RE = re.compile(_HAS_OFFSET)


class Parsed(Converter):
    """Values written as text (dates, date-times, times): parsed by ``strings``."""

    def stored(self, arr: pa.Array, col: Column) -> Any:
        if is_text(arr):
            return self.strings(arr.cast(STR), col)
        return super().stored(arr, col)

    def dictionary(self, arr: pa.DictionaryArray, col: Column) -> Any:
        """Each distinct text parsed once, then spread out by the indices."""
        return self._take(self.stored(arr.dictionary, col), arr.indices)

    def _take(self, converted: Any, indices: pa.Array) -> Any:
        return converted.take(indices)


class Date(Parsed):
    """The first 10 characters, ``YYYY-MM-DD``, as written: no time zone arithmetic."""

    _ENDS = pa.array(["", "T", " "], type=STR)

    def strings(self, arr: pa.Array, col: Column) -> Any:
        after = pc.utf8_slice_codeunits(arr, 10, 11)
        shaped = pc.is_in(after, value_set=self._ENDS)  # false for nulls
        if (pc.sum(shaped).as_py() or 0) != len(arr) - arr.null_count:
            bad = arr.filter(pc.and_(pc.invert(shaped), pc.is_valid(arr)))[0].as_py()
            raise col.error("a value that is not a date", repr(bad))
        try:
            return pc.utf8_slice_codeunits(arr, 0, 10).cast(pa.date32())
        except ARROW_ERRORS as exc:
            raise col.error("a value that is not a date", exc) from None

    def to_arrow(self, chunks: list[Any], col: Column) -> pa.ChunkedArray:
        return pa.chunked_array(chunks, type=pa.date32())

    def pandas(self, column: pa.ChunkedArray) -> Any:
        return column.cast(TS).to_numpy()  # datetime64[us], midnight


class DateTime(Parsed):
    """Instants with offsets -> tz-aware in the results timezone; no offsets -> naive.

    A chunk is ``(kind, array)``: ``"aware"`` (timestamp[us, UTC]), ``"naive"``
    (timestamp[us]) or ``"null"`` (no values). The kinds are settled in
    ``to_arrow``, because a first batch may be all nulls.
    """

    def strings(self, arr: pa.Array, col: Column) -> Any:
        if arr.null_count == len(arr):
            return ("null", arr)
        # A failing cast is slow (Arrow tries harder before giving up): try the
        # kind the first value shows first.
        sample = arr.slice(0, 64).drop_null()
        first = (sample if len(sample) else arr.drop_null())[0].as_py()
        kinds = [("aware", TS_UTC), ("naive", TS)]
        if not _HAS_OFFSET_RE.search(first):
            kinds.reverse()
        for kind, target in kinds:
            try:
                return (kind, arr.cast(target))
            except ARROW_ERRORS:
                pass
        # Mixed, or ISO forms Arrow does not read (nanoseconds, +hh:mm:ss offsets).
        has_offset = pc.match_substring_regex(arr, _HAS_OFFSET)
        aware = pc.if_else(has_offset, arr, pa.scalar(None, STR))
        naive = pc.if_else(has_offset, pa.scalar(None, STR), arr)
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
        return ("aware", pc.if_else(has_offset, aware_ts, localized.cast(TS_UTC)))

    @staticmethod
    def _parse(arr: pa.Array, col: Column, *, utc: bool) -> pa.Array:
        target = TS_UTC if utc else TS
        try:
            return arr.cast(target)
        except ARROW_ERRORS:
            pass
        try:
            parsed = pd.to_datetime(
                pd.Series(arr, dtype=pd.StringDtype("pyarrow")), format="ISO8601", utc=utc
            )
        except (ValueError, TypeError, OverflowError) as exc:
            raise col.error("a value that is not a date-time", exc) from None
        return pa.array(parsed.dt.as_unit("us"), type=target)

    @staticmethod
    def _localize(arr: pa.Array, zone: str, col: Column) -> pa.Array:
        """Wall-clock times in ``zone`` (a repeated hour takes its first instant)."""
        try:
            return pc.assume_timezone(arr, zone, ambiguous="earliest", nonexistent="earliest")
        except ARROW_ERRORS as exc:
            raise col.error("a date-time that does not exist in " + zone, exc) from None

    def _take(self, converted: Any, indices: pa.Array) -> Any:
        kind, arr = converted
        return (kind, arr.take(indices))

    def to_arrow(self, chunks: list[Any], col: Column) -> pa.ChunkedArray:
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
            return pa.chunked_array(parts, type=target)
        return pa.chunked_array([arr.cast(TS) for _, arr in chunks], type=TS)

    def pandas(self, column: pa.ChunkedArray) -> Any:
        if column.type.tz is None:
            return column.to_numpy()  # datetime64[us]
        return column.to_pandas().array  # datetime64[us, tz]


class Time(Parsed):
    """Wall-clock time of day as written; the offset Metabase appends is dropped."""

    _EPOCH = pa.scalar("1970-01-01T", type=STR)

    def _wall(self, arr: pa.Array, col: Column) -> pa.Array:
        bare = pc.replace_substring_regex(arr, _OFFSET, "")
        bare = pc.replace_substring_regex(bare, r"(\.\d{6})\d+$", r"\1")  # ns -> us
        try:
            stamped = pc.binary_join_element_wise(self._EPOCH, bare, pa.scalar("", STR))
            return stamped.cast(TS).cast(pa.time64("us"))
        except ARROW_ERRORS as exc:
            raise col.error("a value that is not a time of day", exc) from None

    def strings(self, arr: pa.Array, col: Column) -> Any:
        return self._wall(arr, col)

    def to_arrow(self, chunks: list[Any], col: Column) -> pa.ChunkedArray:
        return pa.chunked_array(chunks, type=pa.time64("us"))

    def pandas(self, column: pa.ChunkedArray) -> Any:
        return pd.arrays.ArrowExtensionArray(column)


class TimeWithZone(Time):
    """``datetime.time`` objects that keep their offset (pandas has no such dtype)."""

    def dictionary(self, arr: pa.DictionaryArray, col: Column) -> Any:
        return self.stored(arr.dictionary_decode(), col)

    def strings(self, arr: pa.Array, col: Column) -> Any:
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

    def to_arrow(self, chunks: list[Any], col: Column) -> pa.ChunkedArray:
        """ISO text with the offset: ``10:30:00+02:00`` (``Z`` is written ``+00:00``)."""
        return pa.chunked_array([_iso_times(chunk) for chunk in chunks], type=STR)

    def to_pandas(self, chunks: list[Any], col: Column) -> Any:
        return np.concatenate(chunks) if chunks else np.array([], dtype=object)


def _iso_times(times: np.ndarray) -> pa.Array:
    return pa.array([None if t is None else t.isoformat() for t in times.tolist()], type=STR)


def _fixed_zone(text: str) -> timezone | None:
    if not text:
        return None
    if text == "Z":
        return timezone.utc
    digits = text[1:].replace(":", "")
    delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
    return timezone(-delta if text[0] == "-" else delta)
