"""The one type table: the converter, pandas dtype and Arrow type of each Metabase type.

Every read path (``/query`` JSON, the ``api`` export, CSV) and every output
(pandas, Arrow, polars) goes through it.

A column is looked up by its ``effective_type`` (the type after Metabase's
coercions, the one the values are written in), falling back to ``base_type``
when that is absent.

=====================================  =============================  ====================
Metabase type                          pandas dtype                   Arrow type
=====================================  =============================  ====================
``type/Integer``, ``type/BigInteger``  ``Int64`` (nullable; exact,    ``int64``
                                       numbers or strings)
... values beyond the 64-bit range     ``object``: exact Python       ``decimal128(38, 0)``
                                       ints + ``UnknownTypeWarning``  + the warning
``type/Float``, ``type/Decimal``, ...  ``float64`` (null -> NaN);     ``float64`` (null
                                       numbers or strings             stays null)
``type/Text``, ``type/UUID``, enums    ``string[pyarrow]``            ``large_string``
``type/Boolean``                       ``boolean`` (nullable)         ``bool``
``type/Date``                          ``datetime64[us]``, midnight   ``date32``
``type/DateTime`` and its subtypes,    ``datetime64[us, <results      ``timestamp[us,
``type/Instant``                       timezone>]`` with offsets      <results
                                       (UTC if none is known);        timezone>]``;
                                       ``datetime64[us]`` without     ``timestamp[us]``
``type/Time``                          ``time64[us][pyarrow]``        ``time64[us]``
``type/TimeWithTZ`` and subtypes       ``object``: ``datetime.time``  ``large_string``:
                                       with ``tzinfo``                ``10:30:00+02:00``
JSON / collections / ``type/*``        ``object``, values unchanged   ``large_string``:
                                                                      JSON text
anything else                          ``object`` +                   ``large_string``
                                       ``UnknownTypeWarning`` (once)  JSON text + warning
=====================================  =============================  ====================

Dates are the date *as written*: the offset Metabase attaches is ignored, so no
day shifts. Times are the wall-clock time as written (the offset Metabase
attaches to a local time is dropped). Microseconds are the unit for every
temporal column: they cover years 1-9999 (``datetime64[ns]`` stops at 2262) and
are Metabase's usual precision; finer fractions are truncated.

Decimals become float64 (about 15 significant digits). To keep exact decimals,
cast the column to text in the card's SQL (``CAST(amount AS TEXT)``): it then
arrives as ``type/Text`` with every digit, and ``.map(decimal.Decimal)`` gives
exact values.

In Arrow, text keeps empty strings and nulls apart (CSV exports cannot: an empty
cell is null). JSON columns become text holding JSON: text values as Metabase
sent them (it sends JSON columns as text), parsed values written as JSON. Time
with a zone becomes ISO text with its offset, Arrow having no such type.

A value that does not fit its column's declared type raises ``ResponseError``
naming the column and the value: nothing is coerced to NaN behind your back.
"""

from __future__ import annotations

import warnings
from typing import Any

import pyarrow as pa

from massive_magic.converters import TS_UTC, Boolean, Converter, Float, Integer, Object, Text
from massive_magic.converters import Unknown as _UnknownConverter
from massive_magic.errors import MassiveWarning
from massive_magic.temporal import Date, DateTime, Time, TimeWithZone

__all__ = ["TYPE_TABLE", "UNKNOWN", "check_timezone", "column_type", "converter_for"]

_INTEGER, _FLOAT, _BOOLEAN, _TEXT = Integer(), Float(), Boolean(), Text()
_DATE, _DATETIME, _TIME, _TIMETZ = Date(), DateTime(), Time(), TimeWithZone()
_OBJECT = Object()
#: The converter of every type the table does not name (values kept, with a warning).
UNKNOWN: Converter = _UnknownConverter()

#: Metabase type -> converter, most specific first within each family (Metabase's
#: ``isa`` hierarchy, ``metabase/types/core.cljc``). Lookup is by exact name.
TYPE_TABLE: dict[str, Converter] = {
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


def column_type(col: dict[str, Any]) -> str:
    """The Metabase type a column's values are written in (its key in ``TYPE_TABLE``)."""
    return col.get("effective_type") or col.get("base_type") or "type/*"


def check_timezone(zone: str | None) -> str | None:
    """The results timezone if Arrow and pandas both know it; else UTC, with a warning."""
    if zone is None:
        return None
    if zone == "Z":
        return "UTC"
    try:
        probe = pa.array([0], type=TS_UTC).cast(pa.timestamp("us", tz=zone))
        pa.chunked_array([probe]).to_pandas()
    except Exception:
        warnings.warn(
            f"Unknown results timezone {zone!r}; date-times are shown in UTC.",
            MassiveWarning,
            stacklevel=3,
        )
        return "UTC"
    return zone


def converter_for(kind: str) -> Converter:
    """The converter of the Metabase type ``kind`` (``UNKNOWN`` when the table lacks it)."""
    return TYPE_TABLE.get(kind, UNKNOWN)
