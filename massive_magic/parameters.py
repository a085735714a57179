"""Parameter values -> the ``parameters`` list Metabase expects (pure, no HTTP).

Metabase silently ignores or mis-reads a parameter whose shape does not match
the card's declaration (see metabase-api.md §7 and Traps 7-8), so the user
writes plain Python values keyed by a parameter's slug or display name and this
module builds each ``{"id", "type", "target", "value"}`` from the declaration:

- ``id``/``target`` are copied from the declaration (``GET /api/card/:id`` ->
  ``parameters``, or a dashboard's ``parameters``, which have no target);
- ``type`` is the declared type, or for a ``date/all-options`` widget the
  specific type of the value given (``date/range``, ``date/relative`` ...);
- ``value`` is one value for a raw variable (``{{min_orders}}``), a list for a
  field-filter operator (``string/=``, ``number/=``, ``category`` dimension,
  dashboard filters), numbers as JSON numbers, dates as Metabase's date strings.

``None`` (or an empty list) means "no filter" and is sent as ``"value": null``.
Everything that cannot fit raises :class:`~massive_magic.errors.ParameterError`
before a request is sent.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from .declarations import (
    ParameterDecl,
    as_declarations,
    declarations,
    describe_parameters,
    match_index,
    match_parameter,
)
from .errors import ParameterError

__all__ = [
    # Declarations are read in declarations.py; their names stay importable from here.
    "ParameterDecl",
    "build_parameter",
    "build_parameters",
    "declarations",
    "describe_parameters",
    "match_parameter",
]

# Metabase's date grammar (metabase.query-processor.parameters.dates), used to
# catch typos before the server answers "Don't know how to parse date string".
_UNITS = r"(?:minute|hour|day|week|month|quarter|year)s?"
_DATE = r"\d{4}-\d{2}-\d{2}"
_DATETIME = _DATE + r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
_SINGLE_RE = re.compile(rf"^{_DATETIME}$")
_RANGE_RE = re.compile(rf"^(?:{_DATETIME})?~(?:{_DATETIME})?$")
_MONTH_RE = re.compile(r"^\d{4}-\d{2}$")
_QUARTER_RE = re.compile(r"^Q[1-4]-\d{4}$")
_RELATIVE_RE = re.compile(
    rf"^(?:today|yesterday|(?:this|last|next)(?:minute|hour|day|week|month|quarter|year)"
    rf"|(?:past|next)\d+{_UNITS}~?(?:-from-\d+{_UNITS})?)$"
)
_EXCLUDE_RE = re.compile(r"^exclude-(?:minutes|hours|days|months|quarters)-[A-Za-z0-9-]+$")

# Which date value kinds each date widget accepts, and the parameter type to send.
_DATE_KIND_TYPE = {
    "single": "date/single",
    "range": "date/range",
    "month": "date/month-year",
    "quarter": "date/quarter-year",
    "relative": "date/relative",
    "exclude": "date/all-options",
}
_DATE_WIDGET_KINDS: dict[str, frozenset[str]] = {
    "date": frozenset({"single"}),
    "date/single": frozenset({"single"}),
    "date/range": frozenset({"range"}),
    "date/month-year": frozenset({"month"}),
    "date/quarter-year": frozenset({"quarter"}),
    "date/relative": frozenset({"relative"}),
    "date/all-options": frozenset(_DATE_KIND_TYPE),
}
_DATE_EXAMPLES = {
    "single": "datetime.date(2026, 1, 31) or '2026-01-31'",
    "range": "('2026-01-01', '2026-01-31'), (date, None) or '2026-01-01~2026-01-31'",
    "month": "'2026-01'",
    "quarter": "'Q1-2026'",
    "relative": "'past30days', 'thismonth', 'today'",
    "exclude": "'exclude-days-Sat-Sun'",
}
_TEMPORAL_UNITS = frozenset(
    {
        "minute",
        "hour",
        "day",
        "week",
        "month",
        "quarter",
        "year",
        "minute-of-hour",
        "hour-of-day",
        "day-of-week",
        "day-of-month",
        "day-of-year",
        "week-of-year",
        "month-of-year",
        "quarter-of-year",
    }
)


def build_parameters(
    declarations: Sequence[Mapping[str, Any] | ParameterDecl],
    values: Mapping[str, Any] | None,
    *,
    owner: str = "This card",
) -> list[dict[str, Any]]:
    """Metabase ``parameters`` for ``values``, checked against ``declarations``.

    ``declarations``: :class:`ParameterDecl` or Metabase's JSON for them.
    ``owner`` names the card or dashboard in error messages ("Card 484").
    Parameters the user does not mention are not sent, so the card's defaults apply.
    """
    if values is None:
        return []
    if not isinstance(values, Mapping):
        raise ParameterError(
            f"Parameters are a mapping of name to value, such as {{'date': 'past30days'}}, "
            f"not {type(values).__name__}."
        )
    decls = as_declarations(declarations)
    built: list[dict[str, Any]] = []
    seen: dict[int, str] = {}
    for key, value in values.items():
        index = match_index(decls, key, owner)
        if index in seen:
            raise ParameterError(
                f"Parameter {decls[index].key!r} is given twice "
                f"({seen[index]!r} and {key!r}); keep one."
            )
        seen[index] = key
        built.append(build_parameter(decls[index], value))
    return built


def build_parameter(decl: Mapping[str, Any] | ParameterDecl, value: Any) -> dict[str, Any]:
    """One Metabase parameter for ``value`` under the declaration ``decl``."""
    decl = ParameterDecl.from_json(decl)
    declared = decl.type
    label = decl.key
    # A raw template-tag variable takes one value; field filters and dashboard
    # filters (no target) take the operator's list.
    single = decl.single_value
    param: dict[str, Any] = {"id": decl.id, "type": declared}
    if decl.target is not None:
        param["target"] = decl.target
    if value is None or (_is_list(value) and len(value) == 0):
        param["value"] = None
        return param
    family = declared.split("/", 1)[0]
    if family == "date":
        param["type"], param["value"] = _date_value(label, declared, value, single)
    elif family == "number":
        param["value"] = _number_value(label, declared, value, single)
    elif family == "boolean":
        param["value"] = _listed(label, declared, value, single, _to_bool)
    elif family == "string" or declared in ("text", "category", "id") or family == "location":
        param["value"] = _text_value(label, declared, value, single)
        if single and declared == "category":
            # Metabase declares raw text variables as "category" and still accepts that
            # type only through a "FIXME" compatibility rule; "text" (or "boolean" for a
            # boolean tag) is the type its parameter schema documents for them.
            param["type"] = "boolean" if isinstance(param["value"], bool) else "text"
    elif declared == "temporal-unit":
        param["value"] = _temporal_unit(label, value)
    else:
        # A widget type this client does not know: send the value as given.
        param["value"] = list(value) if _is_list(value) else value
    return param


# -- helpers -----------------------------------------------------------------


def _is_list(value: Any) -> bool:
    return isinstance(value, (list, tuple, set, frozenset)) or (
        isinstance(value, Iterable)
        and not isinstance(value, (str, bytes, Mapping, dt.date))
        and hasattr(value, "__len__")
    )


def _fail(label: str, declared: str, value: Any, expected: str) -> ParameterError:
    return ParameterError(
        f"Parameter {label!r} ({declared}) cannot take {value!r}: expected {expected}."
    )


def _listed(label: str, declared: str, value: Any, single: bool, convert: Any) -> Any:
    """One converted value for a raw variable, a list for a field filter."""
    items = list(value) if _is_list(value) else [value]
    if single:
        if len(items) != 1:
            raise _fail(
                label, declared, value, "one value (this is a single-value variable, not a list)"
            )
        return convert(label, declared, items[0])
    return [convert(label, declared, item) for item in items]


def _to_number(label: str, declared: str, item: Any) -> int | float:
    if isinstance(item, bool) or item is None:
        raise _fail(label, declared, item, "a number")
    if isinstance(item, numbers.Integral):
        return int(item)
    if isinstance(item, (numbers.Real, Decimal)):
        number = float(item)
        if not math.isfinite(number):
            raise _fail(label, declared, item, "a finite number")
        return int(number) if isinstance(item, Decimal) and number.is_integer() else number
    if isinstance(item, str):
        text = item.strip()
        # "1,234" would reach Metabase as the list [1, 234]: refuse it here.
        if re.fullmatch(r"[+-]?\d+", text):
            return int(text)
        if re.fullmatch(r"[+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?", text):
            return float(text)
    raise _fail(label, declared, item, "a number such as 42 or 3.5 (no thousands separators)")


def _number_value(label: str, declared: str, value: Any, single: bool) -> Any:
    if declared == "number/between":
        items = list(value) if _is_list(value) else None
        if items is None or len(items) != 2:
            raise _fail(label, declared, value, "a (min, max) pair; either end may be None")
        return [None if v is None else _to_number(label, declared, v) for v in items]
    return _listed(label, declared, value, single, _to_number)


def _to_bool(label: str, declared: str, item: Any) -> bool:
    if isinstance(item, bool):
        return item
    if isinstance(item, str) and item.strip().lower() in ("true", "false"):
        return item.strip().lower() == "true"
    if isinstance(item, numbers.Integral) and int(item) in (0, 1):
        return bool(item)
    raise _fail(label, declared, item, "True or False")


def _to_text(label: str, declared: str, item: Any) -> str:
    """A text filter (``string/...``, ``text``) takes strings only: ``42`` or a date
    there is a mistake (0 rows), not a value to stringify."""
    if isinstance(item, str):
        return item
    raise _fail(label, declared, item, _text_expected(item))


def _text_expected(item: Any) -> str:
    if isinstance(item, (numbers.Number, Decimal, dt.date)) and not isinstance(item, bool):
        text = item.isoformat() if isinstance(item, dt.date) else str(item)
        return f"text; write {text!r} in quotes if you mean that text"
    return "text"


def _to_any_text(label: str, declared: str, item: Any) -> str:
    """A ``category`` value, which Metabase declares for "anything": numbers and dates
    are written out as text."""
    if isinstance(item, str):
        return item
    if isinstance(item, bool) or item is None:
        raise _fail(label, declared, item, "a string")
    if isinstance(item, (numbers.Number, Decimal)):
        return str(item)
    if isinstance(item, dt.date):
        return item.isoformat()
    raise _fail(label, declared, item, "a string")


def _to_text_or_bool(label: str, declared: str, item: Any) -> str | bool:
    return item if isinstance(item, bool) else _to_any_text(label, declared, item)


def _to_scalar(label: str, declared: str, item: Any) -> Any:
    """A category/id/location value keeps its JSON type (the field may be numeric)."""
    if isinstance(item, (str, bool)):
        return item
    if isinstance(item, (numbers.Number, Decimal)):
        return _to_number(label, declared, item)
    return _to_any_text(label, declared, item)


def _text_value(label: str, declared: str, value: Any, single: bool) -> Any:
    convert: Callable[[str, str, Any], Any]
    if declared.startswith("string/") or declared == "text":
        convert = _to_text
    elif single:
        # Raw text variables are declared "category" and take one string; a raw
        # boolean tag may be declared "category" too, so a bool stays a bool.
        convert = _to_text_or_bool
    else:
        convert = _to_scalar
    return _listed(label, declared, value, single, convert)


def _temporal_unit(label: str, value: Any) -> str:
    if isinstance(value, str) and value.strip() in _TEMPORAL_UNITS:
        return value.strip()
    raise _fail(label, "temporal-unit", value, f"one of {', '.join(sorted(_TEMPORAL_UNITS))}")


def _date_text(item: Any) -> str | None:
    """``date``/``datetime`` -> Metabase's date string; None for what is not a date."""
    if isinstance(item, dt.datetime):
        if item.tzinfo is not None:
            # Metabase's date parameters have no zone; keep the wall-clock time given.
            item = item.replace(tzinfo=None)
        text = item.isoformat(timespec="seconds")
        return text[:-9] if text.endswith("T00:00:00") else text
    if isinstance(item, dt.date):
        return item.isoformat()
    if isinstance(item, str) and _SINGLE_RE.match(item.strip()):
        return item.strip()
    try:  # pandas.Timestamp, numpy.datetime64 and friends expose isoformat/to_pydatetime
        converted = item.to_pydatetime()
    except AttributeError:
        return None
    return _date_text(converted)


