"""Column storage and Metabase's value formats, vectorised per batch.

A result is a :class:`Table` of :class:`Column` objects holding numpy arrays (or object
arrays for text).  Nothing is formatted up front: each response formats one batch of rows
at a time in the style of the endpoint, so a million-row answer never exists twice.

Styles (metabase-api.md §4.5, §5.4):

``STYLE_API``        ``/query`` and the ``api`` export: dates as midnight timestamps with
                     the report zone's offset, datetimes with offsets, times ``10:30:00Z``.
``STYLE_EXPORT``     csv/json exports with ``format_rows=false``: ``2024-01-15``,
                     ``2024-01-15T10:30:00`` (midnight datetimes lose their time).
``STYLE_FORMATTED``  csv/json exports with ``format_rows=true``: UI strings
                     (``1,234.5``, ``January 15, 2024``).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

STYLE_API = "api"
STYLE_EXPORT = "export"
STYLE_FORMATTED = "formatted"

MAX_SAFE_INT = 2**53 - 1
EPOCH = dt.datetime(1970, 1, 1)

#: column kind -> (base_type, database_type) used when a caller gives only a kind
KIND_DEFAULTS: dict[str, tuple[str, str]] = {
    "int": ("type/Integer", "int4"),
    "bigint": ("type/BigInteger", "int8"),
    "float": ("type/Float", "float8"),
    "decimal": ("type/Decimal", "numeric"),
    "text": ("type/Text", "varchar"),
    "bool": ("type/Boolean", "bool"),
    "date": ("type/Date", "date"),
    "datetime": ("type/DateTime", "timestamp"),
    "datetimetz": ("type/DateTimeWithLocalTZ", "timestamptz"),
    "time": ("type/Time", "time"),
    "json": ("type/JSON", "json"),
    "other": ("type/*", "unknown"),
}

#: base_type -> kind, for callers (``add_card``) that give Metabase types
BASE_TYPE_KINDS: dict[str, str] = {
    "type/Integer": "int",
    "type/BigInteger": "bigint",
    "type/Float": "float",
    "type/Decimal": "decimal",
    "type/Text": "text",
    "type/Boolean": "bool",
    "type/Date": "date",
    "type/DateTime": "datetime",
    "type/DateTimeWithTZ": "datetimetz",
    "type/DateTimeWithLocalTZ": "datetimetz",
    "type/DateTimeWithZoneOffset": "datetimetz",
    "type/Instant": "datetimetz",
    "type/Time": "time",
    "type/JSON": "json",
}

_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


@dataclass(frozen=True)
class Column:
    """One result column: Metabase metadata plus its values.

    ``data`` by kind: int/bigint int64; float/decimal float64; bool bool; date int64 days
    since 1970-01-01; datetime int64 local wall-clock seconds; datetimetz int64 UTC epoch
    seconds; time int64 seconds after midnight; text/json/other an object array of str.
    ``mask`` marks nulls (True = null) or is None when the column has none.
    """

    name: str
    kind: str
    data: np.ndarray
    mask: np.ndarray | None = None
    display_name: str = ""
    base_type: str = ""
    database_type: str = ""
    semantic_type: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        base, db_type = KIND_DEFAULTS[self.kind]
        if not self.display_name:
            object.__setattr__(self, "display_name", self.name)
        if not self.base_type:
            object.__setattr__(self, "base_type", base)
        if not self.database_type:
            object.__setattr__(self, "database_type", db_type)

    def metadata(self) -> dict[str, Any]:
        """The ``data.cols`` entry Metabase sends for a native query column."""
        meta: dict[str, Any] = {
            "display_name": self.display_name,
            "source": "native",
            "field_ref": ["field", self.name, {"base-type": self.base_type}],
            "name": self.name,
            "base_type": self.base_type,
            "effective_type": self.base_type,
            "database_type": self.database_type,
            "semantic_type": self.semantic_type,
        }
        meta.update(self.extra)
        return meta

    def take(self, index: np.ndarray | slice) -> Column:
        """A column holding only the rows selected by ``index`` (a view for slices)."""
        mask = None if self.mask is None else self.mask[index]
        return replace(self, data=self.data[index], mask=mask)


@dataclass(frozen=True)
class Table:
    """A result: columns of equal length."""

    columns: list[Column]
    length: int

    def take(self, index: np.ndarray | slice) -> Table:
        cols = [c.take(index) for c in self.columns]
        length = len(cols[0].data) if cols else 0
        return Table(cols, length)

    def head(self, n: int) -> Table:
        return self if n >= self.length else self.take(slice(0, n))

    def metadata(self) -> list[dict[str, Any]]:
        return [c.metadata() for c in self.columns]


def column(
    name: str,
    kind: str,
    values: Sequence[Any] | np.ndarray,
    *,
    display_name: str = "",
    base_type: str = "",
    database_type: str = "",
    semantic_type: str | None = None,
) -> Column:
    """Build a column from Python values (``None`` = null) or a ready numpy array."""
    if isinstance(values, np.ndarray) and values.dtype != object:
        data, mask = values, None
    else:
        data, mask = _from_python(kind, list(values))
    return Column(
        name,
        kind,
        data,
        mask,
        display_name=display_name,
        base_type=base_type,
        database_type=database_type,
        semantic_type=semantic_type,
    )


def _from_python(kind: str, values: list[Any]) -> tuple[np.ndarray, np.ndarray | None]:
    nulls = np.array([v is None for v in values], dtype=bool)
    mask = nulls if nulls.any() else None
    if kind in ("text", "json", "other"):
        conv = [None if v is None else (v if isinstance(v, str) else json.dumps(v)) for v in values]
        arr = np.empty(len(conv), dtype=object)
        arr[:] = conv
        return arr, mask
    fill: Any
    if kind in ("int", "bigint"):
        return np.array([0 if v is None else int(v) for v in values], dtype=np.int64), mask
    if kind in ("float", "decimal"):
        return np.array([0.0 if v is None else float(v) for v in values], dtype=np.float64), mask
    if kind == "bool":
        return np.array([bool(v) for v in values], dtype=bool), mask
    if kind == "date":
        fill = [0 if v is None else (v - dt.date(1970, 1, 1)).days for v in values]
    elif kind == "datetime":
        fill = [0 if v is None else int((v - EPOCH).total_seconds()) for v in values]
    elif kind == "datetimetz":
        fill = [0 if v is None else int(v.timestamp()) for v in values]
    elif kind == "time":
        fill = [0 if v is None else v.hour * 3600 + v.minute * 60 + v.second for v in values]
    else:
        raise ValueError(f"unknown column kind {kind!r}")
    return np.array(fill, dtype=np.int64), mask


class Zone:
    """Offsets of one IANA zone, memoised per hour so a batch converts in numpy."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.tz = ZoneInfo(name)
        self._utc_hours: dict[int, int] = {}
        self._local_hours: dict[int, int] = {}
        self._lock = threading.Lock()
        # Times of day carry the zone's standard (January) offset, so output does not
        # depend on the day the tests run.
        self.standard_offset = self._offset_utc(int(dt.datetime(2024, 1, 1).timestamp()) // 3600)

    def _offset_utc(self, hour: int) -> int:
        moment = dt.datetime.fromtimestamp(hour * 3600, dt.timezone.utc)
        off = moment.astimezone(self.tz).utcoffset()
        return int(off.total_seconds()) if off else 0

    def _offset_local(self, hour: int) -> int:
        wall = EPOCH + dt.timedelta(hours=hour)
        off = wall.replace(tzinfo=self.tz).utcoffset()
        return int(off.total_seconds()) if off else 0

    def offsets(self, seconds: np.ndarray, *, local: bool) -> np.ndarray:
        """Offset in seconds for UTC instants (``local=False``) or wall-clock times."""
        if self.name == "UTC" or len(seconds) == 0:
            return np.zeros(len(seconds), dtype=np.int64)
        hours = seconds // 3600
        uniq, inverse = np.unique(hours, return_inverse=True)
        memo, compute = (
            (self._local_hours, self._offset_local)
            if local
            else (self._utc_hours, self._offset_utc)
        )
        with self._lock:
            found = []
            for h in uniq.tolist():
                off = memo.get(h)
                if off is None:
                    off = memo[h] = compute(h)
                found.append(off)
        return np.asarray(found, dtype=np.int64)[inverse]


_ZONES: dict[str, Zone] = {}


def zone(name: str) -> Zone:
    """The shared :class:`Zone` for ``name``."""
    z = _ZONES.get(name)
    if z is None:
        z = _ZONES[name] = Zone(name)
    return z


def offset_string(seconds: int) -> str:
    if seconds == 0:
        return "Z"
    sign = "+" if seconds > 0 else "-"
    seconds = abs(seconds)
    return f"{sign}{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


def _offset_strings(offsets: np.ndarray) -> list[str]:
    uniq, inverse = np.unique(offsets, return_inverse=True)
    names = [offset_string(int(o)) for o in uniq.tolist()]
    return [names[i] for i in inverse.tolist()]


_TIMES_OF_DAY: list[np.ndarray] = []


def _times_of_day() -> np.ndarray:
    """``"HH:MM:SS"`` for every second of a day, built once (a lookup beats formatting)."""
    if not _TIMES_OF_DAY:
        secs = np.arange(86400)
        _TIMES_OF_DAY.append(np.array(_hms(secs), dtype=object))
    return _TIMES_OF_DAY[0]


def _iso_days(days: np.ndarray) -> list[str]:
    """``YYYY-MM-DD`` per value; formats each distinct day once (batches repeat days)."""
    if len(days) == 0:
        return []
    uniq, inverse = np.unique(days, return_inverse=True)
    names = np.datetime_as_string(uniq.astype("datetime64[D]"), unit="D").astype(object)
    return names[inverse].tolist()


def _iso_seconds(seconds: np.ndarray) -> list[str]:
    """``YYYY-MM-DDTHH:MM:SS`` per value, from the day and time-of-day lookups."""
    days = _iso_days(seconds // 86400)
    times = _times_of_day()[seconds % 86400].tolist()
    return [f"{d}T{t}" for d, t in zip(days, times, strict=False)]


def _hms(seconds: np.ndarray) -> list[str]:
    return [f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}" for s in seconds.tolist()]


def _with_nulls(values: list[Any], mask: np.ndarray | None) -> list[Any]:
    if mask is not None:
        for i in np.flatnonzero(mask).tolist():
            values[i] = None
    return values


def format_values(col: Column, style: str, tz: Zone, *, js_int_to_string: bool = False) -> list:
    """The column's values as JSON-ready Python objects for one endpoint style."""
    data, kind = col.data, col.kind
    out: list[Any]
    if kind in ("int", "bigint"):
        out = data.tolist()
        if style == STYLE_FORMATTED:
            out = [f"{v:,}" for v in out]
        elif js_int_to_string:
            big = (data > MAX_SAFE_INT) | (data < -MAX_SAFE_INT)
            for i in np.flatnonzero(big).tolist():
                out[i] = str(out[i])
    elif kind in ("float", "decimal"):
        out = data.tolist()
        if style == STYLE_FORMATTED:
            out = [_ui_number(v) for v in out]
    elif kind == "bool":
        out = data.tolist()
        if style == STYLE_FORMATTED:
            out = ["true" if v else "false" for v in out]
    elif kind in ("text", "json", "other"):
        out = data.tolist()
    elif kind == "date":
        out = _format_dates(data, style, tz)
    elif kind in ("datetime", "datetimetz"):
        out = _format_datetimes(data, style, tz, aware=kind == "datetimetz")
    elif kind == "time":
        if style == STYLE_API:
            suffix = offset_string(tz.standard_offset)
            out = [s + suffix for s in _hms(data)]
        elif style == STYLE_EXPORT:
            out = _hms(data)
        else:
            out = [_ui_time(s) for s in data.tolist()]
    else:  # pragma: no cover - guarded by Column.__post_init__
        raise ValueError(kind)
    return _with_nulls(out, col.mask)


def _format_dates(days: np.ndarray, style: str, tz: Zone) -> list[str]:
    iso = _iso_days(days)
    if style == STYLE_EXPORT:
        return iso
    if style == STYLE_FORMATTED:
        return [_ui_date(s) for s in iso]
    offsets = _offset_strings(tz.offsets(days * 86400, local=True))
    return [f"{d}T00:00:00{o}" for d, o in zip(iso, offsets, strict=False)]


def _format_datetimes(seconds: np.ndarray, style: str, tz: Zone, *, aware: bool) -> list[str]:
    if aware:
        offsets = tz.offsets(seconds, local=False)
        wall = seconds + offsets
    else:
        wall = seconds
        offsets = tz.offsets(seconds, local=True)
    iso = _iso_seconds(wall)
    if style == STYLE_FORMATTED:
        return [_ui_datetime(s) for s in iso]
    if style == STYLE_EXPORT and not aware:
        # streaming/common.clj: a LocalDateTime at midnight is written as a date.
        return [s[:10] if s.endswith("T00:00:00") else s for s in iso]
    return [s + o for s, o in zip(iso, _offset_strings(offsets), strict=False)]


def _ui_number(v: float) -> str:
    text = f"{v:,.2f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _ui_date(iso: str) -> str:
    y, m, d = iso[:10].split("-")
    return f"{_MONTHS[int(m) - 1]} {int(d)}, {y}"


def _ui_time_hm(hour: int, minute: int) -> str:
    suffix = "AM" if hour < 12 else "PM"
    return f"{(hour % 12) or 12}:{minute:02d} {suffix}"


def _ui_time(seconds: int) -> str:
    return _ui_time_hm(seconds // 3600, seconds % 3600 // 60)


def _ui_datetime(iso: str) -> str:
    return f"{_ui_date(iso)}, {_ui_time_hm(int(iso[11:13]), int(iso[14:16]))}"


def rows_of(
    table: Table, start: int, stop: int, style: str, tz: Zone, *, js_int_to_string: bool = False
) -> list[tuple]:
    """Rows ``start:stop`` of ``table`` as tuples of formatted values."""
    part = table.take(slice(start, stop))
    cols = [format_values(c, style, tz, js_int_to_string=js_int_to_string) for c in part.columns]
    return list(zip(*cols, strict=False))
