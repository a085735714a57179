"""The body of a ``%%massive_card`` cell: read it into card parameters, and write it.

Pure: no IPython, no HTTP. The notebook namespace comes in as a plain mapping,
so every rule below is tested without a shell. The reader (:func:`parse_cell`)
and the writer (:func:`format_cell`, used by the picker's "Copy as code") live
side by side, and a property test checks that what one writes the other reads.

One parameter per line::

    # comments and blank lines are skipped
    start_date = "2024-01-01"        # a JSON literal (string, number, list, true/false/null)
    Region     = EU                  # anything else is a bare string
    platform   = None                # None, none, null, NULL: no filter (value: null)
    since      = {since}             # a whole-value {var} is the Python object itself
    label      = Week of {monday}    # inside a longer string it is formatted in
    note       = {{literal braces}}  # doubled braces stand for one brace

The name is everything before the first ``=`` (slug or display name; the card
layer matches it case-insensitively), so display names with spaces work. A value
that starts like JSON (``[``, ``"``, or ``{`` not followed by a variable name) must
be valid JSON: a missing ``]`` is an error, not a bare string that matches no row.

The format has no date or tuple literal: the writer puts a date in as its ISO
string and a ``(start, end)`` pair as a two-item list, which the parameter builder
reads exactly as it reads the date and the tuple.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import numbers
import re
from collections.abc import Mapping, Set
from decimal import Decimal
from typing import Any

from .errors import ParameterError

__all__ = [
    "DEFAULT_VARIABLE",
    "NULL_WORDS",
    "expand_vars",
    "format_cell",
    "format_value",
    "parse_cell",
    "parse_value",
    "strip_comment",
]

#: The variable name in a generated ``%%massive_card ... -o NAME`` line.
DEFAULT_VARIABLE = "df"
#: Bare words that mean "no filter" (``value: null``), as ``None`` does in Python.
NULL_WORDS = frozenset({"None", "none", "null", "NULL"})

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_WHOLE_VAR = re.compile(rf"^\{{\s*({_IDENT})\s*\}}$")
_FIELD = re.compile(rf"\{{\{{|\}}\}}|\{{\s*({_IDENT})\s*\}}")
_MISSING = object()


def strip_comment(text: str) -> str:
    """``text`` without a trailing ``# comment`` (a ``#`` inside double quotes is kept).

    A ``#`` only starts a comment at the beginning or after whitespace, so
    values such as ``C#`` stay whole; quote a value that starts with ``#``.
    """
    in_string = escaped = False
    for index, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "#" and (index == 0 or text[index - 1].isspace()):
            return text[:index].rstrip()
    return text.strip()


def _lookup(name: str, namespace: Mapping[str, Any], where: str) -> Any:
    value = namespace.get(name, _MISSING)
    if value is _MISSING:
        raise ParameterError(
            f"{where}: {{{name}}} is not defined in the notebook. "
            f"Run the cell that defines {name!r} first, or write the value itself."
        )
    return value


def expand_vars(
    text: str, namespace: Mapping[str, Any], *, where: str = "value", whole: bool = True
) -> Any:
    """``{var}`` substitution: the object itself for a whole value, else formatted in.

    With ``whole=False`` (a quoted JSON string) the result is always a string.
    """
    match = _WHOLE_VAR.match(text.strip()) if whole else None
    if match:
        return _lookup(match.group(1), namespace, where)

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        return str(_lookup(match.group(1), namespace, where))

    return _FIELD.sub(replace, text)


def _parse_value(raw: str, namespace: Mapping[str, Any], where: str) -> Any:
    if not raw:
        raise ParameterError(
            f"{where}: the value is empty. Write a value after '=' (use \"\" for an empty string)."
        )
    if _WHOLE_VAR.match(raw):
        return expand_vars(raw, namespace, where=where)
    if raw in NULL_WORDS:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        if _looks_like_json(raw):
            raise ParameterError(_bad_json(raw, where)) from None
        value = raw
    if isinstance(value, str):
        # Formatted in: a quoted "{var}" stays a string (a bare {var} returned above).
        return expand_vars(value, namespace, where=where, whole=False)
    return value


def parse_value(
    raw: str, namespace: Mapping[str, Any] | None = None, *, where: str = "value"
) -> Any:
    """One value as a cell body reads it after ``name =`` (the command line's ``-p``)."""
    return _parse_value(raw.strip(), {} if namespace is None else namespace, where)


def _looks_like_json(raw: str) -> bool:
    """``[``, ``"`` or a ``{`` that does not start a ``{var}``/``{{`` template."""
    if raw.startswith(("[", '"')):
        return True
    return raw.startswith("{") and _FIELD.match(raw) is None


def _bad_json(raw: str, where: str) -> str:
    if raw.startswith('"'):
        return (
            f"{where}: {raw!r} starts with a quote but is not a valid JSON string. "
            "Close the quote, or drop the quotes for a bare string."
        )
    kind = "list" if raw.startswith("[") else "object"
    return (
        f"{where}: {raw!r} starts like a JSON {kind} but is not valid JSON (a missing "
        f'bracket or quote?). Write it as JSON, e.g. ["DE", "GB"], or put a whole '
        "value from the notebook with {var}."
    )


def parse_cell(body: str, namespace: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Card parameters from a cell body, in the order written.

    Raises :class:`ParameterError` naming the line and what to write instead.
    """
    namespace = {} if namespace is None else namespace
    params: dict[str, Any] = {}
    seen: dict[str, int] = {}
    for number, line in enumerate(body.splitlines(), start=1):
        text = strip_comment(line)
        if not text:
            continue
        where = f"Line {number}"
        name, sep, raw = text.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ParameterError(
                f"{where} of the cell: {line.strip()!r} is not 'name = value'. "
                "Write one parameter per line, e.g. start_date = 2024-01-01."
            )
        key = name.casefold()
        if key in seen:
            raise ParameterError(
                f"{where}: parameter {name!r} is already set on line {seen[key]}. Keep one."
            )
        seen[key] = number
        params[name] = _parse_value(raw.strip(), namespace, f"{where} ({name})")
    return params


# -- the writer ----------------------------------------------------------------------------

#: Characters ``str.splitlines`` breaks a line at that ``json.dumps(ensure_ascii=False)``
#: leaves alone; escaped so that one value stays on one line.
_LINE_BREAKS = {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def format_cell(
    ref: int | str, params: Mapping[str, Any], *, variable: str = DEFAULT_VARIABLE
) -> str:
    """The ``%%massive_card`` cell that loads card ``ref`` with ``params`` into ``variable``.

    :func:`parse_cell` reads the body back to ``params`` (dates as ISO strings,
    tuples as lists). Raises ValueError for a name or value the cell cannot hold.

    >>> print(format_cell(484, {"country": ["US", "DE"]}), end="")
    %%massive_card 484 -o df
    country = ["US", "DE"]
    """
    lines = [f"%%massive_card {ref} -o {variable}"]
    lines += [f"{_name(name)} = {format_value(value)}" for name, value in params.items()]
    return "\n".join(lines) + "\n"


def format_value(value: Any) -> str:
    """One value as a cell body writes it: always a JSON literal, so it reads back whole.

    A string's braces are doubled (``{x}`` would otherwise be a notebook variable).
    """
    if isinstance(value, str):
        value = value.replace("{", "{{").replace("}", "}}")
    return _json(value)


def _name(name: Any) -> str:
    text = str(name)
    if (
        not text.strip()
        or text != text.strip()
        or "=" in text
        or text.startswith("#")
        or len(text.splitlines()) != 1
    ):
        raise ValueError(f"{name!r} cannot be written as a parameter name in a cell body")
    return text


def _json(value: Any) -> str:
    """A JSON literal that ``parse_cell`` reads back to ``value`` (or its plain form)."""
    if value is None or isinstance(value, (bool, str)):
        text = json.dumps(value, ensure_ascii=False)
        for char, escaped in _LINE_BREAKS.items():
            text = text.replace(char, escaped)
        return text
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, (numbers.Real, Decimal)):
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"{value!r} cannot be a card parameter value")
        # As the parameter builder reads it: a whole Decimal is an int.
        return (
            str(int(number)) if isinstance(value, Decimal) and number.is_integer() else repr(number)
        )
    if isinstance(value, dt.datetime):
        return _json(_datetime_text(value))
    if isinstance(value, dt.date):
        return _json(value.isoformat())
    if isinstance(value, Mapping):
        items = (f"{_json(str(k))}: {_json(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(value, (list, tuple, Set)):
        return "[" + ", ".join(_json(v) for v in value) + "]"
    raise ValueError(f"{value!r} cannot be written as a card parameter value")


def _datetime_text(value: dt.datetime) -> str:
    """Metabase's date string for ``value``, as the parameter builder writes it."""
    text = value.replace(tzinfo=None).isoformat(timespec="seconds")
    return text[:-9] if text.endswith("T00:00:00") else text