def _date_kind(text: str) -> str | None:
    if _SINGLE_RE.match(text):
        return "single" if _is_calendar(text) else None
    if _RANGE_RE.match(text) and text != "~":
        start, _, end = text.partition("~")
        return "range" if all(_is_calendar(t) for t in (start, end) if t) else None
    if _MONTH_RE.match(text):
        return "month" if 1 <= int(text[5:]) <= 12 else None
    if _QUARTER_RE.match(text):
        return "quarter"
    if _RELATIVE_RE.match(text):
        return "relative"
    if _EXCLUDE_RE.match(text):
        return "exclude"
    return None


def _is_calendar(text: str) -> bool:
    """``2024-02-30`` has the shape of a date but is none: Metabase would fail on it."""
    day, _, time = text.replace(" ", "T").partition("T")
    try:
        dt.date(int(day[:4]), int(day[5:7]), int(day[8:10]))
        if time:
            hour, minute, *second = time.split(":")
            dt.time(int(hour), int(minute), int(float(second[0])) if second else 0)
    except ValueError:
        return False
    return True


def _date_value(label: str, declared: str, value: Any, single: bool) -> tuple[str, str]:
    """(parameter type, Metabase date string) for ``value`` under a date widget."""
    if isinstance(value, tuple) or (_is_list(value) and not isinstance(value, (set, frozenset))):
        items = list(value)
        if len(items) == 1 and not isinstance(value, tuple):
            return _date_value(label, declared, items[0], single)
        if len(items) != 2:
            raise _fail(label, declared, value, "a date, a date string or a (start, end) pair")
        ends = []
        for end in items:
            if end is None:
                ends.append("")
                continue
            text = _date_text(end)
            if text is None:
                raise _fail(label, declared, value, "dates (or None for an open end) in the pair")
            ends.append(text)
        if not any(ends):
            raise _fail(label, declared, value, "at least one end of the range")
        text = "~".join(ends)
    elif isinstance(value, str):
        text = value.strip()
    else:
        converted = _date_text(value)
        if converted is None:
            raise _fail(label, declared, value, "a date, a date string or a (start, end) pair")
        text = converted
    kind = _date_kind(text)
    if kind is None and re.search(r"\d{4}-\d{2}", text):
        raise _fail(label, declared, value, "a real calendar date (YYYY-MM-DD, month 01-12)")
    if kind is None:
        raise _fail(
            label,
            declared,
            value,
            "a date or one of Metabase's date strings: " + "; ".join(_DATE_EXAMPLES.values()),
        )
    allowed = _DATE_WIDGET_KINDS.get(declared)
    if single and declared in ("date", "date/single", "date/all-options"):
        # A raw {{date}} variable is substituted as one date literal.
        allowed = frozenset({"single"})
    if allowed is None:
        # An unknown date widget: trust the user's string with the declared type.
        return declared, text
    if kind not in allowed:
        expected = " or ".join(_DATE_EXAMPLES[k] for k in sorted(allowed))
        raise _fail(label, declared, value, f"for this widget {expected}")
    if declared == "date/all-options":
        return _DATE_KIND_TYPE[kind], text
    return declared, text
